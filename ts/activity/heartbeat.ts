/**
 * The heartbeat file (PROTOCOL §4.7), written by a worker thread so that a busy event loop
 * cannot starve it: every second it bumps `heartbeat_seq`, reads the meter's shared numbers,
 * moves `last_activity` when `activity_seq` changed, writes `<file>.tmp` and renames it over
 * the file (an atomic replace). Write errors are ignored, as upstream does.
 */

import { Worker } from 'node:worker_threads';
import { dirname, join, basename } from 'node:path';

import type { ActivityMeter } from './meter.js';
import { SLOT } from './meter.js';
import { formatRfc3339 } from './rfc3339.js';

/** Where the heartbeat goes by default: only when /.msb exists (the VM's host-shared mount). */
export const DEFAULT_HEARTBEAT_DIR = '/.msb';

// The worker's source, self-contained (the worker must not depend on how this file was loaded:
// compiled JS, or TypeScript through a loader in tests).
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const formatRfc3339 = ${formatRfc3339.toString()};
const { buffer, path, tmp, intervalMs, slot } = workerData;
const v = new BigUint64Array(buffer);
const stamp = () => { const t = performance.timeOrigin + performance.now(); const ms = Math.floor(t); return formatRfc3339(ms, Math.round((t - ms) * 1e6) % 1000000); };
let seq = 0;
let lastSeq = Atomics.load(v, slot.activitySeq);
let lastActivity = stamp();
let stopped = false;
parentPort.on('message', (m) => { if (m === 'stop') { stopped = true; clearInterval(timer); parentPort.close(); } });
function tick() {
  if (stopped) return;
  seq += 1;
  const now = stamp();
  const activity = Atomics.load(v, slot.activitySeq);
  if (activity !== lastSeq) { lastSeq = activity; lastActivity = now; }
  const at = (s) => Atomics.load(v, s).toString();
  const json = '{"heartbeat_seq":' + seq + ',"activity_seq":' + activity.toString() +
    ',"timestamp":"' + now + '","last_activity":"' + lastActivity + '"' +
    ',"active_exec_sessions":' + at(slot.activeExec) + ',"active_fs_streams":' + at(slot.activeFsStreams) +
    ',"active_tcp_streams":' + at(slot.activeTcpStreams) +
    ',"activity_counters":{"host_messages":' + at(slot.hostMessages) + ',"guest_messages":' + at(slot.guestMessages) +
    ',"exec_output_bytes":' + at(slot.execOutputBytes) + ',"fs_bytes":' + at(slot.fsBytes) + ',"tcp_bytes":' + at(slot.tcpBytes) + '}}';
  try { fs.writeFileSync(tmp, json); fs.renameSync(tmp, path); } catch {}
}
const timer = setInterval(tick, intervalMs);
`;

export interface Heartbeat {
  /** Stops the worker; resolves when it has exited. */
  stop(): Promise<void>;
}

/** Starts writing `path` every `intervalMs` (1000 by default) from a worker thread. */
export function startHeartbeat(meter: ActivityMeter, path: string, intervalMs = 1000): Heartbeat {
  const tmp = join(dirname(path), `${basename(path, '.json')}.tmp`);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    // The source is plain CommonJS: loaders or --input-type=module of the host must not apply.
    execArgv: [],
    workerData: { buffer: meter.buffer, path, tmp, intervalMs, slot: SLOT },
  });
  worker.unref();
  let stopped: Promise<void> | null = null;
  return {
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        // Hold the loop until the worker has gone, or the process could exit under our await.
        worker.ref();
        worker.once('exit', () => resolve());
        worker.postMessage('stop');
      });
      return stopped;
    },
  };
}
