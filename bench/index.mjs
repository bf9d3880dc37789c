#!/usr/bin/env node
// `npm run bench`: spawnSession() against what a user would otherwise pick (node-pty,
// @lydell/node-pty, child_process) and against the kernel's limit (minimal C programs compiled
// here with the system `cc`). Cases run interleaved (A B A B …) for BENCH_ROUNDS rounds; the table
// shows medians with min–max and ratios of medians from this same run. Everything is also written
// to bench/results/latest.json. Benchmarks are never timed tests: this prints numbers and marks
// targets met/missed, it does not fail.
//
// Knobs: BENCH_ROUNDS (default 5), BENCH_SCALE (multiplies byte counts and seconds, default 1),
// BENCH_SECONDS (seconds per spawn-rate sample, default 1.5 × scale), BENCH_LOSS_RUNS (default 20),
// BENCH_HEAPS (default "0,1,4" GiB for the spawn-vs-heap cases; "" skips them),
// BENCH_SESSIONS (idle PTY sessions of the scale case, default 1000), BENCH_STALL (seconds the
// slow consumer stops reading, default 10), BENCH_RTT_EXECS (round trips per implementation and
// round, default 200),
// BENCH_CASES (comma list of pty,loss,pipe,rate,rtt,stream,scale,slow,heap; default all). The
// agent cases (rtt, stream, scale, slow) live in bench/agent.mjs.
// Peers are installed into bench/.peers (never devDependencies):
//   npm install --prefix bench/.peers --ignore-scripts=false node-pty @lydell/node-pty
// The script does that itself when bench/.peers/node_modules lacks them.

import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { runAgentCases } from './agent.mjs';
import { compilePrograms, compilePtyInNode, cRun } from './c-build.mjs';
import { installPeers, loadPeer, peersDir, peerVersion } from './peers.mjs';
import { cases as spawnHeapCases, rate, runSpawnHeap } from './spawn-heap.mjs';
import { interleave, perRoundRatios, stats } from './stats.mjs';
import { nodePtyRun, sessionRun } from './transfer.mjs';
import { startWorker } from './worker.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = join(here, 'results');

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5 * Math.min(1, SCALE));
const LOSS_RUNS = Number(process.env.BENCH_LOSS_RUNS ?? 20);
const HEAPS = (process.env.BENCH_HEAPS ?? '0,1,4').split(',').filter((x) => x !== '').map(Number);
const CASES = new Set((process.env.BENCH_CASES ?? 'pty,loss,pipe,rate,rtt,stream,scale,slow,heap').split(','));
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 1000);
const STALL = Number(process.env.BENCH_STALL ?? 10);
const RTT_EXECS = Number(process.env.BENCH_RTT_EXECS ?? 200);
const PTY_BYTES = Math.round(200e6 * SCALE);
const PIPE_BYTES = Math.round(1e9 * SCALE);
const LOSS_BYTES = 1 << 20;
const PTY_LIMIT = 'C loop on a Node thread (the limit for Node)'; // per loss run: written, then the child exits at once

const log = (...a) => console.error('[bench]', ...a);

// ---------- set-up: peers and C programs ----------

function compileC() {
  const out = compilePrograms();
  const addon = compilePtyInNode();
  if (addon) out['pty-in-node'] = addon;
  // Without Node's headers the PTY case runs without its in-Node limit row.
  else log(`no node_api.h beside ${process.execPath}: the PTY case runs without its in-Node limit row`);
  return out;
}

// ---------- one measurement of each implementation ----------
// Every reader returns { bytes, ms } where ms runs from just before the spawn call to the moment
// both the exit is known and the last byte has arrived (spawnSession's and child_process's are in
// transfer.mjs; the C references' cRun is in c-build.mjs).

/**
 * Throughput runs of Node implementations, each in a worker process of its own (bench/worker.mjs
 * says why): `kinds` maps the table's label to the worker's kind.
 */
