/**
 * Sessions started from several JavaScript threads at once share one reader thread: each new
 * session is attached to the reader's epoll set by the thread that spawned it, without waking the
 * reader (reader.rs, `enqueue`). Every session must still deliver its exact output and code to
 * its own thread, and each worker's own `process.env` must reach its children.
 */

import t from 'tap';
import { Worker } from 'node:worker_threads';

import { nativeStats } from '../../ts/native/index.js';
import { eventually, processTable } from '../fixtures/harness.js';
import { taggedRun, type TaggedResult as Result } from '../fixtures/spawn-worker.js';

const WORKER = new URL('../fixtures/spawn-worker.ts', import.meta.url);
const PER_THREAD = 60;

function runWorker(tag: string): Promise<Result[]> {
  return new Promise((resolve, reject) => {
    // A worker does not inherit the parent's tsx hooks: register them, then load the fixture.
    const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(WORKER.href)}); })`;
    const w = new Worker(boot, { eval: true, workerData: { tag, count: PER_THREAD } });
    w.once('message', (m: Result[]) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`worker exited ${code}`))));
  });
}

function expected(tag: string): Omit<Result, 'pid'>[] {
  return Array.from({ length: PER_THREAD }, (_, i) => ({ out: `${tag}:${i}`, code: i }));
}

const withoutPid = (rs: Result[]): Omit<Result, 'pid'>[] => rs.map(({ out, code }) => ({ out, code }));

t.test('three threads spawn 60 sessions each at once: every output and code exact, per thread', async (t) => {
  process.env.MSB_WORKER_TAG = 'main';
  const mainRuns = Array.from({ length: PER_THREAD }, (_, i) => taggedRun(i));
  const [a, b, main] = await Promise.all([runWorker('w1'), runWorker('w2'), Promise.all(mainRuns)]);
  delete process.env.MSB_WORKER_TAG;
  t.strictSame(withoutPid(a), expected('w1'));
  t.strictSame(withoutPid(b), expected('w2'));
  t.strictSame(withoutPid(main), expected('main'));
  t.ok(await eventually(() => nativeStats().sessions === 0, 5000), 'no session left in the reader');
  // Every child was reaped before its exit was reported. (Not "no zombie children at all": the
  // workers' TypeScript loader may start helper processes of its own, reaped on Node's schedule.)
  const ours = new Set([...a, ...b, ...main].map((r) => r.pid));
  t.equal(ours.size, 3 * PER_THREAD, 'distinct pids');
  t.strictSame(
    processTable().filter((p) => ours.has(p.pid) && p.ppid === process.pid),
    [],
    'none of them is left as our child',
  );
});
