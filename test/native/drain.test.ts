// Exit follows the last byte, and a grandchild holding the output does not hold the exit
// (LESSONS §1 and §2, regression tests 1 and 2).
//
// microsoft/node-pty#726 lost the tail of a > 4 KB burst written just before exit;
// microsoft/node-pty#72 delivered data after the exit event; kata-containers#1160/#4747 hung an
// exec while a background grandchild held stdout or the tty open. The library reads until EOF,
// or for at most `drainMs` after the leader is reaped, then applies `afterExit`.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';

import { spawnSession, type AfterExit } from '../../ts/index.js';
import { collect, eventually, PROGRAMS, pattern } from '../fixtures/harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const PATTERN_WRITER = join(PROGRAMS, 'c-pattern.sh');

const dir = mkdtempSync(join(tmpdir(), 'msb-drain-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `data` to a file for c-pattern.sh and returns its path. */
function patternFile(name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

/**
 * True while `pid` is a live process. A zombie counts as dead: orphans are re-parented to this
 * machine's PID 1, which does not reap them, so `kill(pid, 0)` alone would see them forever.
 */
function pidAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** Parses "<pid><eol>done<eol>" and returns the pid, or throws with the output. */
function sleeperPid(out: string, eol: string): number {
  const m = new RegExp(`^(\\d+)${eol}done${eol}$`).exec(out);
  if (!m) throw new Error(`unexpected output ${JSON.stringify(out)}`);
  return Number(m[1]);
}

const DRAIN_MS = 100;

for (const tty of [false, true]) {
  const mode = tty ? 'tty' : 'pipes';
  const eol = tty ? '\r\n' : '\n';
  // On a tty, the session leader's exit hangs up the foreground group. The sleeper is born with
  // SIGHUP ignored (set before the fork, so no race) and really keeps the terminal open, as a
  // daemonised grandchild would.
  const script = tty ? `trap '' HUP; sleep 30 & echo $!; echo done` : 'sleep 30 & echo $!; echo done';
  for (const afterExit of ['detach', 'kill-group'] as AfterExit[]) {
    t.test(`${mode}: a grandchild holding the output does not hold the exit under '${afterExit}' (kata-containers#1160)`, async (t) => {
      const started = Date.now();
      const s = await spawnSession({ cmd: 'sh', args: ['-c', script], tty, afterExit, drainMs: DRAIN_MS });
      const r = await collect(s);
      const elapsed = Date.now() - started;
      const out = r.stdout.toString('latin1');
      const pid = sleeperPid(out, eol);
      // Whatever happens below, do not leave a 30 s sleeper behind.
      t.teardown(() => {
        try {
          process.kill(-s.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      });
      t.equal(out, `${pid}${eol}done${eol}`);
      t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
      t.ok(elapsed < DRAIN_MS + 1000, `exit after ${elapsed} ms (bound ${DRAIN_MS + 1000} ms)`);
      t.equal(r.streamsEndedFirst, true);
      t.equal(r.dataAfterExit, false);
      if (afterExit === 'kill-group') {
        t.ok(await eventually(() => !pidAlive(pid), 2000), `sleeper ${pid} is gone`);
      } else {
        t.equal(pidAlive(pid), true, `sleeper ${pid} survives a detach`);
        process.kill(pid, 'SIGKILL');
        t.ok(await eventually(() => !pidAlive(pid), 2000));
      }
    });
  }
}

t.test('tty: a 4 MiB burst from a leader whose grandchild holds the terminal arrives whole before the exit', async (t) => {
  // A bulk PTY's reads are held for up to 5 ms to go out together; the drain deadline's last
  // reads must hand those out first, then what is still buffered, and only then the exit.
  const data = pattern(4 * MiB, 21);
  const file = patternFile('tty-burst-held', data);
  const s = await spawnSession({
    cmd: 'sh',
    args: ['-c', `trap '' HUP; sleep 30 & exec "$0" "$1"`, PATTERN_WRITER, file],
    tty: true,
    afterExit: 'kill-group',
    drainMs: DRAIN_MS,
  });
  const r = await collect(s);
  t.equal(r.stdout.length, data.length, 'every byte arrived');
  t.ok(r.stdout.equals(data), 'byte-exact');
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.equal(r.streamsEndedFirst, true, 'the stream ended before the exit');
  t.equal(r.dataAfterExit, false, 'nothing after the exit');
});

t.test("'wait' keeps the upstream behaviour: the exit waits for the sleeper's EOF", async (t) => {
  const started = Date.now();
  const s = await spawnSession({ cmd: 'sh', args: ['-c', 'sleep 1 & echo done'], afterExit: 'wait', drainMs: DRAIN_MS });
  const r = await collect(s);
  const elapsed = Date.now() - started;
  t.ok(r.stdout.equals(Buffer.from('done\n')));
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.ok(elapsed >= 900, `waited ${elapsed} ms for the sleeper`);
  t.ok(elapsed < 10_000, `but not forever (${elapsed} ms)`);
  t.equal(r.streamsEndedFirst, true);
});

/** Runs c-pattern.sh on `file` `runs` times; returns a description of every run that went wrong. */
async function bursts(file: string, expected: Buffer, tty: boolean, runs: number): Promise<string[]> {
  const wrong: string[] = [];
  for (let i = 0; i < runs; i++) {
    const s = await spawnSession({ cmd: PATTERN_WRITER, args: [file], tty });
    const r = await collect(s);
    const problems = [
      r.exit.code === 0 && r.exit.signal === null ? '' : `exit ${JSON.stringify(r.exit)}`,
      r.stdout.equals(expected) ? '' : `got ${r.stdout.length} of ${expected.length} bytes, not byte-exact`,
      r.stderr.length === 0 ? '' : `stderr ${JSON.stringify(r.stderr.toString())}`,
      r.streamsEndedFirst ? '' : 'streams had not ended at exit',
      r.dataAfterExit ? 'data after exit' : '',
    ].filter(Boolean);
    if (problems.length > 0) wrong.push(`run ${i}: ${problems.join(', ')}`);
  }
  return wrong;
}

for (const tty of [false, true]) {
  const mode = tty ? 'tty' : 'pipes';
  t.test(`${mode}: exit comes after the last byte, 64 KiB burst x100 (microsoft/node-pty#726, #72)`, async (t) => {
    const data = pattern(64 * KiB, 3);
    const file = patternFile(`burst-64k-${mode}`, data);
    t.same(await bursts(file, data, tty, 100), [], '100 of 100 byte-exact, streams ended first, nothing after exit');
  });

  t.test(`${mode}: other burst sizes (4 KiB x20, 1 MiB x5, 10 MiB x2) are byte-exact`, async (t) => {
    for (const [size, runs] of [
      [4 * KiB, 20],
      [1 * MiB, 5],
      [10 * MiB, 2],
    ] as const) {
      const data = pattern(size, 4);
      const file = patternFile(`burst-${size}-${mode}`, data);
      t.same(await bursts(file, data, tty, runs), [], `${size} bytes x${runs}`);
    }
  });

  t.test(`${mode}: printf x delivers exactly x, 100 of 100 times`, async (t) => {
    const wrong: string[] = [];
    for (let i = 0; i < 100; i++) {
      const s = await spawnSession({ cmd: 'printf', args: ['x'], tty });
      const r = await collect(s);
      if (!r.stdout.equals(Buffer.from('x')) || r.exit.code !== 0 || r.dataAfterExit || !r.streamsEndedFirst) {
        wrong.push(`run ${i}: ${JSON.stringify(r.stdout.toString('latin1'))} ${JSON.stringify(r.exit)}`);
      }
    }
    t.same(wrong, []);
  });

  t.test(`${mode}: binary-safe, all 256 byte values arrive unchanged`, async (t) => {
    const all = Buffer.from(Array.from({ length: 512 }, (_, i) => (i < 256 ? i : 511 - i)));
    const file = patternFile(`all-bytes-${mode}`, all);
    const s = await spawnSession({ cmd: PATTERN_WRITER, args: [file], tty });
    const r = await collect(s);
    t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
    t.equal(r.stdout.toString('hex'), all.toString('hex'));
  });
}

// The same guarantee for consumers that do not use 'data' listeners: `for await` (the 'readable'
// protocol) and pipe() into a destination with backpressure (which pauses the source). When
// `exited` resolves, the consumer has every byte and the stream has ended; nothing follows.
for (const tty of [false, true]) {
  const mode = tty ? 'tty' : 'pipes';
  t.test(`${mode}: exit comes after the last byte for a for-await consumer (microsoft/node-pty#72)`, async (t) => {
    const data = pattern(1 * MiB, 7);
    const file = patternFile(`for-await-${mode}`, data);
    const s = await spawnSession({ cmd: PATTERN_WRITER, args: [file], tty });
    let got = 0;
    let atExit: { got: number; ended: boolean } | null = null;
    void s.exited.then(() => (atExit = { got, ended: s.stdout.readableEnded }));
    const chunks: Buffer[] = [];
    for await (const c of s.stdout) {
      chunks.push(c as Buffer);
      got += (c as Buffer).length;
      // A consumer that does a little work per chunk.
      await new Promise((r) => setImmediate(r));
    }
    t.same(await s.exited, { code: 0, signal: null, reason: 'exited' });
    t.ok(Buffer.concat(chunks).equals(data), 'byte-exact');
    t.same(atExit, { got: data.length, ended: true }, 'at the exit the consumer had every byte and the stream had ended');
  });

  t.test(`${mode}: exit comes after the last byte for pipe() into a slow destination (microsoft/node-pty#72)`, async (t) => {
    const data = pattern(1 * MiB, 8);
    const file = patternFile(`pipe-slow-${mode}`, data);
    const s = await spawnSession({ cmd: PATTERN_WRITER, args: [file], tty });
    const chunks: Buffer[] = [];
    const dest = new Writable({
      highWaterMark: 16 * KiB,
      write(c: Buffer, _enc, cb): void {
        chunks.push(c);
        setTimeout(cb, 1);
      },
    });
    const destFinished = finished(dest);
    // Bytes the source has handed to pipe() (the destination may still be working on them).
    let emitted = 0;
    s.stdout.on('data', (c: Buffer) => (emitted += c.length));
    s.stdout.pipe(dest);
    const exit = await s.exited;
    const atExit = { emitted, ended: s.stdout.readableEnded };
    await destFinished;
    t.same(exit, { code: 0, signal: null, reason: 'exited' });
    t.ok(Buffer.concat(chunks).equals(data), 'byte-exact in the end');
    t.same(atExit, { emitted: data.length, ended: true }, 'at the exit the source had handed over every byte and had ended');
  });
}
