// Signals, kill, timeout, abort and close (LESSONS §3, regression 3).
//
// Upstream, kill reached only the direct child (superradcompany/microsandbox#1104,
// microsoft/node-pty#167), a timeout threw while the command kept running (e2b-dev/E2B#500), and a
// child trapping the default signal survived (khasinski/aya#73). Here every process leads its own
// group; kill() sends exactly the signal asked for to the whole group; timeout and abort escalate
// SIGTERM → killGraceMs → SIGKILL and leave nothing behind; an exit by signal is never code 0.
import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';

import { spawnSession, type Session } from '../../ts/index.js';
import { collect, eventually, groupAlive } from '../fixtures/harness.js';

const MODES = [false, true] as const;

/** Resolves with the accumulated output once it matches `pattern`; rejects if the stream ends first. */
function waitForOutput(stream: Readable, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const m = pattern.exec(text);
      if (m) {
        stream.off('data', onData);
        stream.off('end', onEnd);
        resolve(m[1] ?? m[0]);
      }
    };
    const onEnd = (): void => reject(new Error(`stream ended before ${pattern}: ${JSON.stringify(text)}`));
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}

/** State letter and process group of a pid from /proc/<pid>/stat, or null once it is gone. */
function procStat(pid: number): { state: string; pgid: number } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], pgid: Number(f[2]) };
}

/** True while the process exists and has not exited (a zombie has exited). */
function running(pid: number): boolean {
  const st = procStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** Pids of group `pgid` that are still running (zombies excluded). */
function runningInGroup(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => procStat(pid)?.pgid === pgid && running(pid));
}

/**
 * How long an orphan may stay a zombie before init reaps it. Killed descendants are reparented
 * to pid 1, and `kill(-pgid, 0)` keeps succeeding until pid 1 reaps them; this machine's pid 1
 * (process_api) reaps orphans about every 2 s. Whether anything still *runs* is asserted with the
 * tight bound (grace + 1 s); `groupAlive()` (ESRCH) is then asserted with this allowance added.
 */
const INIT_REAP_MS = 3000;

/**
 * Asserts that nothing in group `pgid` runs by `deadline` (performance.now() time), and that
 * `kill(-pgid, 0)` fails with ESRCH once init has reaped the orphans.
 */
async function assertGroupGone(t: Test, pgid: number, deadline: number, what: string): Promise<void> {
  const none = await eventually(() => runningInGroup(pgid).length === 0, deadline - performance.now());
  t.ok(none, `${what}: no process of group ${pgid} runs (${runningInGroup(pgid).join(' ')})`);
  t.ok(performance.now() <= deadline + 20, `${what}: within the bound`);
  t.ok(await eventually(() => !groupAlive(pgid), deadline + INIT_REAP_MS - performance.now()), `${what}: kill(-pgid, 0) is ESRCH`);
}

/**
 * A shell with two background sleepers and a child that ignores SIGTERM (and SIGHUP, which a PTY
 * hang-up would send); it prints `ready` once the trap is set.
 */
const STUBBORN_TREE =
  'sleep 60 & sleep 60 & sh -c \'trap "" TERM HUP; echo ready; while :; do sleep 1; done\' & wait';

