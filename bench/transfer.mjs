// One transfer of `head -c N /dev/zero` into JS with spawnSession, child_process or node-pty,
// timed, with the CPU and minor faults it took where it can tell. Used by worker.mjs (the
// throughput cases) and by the bench process (the loss case).

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

// node-pty has no "all output delivered" signal: onExit may come before the last data (that is
// the lost-tail bug). We count what arrived by onExit, then keep listening for up to graceMs for
// the rest; the time is the later of exit and the last byte.
export function nodePtyRun(pty, n, graceMs = 250) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const p = pty.spawn('head', HEAD_ARGS(n), { encoding: null, cols: 80, rows: 24 });
    let bytes = 0;
    let last = t0;
    p.onData((d) => {
      bytes += d.length;
      last = performance.now();
      if (exitAt && bytes >= n) finish();
    });
    let exitAt = 0;
    let bytesAtExit = 0;
    let done = false;
    let timer;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ bytes, bytesAtExit, ms: Math.max(exitAt, last) - t0 });
    };
    p.onExit(() => {
      exitAt = performance.now();
      bytesAtExit = bytes;
      if (bytes >= n) finish();
      else timer = setTimeout(finish, graceMs);
    });
  });
}
