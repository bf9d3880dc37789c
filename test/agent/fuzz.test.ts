// Seeded fuzzing of a running agent (DESIGN §5: bad input never kills the agent). The agent runs
// in its own process (test/fixtures/agent-serve.ts), so a crash shows as a dead process instead of
// taking the runner down.
//
// One connection gets thousands of frames with valid headers and mutated bodies: real message types
// (the golden vectors and hand-made requests) with bytes flipped, payloads mutated, types swapped,
// versions changed, flags randomised, envelopes reshaped, or plain garbage. Every frame has its own
// id, so every reply can be attributed: a frame that decodes gets its proper reply (pong, touched,
// exec frames, fs responses, tcp refusals) or nothing where the protocol says nothing, and every frame that
// does not decode gets exactly one core.error of the right kind (or nothing, for peers older than
// generation 5). Meanwhile a second client keeps pinging and running `echo ok`.
//
// Framing errors (oversized, undersized, truncated, garbage streams) go over separate connections:
// each closes only its own connection.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

import {
  FrameDecoder,
  MAX_FRAME_SIZE,
  decodeEnvelope,
  decodePayload,
  encodeMessage,
  encodePayload,
  lookupMessageType,
  type CoreErrorKind,
  type Envelope,
  type OutgoingMessage,
  type ReceivedMessage,
} from '../../ts/protocol/index.js';
import { VECTORS, canonical, createMutator, createRandom, rawFrame } from '../fixtures/protocol-helpers.js';
import { rawConnect, type RawClient } from '../fixtures/raw-client.js';
import { groupRunning, eventually } from '../fixtures/harness.js';

const FRAMES = Number(process.env.MSB_FUZZ_FRAMES ?? 4000);
const BATCH = 100;
const SEED = Number(process.env.MSB_FUZZ_SEED ?? 0xa6e7d);
const random = createRandom(SEED);
const { randomByte, mutate: mutateBytes } = createMutator(random);

