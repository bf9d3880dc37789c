// AgentClient against the real agent (ts/agent) over a unix socket and over a single-peer stream:
// the two halves of the protocol agree on the handshake, exec in both modes, stdin/EOF, signals,
// spawn failures, ping/touch and disconnect cleanup.
import t from 'tap';
import { Duplex, PassThrough } from 'node:stream';

import { AgentClient, type ClientExec } from '../../ts/client/index.js';
import { SpawnError } from '../../ts/errors.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';

const { agent, path, dir } = await startAgentOnSocket(t, 'client-e2e');

async function collect(p: ClientExec): Promise<{ out: string; err: string; exit: Awaited<ClientExec['exited']> }> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  p.stdout.on('data', (c: Buffer) => out.push(c));
  p.stderr?.on('data', (c: Buffer) => err.push(c));
  const exit = await p.exited;
  return { out: Buffer.concat(out).toString(), err: Buffer.concat(err).toString(), exit };
}

t.test('handshake, ping, touch', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  t.equal(client.version, 7);
  t.equal(client.idRange.idStart, 1);
  t.type(client.ready.agentVersion, 'string');
  t.ok((await client.ping()) >= 0);
  const a = await client.touch();
  const b = await client.touch();
  t.ok(BigInt(b) > BigInt(a), 'activity_seq advances');
});

t.test('pipe exec: output, exit code', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  const p = await client.exec({ cmd: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'] });
  t.ok(p.pid > 0);
  t.same(await collect(p), { out: 'out\n', err: 'err\n', exit: { code: 3, signal: null, reason: 'exited' } });
});

t.test('stdin through a 3 MiB write and EOF', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  const p = await client.exec({ cmd: 'wc', args: ['-c'] });
  p.stdin.end(Buffer.alloc(3 * 1024 * 1024 + 7, 0x61));
  const r = await collect(p);
  t.equal(r.out.trim(), String(3 * 1024 * 1024 + 7));
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
});

t.test('tty exec: stderr null, output through the terminal, EOF ends cat', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  const p = await client.exec({ cmd: 'cat', tty: true, rows: 30, cols: 100 });
  t.equal(p.stderr, null);
  p.resize(40, 120);
  p.stdin.write('hello\n');
  p.stdin.end();
  const r = await collect(p);
  t.match(r.out, 'hello');
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
});

t.test('kill: the signal name comes back', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  const p = await client.exec({ cmd: 'sleep', args: ['30'] });
  p.kill('SIGKILL');
  t.same((await collect(p)).exit, { code: null, signal: 'SIGKILL', reason: 'signaled' });
});

t.test('spawn failures are SpawnErrors with the agent fields', async (t) => {
  const client = await AgentClient.connect(`unix:${path}`);
  t.teardown(() => client.close());
  const err = await client.exec({ cmd: 'msb-no-such-program' }).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof SpawnError);
  const e = err as SpawnError;
  t.same({ kind: e.kind, errnoName: e.errnoName, errno: e.errno, code: e.code, path: e.path }, {
    kind: 'not_found',
    errnoName: 'ENOENT',
    errno: 2,
    code: 'ENOENT',
    path: null,
  });
  const cwd = await client.exec({ cmd: 'true', cwd: '/nonexistent-msb' }).catch((x: SpawnError) => x);
  t.equal((cwd as SpawnError).kind, 'bad_cwd');
});

t.test('a single-peer stream (no prefix): ready first, ids from 1', async (t) => {
  const toAgent = new PassThrough();
  const toClient = new PassThrough();
  await agent.listen({ kind: 'stream', stream: Duplex.from({ readable: toAgent, writable: toClient }), label: 'test' });
  const client = await AgentClient.fromStream(Duplex.from({ readable: toClient, writable: toAgent }), { handshake: false });
  t.teardown(() => client.close());
  t.same(client.idRange, { idStart: 1, idEndExclusive: 2 ** 32 });
  const p = await client.exec({ cmd: 'echo', args: ['over a stream'] });
  t.same(await collect(p), { out: 'over a stream\n', err: '', exit: { code: 0, signal: null, reason: 'exited' } });
});
