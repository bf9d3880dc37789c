// connectTcp() and `msb-agentd forward`: TCP connections made from inside the guest, end to end
// through a real agent.
import t from 'tap';
import { createHash } from 'node:crypto';
import { createServer, connect, type Server } from 'node:net';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { AgentClient } from '../../ts/client/index.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';
import { pattern } from '../fixtures/harness.js';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ts', 'cli', 'run.ts');
const { path } = await startAgentOnSocket(t, 'client-tcp');
const echo: Server = createServer((s) => s.pipe(s));
echo.listen(0, '127.0.0.1');
await once(echo, 'listening');
const echoPort = (echo.address() as { port: number }).port;
t.teardown(() => echo.close());

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('connectTcp: 5 MiB through an echo server, then EOF both ways', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  const sock = await client.connectTcp('127.0.0.1', echoPort);
  const input = pattern(5 * 1024 * 1024, 9);
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  sock.end(input);
  await once(sock, 'end');
  t.equal(sha(Buffer.concat(chunks)), sha(input));
});

t.test('connectTcp to a closed port rejects with MSB_ERR_TCP_FAILED and the reason', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  const closed = createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const port = (closed.address() as { port: number }).port;
  closed.close();
  await once(closed, 'close');
  await t.rejects(client.connectTcp('127.0.0.1', port), { name: 'TransportError', code: 'MSB_ERR_TCP_FAILED', message: /ECONNREFUSED/ });
});

t.test('msb-agentd forward carries a local connection to a port in the guest', async (t) => {
  const fwd = spawn(process.execPath, ['--import=tsx', CLI, 'forward', '--connect', `unix:${path}`, `0:127.0.0.1:${echoPort}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let localPort = 0;
  for await (const line of createInterface({ input: fwd.stderr! })) {
    const m = /^forwarding 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:\d+/.exec(line);
    if (m) {
      localPort = Number(m[1]);
      break;
    }
  }
  t.ok(localPort > 0, `listening on ${localPort}`);
  const sock = connect(localPort, '127.0.0.1');
  const got: Buffer[] = [];
  sock.on('data', (c: Buffer) => got.push(c));
  sock.end('through the agent');
  await once(sock, 'close');
  t.equal(Buffer.concat(got).toString(), 'through the agent');
  fwd.kill('SIGTERM');
  const [code] = await once(fwd, 'exit');
  t.equal(code, 0);
});