function inWorkers(kinds, bytes) {
  const workers = Object.entries(kinds).map(([label, kind]) => [label, startWorker(kind)]);
  return {
    impls: Object.fromEntries(workers.map(([label, w]) => [label, () => w.run(bytes)])),
    stop: () => Promise.all(workers.map(([, w]) => w.stop())),
  };
}

// ---------- main ----------

const result = {
  date: new Date().toISOString(),
  machine: {
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    node: process.version,
    hostname: os.hostname(),
  },
  settings: { ROUNDS, SCALE, SECONDS, LOSS_RUNS, HEAPS, PTY_BYTES, PIPE_BYTES, LOSS_BYTES, SESSIONS, STALL, RTT_EXECS, cases: [...CASES] },
  cases: {},
  targets: [],
};
const rows = []; // { group, impl, value, unit, range, ratio }
const target = (name, value, goal, met) => result.targets.push({ name, value, goal, met });

installPeers();
const nodePty = loadPeer('node-pty');
const lydellPty = loadPeer('@lydell/node-pty');
result.peers = {
  'node-pty': nodePty ? peerVersion('node-pty') : null,
  '@lydell/node-pty': lydellPty ? peerVersion('@lydell/node-pty') : null,
};
const cbin = compileC();
const t0 = performance.now();

function addThroughput(group, samples, refName) {
  const g = {};
  for (const [impl, runs] of Object.entries(samples)) {
    const mbps = runs.map((r) => r.bytes / 1e6 / (r.ms / 1000));
    g[impl] = { MBps: stats(mbps), bytes: runs.map((r) => r.bytes), ms: runs.map((r) => r.ms) };
    if (runs.every((r) => r.cpuMs !== undefined)) {
      const perGB = (ms, r) => (ms * 1e9) / r.bytes;
      g[impl].cpuMsPerGB = stats(runs.map((r) => perGB(r.cpuMs, r)));
      g[impl].childCpuMsPerGB = stats(runs.map((r) => perGB(r.childCpuMs, r)));
      g[impl].coresBusy = stats(runs.map((r) => (r.cpuMs + r.childCpuMs) / r.ms));
      if (runs.every((r) => r.minorFaults !== undefined)) g[impl].minorFaultsPerGB = stats(runs.map((r) => perGB(r.minorFaults, r)));
    }
  }
  const ref = g[refName].MBps;
  for (const [impl, v] of Object.entries(g)) {
    v.ratioToC = v.MBps.median / ref.median;
    v.perRoundRatioToC = perRoundRatios(v.MBps.samples, ref.samples);
    const spread = v === g[refName] ? '' : ` (rounds ${v.perRoundRatioToC.min.toFixed(2)}–${v.perRoundRatioToC.max.toFixed(2)})`;
    rows.push({ group, impl, value: v.MBps.median.toFixed(0), unit: 'MB/s', range: `${v.MBps.min.toFixed(0)}–${v.MBps.max.toFixed(0)}`, ratio: `${v.ratioToC.toFixed(2)}× C${spread}` });
  }
  // Where CPU was measured: the reader's process and the writer (`head`) per GB, and how many
  // of the machine's cores the pair kept busy (median over runs).
  for (const [impl, v] of Object.entries(g)) {
    if (!v.cpuMsPerGB || !g[refName].cpuMsPerGB) continue;
    rows.push({
      group: `${group}: CPU`,
      impl,
      value: `${v.cpuMsPerGB.median.toFixed(0)} + ${v.childCpuMsPerGB.median.toFixed(0)}`,
      unit: 'ms CPU per GB (reader + head)',
      range: `${v.coresBusy.median.toFixed(2)} of ${os.availableParallelism()} cores busy`,
      ratio: '',
    });
  }
  result.cases[group] = g;
  return g;
}

