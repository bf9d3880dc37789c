// Flow control in both directions (DESIGN §5, LESSONS §6 and regression test 6).
//
// Guest → host: a client that stops reading while its exec floods output must not grow the
// agent's memory (vscode#329843: output buffered for a listener that never came grew until OOM)
// and must not slow anyone else (e2b-dev/infra#3292: one stale subscriber blocked everyone for
// 15 minutes). The agent stops reading the child instead; after the client resumes, every byte
// arrives.
//
// Host → guest: the protocol has no credit messages, so a child that never reads its stdin gets
// at most 16 MiB queued; a frame beyond that is refused with core.exec.stdin.error (ENOBUFS) and
// the connection goes on serving other ids (modal-labs/modal-client#2399: an unread pipe blocked
// with no sign to the user).
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';

import { STDIN_QUEUE_MAX } from '../../ts/agent/exec-session.js';
import type { ReceivedMessage } from '../../ts/protocol/index.js';
import { rawConnect, type RawClient } from '../fixtures/raw-client.js';
import { OutputSink, execRequest, exitOf } from '../fixtures/agent-sink.js';
import { eventually, groupRunning } from '../fixtures/harness.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';

const MiB = 1024 * 1024;

const { agent, path, dir, clients } = await startAgentOnSocket(t, 'flow');

async function connect(): Promise<RawClient> {
  const c = await rawConnect(path);
  clients.push(c);
  return c;
}

/** Sends, then waits for the terminal frame of `id`, which must be `terminal`; with the time taken. */
async function roundTrip(t: Test, c: RawClient, id: number, send: () => void, terminal: string): Promise<{ ms: number; m: ReceivedMessage }> {
  const start = performance.now();
  send();
  const m = await c.next((x) => x.id === id && (x.flags & 1) !== 0, 10_000);
  t.equal(m.type, terminal, `id ${id} ends with ${terminal}`);
  return { ms: performance.now() - start, m };
}