const dir = mkdtempSync(join(tmpdir(), 'msb-fuzz-'));
const path = join(dir, 'agent.sock');
const serveScript = fileURLToPath(new URL('../fixtures/agent-serve.ts', import.meta.url));
let stderr = '';
const server: ChildProcess = spawn(process.execPath, ['--import=tsx', serveScript, path], { stdio: ['ignore', 'pipe', 'pipe'] });
server.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
{
  let out = '';
  while (!out.includes('listening')) {
    const [chunk] = (await Promise.race([once(server.stdout!, 'data'), once(server, 'exit').then(() => [null])])) as [Buffer | null];
    if (chunk === null) throw new Error(`the agent process exited at startup: ${stderr}`);
    out += chunk.toString();
  }
}
const clients: RawClient[] = [];
t.teardown(async () => {
  for (const c of clients) c.close();
  if (server.exitCode === null) {
    server.kill('SIGTERM');
    await once(server, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
});

function alive(): boolean {
  return server.exitCode === null && server.signalCode === null;
}

// ---------------------------------------------------------------------------------------------
// Templates: envelopes {v, t, p} of real messages.

interface Template {
  name: string;
  v: number;
  t: string;
  p: Buffer;
  flags: number;
}

function fromMessage(name: string, m: OutgoingMessage): Template {
  const info = lookupMessageType(m.type);
  return { name, v: 7, t: info.wire, p: encodePayload(m), flags: info.flags };
}

function exec(cmd: string, args: string[], over: Record<string, unknown> = {}): OutgoingMessage {
  return {
    type: 'execRequest',
    payload: { cmd, args, env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [], ...over },
  } as OutgoingMessage;
}

const TEMPLATES: Template[] = [
  fromMessage('ping', { type: 'ping', payload: {} }),
  fromMessage('touch', { type: 'touch', payload: {} }),
  fromMessage('clock', { type: 'clockSync', payload: { unixTimeNanos: 1_700_000_000_000_000_000n } }),
  fromMessage('true', exec('true', [])),
  fromMessage('echo', exec('echo', ['fuzz', 'ok'], { env: ['A=1', 'B=2'], cwd: '/' })),
  fromMessage('true.tty', exec('true', [], { tty: true, rows: 30, cols: 100 })),
  fromMessage('true.full', exec('true', ['x'], { env: ['PATH=/usr/bin:/bin'], user: 'root', rlimits: [{ resource: 'nofile', soft: 1024, hard: 4096 }] })),
  fromMessage('stdin', { type: 'execStdin', payload: { data: Buffer.from('input\n') } }),
  fromMessage('stdin.eof', { type: 'execStdin', payload: { data: Buffer.alloc(0) } }),
  fromMessage('resize', { type: 'execResize', payload: { rows: 50, cols: 132 } }),
  fromMessage('signal', { type: 'execSignal', payload: { signal: 15 } }),
  fromMessage('fs.data', { type: 'fsData', payload: { data: Buffer.from('abc') } }),
  fromMessage('tcp.data', { type: 'tcpData', payload: { data: Buffer.from('abc') } }),
  fromMessage('tcp.eof', { type: 'tcpEof', payload: {} }),
  fromMessage('tcp.close', { type: 'tcpClose', payload: {} }),
  fromMessage('init.ack', { type: 'initAck', payload: {} }),
  fromMessage('error', { type: 'error', payload: { kind: 'invalid_payload', message: 'x', offendingType: 'core.ping' } }),
];
for (const v of VECTORS) {
  // The vectors' exec requests run shells and interactive programs; ours above are harmless.
  if (v.type === 'core.exec.request') continue;
  // The fs service is real now: an OpenFile that creates and truncates (and the Write stream that
  // follows it) would, mutated, write wherever a flipped byte points. Stat and Read stay.
  if (v.name === 'core.fs.request.open_file' || v.name === 'core.fs.request.write') continue;
  const d = new FrameDecoder();
  d.push(v.bytes);
  const env = decodeEnvelope(d.readFrame()!);
  if (!env.ok) continue;
  TEMPLATES.push({ name: v.name, v: env.envelope.version, t: v.type, p: Buffer.from(env.envelope.payload), flags: v.flags });
}
/** Decodable session input with edge values. */
const LIVE_INPUT: (() => OutgoingMessage)[] = [
  () => ({ type: 'execStdin', payload: { data: random.bytes(random.int(64)) } }),
  () => ({ type: 'execResize', payload: { rows: pick([0, 1, 24, 65535]), cols: pick([0, 1, 80, 65535]) } }),
  // 19 (SIGSTOP) and the real-time range included; 0 and > 64 must be ignored.
  () => ({ type: 'execSignal', payload: { signal: pick([0, 1, 2, 13, 15, 17, 18, 19, 20, 28, 31, 32, 34, 64, 65, 255, 2 ** 31 - 1, -1, -9]) } }),
];

const WIRE_TYPES = [...new Set(TEMPLATES.map((x) => x.t)), 'core.nope', '', 'core.exec', 'CORE.PING'];

// ---------------------------------------------------------------------------------------------
// Mutations


const pick = <T>(xs: readonly T[]): T => xs[random.int(xs.length)]!;

const ODD_STRINGS = ['', ' ', '=', 'a=b', 'NOEQUALS', '=x', 'A=b\0c', '\0', 'PATH=', 'HOME=/x', 'x'.repeat(3000), 'é€😀', '\n', '..', '-'];
const someOf = <T>(xs: readonly T[], max: number): T[] => Array.from({ length: random.int(max + 1) }, () => pick(xs));
const U64S = [0, 1, 3, 1024, 4096, 2 ** 32, 2 ** 53 - 1, 0xffff_ffff_ffff_ffffn];

/** A decodable but odd core.exec.request: every field drawn from edge values. Programs stay harmless. */
function oddExecRequest(): OutgoingMessage {
  const big = random.int(40) === 0;
  return exec(pick(['true', 'echo', '/bin/true', '', 'tr\0ue', 'true ', '/nonexistent/x', '.', '/', 'x'.repeat(5000), 'no-such-cmd']), big ? Array.from({ length: 16 }, () => 'a'.repeat(200_000)) : someOf(ODD_STRINGS, 4), {
    env: someOf(['A=1', 'B=2', 'A=3', 'PATH=/usr/bin:/bin', ...ODD_STRINGS], 5),
    cwd: pick([null, '/', '', '/nonexistent', '/tmp\0x', '/etc/passwd', '.', 'relative']),
    user: pick([null, '', '  ', 'root', '0', '0:0', ' 0 : 0 ', 'nobody', '65534:65534', 'no-such-user', 'root:no-such-group', ':', ':0', '0:', '4294967295', '-1', 'root\0']),
    tty: random.int(2) === 0,
    rows: pick([0, 1, 24, 65535]),
    cols: pick([0, 1, 80, 65535]),
    rlimits: someOf(['nofile', 'NOFILE', 'RLIMIT_NPROC', 'as', 'cpu', 'fsize', 'bogus', '', 'rlimit_', 'Stack'], 3).map((resource) => ({
      resource,
      soft: pick(U64S),
      hard: pick(U64S),
    })),
  });
}

/** A body and flags from a template, mutated one way or another; `how` names the mutation. */
function fuzzBody(): { body: Buffer; flags: number; how: string } {
  const tp = pick(TEMPLATES);
  const r = random.int(100);
  if (r < 8) {
    const m = random.int(3) === 0 ? pick(LIVE_INPUT)() : oddExecRequest();
    const x = fromMessage('odd', m);
    return { body: canonical({ v: 7, t: x.t, p: x.p }), flags: x.flags, how: 'fields' };
  }
  if (r < 20) return { body: canonical({ v: tp.v, t: tp.t, p: tp.p }), flags: tp.flags, how: 'valid' };
  if (r < 30) return { body: canonical({ v: tp.v, t: tp.t, p: tp.p }), flags: random.int(256), how: 'flags' };
  if (r < 55) return { body: mutateBytes(canonical({ v: tp.v, t: tp.t, p: tp.p })), flags: tp.flags, how: 'body' };
  if (r < 75) return { body: canonical({ v: tp.v, t: tp.t, p: mutateBytes(tp.p) }), flags: tp.flags, how: 'payload' };
  if (r < 82) {
    const other = pick(WIRE_TYPES);
    const info = TEMPLATES.find((x) => x.t === other);
    return { body: canonical({ v: 7, t: other, p: tp.p }), flags: random.int(2) === 0 && info ? info.flags : tp.flags, how: 'type' };
  }
  if (r < 87) {
    const v = pick([0, 1, 4, 5, 6, 8, 255, random.int(256)]);
    return { body: canonical({ v, t: tp.t, p: tp.p }), flags: tp.flags, how: 'version' };
  }
  if (r < 95) {
    // Reshaped envelopes: missing, extra or ill-typed keys, or not a map at all.
    const shapes: unknown[] = [
      { t: tp.t, p: tp.p },
      { v: tp.v, p: tp.p },
      { v: tp.v, t: tp.t },
      { v: tp.v, t: tp.t, p: tp.p, x: 1 },
      { v: -1, t: tp.t, p: tp.p },
      { v: 256, t: tp.t, p: tp.p },
      { v: '7', t: tp.t, p: tp.p },
      { v: tp.v, t: Buffer.from(tp.t), p: tp.p },
      { v: tp.v, t: tp.t, p: tp.p.toString('latin1') },
      { v: tp.v, t: tp.t, p: null },
      { v: tp.v, t: tp.t, p: [1, 2, 3] },
      [tp.v, tp.t, tp.p],
      tp.t,
      null,
      {},
    ];
    return { body: canonical(pick(shapes)), flags: tp.flags, how: 'shape' };
  }
  return { body: Buffer.from(Array.from({ length: random.int(48) }, randomByte)), flags: random.int(8), how: 'garbage' };
}

// ---------------------------------------------------------------------------------------------
// The oracle: what the agent must answer on a frame's id.

type Expect =
  | { is: 'silent' }
  | { is: 'error'; kind: CoreErrorKind; optional: boolean }
  | { is: 'reply'; type: ReceivedMessage['type'] }
  | { is: 'exec' };

/** Ranges of the relay.client.disconnected frames sent so far. */
const disconnectRanges: [number, number][] = [];

const HOST_REPLIES: Partial<Record<ReceivedMessage['type'], ReceivedMessage['type'] | 'exec' | 'unknown-session' | null>> = {
  ping: 'pong',
  touch: 'touched',
  clockSync: null,
  shutdown: null,
  relayClientDisconnected: null,
  execRequest: 'exec',
  execStdin: 'unknown-session',
  execResize: 'unknown-session',
  execSignal: 'unknown-session',
  fsRequest: 'fsResponse',
  fsData: 'fsResponse',
  tcpConnect: 'tcpFailed',
  tcpData: 'tcpFailed',
  tcpEof: null,
  tcpClose: null,
  bootstrap: null,
  initAck: null,
  error: null,
};

let peerVersion = 7;
function expectFor(id: number, flags: number, body: Buffer, range: { start: number; end: number }): Expect {
  const frame = { id, flags, body };
  const env = decodeEnvelope(frame);
  if (!env.ok) {
    const v = env.rejection.version;
    if (v === null) return peerVersion >= 5 ? { is: 'error', kind: env.rejection.kind, optional: false } : { is: 'silent' };
    return v >= 5 ? { is: 'error', kind: env.rejection.kind, optional: false } : { is: 'silent' };
  }
  const e: Envelope = env.envelope;
  peerVersion = e.version;
  const errorOr = (kind: CoreErrorKind): Expect => (e.version >= 5 ? { is: 'error', kind, optional: false } : { is: 'silent' });
  const inRange = id >= range.start && id < range.end;
  const info = lookupMessageType(e.type);
  // Id 0 carries control frames on this connection; it never starts a session (PROTOCOL §6.6).
  if (!inRange && (id !== 0 || info.isSessionStart)) return errorOr('invalid_session');
  const reply = HOST_REPLIES[e.type];
  if (info.direction === 'guest-to-host' || reply === undefined || reply === null) {
    if (info.direction === 'guest-to-host' || e.type === 'bootstrap' || e.type === 'initAck' || e.type === 'error') return { is: 'silent' };
    const rcd = decodePayload(e);
    if (rcd.ok && e.type === 'relayClientDisconnected') {
      const r = rcd.payload as { idStart: number; idEndExclusive: number };
      disconnectRanges.push([r.idStart, r.idEndExclusive]);
    }
    if (!decodePayload(e).ok && e.type !== 'shutdown') return errorOr('invalid_payload');
    return { is: 'silent' };
  }
  const decoded = decodePayload(e);
  if (!decoded.ok) return errorOr('invalid_payload');
  if (reply === 'exec') return { is: 'exec' };
  if (reply === 'unknown-session') return errorOr('invalid_session');
  return { is: 'reply', type: reply };
}

/** Why the messages received on one id do not fit what was expected, or null when they do. */
function mismatch(exp: Expect, ms: ReceivedMessage[], id: number): string | null {
  const types = ms.map((m) => m.type).join(',');
  const terminalLast = ms.length > 0 && (ms.at(-1)!.flags & 1) !== 0 && ms.slice(0, -1).every((m) => (m.flags & 1) === 0);
  switch (exp.is) {
    case 'silent':
      return ms.length === 0 ? null : `expected nothing, got ${types}`;
    case 'error':
      if (ms.length === 0 && exp.optional) return null;
      if (ms.length !== 1 || ms[0]!.type !== 'error') return `expected one core.error(${exp.kind}), got [${types}]`;
      if ((ms[0]!.payload as { kind: string }).kind !== exp.kind) return `expected core.error(${exp.kind}), got ${(ms[0]!.payload as { kind: string }).kind}`;
      return ms[0]!.flags === 1 ? null : 'core.error without TERMINAL';
    case 'reply':
      // A relay.client.disconnected covering a TCP session or an fs operation in progress ends it
      // without a word (PROTOCOL §4.4; that client is gone).
      if ((exp.type === 'tcpFailed' || exp.type === 'fsResponse') && ms.length === 0 && disconnectRanges.some(([a, b]) => id >= a && id < b)) return null;
      return ms.length === 1 && ms[0]!.type === exp.type && terminalLast ? null : `expected ${exp.type}, got [${types}]`;
    case 'exec':
      if (ms.length === 1 && ms[0]!.type === 'execFailed' && terminalLast) return null;
      if (
        ms.length >= 2 &&
        ms[0]!.type === 'execStarted' &&
        ms.at(-1)!.type === 'execExited' &&
        terminalLast &&
        ms.slice(1, -1).every((m) => m.type === 'execStdout' || m.type === 'execStderr' || m.type === 'execStdinError')
      ) {
        return null;
      }
      return `expected started..exited or failed, got [${types}]`;
  }
}

// ---------------------------------------------------------------------------------------------

function output(ms: ReceivedMessage[]): string {
  return Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data)).toString();
}

