// stdin survives size, stalls, early exits and EOF (LESSONS §5, regression test 5).
//
// superradcompany/microsandbox#706 failed stdin over 64 KiB with EAGAIN on a non-blocking pipe;
// microsoft/node-pty#831 interleaved or dropped pastes over ~1 KB; microsoft/node-pty#956 spun a
// core retrying EAGAIN against a reader that had stalled; sindresorhus/execa#74 crashed the parent
// with EPIPE from a child that exited before reading; daytonaio/daytona#3770 left stdin open so
// tools waited forever. Each test below is one of those, run against real processes.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';

import { spawnSession, type Session } from '../../ts/index.js';
import { collect, pattern } from '../fixtures/harness.js';

const MiB = 1024 * 1024;

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Writes `data` in `chunk`-sized writes (as a paste or a pipe would), then ends stdin. */
function feed(s: Session, data: Buffer, chunk = 64 * 1024): void {
  for (let off = 0; off < data.length; off += chunk) s.stdin.write(data.subarray(off, off + chunk));
  s.stdin.end();
}

/** Resolves once the accumulated output of `s` contains `marker`. */
function outputContains(s: Session, marker: string): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    const onData = (c: Buffer): void => {
      seen += c.toString('latin1');
      if (seen.includes(marker)) {
        s.stdout.off('data', onData);
        resolve();
      }
    };
    s.stdout.on('data', onData);
  });
}

for (const size of [1 * MiB, 16 * MiB]) {
  t.test(`${size / MiB} MiB through cat (pipes) arrive byte-exact (superradcompany/microsandbox#706)`, async (t) => {
    const input = pattern(size);
    const s = await spawnSession({ cmd: 'cat' });
    const done = collect(s);
    feed(s, input);
    const r = await done;
    t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
    t.equal(r.stdout.length, size);
    t.equal(sha256(r.stdout), sha256(input));
    t.equal(r.stderr.length, 0);
    t.equal(r.streamsEndedFirst, true);
    t.equal(r.dataAfterExit, false);
  });
}

t.test('1 MiB through a PTY in raw mode arrives byte-exact (microsoft/node-pty#831)', async (t) => {
  const size = 1 * MiB;
  const input = pattern(size, 2);
  const s = await spawnSession({
    cmd: 'sh',
    args: ['-c', `stty raw -echo && echo READY && exec head -c ${size}`],
    tty: true,
  });
  const done = collect(s);
  await outputContains(s, 'READY\n');
  // All at once, as a paste: the library must queue it and wait for POLLOUT, not drop or reorder.
  s.stdin.write(input);
  const r = await done;
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
  const expected = Buffer.concat([Buffer.from('READY\n'), input]);
  t.equal(r.stdout.length, expected.length);
  t.equal(sha256(r.stdout), sha256(expected));
  t.equal(r.stderr.length, 0);
});

t.test('a child that exits without reading gives exactly one EPIPE error event and its exit (sindresorhus/execa#74)', async (t) => {
  const s = await spawnSession({ cmd: 'true' });
  const errors: NodeJS.ErrnoException[] = [];
  s.stdin.on('error', (e: NodeJS.ErrnoException) => errors.push(e));
  const input = pattern(1 * MiB, 3);
  for (let off = 0; off < input.length; off += 64 * 1024) s.stdin.write(input.subarray(off, off + 64 * 1024));
  const exit = await s.exited;
  t.same(exit, { code: 0, signal: null, reason: 'exited' });
  // Let any (wrong) second error surface before counting.
  await new Promise((r) => setImmediate(r));
  t.equal(errors.length, 1, 'exactly one error event');
  t.equal(errors[0]?.code, 'EPIPE');
  t.equal(s.stdin.destroyed, true);
});

t.test('with no error listener an EPIPE does not crash the process', async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  t.teardown(() => process.off('uncaughtException', onUncaught));
  const s = await spawnSession({ cmd: 'true' });
  s.stdin.write(pattern(1 * MiB, 4));
  const exit = await s.exited;
  await new Promise((r) => setImmediate(r));
  t.same(exit, { code: 0, signal: null, reason: 'exited' });
  t.same(uncaught, []);
});

t.test('stdin.end() makes cat exit 0 (pipes) (daytonaio/daytona#3770)', async (t) => {
  const s = await spawnSession({ cmd: 'cat' });
  const done = collect(s);
  s.stdin.end('hello\n');
  const r = await done;
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.ok(r.stdout.equals(Buffer.from('hello\n')));
});

