// Exit codes are exact under load (LESSONS §4, regression test 4).
//
// BitterSecurity/Decepticon#340: a global waitpid(-1) reaper raced the per-process wait and turned
// non-zero exits into 0, 200 runs out of 200. earendil-works/pi#8992: signal-killed commands were
// reported as exit 0 (`code ?? 0`). The library reaps only its own children through their pidfds,
// so child_process spawns in the same Node process keep their codes, and so do ours.
import t from 'tap';
import { spawn } from 'node:child_process';

import { spawnSession, type ExitInfo } from '../../ts/index.js';
import { zombieChildren } from '../fixtures/harness.js';

interface CpExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Gated<T> {
  /** Lets the child go on: closes its stdin, which ends its `read`. */
  release(): void;
  exit: Promise<T>;
}

/** A child_process child that waits on stdin (`read x`) before running `script`. */
function cpGated(script: string): Gated<CpExit> {
  const cp = spawn('sh', ['-c', `read x; ${script}`], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exit = new Promise<CpExit>((resolve, reject) => {
    cp.once('error', reject);
    cp.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { release: () => cp.stdin!.end(), exit };
}

/** A session that waits on stdin (`read x`) before running `script`. */
async function sessionGated(script: string): Promise<Gated<ExitInfo>> {
  const s = await spawnSession({ cmd: 'sh', args: ['-c', `read x; ${script}`] });
  return { release: () => s.stdin.end(), exit: s.exited };
}

function cpExit(script: string): Promise<CpExit> {
  return new Promise((resolve, reject) => {
    const cp = spawn('sh', ['-c', script], { stdio: 'ignore' });
    cp.once('error', reject);
    cp.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

t.test('200 concurrent sessions exit 0..199 while child_process runs 50 spawns: every code exact (BitterSecurity/Decepticon#340)', async (t) => {
  const started = Date.now();
  // Every child is alive at once, then all are released together, so that both reapers see
  // exits in flight at the same time.
  const sessions: Promise<Gated<ExitInfo>>[] = [];
  const killed: Promise<Gated<ExitInfo>>[] = [];
  const cps: Gated<CpExit>[] = [];
  const cpKilled: Gated<CpExit>[] = [];
  for (let i = 0; i < 200; i++) {
    sessions.push(sessionGated(`exit ${i}`));
    if (i % 4 === 0) cps.push(cpGated('exit 7'));
    if (i % 20 === 0) killed.push(sessionGated('kill -9 $$'));
    if (i % 40 === 0) cpKilled.push(cpGated('kill -9 $$'));
  }
  const gated = await Promise.all(sessions);
  const gatedKilled = await Promise.all(killed);
  for (const g of [...gated, ...gatedKilled, ...cps, ...cpKilled]) g.release();
  const [codes, sigs, cpCodes, cpSigs] = await Promise.all([
    Promise.all(gated.map((g) => g.exit)),
    Promise.all(gatedKilled.map((g) => g.exit)),
    Promise.all(cps.map((g) => g.exit)),
    Promise.all(cpKilled.map((g) => g.exit)),
  ]);
  t.equal(codes.length, 200);
  t.same(
    codes,
    Array.from({ length: 200 }, (_, i) => ({ code: i, signal: null, reason: 'exited' })),
    'each session reports its own exit code',
  );
  t.equal(sigs.length, 10);
  t.same(sigs, Array.from({ length: 10 }, () => ({ code: null, signal: 'SIGKILL', reason: 'signaled' })), 'a signal death is never 0');
  t.equal(cpCodes.length, 50);
  t.same(cpCodes, Array.from({ length: 50 }, () => ({ code: 7, signal: null })), 'child_process keeps its codes');
  t.same(cpSigs, Array.from({ length: 5 }, () => ({ code: null, signal: 'SIGKILL' })));
  t.same(zombieChildren(), []);
  const elapsed = Date.now() - started;
  t.ok(elapsed < 30_000, `finished in ${elapsed} ms`);
});

t.test('the same mix run five times in a row keeps every code exact', async (t) => {
  for (let round = 0; round < 5; round++) {
    const mixed: Promise<[number, ExitInfo | CpExit]>[] = [];
    for (let i = 0; i < 60; i++) {
      const code = (i * 37 + round) % 256;
      mixed.push(spawnSession({ cmd: 'sh', args: ['-c', `exit ${code}`] }).then(async (s) => [code, await s.exited]));
      if (i % 3 === 0) mixed.push(cpExit(`exit ${(code + 1) % 256}`).then((e) => [(code + 1) % 256, e]));
    }
    const results = await Promise.all(mixed);
    const wrong = results.filter(([code, e]) => e.code !== code || e.signal !== null);
    t.same(wrong, [], `round ${round}: every code matches`);
  }
});
