#!/usr/bin/env node
// What handing a PTY's output to another thread costs its pace, with no Node in the way: the C
// reference loop against bench/c/pty-handoff.c, whose consumer thread spends the given CPU per
// hand-out, in alternating rounds, each run as a ratio to the reference run beside it (tenth
// round in bench/README.md). Compare a consumer's cost with the JavaScript thread's CPU per
// hand-out of spawnSession (~50-90 us here).
//
//   node bench/handoff.mjs [WORK_US[/EVERY[/SLABS]] ...]   default: 0 25 50 75 100/4
//
// WORK_US: microseconds the consumer spins per wake-up (-1: no consumer thread at all); EVERY:
// hand out one slab in so many (1); SLABS: the ring of 256 KiB slabs the reader writes into (4).
// HANDOFF_ROUNDS (20), HANDOFF_BYTES (200 MB).

import { compilePrograms, cRun } from './c-build.mjs';
import { ratioInterval } from './stats.mjs';

const ROUNDS = Number(process.env.HANDOFF_ROUNDS ?? 20);
const BYTES = Number(process.env.HANDOFF_BYTES ?? 200e6);
const configs = (process.argv.length > 2 ? process.argv.slice(2) : ['0', '25', '50', '75', '100/4']).map((arg) => {
  const [work, every = '1', slabs = '4'] = arg.split('/');
  if (!/^-?\d+$/.test(work) || !/^\d+$/.test(every) || !/^\d+$/.test(slabs) || Number(every) < 1 || Number(slabs) < 1) {
    throw new Error(`not WORK_US[/EVERY[/SLABS]]: ${arg}`);
  }
  return { label: arg, extra: [work, every, slabs] };
});

const bins = compilePrograms(['pty-reader', 'pty-handoff']);
const rate = (r) => {
  if (r.bytes !== BYTES) throw new Error(`a run delivered ${r.bytes} of ${BYTES} bytes`);
  return r.bytes / r.ms;
};
const ratios = new Map(configs.map((c) => [c.label, []]));
for (let round = 0; round < ROUNDS; round++) {
  // The reference runs first in even rounds and last in odd ones; each ratio uses this round's.
  const order = round % 2 ? [...configs].reverse() : configs;
  const ref = round % 2 ? null : rate(cRun(bins['pty-reader'], BYTES));
  const rates = order.map((c) => [c.label, rate(cRun(bins['pty-handoff'], BYTES, c.extra))]);
  const c = ref ?? rate(cRun(bins['pty-reader'], BYTES));
  for (const [label, r] of rates) ratios.get(label).push(r / c);
  console.error(`round ${round + 1}/${ROUNDS}: C ${(c / 1e3).toFixed(1)} MB/s; ${rates.map(([l, r]) => `${l} ${(r / c).toFixed(3)}`).join(', ')}`);
}
console.log(`| consumer µs per hand-out / every / slabs | × the C loop (geometric mean of ${ROUNDS} rounds, 95 % interval) | min–max |`);
console.log('| --- | --- | --- |');
for (const [label, rs] of ratios) {
  const r = ratioInterval(rs);
  console.log(`| ${label} | ${r.ratio.toFixed(3)} (${r.low.toFixed(3)}–${r.high.toFixed(3)}) | ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)} |`);
}
