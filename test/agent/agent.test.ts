// The agent end to end over a unix socket through the relay handshake, driven by a raw protocol
// peer: exec in both modes, stdin/EOF, resize, signals, exit codes, typed failures, every
// core.error kind (and the connection carrying on), fenced ids, and disconnect cleanup.
import t from 'tap';

import { ID_STEP } from '../../ts/agent/id-ranges.js';
import { encodeFrame, encodeCbor, type ReceivedMessage } from '../../ts/protocol/index.js';
import { rawConnect, type RawClient } from '../fixtures/raw-client.js';
import { eventually, groupAlive, groupRunning } from '../fixtures/harness.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';

const { agent, path, dir } = await startAgentOnSocket(t, 'agent-test');

type Exec = { cmd: string; args?: string[]; env?: string[]; cwd?: string | null; tty?: boolean; rows?: number; cols?: number };
function execRequest(e: Exec) {
  return {
    type: 'execRequest' as const,
    payload: {
      cmd: e.cmd,
      args: e.args ?? [],
      env: e.env ?? [],
      cwd: e.cwd ?? null,
      user: null,
      tty: e.tty ?? false,
      rows: e.rows ?? 24,
      cols: e.cols ?? 80,
      rlimits: [],
    },
  };
}

function output(ms: ReceivedMessage[], type: 'execStdout' | 'execStderr'): string {
  return Buffer.concat(ms.filter((m) => m.type === type).map((m) => (m.payload as { data: Buffer }).data)).toString();
}

let client: RawClient;
t.before(async () => {
  client = await rawConnect(path);
});
t.teardown(() => client.close());

t.test('the handshake gives slot 0 and the cached ready frame', async (t) => {
  t.equal(client.idStart, 1);
  t.equal(client.idEnd, ID_STEP);
  t.equal(client.ready.id, 0);
  t.equal(client.ready.type, 'ready');
  const second = await rawConnect(path);
  t.equal(second.idStart, ID_STEP + 1, 'the second client gets slot 1');
  t.equal(second.idEnd, 2 * ID_STEP);
  t.same(second.ready.payload, client.ready.payload, 'the same ready bytes are replayed');
  second.close();
});

t.test('pipe exec: started, stdout, stderr, then exited with the code', async (t) => {
  client.send(1, execRequest({ cmd: 'sh', args: ['-c', 'echo out; echo err >&2; exit 3'] }));
  const ms = await client.untilTerminal(1);
  t.equal(ms[0]!.type, 'execStarted');
  t.ok((ms[0]!.payload as { pid: number }).pid > 0);
  t.equal(output(ms, 'execStdout'), 'out\n');
  t.equal(output(ms, 'execStderr'), 'err\n');
  t.same(ms.at(-1)!.type, 'execExited');
  t.same(ms.at(-1)!.payload, { code: 3, signal: null });
});

t.test('pty exec: stdin, EOF as VEOF, output through the terminal', async (t) => {
  client.send(2, execRequest({ cmd: 'cat', tty: true }));
  await client.next((m) => m.id === 2 && m.type === 'execStarted');
  client.send(2, { type: 'execStdin', payload: { data: Buffer.from('hello\n') } });
  client.send(2, { type: 'execStdin', payload: { data: Buffer.alloc(0) } });
  const ms = await client.untilTerminal(2);
  t.equal(output(ms, 'execStdout'), 'hello\r\nhello\r\n');
  t.same(ms.at(-1)!.payload, { code: 0, signal: null });
  t.equal(ms.filter((m) => m.type === 'execStderr').length, 0);
});

t.test('resize reaches the child', async (t) => {
  client.send(3, execRequest({ cmd: 'sh', args: ['-c', 'stty size; read x; stty size'], tty: true, rows: 30, cols: 90 }));
  const first = await client.next((m) => m.id === 3 && m.type === 'execStdout');
  t.equal((first.payload as { data: Buffer }).data.toString(), '30 90\r\n');
  client.send(3, { type: 'execResize', payload: { rows: 50, cols: 132 } });
  client.send(3, { type: 'execStdin', payload: { data: Buffer.from('\n') } });
  const ms = await client.untilTerminal(3);
  t.match(output(ms, 'execStdout'), /50 132\r\n$/);
});

t.test('a signal kills the group: exited code -1 with the signal number', async (t) => {
  client.send(4, execRequest({ cmd: 'sleep', args: ['60'] }));
  await client.next((m) => m.id === 4 && m.type === 'execStarted');
  client.send(4, { type: 'execSignal', payload: { signal: 15 } });
  const ms = await client.untilTerminal(4);
  t.same(ms.at(-1)!.payload, { code: -1, signal: 15 });
});

t.test('spawn failures are typed and terminal, with no started frame first', async (t) => {
  const cases: [number, Exec, Record<string, unknown>][] = [
    [10, { cmd: 'no-such-program-xyz' }, { kind: 'not_found', errno: 2, errnoName: 'ENOENT', stage: 'resolve' }],
    [11, { cmd: 'true', cwd: '/no/such/dir' }, { kind: 'bad_cwd', errno: 2, errnoName: 'ENOENT', stage: 'chdir' }],
    [12, { cmd: 'true', env: ['NOEQUALS'] }, { kind: 'bad_args', errno: null, errnoName: null, stage: 'resolve' }],
    [13, { cmd: 'true', tty: true, args: ['a\0b'] }, { kind: 'bad_args', errno: null, errnoName: null, stage: 'resolve' }],
  ];
  for (const [id, e, want] of cases) {
    client.send(id, execRequest(e));
    const ms = await client.untilTerminal(id);
    t.equal(ms.length, 1, `${e.cmd}: exec.failed is the first and only frame`);
    t.equal(ms[0]!.type, 'execFailed');
    const { message, ...fields } = ms[0]!.payload as Record<string, unknown>;
    t.same(fields, want);
    t.type(message, 'string');
  }
});