/** Client B's check: a ping and an `echo ok`, both answered in time. */
async function bystanderWorks(t: Test, b: RawClient, id: number): Promise<number> {
  const start = performance.now();
  b.send(id, { type: 'ping', payload: {} });
  t.equal((await b.next((m) => m.id === id, 5000)).type, 'pong', `B's ping ${id}`);
  b.send(id + 1, {
    type: 'execRequest',
    payload: { cmd: 'echo', args: ['ok'], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] },
  });
  const ms = await b.untilTerminal(id + 1, 10_000);
  t.equal(output(ms), 'ok\n', `B's echo ${id + 1}`);
  t.strictSame(ms.at(-1)!.payload, { code: 0, signal: null });
  return performance.now() - start;
}

t.test(`${FRAMES} fuzzed frames on one connection: each answered as the protocol says, a bystander unharmed`, async (t) => {
  const a = await rawConnect(path);
  const b = await rawConnect(path);
  clients.push(a, b);
  const range = { start: a.idStart, end: a.idEnd };
  const expectations = new Map<number, Expect>();
  const zeroIdErrors: string[] = [];
  const hows = new Map<string, number>();
  const outcomes = new Map<string, number>();
  const outsideIds = new Set<number>();
  const sentFrames = new Map<number, { flags: number; body: Buffer; how: string }>();
  let nextId = a.idStart + 1000;
  let bId = b.idStart;
  let worstBystander = 0;
  let sent = 0;
  let syncId = a.idStart;

  while (sent < FRAMES) {
    for (let i = 0; i < BATCH && sent < FRAMES; i++, sent++) {
      const { body, flags, how } = fuzzBody();
      hows.set(how, (hows.get(how) ?? 0) + 1);
      let id: number;
      const r = random.int(100);
      if (r < 3) id = 0;
      else if (r < 8) {
        do {
          id = pick([b.idStart + 1_000_000 + random.int(1_000_000), a.idEnd + random.int(1000), 0xffff_ffff - random.int(1000), random.int(2 ** 32)]);
        } while ((id >= range.start && id < range.end) || id === 0 || outsideIds.has(id) || (id >= b.idStart && id < b.idStart + 1_000_000));
        outsideIds.add(id);
      } else id = nextId++;
      const exp = expectFor(id, flags, body, range);
      outcomes.set(exp.is, (outcomes.get(exp.is) ?? 0) + 1);
      if (id === 0) {
        if (exp.is === 'error') zeroIdErrors.push(exp.kind);
        else if (exp.is === 'reply') zeroIdErrors.push(exp.type);
        else if (exp.is !== 'silent') t.fail(`an id-0 frame expecting ${exp.is}`);
      } else expectations.set(id, exp);
      sentFrames.set(id, { flags, body, how });
      a.sendRaw(rawFrame(id, flags, body));
    }
    // Frames are handled in order: once this pong is back, every synchronous reply is in.
    const sid = syncId++;
    a.send(sid, { type: 'ping', payload: {} });
    peerVersion = 7; // the agent remembers the version of the last envelope it decoded
    const pong = await a.next((m) => m.id === sid, 20_000);
    if (pong.type !== 'pong') t.fail(`sync ping ${sid} got ${pong.type}`);
    if ((sent / BATCH) % 5 === 0) {
      worstBystander = Math.max(worstBystander, await bystanderWorks(t, b, bId));
      bId += 2;
    }
    if (!alive()) break;
  }
  t.ok(alive(), 'the agent process is alive after the fuzzing');
  t.equal(sent, FRAMES);
  t.ok(worstBystander < 5000, `the bystander's ping + exec took at most ${worstBystander.toFixed(0)} ms`);

  // Let every exec session end.
  const execIds = [...expectations].filter(([, e]) => e.is === 'exec').map(([id]) => id);
  const unfinished = (): number[] =>
    execIds.filter((id) => {
      const ms = a.received.filter((m) => m.id === id);
      return ms.length > 0 && ms[0]!.type === 'execStarted' && !ms.some((m) => (m.flags & 1) !== 0);
    });
  t.ok(await eventually(() => unfinished().length === 0, 20_000), `every exec session ended (left: ${unfinished().join(', ')})`);
  // A TCP connect is answered once the connection attempt fails (asynchronously).
  const aborted = (id: number): boolean => disconnectRanges.some(([a, b]) => id >= a && id < b);
  const replyIds = [...expectations]
    .filter(([id, e]) => e.is === 'reply' && !((e.type === 'tcpFailed' || e.type === 'fsResponse') && aborted(id)))
    .map(([id]) => id);
  const unanswered = (): number[] => replyIds.filter((id) => !a.received.some((m) => m.id === id));
  t.ok(await eventually(() => unanswered().length === 0, 10_000), `every reply arrived (missing: ${unanswered().join(', ')})`);

  const byId = new Map<number, ReceivedMessage[]>();
  for (const m of a.received) {
    const list = byId.get(m.id);
    if (list) list.push(m);
    else byId.set(m.id, [m]);
  }
  const problems: string[] = [];
  for (const [id, exp] of expectations) {
    const why = mismatch(exp, byId.get(id) ?? [], id);
    if (why) {
      const f = sentFrames.get(id)!;
      const got = (byId.get(id) ?? []).map((m) => JSON.stringify(m.payload, (_k, x) => (typeof x === 'bigint' ? String(x) : x)));
      problems.push(`id ${id}: ${why} (${f.how} mutation, flags ${f.flags}, body ${f.body.toString('hex')}; got ${got.join(' ')})`);
    }
    byId.delete(id);
  }
  const zero = (byId.get(0) ?? []).map((m) => (m.type === 'error' ? (m.payload as { kind: string }).kind : m.type)).sort();
  t.strictSame(zero, [...zeroIdErrors].sort(), 'the id-0 frames got exactly the expected errors and replies');
  byId.delete(0);
  for (let id = a.idStart; id < syncId; id++) byId.delete(id);
  for (const [id, ms] of byId) problems.push(`stray frames on id ${id}: ${ms.map((m) => m.type).join(',')}`);
  t.strictSame(problems.slice(0, 20), [], `every frame answered as expected (${problems.length} problems)`);
  t.comment(`mutations: ${JSON.stringify(Object.fromEntries(hows))}`);
  t.comment(`expected outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}; exec sessions: ${execIds.length}`);
  t.ok((outcomes.get('exec') ?? 0) > 100, 'plenty of exec requests got through');
  t.ok((outcomes.get('error') ?? 0) > 1000, 'plenty of frames were rejected');
  t.ok((outcomes.get('reply') ?? 0) > 100, 'plenty of frames got ordinary replies');
  t.equal(a.socket.destroyed, false, 'the fuzzed connection is still open');
  t.strictSame(b.received, [], 'B received nothing it did not ask for');
});