/** Kills what a failed test may leave behind. */
function cleanup(t: Test, s: Session): void {
  t.teardown(() => {
    s.close();
    try {
      process.kill(-s.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
}

t.test('kill() sends SIGTERM by default: exited {code: null, signal: SIGTERM, reason: killed}', async (t) => {
  for (const tty of MODES) {
    const s = await spawnSession({ cmd: 'sleep', args: ['60'], tty });
    cleanup(t, s);
    const done = collect(s);
    t.equal(s.kill(), true, `tty=${tty}: kill() reports the signal was sent`);
    t.strictSame((await done).exit, { code: null, signal: 'SIGTERM', reason: 'killed' }, `tty=${tty}`);
  }
});

t.test('kill(sig) sends exactly that signal, by name or number, with no escalation', async (t) => {
  for (const [sig, name] of [
    ['SIGUSR2', 'SIGUSR2'],
    [9, 'SIGKILL'],
    ['SIGINT', 'SIGINT'],
  ] as const) {
    const s = await spawnSession({ cmd: 'sleep', args: ['60'] });
    cleanup(t, s);
    const done = collect(s);
    t.equal(s.kill(sig), true);
    t.strictSame((await done).exit, { code: null, signal: name, reason: 'killed' }, String(sig));
  }
});

t.test('a process that dies of a signal it raised is signaled with code null, never 0', async (t) => {
  for (const tty of MODES) {
    const s = await spawnSession({ cmd: 'sh', args: ['-c', 'kill -USR1 $$'], tty });
    t.strictSame((await collect(s)).exit, { code: null, signal: 'SIGUSR1', reason: 'signaled' }, `tty=${tty}`);
  }
});

t.test('kill() reaches a grandchild in the group (microsoft/node-pty#167, E2B#1034)', async (t) => {
  const s = await spawnSession({ cmd: 'sh', args: ['-c', 'sleep 60 & echo $!; wait'] });
  cleanup(t, s);
  const done = collect(s);
  const grandchild = Number(await waitForOutput(s.stdout, /^(\d+)\n/));
  t.ok(grandchild > 0 && grandchild !== s.pid, `grandchild pid ${grandchild}`);
  t.ok(running(grandchild), 'grandchild runs before the kill');
  const killedAt = performance.now();
  t.equal(s.kill(), true);
  t.strictSame((await done).exit, { code: null, signal: 'SIGTERM', reason: 'killed' });
  t.ok(await eventually(() => !running(grandchild), 1000), 'grandchild no longer runs within 1 s');
  await assertGroupGone(t, s.pid, killedAt + 1000, 'after kill()');
});

t.test('kill(sig, {group: false}) signals only the leader', async (t) => {
  const s = await spawnSession({ cmd: 'sh', args: ['-c', 'sleep 60 & echo $!; wait'] });
  cleanup(t, s);
  const done = collect(s);
  const grandchild = Number(await waitForOutput(s.stdout, /^(\d+)\n/));
  t.teardown(() => {
    try {
      process.kill(grandchild, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  t.equal(s.kill('SIGTERM', { group: false }), true);
  t.strictSame((await done).exit, { code: null, signal: 'SIGTERM', reason: 'killed' });
  t.ok(running(grandchild), 'the grandchild was not signalled');
  t.ok(groupAlive(s.pid), 'the group still has a member');
});

t.test('kill() after exit returns false and signals nothing', async (t) => {
  for (const tty of MODES) {
    const s = await spawnSession({ cmd: 'true', tty });
    t.strictSame((await collect(s)).exit, { code: 0, signal: null, reason: 'exited' });
    t.equal(s.kill(), false, `tty=${tty}: kill()`);
    t.equal(s.kill('SIGKILL', { group: false }), false, `tty=${tty}: kill(SIGKILL, leader only)`);
  }
});

for (const tty of MODES) {
  t.test(`timeoutMs kills the whole tree, SIGTERM-trapping child included (tty=${tty}, E2B#500, aya#73)`, async (t) => {
    const timeoutMs = 500;
    const killGraceMs = 500;
    const started = performance.now();
    const s = await spawnSession({ cmd: 'sh', args: ['-c', STUBBORN_TREE], timeoutMs, killGraceMs, tty });
    cleanup(t, s);
    const done = collect(s);
    await waitForOutput(s.stdout, /ready\r?\n/);
    t.ok(performance.now() - started < timeoutMs, 'the trap was set before the timeout fired');
    const r = await done;
    t.strictSame(r.exit, { code: null, signal: 'SIGTERM', reason: 'timeout' });
    t.equal(r.stdout.toString('latin1'), tty ? 'ready\r\n' : 'ready\n');
    await assertGroupGone(t, s.pid, started + timeoutMs + killGraceMs + 1000, 'timeout + grace + 1 s');
  });
}

t.test('AbortSignal kills the whole tree with reason aborted', async (t) => {
  const killGraceMs = 500;
  const ac = new AbortController();
  const s = await spawnSession({ cmd: 'sh', args: ['-c', STUBBORN_TREE], signal: ac.signal, killGraceMs });
  cleanup(t, s);
  const done = collect(s);
  await waitForOutput(s.stdout, /ready\n/);
  const abortedAt = performance.now();
  ac.abort();
  t.strictSame((await done).exit, { code: null, signal: 'SIGTERM', reason: 'aborted' });
  await assertGroupGone(t, s.pid, abortedAt + killGraceMs + 1000, 'abort + grace + 1 s');
});

t.test('an already aborted signal ends the process at once with reason aborted', async (t) => {
  const s = await spawnSession({ cmd: 'sleep', args: ['60'], signal: AbortSignal.abort(), killGraceMs: 500 });
  cleanup(t, s);
  const started = performance.now();
  t.strictSame((await collect(s)).exit, { code: null, signal: 'SIGTERM', reason: 'aborted' });
  t.ok(performance.now() - started < 1000, 'within 1 s');
});

t.test('close() on a running session: exited is SIGKILL/killed, close() is idempotent', async (t) => {
  for (const tty of MODES) {
    const s = await spawnSession({ cmd: 'sh', args: ['-c', 'sleep 60 & sleep 60; wait'], tty });
    cleanup(t, s);
    const pid = s.pid;
    const closedAt = performance.now();
    s.close();
    t.doesNotThrow(() => s.close(), `tty=${tty}: second close()`);
    t.strictSame(await s.exited, { code: null, signal: 'SIGKILL', reason: 'killed' }, `tty=${tty}`);
    t.doesNotThrow(() => s.close(), `tty=${tty}: close() after exit`);
    t.equal(s.kill(), false, `tty=${tty}: kill() after close`);
    await assertGroupGone(t, pid, closedAt + 1000, `tty=${tty}: close + 1 s`);
  }
});

t.test('close() after a normal exit keeps the exit as it was', async (t) => {
  const s = await spawnSession({ cmd: 'sh', args: ['-c', 'exit 7'] });
  const r = await collect(s);
  s.close();
  s.close();
  t.strictSame(r.exit, { code: 7, signal: null, reason: 'exited' });
  t.strictSame(await s.exited, { code: 7, signal: null, reason: 'exited' });
});

t.test('`yes | head -1` ends promptly in both modes: SIGPIPE is reset in the child', async (t) => {
  for (const tty of MODES) {
    const started = performance.now();
    const s = await spawnSession({ cmd: 'bash', args: ['-c', 'yes | head -1; echo ${PIPESTATUS[0]}'], tty });
    const r = await collect(s);
    const nl = tty ? '\r\n' : '\n';
    t.strictSame(r.exit, { code: 0, signal: null, reason: 'exited' }, `tty=${tty}`);
    // 141 = 128 + SIGPIPE: `yes` died of the signal rather than seeing EPIPE (Node ignores SIGPIPE).
    t.equal(r.stdout.toString('latin1'), `y${nl}141${nl}`, `tty=${tty}: output`);
    t.equal(r.stderr.toString('latin1'), '', `tty=${tty}: no "Broken pipe" message`);
    t.ok(performance.now() - started < 1000, `tty=${tty}: within 1 s`);
  }
});

t.test('the child starts with no ignored and no blocked signals', async (t) => {
  for (const tty of MODES) {
    const s = await spawnSession({ cmd: 'grep', args: ['-E', '^Sig(Blk|Ign):', '/proc/self/status'], tty });
    const r = await collect(s);
    const nl = tty ? '\r\n' : '\n';
    t.equal(r.stdout.toString('latin1'), `SigBlk:\t0000000000000000${nl}SigIgn:\t0000000000000000${nl}`, `tty=${tty}`);
  }
});
