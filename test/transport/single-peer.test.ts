// Single-peer transports carry raw frames with no handshake prefix, core.ready first (DESIGN §4):
// a serial line (a PTY pair standing in for the device), an adopted socket descriptor (the path
// vsock connections take, tested with a socketpair since there is no vsock loopback here), and
// stdio. Each runs an exec end to end.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

import { Agent } from '../../ts/agent/agent.js';
import { rawOver, type RawClient } from '../fixtures/raw-client.js';
import { PROGRAMS } from '../fixtures/harness.js';

const CHILD = join(PROGRAMS, '..', 'agent-child.ts');

async function echoExec(t: Test, c: RawClient, id: number): Promise<void> {
  c.send(id, {
    type: 'execRequest',
    payload: { cmd: 'sh', args: ['-c', 'echo over-the-line; exit 5'], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] },
  });
  const ms = await c.untilTerminal(id);
  t.equal(ms[0]!.type, 'execStarted');
  const out = Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data));
  t.equal(out.toString(), 'over-the-line\n');
  t.same(ms.at(-1)!.payload, { code: 5, signal: null });
}

t.test('serial device (a PTY pair): core.ready first, then an exec end to end', async (t) => {
  const relay = spawn('python3', [join(PROGRAMS, 'pty-relay.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: relay.stdout! });
  const [device] = (await once(lines, 'line')) as [string];
  lines.close();
  t.match(device, /^\/dev\/pts\/\d+$/);
  const agent = new Agent({ graceMs: 500, heartbeatFile: null });
  await agent.listen({ kind: 'serial', path: device });
  const line = Duplex.from({ readable: relay.stdout!, writable: relay.stdin! });
  const c = await rawOver(line, false);
  t.equal(c.ready.id, 0);
  await echoExec(t, c, 7);
  c.send(8, { type: 'ping', payload: {} });
  t.equal((await c.next((m) => m.id === 8)).type, 'pong');
  relay.stdin!.end();
  await once(relay, 'exit');
  await agent.close();
});

t.test('an adopted descriptor (socketpair, the vsock connection path) serves one peer', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, 'fd', '3'], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  const sock = child.stdio[3] as Socket;
  const c = await rawOver(sock, false);
  t.equal(c.ready.type, 'ready');
  await echoExec(t, c, 1);
  c.close();
  const [code] = await once(child, 'exit');
  t.equal(code, 0, 'the agent process ends by itself once its only peer is gone');
});

t.test('stdio: raw frames on stdin/stdout; closing stdin stops the agent', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, 'stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const c = await rawOver(Duplex.from({ readable: child.stdout!, writable: child.stdin! }), false);
  await echoExec(t, c, 3);
  child.stdin!.end();
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
});

t.test('a malformed frame on stdio ends the agent', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, 'stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const c = await rawOver(Duplex.from({ readable: child.stdout!, writable: child.stdin! }), false);
  c.sendRaw(Buffer.from([0, 0, 0, 1, 0]));
  const [code] = await once(child, 'exit');
  t.equal(code, 0, 'it stops cleanly after ending its sessions');
});