t.test('fuzzed input to live sessions: core.error only for bad frames, the sessions carry on', async (t) => {
  const c = await rawConnect(path);
  clients.push(c);
  const range = { start: c.idStart, end: c.idEnd };
  const ids = Array.from({ length: 6 }, (_, i) => c.idStart + 10 + i);
  ids.forEach((id, i) => c.send(id, exec('cat', [], { tty: i % 2 === 1 })));
  for (const id of ids) await c.next((m) => m.id === id && m.type === 'execStarted');
  const liveTemplates = TEMPLATES.filter((x) => ['stdin', 'stdin.eof', 'resize', 'signal'].includes(x.name));
  const expected = new Map<number, string[]>(ids.map((id) => [id, []]));
  peerVersion = 7;
  let sent = 0;
  while (sent < 1500) {
    const id = pick(ids);
    const tp = pick(liveTemplates);
    const r = random.int(100);
    let body: Buffer;
    let flags = tp.flags;
    if (r < 50) {
      const x = fromMessage('live', pick(LIVE_INPUT)());
      body = canonical({ v: 7, t: x.t, p: x.p });
    } else if (r < 75) body = canonical({ v: tp.v, t: tp.t, p: mutateBytes(tp.p) });
    else if (r < 85) {
      body = canonical({ v: tp.v, t: tp.t, p: tp.p });
      flags = random.int(256);
    } else body = mutateBytes(canonical({ v: tp.v, t: tp.t, p: tp.p }));
    let exp = expectFor(id, flags, body, range);
    if (exp.is === 'exec') continue; // a request on a live id is agent.test's business
    const env = decodeEnvelope({ id, flags, body });
    const sessionInput = env.ok && ['execStdin', 'execResize', 'execSignal'].includes(env.envelope.type);
    if (exp.is === 'error' && exp.kind === 'invalid_session' && sessionInput) exp = { is: 'silent' };
    if (exp.is === 'error') expected.get(id)!.push(`error:${exp.kind}`);
    if (exp.is === 'reply') expected.get(id)!.push(exp.type);
    c.sendRaw(rawFrame(id, flags, body));
    sent++;
    if (sent % 100 === 0) {
      c.send(c.idStart, { type: 'ping', payload: {} });
      peerVersion = 7;
      t.equal((await c.next((m) => m.id === c.idStart, 10_000)).type, 'pong', `ping after ${sent} frames`);
    }
  }
  for (const id of ids) c.send(id, { type: 'execSignal', payload: { signal: 9 } });
  const problems: string[] = [];
  for (const id of ids) {
    const end = await c.next((m) => m.id === id && m.type === 'execExited', 20_000);
    const ms = c.received.filter((m) => m.id === id);
    const tokens = ms
      .filter((m) => !['execStdout', 'execStderr', 'execStdinError'].includes(m.type))
      .map((m) => (m.type === 'error' ? `error:${(m.payload as { kind: string }).kind}` : m.type))
      .sort();
    const want = [...expected.get(id)!].sort();
    if (JSON.stringify(tokens) !== JSON.stringify(want)) problems.push(`id ${id}: got ${tokens.join(',')}; want ${want.join(',')}`);
    if (typeof (end.payload as { code: number }).code !== 'number') problems.push(`id ${id}: bad exit ${JSON.stringify(end.payload)}`);
  }
  t.strictSame(problems, [], 'each live id got exactly the errors its bad frames deserved');
  t.ok(alive(), 'the agent process is alive');
});