t.test('every core.error kind is produced by its input, and the connection carries on', async (t) => {
  const ping = async (id: number): Promise<void> => {
    client.send(id, { type: 'ping', payload: {} });
    const pong = await client.next((m) => m.id === id);
    t.equal(pong.type, 'pong', 'the connection still answers');
  };
  const errorOn = async (id: number): Promise<Record<string, unknown>> => {
    const m = await client.next((x) => x.id === id);
    t.equal(m.type, 'error');
    t.equal(m.flags, 1, 'core.error is terminal');
    return m.payload as Record<string, unknown>;
  };
  client.sendRaw(encodeFrame({ id: 20, flags: 0, body: Buffer.from([0xff, 0x00]) }));
  t.equal((await errorOn(20)).kind, 'malformed_message');
  await ping(21);
  client.sendRaw(encodeFrame({ id: 22, flags: 0, body: encodeCbor({ v: 7, t: 'core.nope', p: Buffer.from([0xa0]) }) }));
  t.match(await errorOn(22), { kind: 'unsupported_message_type', offendingType: 'core.nope' });
  client.sendRaw(encodeFrame({ id: 23, flags: 1, body: encodeCbor({ v: 7, t: 'core.ping', p: Buffer.from([0xa0]) }) }));
  t.match(await errorOn(23), { kind: 'invalid_flags', offendingType: 'core.ping' });
  client.sendRaw(encodeFrame({ id: 24, flags: 2, body: encodeCbor({ v: 7, t: 'core.exec.request', p: Buffer.from([0xa0]) }) }));
  t.match(await errorOn(24), { kind: 'invalid_payload', offendingType: 'core.exec.request' });
  client.send(25, { type: 'execStdin', payload: { data: Buffer.from('x') } });
  t.match(await errorOn(25), { kind: 'invalid_session', offendingType: 'core.exec.stdin' });
  client.send(ID_STEP + 5, { type: 'ping', payload: {} });
  t.match(await errorOn(ID_STEP + 5), { kind: 'invalid_session' });
  client.send(0, execRequest({ cmd: 'true' }));
  t.match(await errorOn(0), { kind: 'invalid_session', offendingType: 'core.exec.request' }, 'no session on id 0');
  client.send(0, { type: 'ping', payload: {} });
  t.equal((await client.next((m) => m.id === 0)).type, 'pong', 'a ping on id 0 is answered on this connection');
  await ping(26);
});

t.test('a duplicate request on a live id is refused and the original session carries on', async (t) => {
  client.send(30, execRequest({ cmd: 'cat' }));
  await client.next((m) => m.id === 30 && m.type === 'execStarted');
  client.send(30, execRequest({ cmd: 'true' }));
  const err = await client.next((m) => m.id === 30 && m.type === 'error');
  t.match(err.payload, { kind: 'invalid_session' });
  client.send(30, { type: 'execStdin', payload: { data: Buffer.from('still here\n') } });
  client.send(30, { type: 'execStdin', payload: { data: Buffer.alloc(0) } });
  const ms = await client.untilTerminal(30);
  t.equal(output(ms, 'execStdout'), 'still here\n');
  t.same(ms.at(-1)!.payload, { code: 0, signal: null });
});

t.test('late input for an ended session is dropped quietly', async (t) => {
  client.send(31, execRequest({ cmd: 'true' }));
  await client.untilTerminal(31);
  client.send(31, { type: 'execStdin', payload: { data: Buffer.from('late') } });
  client.send(32, { type: 'ping', payload: {} });
  const next = await client.next((m) => m.id === 31 || m.id === 32);
  t.equal(next.id, 32, 'nothing is sent on an id after its terminal frame');
});

t.test('ping and errors leave activity_seq alone; a touch advances it exactly once', async (t) => {
  client.send(40, { type: 'touch', payload: {} });
  const a = (await client.next((m) => m.id === 40)).payload as { activitySeq: number | bigint };
  client.send(41, { type: 'ping', payload: {} });
  await client.next((m) => m.id === 41);
  client.send(42, { type: 'execStdin', payload: { data: Buffer.from('x') } });
  await client.next((m) => m.id === 42);
  client.send(43, { type: 'touch', payload: {} });
  const b = (await client.next((m) => m.id === 43)).payload as { activitySeq: number | bigint };
  // The stdin for an unknown id counted as one host message; pings and error replies did not.
  t.equal(BigInt(b.activitySeq) - BigInt(a.activitySeq), 2n);
});

t.test('a malformed frame closes only that connection', async (t) => {
  const bad = await rawConnect(path);
  const bystander = await rawConnect(path);
  bad.sendRaw(Buffer.from([0, 0, 0, 2, 0, 0]));
  await bad.closed;
  bystander.send(bystander.idStart, { type: 'ping', payload: {} });
  t.equal((await bystander.next((m) => m.id === bystander.idStart)).type, 'pong');
  bystander.close();
});

t.test('a client disconnect takes its sessions down (SIGHUP, then SIGKILL)', async (t) => {
  const c = await rawConnect(path);
  const id = c.idStart;
  c.send(id, execRequest({ cmd: 'sh', args: ['-c', 'trap "" HUP; sleep 60 & sleep 60 & wait'] }));
  const started = await c.next((m) => m.id === id && m.type === 'execStarted');
  const pid = (started.payload as { pid: number }).pid;
  t.ok(groupAlive(pid));
  c.close();
  // SIGHUP, grace 500 ms, SIGKILL; orphans may linger as zombies until their new parent reaps.
  t.ok(await eventually(() => !groupRunning(pid), 5000), 'no member of the group is running');
});

