#!/usr/bin/env node
// Paired A/B of a throughput case between two builds: what decided every design change in
// bench/README.md. Single bench runs swing with the host by more than most changes are worth;
// alternating pairs (A B, B A, …), each build warm in a worker of its own, do not.
//
//   node bench/ab.mjs <A> <B>
//
// Each side is a built addon (`.node`: run with this checkout's dist/) or a checkout directory
// (its bench/worker.mjs, dist/ and addon; build it first). AB_CASE `pipe` (default: 1 GB through
// pipes) prints medians of throughput and of CPU per GB for each side and in how many pairs B beat
// A. AB_CASE `pty` (200 MB through a PTY) also runs the C reference loop before every pair and
// prints each side's geometric mean of the per-pair ratio to it: on a PTY one run swings by ±15 %
// and the host's slow phases last minutes, so only ratios to a yardstick run right beside them,
// over 30 or more pairs, resolve a 5 % change (ninth round). AB_PAIRS (15), AB_BYTES (by case).
// On a PTY, 150 pairs of 20 MB resolved ±3 % in about a third of the time 40 of 200 MB took to
// resolve ±5 % (twelfth round): the host's swings last seconds, so short runs side by side share
// them.

import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { compilePrograms, cRun } from './c-build.mjs';
import { geomean, median, pairedRatio } from './stats.mjs';
import { startWorker } from './worker.mjs';

const CASES = {
  pipe: { kind: 'spawnSession pipes', bytes: 1e9 },
  // The PTY case's yardstick: the C loop, run before every pair.
  pty: { kind: 'spawnSession tty', bytes: 200e6, reference: 'pty-reader' },
};
const CASE = CASES[process.env.AB_CASE ?? 'pipe'];
if (!CASE) throw new Error(`AB_CASE must be one of ${Object.keys(CASES).join(', ')}`);
const PAIRS = Number(process.env.AB_PAIRS ?? 15);
const BYTES = Number(process.env.AB_BYTES ?? CASE.bytes);

function side(arg) {
  if (!arg) throw new Error('usage: node bench/ab.mjs <A: .node file or checkout> <B: .node file or checkout>');
  const path = resolve(arg);
  return statSync(path).isDirectory() ? { script: join(path, 'bench', 'worker.mjs') } : { env: { MSB_AGENTD_NATIVE_PATH: path } };
}

const reference = CASE.reference && compilePrograms([CASE.reference])[CASE.reference];
const sides = { A: startWorker(CASE.kind, side(process.argv[2])), B: startWorker(CASE.kind, side(process.argv[3])) };
const runs = { A: [], B: [] };
try {
  // One unrecorded warm-up each, as in the bench.
  await sides.A.run(BYTES / 10);
  await sides.B.run(BYTES / 10);
  for (let i = 0; i < PAIRS; i++) {
    const c = reference && cRun(reference, BYTES);
    for (const k of i % 2 ? ['A', 'B'] : ['B', 'A']) {
      const r = await sides[k].run(BYTES);
      if (r.bytes !== BYTES) throw new Error(`${k} delivered ${r.bytes} of ${BYTES} bytes`);
      const MBps = r.bytes / r.ms / 1e3;
      runs[k].push({ MBps, cpuPerGB: (r.cpuMs * 1e9) / r.bytes, toC: c && MBps / (c.bytes / c.ms / 1e3) });
    }
  }
} finally {
  await Promise.all([sides.A.stop(), sides.B.stop()]);
}
for (const k of ['A', 'B']) {
  const m = (f) => median(runs[k].map(f)).toFixed(0);
  const toC = reference ? `, ${geomean(runs[k].map((r) => r.toC)).toFixed(3)} × the C loop (geometric mean of ${PAIRS} pairs)` : '';
  console.log(`${k}: ${m((r) => r.MBps)} MB/s, ${m((r) => r.cpuPerGB)} ms CPU per GB (medians of ${PAIRS})${toC}`);
}
const faster = runs.B.filter((r, i) => r.MBps > runs.A[i].MBps).length;
const cheaper = runs.B.filter((r, i) => r.cpuPerGB < runs.A[i].cpuPerGB).length;
console.log(`B faster than A in ${faster} of ${PAIRS} pairs, with less CPU in ${cheaper} of ${PAIRS}`);
const b = pairedRatio(runs.B.map((r) => r.MBps), runs.A.map((r) => r.MBps));
console.log(`B / A, pair by pair: ${b.ratio.toFixed(3)} (95 % interval ${b.low.toFixed(3)}–${b.high.toFixed(3)})`);