t.test('stdin.end() makes cat exit 0 in a PTY: EOF is the terminal VEOF character', async (t) => {
  t.test('after a full line', async (t) => {
    const s = await spawnSession({ cmd: 'cat', tty: true });
    const done = collect(s);
    s.stdin.end('hello\n');
    const r = await done;
    t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
    // The line discipline echoes the line, then cat writes it; ONLCR turns \n into \r\n.
    t.equal(r.stdout.toString('latin1'), 'hello\r\nhello\r\n');
  });
  t.test('after a partial line (VEOF twice: one delivers the line, one is EOF)', async (t) => {
    const s = await spawnSession({ cmd: 'cat', tty: true });
    const done = collect(s);
    s.stdin.end('abc');
    const r = await done;
    t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
    t.equal(r.stdout.toString('latin1'), 'abcabc');
  });
  t.test('with nothing written', async (t) => {
    const s = await spawnSession({ cmd: 'cat', tty: true });
    const done = collect(s);
    s.stdin.end();
    const r = await done;
    t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
    t.equal(r.stdout.length, 0);
  });
});

/**
 * CPU time (ms, 10 ms ticks) of the two threads that could spin on a stalled stdin: the JS thread
 * and the native reader. V8's helper threads are left out: under a parallel test run they do the
 * runner's GC and coverage work, which is not ours.
 */
function ourThreadsCpuMs(): number {
  const tick = 10;
  let total = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    if (Number(tid) !== process.pid && name !== 'msb-reader') continue;
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    total += (Number(f[11]) + Number(f[12])) * tick;
  }
  return total;
}

/**
 * Writes 8 MiB to a child that does not read for ~5 s and bounds our CPU time over 4.5 s of that
 * stall; afterwards the child hashes what it reads, which must be the whole input.
 */
async function stall(t: Test, tty: boolean): Promise<void> {
  const size = 8 * MiB;
  const input = pattern(size, 5);
  // In a PTY the terminal must be raw first, or the line discipline would edit the bytes.
  const script = tty
    ? `stty raw -echo && echo READY && sleep 5 && head -c ${size} | sha256sum`
    : `sleep 5; exec sha256sum`;
  const s = await spawnSession({ cmd: 'sh', args: ['-c', script], tty });
  const done = collect(s);
  if (tty) await outputContains(s, 'READY\n');
  // Copying 8 MiB into the write queue is not part of the stall: measure from after it.
  s.stdin.write(input);
  const before = ourThreadsCpuMs();
  const started = Date.now();
  // The scenario is a stall of this length; the timer is the scenario, not synchronisation.
  await new Promise((r) => setTimeout(r, 4500));
  const after = ourThreadsCpuMs();
  const stalledMs = Date.now() - started;
  if (!tty) s.stdin.end();
  const r = await done;
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
  // Nothing was lost across the stall.
  t.equal(r.stdout.toString(), `${tty ? 'READY\n' : ''}${sha256(input)}  -\n`);
  t.ok(stalledMs >= 4400, `stall lasted ${stalledMs} ms`);
  const cpuMs = after - before;
  t.ok(cpuMs < 100, `CPU of the JS and reader threads during the stall: ${cpuMs} ms (bound 100 ms)`);
}

t.test('pipes: a 5 s stall of the reader costs < 100 ms of our CPU: writes wait for POLLOUT (microsoft/node-pty#956)', async (t) => {
  await stall(t, false);
});

t.test('tty: a 5 s stall of the reader costs < 100 ms of our CPU: writes wait for POLLOUT (microsoft/node-pty#956)', async (t) => {
  await stall(t, true);
});

// Writable contract: every write callback is called, with the error if the write failed. A
// caller that awaits a write (`await new Promise((r) => stdin.write(buf, r))`, as promisified
// writers do) must not hang when the child goes away. Writes beyond the 1 MiB the library
// accepts ahead of the child are the ones whose callbacks wait.
t.test('a write waiting on a child that closed its stdin is called back with EPIPE', async (t) => {
  const s = await spawnSession({ cmd: 'sh', args: ['-c', 'exec 0<&-; exec sleep 30'] });
  t.teardown(() => s.close());
  const errors: NodeJS.ErrnoException[] = [];
  s.stdin.on('error', (e: NodeJS.ErrnoException) => errors.push(e));
  const callbacks: (NodeJS.ErrnoException | null | undefined)[] = [];
  s.stdin.write(pattern(2 * MiB, 6), (e) => callbacks.push(e));
  await once(s.stdin, 'error');
  await new Promise((r) => setImmediate(r));
  t.equal(errors.length, 1);
  t.equal(errors[0]?.code, 'EPIPE');
  t.equal(callbacks.length, 1, 'the write callback was called');
  t.equal(callbacks[0]?.code, 'EPIPE');
  s.kill('SIGKILL');
  t.same(await s.exited, { code: null, signal: 'SIGKILL', reason: 'killed' });
});

t.test('a write waiting when the session is closed is called back with an error', async (t) => {
  const s = await spawnSession({ cmd: 'sleep', args: ['30'] });
  const callbacks: (Error | null | undefined)[] = [];
  s.stdin.write(pattern(2 * MiB, 7), (e) => callbacks.push(e));
  s.close();
  t.same(await s.exited, { code: null, signal: 'SIGKILL', reason: 'killed' });
  await new Promise((r) => setImmediate(r));
  t.equal(callbacks.length, 1, 'the write callback was called');
  t.ok(callbacks[0] instanceof Error, 'with an error');
});
