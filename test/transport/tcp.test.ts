// TCP listeners: loopback by default with the relay handshake; a non-loopback address is refused
// unless remote access is asked for (the protocol has no authentication), and then it warns.
import t from 'tap';

import { Agent } from '../../ts/agent/agent.js';
import { AgentClient } from '../../ts/client/index.js';
import { createLogger } from '../../ts/log/logger.js';
import { formatAddress } from '../../ts/transport/address.js';

t.test('an exec over loopback TCP through the handshake', async (t) => {
  const agent = new Agent({ heartbeatFile: null });
  t.teardown(() => agent.close());
  const bound = await agent.listen({ kind: 'socket', address: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
  t.ok(bound && bound.kind === 'tcp' && bound.port > 0, `bound to ${bound && formatAddress(bound)}`);
  const client = await AgentClient.connect(formatAddress(bound!));
  t.teardown(() => client.close());
  t.same(client.idRange, { idStart: 1, idEndExclusive: 33554431 });
  const exec = await client.exec({ cmd: 'sh', args: ['-c', 'printf tcp; exit 6'] });
  const chunks: Buffer[] = [];
  exec.stdout.on('data', (c: Buffer) => chunks.push(c));
  t.same(await exec.exited, { code: 6, signal: null, reason: 'exited' });
  t.equal(Buffer.concat(chunks).toString(), 'tcp');
});

t.test('a non-loopback address is refused without allowRemote', async (t) => {
  const agent = new Agent({ heartbeatFile: null });
  t.teardown(() => agent.close());
  await t.rejects(agent.listen({ kind: 'socket', address: { kind: 'tcp', host: '0.0.0.0', port: 0 } }), {
    name: 'TransportError',
    code: 'MSB_ERR_TRANSPORT_CLOSED',
  });
});

t.test('allowRemote listens and logs a warning', async (t) => {
  const lines: string[] = [];
  const agent = new Agent({ heartbeatFile: null, logger: createLogger('warn', 'json', (l) => lines.push(l)) });
  t.teardown(() => agent.close());
  const bound = await agent.listen({ kind: 'socket', address: { kind: 'tcp', host: '0.0.0.0', port: 0 }, allowRemote: true });
  t.ok(bound && bound.kind === 'tcp' && bound.port > 0);
  t.equal(lines.length, 1);
  const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
  t.equal(entry.level, 'warn');
  t.match(entry.msg, /no authentication/);
});
