// Nothing leaks (LESSONS §9, regression test 11).
//
// microsoft/node-pty#950 (PR #882) leaked a PTY fd per spawn, two per failed one, until none were
// left; agentconnect-md/agentconnect#1884 freed handles only on GC; microsoft/node-pty#887 kept
// Node alive through a helper thread after kill(). Here: 1,000 spawns, half of them failing at
// different stages, bring fds, native sessions, threads and zombies back to their baseline, and a
// Node process that used the library exits on its own.
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { spawnSession, type SpawnSessionOptions } from '../../ts/index.js';
import { nativeStats } from '../../ts/native/index.js';
import { collect, eventually, fdCount, spawnErrorShape, threadCount, zombieChildren } from '../fixtures/harness.js';

const LIBRARY = resolve(dirname(fileURLToPath(import.meta.url)), '../../ts/index.ts');
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Failures at four stages: PATH resolution, after fork (chdir), user lookup, setrlimit in the child. */
const FAILURES: { options: SpawnSessionOptions; shape: object }[] = [
  {
    options: { cmd: 'msb-test-no-such-program' },
    shape: { kind: 'not_found', stage: 'resolve', errnoName: 'ENOENT', errno: 2, path: 'msb-test-no-such-program', code: 'ENOENT' },
  },
  {
    options: { cmd: 'true', cwd: '/msb-test/no/such/dir' },
    shape: { kind: 'bad_cwd', stage: 'chdir', errnoName: 'ENOENT', errno: 2, path: '/msb-test/no/such/dir', code: 'ENOENT' },
  },
  {
    options: { cmd: 'true', user: 'msb-test-no-such-user' },
    shape: { kind: 'user_setup_failed', stage: 'user', errnoName: null, errno: null, path: null, code: 'MSB_ERR_SPAWN' },
  },
  {
    options: { cmd: 'true', rlimits: [{ resource: 'nofile', soft: 100, hard: 50 }] },
    shape: { kind: 'resource_limit', stage: 'setrlimit(RLIMIT_NOFILE)', errnoName: 'EINVAL', errno: 22, path: null, code: 'EINVAL' },
  },
];

const QUEUED = Buffer.alloc(2 * 1024 * 1024, 0x61);

/** One successful session of variant `v`; returns what it observed, after close() (twice). */
async function succeed(v: number): Promise<string> {
  switch (v % 5) {
    case 0: {
      const s = await spawnSession({ cmd: 'true' });
      const e = await s.exited;
      s.close();
      s.close();
      return `pipes:${e.code}`;
    }
    case 1: {
      const s = await spawnSession({ cmd: 'echo', args: ['hi'], tty: true });
      const r = await collect(s);
      s.close();
      s.close();
      return `tty:${r.exit.code}:${JSON.stringify(r.stdout.toString())}`;
    }
    case 2: {
      const s = await spawnSession({ cmd: 'sh', args: ['-c', 'echo out; echo err >&2'], stdin: 'ignore' });
      const r = await collect(s);
      s.close();
      return `ignore:${r.exit.code}:${JSON.stringify(r.stdout.toString() + r.stderr.toString())}`;
    }
    case 3: {
      // Closed while running, with 2 MiB of stdin still queued (the child never reads):
      // SIGKILL to the group, queued input dropped, everything released at the reap.
      const s = await spawnSession({ cmd: 'sleep', args: ['30'], tty: v % 2 === 0 });
      s.stdin.write(QUEUED);
      s.close();
      const e = await s.exited;
      s.close();
      return `closed:${e.signal}:${e.reason}`;
    }
    default: {
      const s = await spawnSession({ cmd: 'cat' });
      const done = collect(s);
      s.stdin.end('x');
      const r = await done;
      s.close();
      return `cat:${r.exit.code}:${r.stdout.toString()}`;
    }
  }
}

async function fail(f: number): Promise<string> {
  const { options } = FAILURES[f % FAILURES.length]!;
  return JSON.stringify(await spawnErrorShape(spawnSession(options)));
}