if (CASES.has('pty')) {
  log(`PTY throughput: ${PTY_BYTES} bytes × ${ROUNDS} rounds`);
  const kinds = { 'spawnSession tty': 'spawnSession tty' };
  if (nodePty) kinds['node-pty'] = 'node-pty';
  if (lydellPty) kinds['@lydell/node-pty'] = '@lydell/node-pty';
  // The C loop run on a Node thread: what any reader in a Node process can reach (the limit).
  if (cbin['pty-in-node']) kinds[PTY_LIMIT] = 'C loop in Node';
  const workers = inWorkers(kinds, PTY_BYTES);
  const impls = { 'C reference (openpty)': () => cRun(cbin['pty-reader'], PTY_BYTES), ...workers.impls };
  const samples = await interleave(impls, ROUNDS, (fn) => fn(), { warmup: 1 });
  await workers.stop();
  const g = addThroughput(`PTY throughput (${PTY_BYTES / 1e6} MB)`, samples, 'C reference (openpty)');
  const s = g['spawnSession tty'];
  const limit = g[PTY_LIMIT];
  const limitNote = limit
    ? ` (the C loop on a Node thread is ${limit.ratioToC.toFixed(2)} ×${limit.ratioToC < 0.9 ? ': out of reach for any Node reader in this run' : ''}; spawnSession ${(s.MBps.median / limit.MBps.median).toFixed(2)} × it)`
    : '';
  target(`PTY throughput spawnSession ≥ 0.9 × C${limitNote}`, +s.ratioToC.toFixed(3), 0.9, s.ratioToC >= 0.9);
  const short = Object.entries(g).filter(([, v]) => v.bytes.some((b) => b !== PTY_BYTES)).map(([k]) => k);
  if (short.length) log(`short reads during PTY throughput: ${short.join(', ')}`);
}

if (CASES.has('loss')) {
  log(`PTY bytes lost at exit: ${LOSS_RUNS} runs × ${LOSS_BYTES} bytes`);
  const impls = { 'C reference (openpty)': () => cRun(cbin['pty-reader'], LOSS_BYTES), 'spawnSession tty': () => sessionRun(LOSS_BYTES, true) };
  // node-pty: bytes short at onExit (the usual "done" signal) are recorded separately from bytes
  // still missing 500 ms after it.
  if (nodePty) impls['node-pty'] = () => nodePtyRun(nodePty, LOSS_BYTES, 500);
  if (lydellPty) impls['@lydell/node-pty'] = () => nodePtyRun(lydellPty, LOSS_BYTES, 500);
  const samples = await interleave(impls, LOSS_RUNS, (fn) => fn());
  const group = `PTY bytes lost at exit (${LOSS_RUNS} runs × ${LOSS_BYTES} B)`;
  const g = {};
  for (const [impl, runs] of Object.entries(samples)) {
    const lost = runs.map((r) => LOSS_BYTES - r.bytes);
    const lostAtExit = runs.map((r) => LOSS_BYTES - (r.bytesAtExit ?? r.bytes));
    g[impl] = {
      lostEventually: lost,
      lostAtExitEvent: lostAtExit,
      runsLosing: lost.filter((x) => x > 0).length,
      runsLosingAtExitEvent: lostAtExit.filter((x) => x > 0).length,
      totalLost: lost.reduce((a, b) => a + b, 0),
    };
    const extra = impl.includes('node-pty') ? ` (${g[impl].runsLosingAtExitEvent} short at onExit)` : '';
    rows.push({ group, impl, value: `${g[impl].runsLosing}/${LOSS_RUNS} runs`, unit: 'lost bytes', range: `max ${Math.max(...lost)} B${extra}`, ratio: '' });
  }
  result.cases[group] = g;
  const s = g['spawnSession tty'];
  target('PTY: 0 bytes lost at exit in every run (spawnSession)', s.totalLost, 0, s.totalLost === 0);
}