/** Opens a connection that starts a long session, sends `bytes`, and reports how it ended. */
async function badConnection(bytes: Buffer, end: boolean): Promise<{ closed: boolean; groupGone: boolean }> {
  const c = await rawConnect(path);
  clients.push(c);
  c.send(c.idStart, { type: 'execRequest', payload: { cmd: 'sleep', args: ['30'], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] } });
  const started = await c.next((m) => m.id === c.idStart && m.type === 'execStarted');
  const pid = (started.payload as { pid: number }).pid;
  c.sendRaw(bytes);
  if (end) c.socket.end();
  const closed = await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
  const groupGone = await eventually(() => !groupRunning(pid), 5000);
  return { closed, groupGone };
}

function header(len: number, id = 1, flags = 0): Buffer {
  const h = Buffer.alloc(9);
  h.writeUInt32BE(len, 0);
  h.writeUInt32BE(id, 4);
  h[8] = flags;
  return h;
}

t.test('framing errors close only their own connection, and its sessions go down', async (t) => {
  const b = await rawConnect(path);
  clients.push(b);
  let bId = b.idStart;
  const cases: [string, Buffer, boolean][] = [
    ['a length above 4 MiB', header(MAX_FRAME_SIZE + 1), false],
    ['a length of 0xffffffff', header(0xffff_ffff), false],
    ['a length below 5', Buffer.from([0, 0, 0, 4, 0, 0, 0, 1]), false],
    ['a length of 0', Buffer.from([0, 0, 0, 0]), false],
    ['a frame cut short by EOF', header(100).subarray(0, 9), true],
    ['a header cut short by EOF', Buffer.from([0, 0, 0]), true],
  ];
  for (const [what, bytes, end] of cases) {
    t.strictSame(await badConnection(bytes, end), { closed: true, groupGone: true }, what);
    t.ok(alive(), `the agent survives ${what}`);
    await bystanderWorks(t, b, bId);
    bId += 2;
  }
});

