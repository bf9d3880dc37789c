// The heartbeat file (PROTOCOL §4.6-4.7, LESSONS §6 and §10): the host decides idleness from it,
// so its shape, its sequence and its counters are asserted exactly.
//
// Guards superradcompany/microsandbox#1011 (an output flood starved the heartbeat and healthy
// sandboxes died: under four flooding sessions no gap may exceed 1.5 s) and #934 (a long silent
// exec was reclaimed as idle: a live exec is counted in active_exec_sessions for its whole life,
// while pings, clock syncs and our own error replies never move activity_seq).
//
// The file is polled every 50 ms (measurement, not synchronisation). "The next heartbeat after an
// event" is the first one whose own `timestamp` is later than the event: the worker stamps the
// time before it reads the counters, so that heartbeat reflects the event.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { Agent } from '../../ts/agent/agent.js';
import { encodeFrame, encodeCbor, type ReceivedMessage } from '../../ts/protocol/index.js';
import { rawConnect, type RawClient } from '../fixtures/raw-client.js';
import { eventually } from '../fixtures/harness.js';
import { OutputSink, execRequest, exitOf } from '../fixtures/agent-sink.js';

interface HeartbeatJson {
  heartbeat_seq: number;
  activity_seq: number;
  timestamp: string;
  last_activity: string;
  active_exec_sessions: number;
  active_fs_streams: number;
  active_tcp_streams: number;
  activity_counters: {
    host_messages: number;
    guest_messages: number;
    exec_output_bytes: number;
    fs_bytes: number;
    tcp_bytes: number;
  };
}

interface Record {
  json: HeartbeatJson;
  raw: string;
  mtimeMs: number;
  seenAt: number;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3}|\.\d{6}|\.\d{9})?Z$/;
/** Allowance between the worker's clock and Date.now() of this thread. */
const CLOCK_MARGIN_MS = 20;

const dir = mkdtempSync(join(tmpdir(), 'msb-heartbeat-'));
const file = join(dir, 'heartbeat.json');
const sock = join(dir, 'agent.sock');
const agentStart = Date.now();
const agent = new Agent({ graceMs: 500, heartbeatFile: file });
await agent.listen({ kind: 'socket', address: { kind: 'unix', path: sock } });

// Every distinct heartbeat seen, in order of heartbeat_seq.
const records: Record[] = [];
const waiters = new Set<() => void>();
function poll(): void {
  let raw: string;
  let mtimeMs: number;
  try {
    raw = readFileSync(file, 'utf8');
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return; // not written yet
  }
  const json = JSON.parse(raw) as HeartbeatJson;
  const last = records.at(-1);
  if (last && last.json.heartbeat_seq === json.heartbeat_seq) return;
  records.push({ json, raw, mtimeMs, seenAt: Date.now() });
  for (const w of [...waiters]) w();
}
const poller = setInterval(poll, 50);

/** The first heartbeat (already seen or coming) whose timestamp is after `afterMs`. */
function heartbeatAfter(afterMs: number, timeoutMs = 5000): Promise<Record> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      poll();
      const r = records.find((x) => Date.parse(x.json.timestamp) > afterMs + CLOCK_MARGIN_MS);
      if (r) resolve(r);
      return r !== undefined;
    };
    if (check()) return;
    const timer = setTimeout(() => {
      waiters.delete(waiter);
      reject(new Error(`no heartbeat after ${new Date(afterMs).toISOString()} within ${timeoutMs} ms`));
    }, timeoutMs);
    const waiter = (): void => {
      if (check()) {
        clearTimeout(timer);
        waiters.delete(waiter);
      }
    };
    waiters.add(waiter);
  });
}

let client: RawClient;
let nextId = 0;
/** The latest heartbeat known to be written after all earlier activity settled (chains subtests). */
let settled: Record | null = null;
t.before(async () => {
  client = await rawConnect(sock);
  nextId = client.idStart;
});
t.teardown(async () => {
  clearInterval(poller);
  client.close();
  // Hold the event loop while closing: close() waits for the heartbeat worker's exit, which an
  // otherwise idle process does not live to see (asserted by the last subtest).
  const hold = setInterval(() => {}, 1000);
  await agent.close();
  clearInterval(hold);
  rmSync(dir, { recursive: true, force: true });
});

