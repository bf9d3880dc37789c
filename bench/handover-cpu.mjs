#!/usr/bin/env node
// The JavaScript thread's CPU per hand-out of a bulk PTY, layer by layer (tenth round in
// bench/README.md): the addon's raw callback (counting bytes), + toNativeEvents (the Buffer view,
// the event object, the slabs' young ballast), + a bare Readable in flowing mode, and
// spawnSession's stdout. CPU is the main thread's own run time (/proc/thread-self/schedstat, in
// ns), so unlike throughput it barely moves with the host's noise. bench/handoff.mjs shows what
// a consumer thread's CPU per hand-out costs the PTY's pace.
//
//   node --expose-gc bench/handover-cpu.mjs        HANDOVER_ROUNDS (7), HANDOVER_BYTES (200 MB)

import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';

import { spawnSession } from '../dist/index.js';
import { envBlock, native, toNativeEvents } from '../dist/native/index.js';
import { HEAD_ARGS } from './transfer.mjs';
import { median } from './stats.mjs';

const ROUNDS = Number(process.env.HANDOVER_ROUNDS ?? 7);
const BYTES = Number(process.env.HANDOVER_BYTES ?? 200e6);
const cpuNs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);

/** One transfer through the addon itself; `wrap` turns a per-chunk counter into its callback. */
function addonRun(wrap) {
  return new Promise((resolve) => {
    const seen = { bytes: 0, handOuts: 0 };
    const options = {
      file: 'head', args: HEAD_ARGS(BYTES), env: envBlock([`PATH=${process.env.PATH}`]), cwd: null,
      mode: 'pty', rows: 24, cols: 80, user: null, stdin: 'pipe', rlimits: [], restricted: false,
      homeDefault: 'user', drainMs: 1000, afterDrain: 'wait', route: null,
    };
    const count = (length) => {
      seen.bytes += length;
      seen.handOuts++;
    };
    native().spawn(options, wrap(count, () => resolve(seen)));
  });
}

const LAYERS = {
  'addon callback': () =>
    addonRun((count, done) => (event, chunk, _offset, length) => {
      if (typeof event !== 'number') return event.type === 'exit' && done();
      if (chunk !== null) count(length ?? chunk.length);
    }),
  '+ toNativeEvents': () =>
    addonRun((count, done) => toNativeEvents((e) => (e.type === 'exit' ? done() : e.type === 'data' && count(e.chunk.length)))),
  '+ a Readable': () =>
    addonRun((count, done) => {
      const stream = new Readable({ read() {} });
      stream.on('data', (c) => count(c.length));
      return toNativeEvents((e) => (e.type === 'exit' ? setImmediate(done) : e.type === 'data' && stream.push(e.chunk)));
    }),
  'spawnSession stdout': async () => {
    const seen = { bytes: 0, handOuts: 0 };
    const s = await spawnSession({ cmd: 'head', args: HEAD_ARGS(BYTES), tty: true });
    s.stdout.on('data', (c) => {
      seen.bytes += c.length;
      seen.handOuts++;
    });
    await s.exited;
    return seen;
  },
};

const perHandOut = Object.fromEntries(Object.keys(LAYERS).map((k) => [k, []]));
const handOuts = Object.fromEntries(Object.keys(LAYERS).map((k) => [k, []]));
// Round 0 warms every layer up (code compiled, the addon's reader thread started) and is not kept.
for (let round = 0; round <= ROUNDS; round++) {
  for (const [name, run] of Object.entries(LAYERS)) {
    globalThis.gc?.();
    const before = cpuNs();
    const seen = await run();
    const ns = cpuNs() - before;
    if (seen.bytes !== BYTES) throw new Error(`${name}: ${seen.bytes} of ${BYTES} bytes`);
    if (round === 0) continue;
    perHandOut[name].push(ns / 1e3 / seen.handOuts);
    handOuts[name].push(seen.handOuts);
  }
}
console.log(`| layer | JS thread's CPU per hand-out, µs (median of ${ROUNDS}, min–max) | hand-outs per run |`);
console.log('| --- | --- | --- |');
for (const name of Object.keys(LAYERS)) {
  const us = perHandOut[name];
  console.log(`| ${name} | ${median(us).toFixed(1)} (${Math.min(...us).toFixed(1)}–${Math.max(...us).toFixed(1)}) | ${median(handOuts[name])} |`);
}