t.test('a frame of exactly MAX_FRAME_SIZE is accepted; one byte more is not', async (t) => {
  const c = await rawConnect(path);
  clients.push(c);
  const id = c.idStart + 7; // no session: a stdin for it gets invalid_session
  const overhead = encodeMessage(id, { type: 'execStdin', payload: { data: Buffer.alloc(MAX_FRAME_SIZE - 100) } }).length - 4 - (MAX_FRAME_SIZE - 100);
  const exact = encodeMessage(id, { type: 'execStdin', payload: { data: Buffer.alloc(MAX_FRAME_SIZE - overhead) } });
  t.equal(exact.readUInt32BE(0), MAX_FRAME_SIZE);
  c.sendRaw(exact);
  const reply = await c.next((m) => m.id === id, 10_000);
  t.match(reply, { type: 'error', payload: { kind: 'invalid_session' } });
  c.send(id + 1, { type: 'ping', payload: {} });
  t.equal((await c.next((m) => m.id === id + 1)).type, 'pong', 'the connection goes on');
  const over = Buffer.concat([header(MAX_FRAME_SIZE + 1, id + 2), Buffer.alloc(MAX_FRAME_SIZE - 4)]);
  c.sendRaw(over);
  await c.closed;
  t.pass('one byte more closes the connection');
  t.ok(alive());
});