function stdoutOf(ms: ReceivedMessage[]): Buffer {
  return Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data));
}

t.test('the file appears with exactly the PROTOCOL §4.7 fields, in order', async (t) => {
  const first = await heartbeatAfter(0, 3000);
  t.equal(first.json.heartbeat_seq, 1, 'the first write has heartbeat_seq 1');
  t.strictSame(Object.keys(first.json), [
    'heartbeat_seq',
    'activity_seq',
    'timestamp',
    'last_activity',
    'active_exec_sessions',
    'active_fs_streams',
    'active_tcp_streams',
    'activity_counters',
  ]);
  t.strictSame(Object.keys(first.json.activity_counters), ['host_messages', 'guest_messages', 'exec_output_bytes', 'fs_bytes', 'tcp_bytes']);
  t.notOk(first.raw.includes(' ') || first.raw.includes('\n'), 'compact JSON, as upstream writes it');
  for (const k of ['heartbeat_seq', 'activity_seq', 'active_exec_sessions', 'active_fs_streams', 'active_tcp_streams'] as const) {
    t.ok(Number.isSafeInteger(first.json[k]) && first.json[k] >= 0, `${k} is a non-negative integer`);
  }
  t.match(first.json, { active_exec_sessions: 0, active_fs_streams: 0, active_tcp_streams: 0, activity_counters: { fs_bytes: 0, tcp_bytes: 0 } });
});

t.test('timestamps are RFC 3339 UTC with Z, and last_activity never runs ahead', async (t) => {
  const r = await heartbeatAfter(0);
  t.match(r.json.timestamp, RFC3339);
  t.match(r.json.last_activity, RFC3339);
  const ts = Date.parse(r.json.timestamp);
  t.ok(ts >= agentStart - 1000 && ts <= Date.now() + 1000, `timestamp ${r.json.timestamp} is now`);
  t.ok(Date.parse(r.json.last_activity) <= ts, 'last_activity <= timestamp');
  t.ok(Math.abs(r.mtimeMs - ts) < 1000, 'the file was written at its timestamp');
});

t.test('a silent live exec is counted in active_exec_sessions for its whole life (microsandbox#934)', async (t) => {
  const other = await rawConnect(sock);
  const id = nextId++;
  client.send(id, execRequest('sleep', ['30']));
  other.send(other.idStart, execRequest('sleep', ['30']));
  await client.next((m) => m.id === id && m.type === 'execStarted');
  await other.next((m) => m.id === other.idStart && m.type === 'execStarted');
  const during = await heartbeatAfter(Date.now());
  t.equal(during.json.active_exec_sessions, 2, 'both counted while they run');
  const later = await heartbeatAfter(Date.parse(during.json.timestamp));
  t.equal(later.json.active_exec_sessions, 2, 'still counted a heartbeat later, with no traffic at all');
  t.equal(later.json.activity_seq, during.json.activity_seq, 'silence does not move activity_seq');
  t.equal(later.json.last_activity, during.json.last_activity);
  // A client that goes away takes its session down (SIGHUP), and the count follows.
  other.close();
  const afterDisconnect = await (async () => {
    for (let since = Date.now(); ; ) {
      const r = await heartbeatAfter(since);
      if (r.json.active_exec_sessions !== 2 || Date.now() - since > 5000) return r;
      since = Date.parse(r.json.timestamp);
    }
  })();
  t.equal(afterDisconnect.json.active_exec_sessions, 1, "the disconnected client's session is no longer counted");
  client.send(id, { type: 'execSignal', payload: { signal: 9 } });
  const end = await client.untilTerminal(id);
  t.strictSame(exitOf(end.at(-1)!), { code: -1, signal: 9 });
  const after = await heartbeatAfter(Date.now());
  t.equal(after.json.active_exec_sessions, 0, 'not counted after its exit');
  settled = after;
});

