// One transfer of `head -c N /dev/zero` into JS, with spawnSession or child_process, timed and with
// the CPU it took. Used by the bench process (PTY case) and by pipe-worker.mjs (pipe case).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';

import { spawnSession } from '../dist/index.js';

export const HEAD_ARGS = (n) => ['-c', String(n), '/dev/zero'];

/**
 * CPU time of this process (all threads) and of its reaped children, for the CPU-per-GB rows.
 * Children's time comes from /proc/self/stat in clock ticks (10 ms), fine for runs of ~0.5 s.
 */
export function cpuNow() {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const u = process.cpuUsage();
  return { self: (u.user + u.system) / 1000, children: (Number(f[13]) + Number(f[14])) * 10, faults: process.resourceUsage().minorPageFault };
}

function withCpu(run, before) {
  const after = cpuNow();
  return { ...run, cpuMs: after.self - before.self, childCpuMs: after.children - before.children, minorFaults: after.faults - before.faults };
}

// Every run returns { bytes, ms, cpuMs, childCpuMs } where ms runs from just before the spawn
// call to the moment both the exit is known and the last byte has arrived.

export async function sessionRun(n, tty) {
  const cpu = cpuNow();
  const t0 = performance.now();
  const s = await spawnSession({ cmd: 'head', args: HEAD_ARGS(n), tty, stdin: tty ? undefined : 'ignore' });
  let bytes = 0;
  s.stdout.on('data', (c) => (bytes += c.length));
  s.stderr?.resume();
  await s.exited;
  return withCpu({ bytes, ms: performance.now() - t0 }, cpu);
}

export async function childProcessRun(n) {
  const cpu = cpuNow();
  const t0 = performance.now();
  const c = spawn('head', HEAD_ARGS(n), { stdio: ['ignore', 'pipe', 'ignore'] });
  let bytes = 0;
  c.stdout.on('data', (d) => (bytes += d.length));
  await once(c, 'close');
  return withCpu({ bytes, ms: performance.now() - t0 }, cpu);
}