t.test('1,000 spawns, half failing at four stages, leave fds, sessions, threads and zombies at baseline (microsoft/node-pty#950)', async (t) => {
  // Load the addon before the baseline; the reader thread runs only while sessions exist.
  t.same(nativeStats(), { sessions: 0, readerRunning: false });
  const fdBaseline = fdCount();
  const threadBaseline = threadCount();

  const tally = new Map<string, number>();
  const BATCH = 50;
  for (let base = 0; base < 1000; base += BATCH) {
    const batch: Promise<string>[] = [];
    for (let i = base; i < base + BATCH; i++) batch.push(i % 2 === 0 ? succeed(i / 2) : fail((i - 1) / 2));
    for (const r of await Promise.all(batch)) tally.set(r, (tally.get(r) ?? 0) + 1);
  }

  const expected = new Map<string, number>([
    ['pipes:0', 100],
    [`tty:0:${JSON.stringify('hi\r\n')}`, 100],
    [`ignore:0:${JSON.stringify('out\nerr\n')}`, 100],
    ['closed:SIGKILL:killed', 100],
    ['cat:0:x', 100],
    ...FAILURES.map((f): [string, number] => [JSON.stringify(f.shape), 125]),
  ]);
  t.same(Object.fromEntries(tally), Object.fromEntries(expected), 'every spawn ended as expected');

  // The reader thread exits right after the last session; its epoll and eventfd go with it.
  t.ok(await eventually(() => nativeStats().readerRunning === false, 5000), 'reader thread stopped');
  t.same(nativeStats(), { sessions: 0, readerRunning: false });
  t.ok(await eventually(() => fdCount() === fdBaseline, 5000), 'fd count back at baseline');
  t.equal(fdCount(), fdBaseline);
  t.ok(await eventually(() => threadCount() === threadBaseline, 5000), 'thread count back at baseline');
  t.equal(threadCount(), threadBaseline);
  t.same(zombieChildren(), []);
});

t.test('Node exits on its own after the last session ended (microsoft/node-pty#887)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'msb-leaks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'exits.mts');
  writeFileSync(
    script,
    `import { spawnSession, run } from ${JSON.stringify(LIBRARY)};
const results = [];
// Read to the end, not closed.
const a = await spawnSession({ cmd: 'sh', args: ['-c', 'echo out; echo err >&2'] });
a.stdout.resume();
a.stderr.resume();
results.push((await a.exited).code);
// A PTY, output never read, closed after exit.
const b = await spawnSession({ cmd: 'echo', args: ['tty'], tty: true });
results.push((await b.exited).code);
b.close();
// stdin left open; kill() ends it (no close()).
const c = await spawnSession({ cmd: 'cat' });
c.kill('SIGTERM');
results.push((await c.exited).signal);
// A PTY killed, never closed.
const d = await spawnSession({ cmd: 'sleep', args: ['30'], tty: true });
d.kill('SIGKILL');
results.push((await d.exited).signal);
// Closed while running.
const e = await spawnSession({ cmd: 'sleep', args: ['30'] });
e.close();
results.push((await e.exited).reason);
// run().
results.push((await run({ cmd: 'echo', args: ['run'] })).stdout);
process.stdout.write(JSON.stringify(results) + '\\n');
// Still running when the main flow ends: it keeps Node alive until its exit, and no longer.
const f = await spawnSession({ cmd: 'sh', args: ['-c', 'sleep 0.3; echo late'] });
f.stdout.on('data', (c) => process.stdout.write(c));
void f.exited.then((x) => process.stdout.write('exit ' + x.code + '\\n'));
`,
  );
  const started = Date.now();
  const child = spawn(process.execPath, ['--import=tsx', script], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A hang must fail the test, not the suite.
    timeout: 30_000,
    killSignal: 'SIGKILL',
  });
  let out = '';
  let err = '';
  let lastOutputAt = 0;
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    lastOutputAt = Date.now();
  });
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  );
  const exitedAt = Date.now();
  t.same({ code, signal, err }, { code: 0, signal: null, err: '' }, 'exited by itself with code 0');
  t.equal(out, `${JSON.stringify([0, 0, 'SIGTERM', 'SIGKILL', 'killed', 'run\n'])}\nlate\nexit 0\n`);
  t.ok(lastOutputAt > 0 && exitedAt - lastOutputAt < 3000, `exit ${exitedAt - lastOutputAt} ms after the last session ended`);
  t.ok(exitedAt - started < 20_000, `whole run took ${exitedAt - started} ms`);
});