t.test('pings, clock syncs and error replies leave activity_seq alone; a touch advances it exactly once', async (t) => {
  const before = settled ?? (await heartbeatAfter(Date.now()));
  for (let i = 0; i < 20; i++) client.send(nextId + i, { type: 'ping', payload: {} });
  client.send(0, { type: 'clockSync', payload: { unixTimeNanos: BigInt(Date.now()) * 1_000_000n } });
  const badId = nextId + 20;
  client.sendRaw(encodeFrame({ id: badId, flags: 0, body: Buffer.from([0xff, 0x00]) }));
  const flagsId = nextId + 21;
  client.sendRaw(encodeFrame({ id: flagsId, flags: 1, body: encodeCbor({ v: 7, t: 'core.ping', p: Buffer.from([0xa0]) }) }));
  for (let i = 0; i < 20; i++) t.equal((await client.next((m) => m.id === nextId + i)).type, 'pong');
  t.match((await client.next((m) => m.id === badId)).payload, { kind: 'malformed_message' });
  t.match((await client.next((m) => m.id === flagsId)).payload, { kind: 'invalid_flags' });
  nextId += 22;
  const quiet = await heartbeatAfter(Date.now());
  t.equal(quiet.json.activity_seq, before.json.activity_seq, 'activity_seq unchanged');
  t.equal(quiet.json.last_activity, before.json.last_activity, 'last_activity unchanged');
  t.strictSame(quiet.json.activity_counters, before.json.activity_counters, 'no counter moved');

  const touchId = nextId++;
  client.send(touchId, { type: 'touch', payload: {} });
  const touched = await client.next((m) => m.id === touchId);
  t.equal(touched.type, 'touched');
  const seq = BigInt((touched.payload as { activitySeq: number | bigint }).activitySeq);
  t.equal(seq, BigInt(before.json.activity_seq) + 1n, 'touched reports the sequence advanced by one');
  const after = await heartbeatAfter(Date.now());
  t.equal(BigInt(after.json.activity_seq), seq, 'the heartbeat shows the same sequence');
  t.equal(after.json.activity_counters.host_messages, before.json.activity_counters.host_messages + 1);
  t.equal(after.json.activity_counters.guest_messages, before.json.activity_counters.guest_messages, 'touched is not a guest message');
  t.equal(after.json.last_activity, after.json.timestamp, 'last_activity moves to the tick that saw the change');
  settled = after;
});

t.test('an exec moves activity_seq by its frames and exec_output_bytes by exactly the bytes written', async (t) => {
  const before = settled ?? (await heartbeatAfter(Date.now()));
  const a = nextId++;
  const b = nextId++;
  client.send(a, execRequest('head', ['-c', '12345', '/dev/zero']));
  client.send(b, execRequest('sh', ['-c', 'head -c 100 /dev/zero; head -c 23 /dev/zero >&2']));
  const ma = await client.untilTerminal(a);
  const mb = await client.untilTerminal(b);
  t.equal(stdoutOf(ma).length, 12345);
  t.strictSame(exitOf(ma.at(-1)!), { code: 0, signal: null });
  t.strictSame(exitOf(mb.at(-1)!), { code: 0, signal: null });
  const after = await heartbeatAfter(Date.now());
  const d = (k: keyof HeartbeatJson['activity_counters']): number => after.json.activity_counters[k] - before.json.activity_counters[k];
  t.equal(d('exec_output_bytes'), 12345 + 123, 'stdout and stderr bytes, exactly');
  t.equal(d('host_messages'), 2, 'two requests');
  t.equal(d('guest_messages'), ma.length + mb.length, 'every frame sent on the two ids (started, output, exited)');
  t.equal(after.json.activity_seq - before.json.activity_seq, 2 + ma.length + mb.length);
  t.equal(after.json.active_exec_sessions, 0);
  t.ok(Date.parse(after.json.last_activity) > Date.parse(before.json.last_activity), 'last_activity moved');
});

t.test('heartbeat_seq increases by exactly one per write', async (t) => {
  poll();
  const seqs = records.map((r) => r.json.heartbeat_seq);
  t.ok(seqs.length >= 5, `${seqs.length} heartbeats seen so far`);
  t.strictSame(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'every write seen, 1, 2, 3, ...');
});