t.test('a client that stops reading keeps agent memory bounded and slows no other client (LESSONS §6)', async (t) => {
  const a = await connect();
  const b = await connect();
  const sinkA = new OutputSink(a, { zeroCheck: true });
  const sinkB = new OutputSink(b, { zeroCheck: true });
  const TOTAL = 256 * MiB;
  const id = a.idStart;

  const rssBefore = process.memoryUsage.rss();
  a.send(id, execRequest('head', ['-c', String(TOTAL), '/dev/zero']));
  const started = await a.next((m) => m.id === id && m.type === 'execStarted');
  const pid = (started.payload as { pid: number }).pid;
  a.socket.pause();

  // The scenario: client A reads nothing for 3 s. Memory is sampled meanwhile (measurement).
  let rssMax = process.memoryUsage.rss();
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage.rss())), 25);
  const pauseStart = performance.now();
  let bid = b.idStart;

  // Client B moves 10 MiB to completion while A is paused.
  const bigId = bid++;
  const big = await roundTrip(t, b, bigId, () => b.send(bigId, execRequest('head', ['-c', String(10 * MiB), '/dev/zero'])), 'execExited');
  t.strictSame(exitOf(big.m), { code: 0, signal: null });
  t.equal(sinkB.of(bigId).stdout.bytes, 10 * MiB, 'B moved 10 MiB to completion while A was paused');
  t.ok(sinkB.of(bigId).stdout.allZero);
  t.ok(big.ms < 5000, `in ${big.ms.toFixed(0)} ms`);

  // From here on only B's `true` runs (no output): the agent must read nothing more from A's child.
  const producedBefore = agent.meter.snapshot().activity_counters.exec_output_bytes;
  const pings: number[] = [];
  const execs: number[] = [];
  while (performance.now() - pauseStart < 3000) {
    const pingId = bid++;
    pings.push((await roundTrip(t, b, pingId, () => b.send(pingId, { type: 'ping', payload: {} }), 'pong')).ms);
    const eid = bid++;
    const r = await roundTrip(t, b, eid, () => b.send(eid, execRequest('true')), 'execExited');
    execs.push(r.ms);
    t.strictSame(exitOf(r.m), { code: 0, signal: null });
    await delay(100);
  }
  const producedAfter = agent.meter.snapshot().activity_counters.exec_output_bytes;
  clearInterval(sampler);
  rssMax = Math.max(rssMax, process.memoryUsage.rss());

  t.ok(pings.length >= 3, `B did ${pings.length} ping and exec round trips during the pause`);
  t.ok(Math.max(...pings) < 500, `every ping of B took < 500 ms (max ${Math.max(...pings).toFixed(1)} ms)`);
  t.ok(Math.max(...execs) < 500, `every exec of true by B took < 500 ms (max ${Math.max(...execs).toFixed(1)} ms)`);
  const growth = rssMax - rssBefore;
  t.ok(growth < 64 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB (< 64 MiB) while A did not read`);
  t.equal(producedAfter, producedBefore, "the agent stopped reading A's child: no output was taken from it meanwhile");
  t.ok(sinkA.of(id).stdout.bytes < TOTAL, `A has ${sinkA.of(id).stdout.bytes} of ${TOTAL} bytes so far`);
  t.notOk(
    a.received.some((m) => m.id === id && m.type === 'execExited'),
    'the child is still held, not finished',
  );
  t.doesNotThrow(() => process.kill(pid, 0), 'the flooding child is alive, blocked on its pipe');

  // A session A starts while it is over its high-water mark is held too, and completes later.
  const lateId = id + 1;
  a.send(lateId, execRequest('echo', ['late']));

  a.socket.resume();
  const exited = await a.next((m) => m.id === id && m.type === 'execExited', 60_000);
  t.strictSame(exitOf(exited), { code: 0, signal: null });
  t.equal(sinkA.of(id).stdout.bytes, TOTAL, 'after resuming, all 256 MiB arrived');
  t.ok(sinkA.of(id).stdout.allZero, 'byte-exact (all zero)');
  t.equal(sinkA.of(id).stderr.bytes, 0);
  const late = await a.next((m) => m.id === lateId && m.type === 'execExited', 10_000);
  t.strictSame(exitOf(late), { code: 0, signal: null });
  t.equal(sinkA.of(lateId).stdout.bytes, 5, 'the session started under pressure delivered its output');
  sinkA.stop();
  sinkB.stop();
});

t.test('a paused client that disconnects leaves no child blocked on its pipe', async (t) => {
  const c = await connect();
  const sink = new OutputSink(c);
  const id = c.idStart;
  c.send(id, execRequest('yes'));
  const started = await c.next((m) => m.id === id && m.type === 'execStarted');
  const pid = (started.payload as { pid: number }).pid;
  c.socket.pause();
  // Wait until the agent has stopped reading the child (its output count stands still).
  let last = -1n;
  t.ok(
    await eventually(() => {
      const now = agent.meter.snapshot().activity_counters.exec_output_bytes;
      const still = now === last;
      last = now;
      return still;
    }, 5000),
    'the agent stopped reading the flood',
  );
  c.close();
  t.ok(await eventually(() => !groupRunning(pid), 5000), 'the blocked child was taken down with the connection');
  sink.stop();
});

t.test('stdin beyond 16 MiB for a child that does not read is refused with ENOBUFS; other ids carry on', async (t) => {
  t.equal(STDIN_QUEUE_MAX, 16 * MiB);
  const c = await connect();
  const fifo = join(dir, 'go');
  execFileSync('mkfifo', [fifo]);
  const id = c.idStart;
  // The child reads nothing until the test writes to the FIFO; then it hashes its whole stdin.
  c.send(id, execRequest('sh', ['-c', `read x < ${fifo}; exec sha256sum`]));
  await c.next((m) => m.id === id && m.type === 'execStarted');
  const FRAMES = 20;
  const accepted = createHash('sha256');
  for (let i = 0; i < FRAMES; i++) {
    const data = Buffer.alloc(MiB, i + 1);
    if (i < 16) accepted.update(data);
    c.send(id, { type: 'execStdin', payload: { data } });
  }
  // Frames are handled in order, so every stdin error is on the wire before this pong.
  const pong = await roundTrip(t, c, id + 1, () => c.send(id + 1, { type: 'ping', payload: {} }), 'pong');
  t.ok(pong.ms < 2000, `ping answered after 20 MiB of stdin (${pong.ms.toFixed(1)} ms)`);
  const errors = c.received.filter((m) => m.id === id && m.type === 'execStdinError');
  t.equal(errors.length, FRAMES - 16, 'exactly the frames beyond 16 MiB are refused');
  for (const e of errors) {
    const p = e.payload as { errno: number | null; errnoName: string | null; message: string };
    t.strictSame({ errno: p.errno, errnoName: p.errnoName }, { errno: 105, errnoName: 'ENOBUFS' });
    t.match(p.message, /not reading/);
    t.equal(e.flags, 0, 'not terminal');
  }
  // Another session on the same connection works while the first one's queue is full.
  const other = id + 2;
  c.send(other, execRequest('echo', ['ok']));
  const ms = await c.untilTerminal(other);
  t.equal(Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data)).toString(), 'ok\n');
  t.strictSame(exitOf(ms.at(-1)!), { code: 0, signal: null });

  // Let the child read: it gets exactly the accepted 16 MiB, then EOF.
  await writeFile(fifo, 'go\n');
  c.send(id, { type: 'execStdin', payload: { data: Buffer.alloc(0) } });
  const rest = await c.untilTerminal(id, 30_000);
  const out = Buffer.concat(rest.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data)).toString();
  t.equal(out, `${accepted.digest('hex')}  -\n`, 'the child read exactly the accepted frames, in order');
  t.strictSame(exitOf(rest.at(-1)!), { code: 0, signal: null });
});