if (CASES.has('pipe')) {
  log(`pipe throughput: ${PIPE_BYTES} bytes × ${ROUNDS} rounds`);
  const workers = inWorkers({ 'spawnSession pipes': 'spawnSession pipes', 'child_process.spawn': 'child_process' }, PIPE_BYTES);
  const impls = {
    'C reference (pipe)': () => cRun(cbin['pipe-reader'], PIPE_BYTES),
    ...workers.impls,
    // The C loop again, keeping every chunk in its own buffer (freed in 64 MiB batches): what
    // handing chunks to a garbage-collected owner costs by itself (bench/README.md).
    'C, a buffer per read kept': () => cRun(cbin['pipe-reader'], PIPE_BYTES, ['keep']),
    // The cheapest reader there is (a 1 MiB pipe drained into one buffer): `head` sets the pace,
    // so no reader of this pipe can beat it, and it bounds what any ratio between readers can be.
    'C, 1 MiB pipe (the limit)': () => cRun(cbin['pipe-reader'], PIPE_BYTES, ['grown']),
  };
  const samples = await interleave(impls, ROUNDS, (fn) => fn(), { warmup: 1 });
  await workers.stop();
  const g = addThroughput(`Pipe throughput (${PIPE_BYTES / 1e6} MB)`, samples, 'C reference (pipe)');
  const s = g['spawnSession pipes'];
  const cp = g['child_process.spawn'];
  const vsCp = s.MBps.median / cp.MBps.median;
  s.ratioToChildProcess = vsCp;
  // How far any reader could beat child_process if it only matched the C loop: DESIGN §2 replaced
  // the issue's 1.5 × child_process with 0.95 × C because this is ~1.2 on these machines. The
  // limit row says how far any reader at all could beat it.
  for (const ref of ['C reference (pipe)', 'C, 1 MiB pipe (the limit)']) g[ref].ratioToChildProcess = g[ref].MBps.median / cp.MBps.median;
  const limitVsCp = g['C, 1 MiB pipe (the limit)'].ratioToChildProcess;
  target('Pipe throughput spawnSession ≥ 0.95 × C (DESIGN §2)', +s.ratioToC.toFixed(3), 0.95, s.ratioToC >= 0.95);
  target('Pipe throughput spawnSession ≥ 0.8 × C (issue)', +s.ratioToC.toFixed(3), 0.8, s.ratioToC >= 0.8);
  target(
    `Pipe throughput spawnSession ≥ 1.5 × child_process (issue; the C loop is ${g['C reference (pipe)'].ratioToChildProcess.toFixed(2)} ×, the limit ${limitVsCp.toFixed(2)} ×${limitVsCp < 1.5 ? ': out of reach for any reader here' : ''})`,
    +vsCp.toFixed(3),
    1.5,
    vsCp >= 1.5,
  );
}

// Spawn-to-exit of /bin/true: the same cases as bench/spawn-heap.mjs, plus the PTY peers.
const spawnCases = { ...spawnHeapCases };
const ptySpawn = (pty) => () =>
  new Promise((resolve) => {
    const p = pty.spawn('/bin/true', [], { cols: 80, rows: 24 });
    p.onData(() => {});
    p.onExit(() => resolve());
  });
if (nodePty) spawnCases['node-pty'] = ptySpawn(nodePty);
if (lydellPty) spawnCases['@lydell/node-pty'] = ptySpawn(lydellPty);

if (CASES.has('rate')) {
  for (const inflight of [1, 8]) {
    log(`spawn rate, ${inflight} in flight: ${SECONDS}s × ${ROUNDS} rounds per case`);
    const samples = await interleave(spawnCases, ROUNDS, async (one) => {
      const per = await Promise.all(Array.from({ length: inflight }, () => rate(one, SECONDS)));
      return per.reduce((a, b) => a + b, 0);
    });
    const group = `Spawn rate /bin/true, ${inflight === 1 ? 'sequential' : `${inflight} in flight`}`;
    const g = {};
    for (const [impl, xs] of Object.entries(samples)) g[impl] = { spawnsPerSec: stats(xs) };
    const cp = g['child_process.spawn'].spawnsPerSec.median;
    for (const [impl, v] of Object.entries(g)) {
      v.ratioToChildProcess = v.spawnsPerSec.median / cp;
      const s = v.spawnsPerSec;
      rows.push({ group, impl, value: s.median.toFixed(0), unit: 'spawns/s', range: `${s.min.toFixed(0)}–${s.max.toFixed(0)}`, ratio: `${v.ratioToChildProcess.toFixed(2)}× child_process` });
    }
    result.cases[group] = g;
    if (inflight === 1) {
      const r = g['spawnSession pipes'].ratioToChildProcess;
      target('Spawn rate spawnSession pipes ≥ 1.5 × child_process (small heap)', +r.toFixed(3), 1.5, r >= 1.5);
    }
  }
}