t.test('under four flooding sessions no heartbeat gap exceeds 1.5 s (microsandbox#1011)', async (t: Test) => {
  const readers = [client, await rawConnect(sock)];
  t.teardown(() => readers[1]!.close());
  const sinks = readers.map((c) => new OutputSink(c));
  const floods: { c: RawClient; id: number }[] = [];
  for (let i = 0; i < 4; i++) {
    const c = readers[i % 2]!;
    const id = c === client ? nextId++ : c.idStart + i;
    c.send(id, execRequest('cat', ['/dev/zero']));
    floods.push({ c, id });
  }
  for (const f of floods) await f.c.next((m) => m.id === f.id && m.type === 'execStarted');
  const start = Date.now();
  const firstSeq = (await heartbeatAfter(start)).json.heartbeat_seq;
  // The scenario: 5 s of flooding into clients that read as fast as they can.
  await delay(Math.max(0, start + 5000 - Date.now()));
  poll();
  const during = records.filter((r) => r.json.heartbeat_seq >= firstSeq);
  const flooded = sinks.reduce((n, s) => n + s.totalBytes, 0);
  for (const f of floods) f.c.send(f.id, { type: 'execSignal', payload: { signal: 9 } });
  for (const f of floods) {
    const exited = await f.c.next((m) => m.id === f.id && m.type === 'execExited', 20_000);
    t.strictSame(exitOf(exited), { code: -1, signal: 9 });
  }
  for (const s of sinks) s.stop();

  t.ok(flooded > 64 * 1024 * 1024, `the sessions really flooded: ${(flooded / 2 ** 20).toFixed(0)} MiB in 5 s`);
  t.ok(during.length >= 4, `${during.length} heartbeats during ${((Date.now() - start) / 1000).toFixed(1)} s of flood`);
  const seqs = during.map((r) => r.json.heartbeat_seq);
  t.strictSame(seqs, Array.from({ length: seqs.length }, (_, i) => firstSeq + i), 'no write missed by the poller');
  let worst = 0;
  for (let i = 1; i < during.length; i++) {
    worst = Math.max(worst, Date.parse(during[i]!.json.timestamp) - Date.parse(during[i - 1]!.json.timestamp));
    worst = Math.max(worst, during[i]!.mtimeMs - during[i - 1]!.mtimeMs);
  }
  t.ok(worst < 1500, `largest gap between writes: ${worst.toFixed(0)} ms (< 1500)`);
  t.ok(during.every((r) => r.json.active_exec_sessions === 4), 'all four floods were counted in every heartbeat');
});

t.test('close() stops the heartbeat; an unwritable heartbeat path is not fatal', async (t) => {
  const file2 = join(dir, 'second.json');
  const second = new Agent({ heartbeatFile: file2 });
  const broken = new Agent({ heartbeatFile: join(dir, 'no-such-dir', 'heartbeat.json') });
  const read = (): HeartbeatJson | null => {
    try {
      return JSON.parse(readFileSync(file2, 'utf8')) as HeartbeatJson;
    } catch {
      return null;
    }
  };
  t.ok(await eventually(() => read() !== null, 3000), 'the second agent writes its own file');
  await second.close();
  await broken.close();
  const last = read()!.heartbeat_seq;
  // The scenario: 1.5 s, more than one interval, after close().
  await delay(1500);
  t.equal(read()!.heartbeat_seq, last, 'no write after close()');
});

t.test('close() resolves even when nothing else keeps the process alive', async (t) => {
  const script = [
    `import { Agent } from ${JSON.stringify(new URL('../../ts/agent/agent.ts', import.meta.url).href)};`,
    `const agent = new Agent({ heartbeatFile: ${JSON.stringify(join(dir, 'third.json'))} });`,
    'await agent.close();',
    "process.stdout.write('closed\\n');",
  ].join('\n');
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  t.strictSame({ status: r.status, stdout: r.stdout }, { status: 0, stdout: 'closed\n' }, `await agent.close() returns (stderr: ${r.stderr.trim().slice(0, 300)})`);
});
