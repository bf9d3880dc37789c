#!/usr/bin/env node
// Spawn cost as the parent grows: sequential `/bin/true` spawn-to-exit rate for spawnSession()
// (pipes and PTY) and child_process.spawn, with 0, 1 GiB and 4 GiB of touched memory in the
// parent. A fork copies the parent's page tables on every spawn; clone(CLONE_VM|CLONE_VFORK)
// does not, so our rate should stay flat. Cases are interleaved per heap size; each runs for a
// fixed time and reports spawns per second. Run: `npm run bench` (builds first).

import { spawn } from 'node:child_process';
import { once } from 'node:events';

import { spawnSession } from '../dist/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5);
const HEAPS_GIB = (process.env.BENCH_HEAPS ?? '0,1,4').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

export async function rate(one, seconds = SECONDS) {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    await one();
    n++;
  }
  return n / seconds;
}

export const cases = {
  'spawnSession pipes': async () => {
    const s = await spawnSession({ cmd: '/bin/true', stdin: 'ignore' });
    s.stdout.resume();
    s.stderr.resume();
    await s.exited;
  },
  'spawnSession pty': async () => {
    const s = await spawnSession({ cmd: '/bin/true', tty: true });
    s.stdout.resume();
    await s.exited;
  },
  'child_process.spawn': async () => {
    const c = spawn('/bin/true', [], { stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.resume();
    c.stderr.resume();
    await once(c, 'close');
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Runs every case at every heap size (interleaved per heap size) and returns one row per pair.
// Memory allocated for the larger heaps stays held for the life of the process.
// extraCases: more name → async () => void entries (bench/index.mjs adds node-pty).
const held = [];
let heldGiB = 0;
export async function runSpawnHeap({ heapsGiB = HEAPS_GIB, rounds = ROUNDS, extraCases = {}, seconds = SECONDS } = {}) {
  const all = { ...cases, ...extraCases };
  const rows = [];
  for (const gib of heapsGiB) {
    while (heldGiB < gib) {
      // Filled, so every page is really mapped (calloc'd zero pages would not count).
      held.push(Buffer.alloc(512 * 1024 * 1024, 1));
      heldGiB += 0.5;
    }
    const results = Object.fromEntries(Object.keys(all).map((k) => [k, []]));
    for (let r = 0; r < rounds; r++) for (const [name, one] of Object.entries(all)) results[name].push(await rate(one, seconds));
    for (const [name, xs] of Object.entries(results)) {
      rows.push({ heapGiB: gib, case: name, samples: xs, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
    }
  }
  return rows;
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('spawn-heap.mjs');
if (isMain) {
const rows = await runSpawnHeap();
console.log('| touched heap | case | spawns/s (median) | min–max |');
console.log('|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.heapGiB} GiB | ${r.case} | ${r.median.toFixed(0)} | ${r.min.toFixed(0)}–${r.max.toFixed(0)} |`);
}
const at = (gib, name) => rows.find((r) => r.heapGiB === gib && r.case === name)?.median;
const last = HEAPS_GIB[HEAPS_GIB.length - 1];
console.log(
  `\nspawnSession pipes at ${last} GiB vs 0 GiB: ${(at(last, 'spawnSession pipes') / at(HEAPS_GIB[0], 'spawnSession pipes')).toFixed(2)}x; ` +
    `vs child_process at ${last} GiB: ${(at(last, 'spawnSession pipes') / at(last, 'child_process.spawn')).toFixed(1)}x`,
);
}
