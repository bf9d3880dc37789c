#!/usr/bin/env node
// Paired A/B of the pipe throughput case between two builds: what decided every design change in
// bench/README.md. Single bench runs swing with the host by more than most changes are worth;
// alternating pairs (A B, B A, …) of 1 GB transfers, each build warm in a worker of its own, do not.
//
//   node bench/ab.mjs <A> <B>
//
// Each side is a built addon (`.node`: run with this checkout's dist/) or a checkout directory
// (its bench/worker.mjs, dist/ and addon; build it first). Prints medians of throughput and of
// CPU per GB for each side and in how many pairs B beat A. AB_PAIRS (15), AB_BYTES (1e9).

import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { median } from './stats.mjs';
import { startWorker } from './worker.mjs';

const PAIRS = Number(process.env.AB_PAIRS ?? 15);
const BYTES = Number(process.env.AB_BYTES ?? 1e9);

function side(arg) {
  if (!arg) throw new Error('usage: node bench/ab.mjs <A: .node file or checkout> <B: .node file or checkout>');
  const path = resolve(arg);
  return statSync(path).isDirectory() ? { script: join(path, 'bench', 'worker.mjs') } : { env: { MSB_AGENTD_NATIVE_PATH: path } };
}

const sides = { A: startWorker('spawnSession pipes', side(process.argv[2])), B: startWorker('spawnSession pipes', side(process.argv[3])) };
const runs = { A: [], B: [] };
try {
  // One unrecorded warm-up each, as in the bench.
  await sides.A.run(BYTES / 10);
  await sides.B.run(BYTES / 10);
  for (let i = 0; i < PAIRS; i++) {
    for (const k of i % 2 ? ['A', 'B'] : ['B', 'A']) {
      const r = await sides[k].run(BYTES);
      if (r.bytes !== BYTES) throw new Error(`${k} delivered ${r.bytes} of ${BYTES} bytes`);
      runs[k].push({ MBps: r.bytes / r.ms / 1e3, cpuPerGB: (r.cpuMs * 1e9) / r.bytes });
    }
  }
} finally {
  await Promise.all([sides.A.stop(), sides.B.stop()]);
}
for (const k of ['A', 'B']) {
  const m = (f) => median(runs[k].map(f)).toFixed(0);
  console.log(`${k}: ${m((r) => r.MBps)} MB/s, ${m((r) => r.cpuPerGB)} ms CPU per GB (medians of ${PAIRS})`);
}
const faster = runs.B.filter((r, i) => r.MBps > runs.A[i].MBps).length;
const cheaper = runs.B.filter((r, i) => r.cpuPerGB < runs.A[i].cpuPerGB).length;
console.log(`B faster than A in ${faster} of ${PAIRS} pairs, with less CPU in ${cheaper} of ${PAIRS}`);