// The agent cases run before the heap case, which keeps up to 4 GiB alive in this process.
await runAgentCases({
  select: CASES,
  rounds: ROUNDS,
  pipeBytes: PIPE_BYTES,
  sessions: SESSIONS,
  stallSeconds: STALL,
  rttPerRound: RTT_EXECS,
  relayBin: cbin.relay,
  log,
  rows,
  target,
  cases: result.cases,
});

if (CASES.has('heap') && HEAPS.length) {
  log(`spawn rate vs touched heap ${HEAPS.join(',')} GiB: ${SECONDS}s × ${ROUNDS} rounds per case`);
  const extra = {};
  if (nodePty) extra['node-pty'] = spawnCases['node-pty'];
  const heapRows = await runSpawnHeap({ heapsGiB: HEAPS, rounds: ROUNDS, extraCases: extra, seconds: SECONDS });
  const group = 'Spawn rate vs touched heap (sequential)';
  const g = {};
  for (const r of heapRows) {
    g[`${r.heapGiB} GiB / ${r.case}`] = { heapGiB: r.heapGiB, impl: r.case, spawnsPerSec: stats(r.samples) };
    const base = heapRows.find((x) => x.heapGiB === HEAPS[0] && x.case === r.case).median;
    rows.push({ group, impl: `${r.case} @ ${r.heapGiB} GiB`, value: r.median.toFixed(0), unit: 'spawns/s', range: `${r.min.toFixed(0)}–${r.max.toFixed(0)}`, ratio: `${(r.median / base).toFixed(2)}× own @ ${HEAPS[0]} GiB` });
    g[`${r.heapGiB} GiB / ${r.case}`].ratioToOwnFirstHeap = r.median / base;
  }
  result.cases[group] = g;
  const top = HEAPS[HEAPS.length - 1];
  const k = g[`${top} GiB / spawnSession pipes`];
  if (k && top >= 4) target(`Spawn rate at ${top} GiB ≥ 0.8 × own small-heap rate (spawnSession pipes)`, +k.ratioToOwnFirstHeap.toFixed(3), 0.8, k.ratioToOwnFirstHeap >= 0.8);
}

result.totalSeconds = +((performance.now() - t0) / 1000).toFixed(1);

// ---------- output ----------
const lines = [];
lines.push(`Benchmarks ${result.date} · ${result.machine.cpu} × ${result.machine.cores}, ${result.machine.memGiB} GiB, Linux ${result.machine.kernel}, Node ${result.machine.node}`);
lines.push(`rounds ${ROUNDS}, scale ${SCALE}, ${SECONDS}s per spawn-rate sample; node-pty ${result.peers['node-pty'] ?? '—'}, @lydell/node-pty ${result.peers['@lydell/node-pty'] ?? '—'}; ${result.totalSeconds}s`);
lines.push('');
lines.push('| case | implementation | median | unit | min–max | ratio |');
lines.push('|---|---|---:|---|---|---|');
for (const r of rows) lines.push(`| ${r.group} | ${r.impl} | ${r.value} | ${r.unit} | ${r.range} | ${r.ratio} |`);
lines.push('');
lines.push('| target | measured | met |');
lines.push('|---|---|---|');
for (const t of result.targets) if ('met' in t) lines.push(`| ${t.name} | ${t.value} | ${t.met ? 'met' : '**missed**'} |`);
console.log(lines.join('\n'));

mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
log(`wrote ${join(resultsDir, 'latest.json')}`);
process.exit(0);