t.test('random byte streams on their own connections never hurt the agent', async (t) => {
  const b = await rawConnect(path);
  clients.push(b);
  let closedCount = 0;
  for (let i = 0; i < 30; i++) {
    const s = connect(path);
    s.on('error', () => {});
    await once(s, 'connect');
    const closed = new Promise((r) => s.once('close', r));
    s.on('data', () => {});
    const junk = random.bytes(1 + random.int(i % 3 === 0 ? 200_000 : 300));
    if (i % 2 === 0 && junk.length >= 4) junk.writeUInt32BE(5 + random.int(64), 0); // sometimes a plausible first length
    s.write(junk);
    s.end();
    await closed;
    closedCount++;
  }
  t.equal(closedCount, 30, 'every junk connection ended');
  t.ok(alive(), 'the agent process is alive');
  const ms = await bystanderWorks(t, b, b.idStart);
  t.ok(ms < 5000);
});

t.test('at the end: the agent is alive and `echo ok` returns ok with code 0', async (t) => {
  const c = await rawConnect(path);
  clients.push(c);
  c.send(c.idStart, { type: 'execRequest', payload: { cmd: 'echo', args: ['ok'], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] } });
  const ms = await c.untilTerminal(c.idStart);
  t.equal(output(ms), 'ok\n');
  t.strictSame(ms.at(-1)!.payload, { code: 0, signal: null });
  t.ok(alive(), 'the agent process never died');
  t.equal(stderr.includes('Error'), false, `no error on the agent's stderr${stderr ? `: ${stderr.slice(0, 500)}` : ''}`);
});
