/**
 * The `core.ready` frame, built once at startup (id 0, flags 0, v 7) and replayed byte for byte
 * to every client after its handshake prefix (PROTOCOL §6.6).
 */

import { readFileSync } from 'node:fs';

import { encodeMessage } from '../protocol/index.js';

/** CLOCK_BOOTTIME-like nanoseconds: /proc/uptime (10 ms resolution) at `startedAt`. */
function bootTimeNs(): bigint {
  try {
    const seconds = readFileSync('/proc/uptime', 'utf8').split(' ')[0]!;
    const [whole, frac = '0'] = seconds.split('.');
    return BigInt(whole!) * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9));
  } catch {
    return 0n;
  }
}

export interface ReadyTimes {
  bootTimeNs: bigint;
  hrtimeAtBoot: bigint;
}

/** Call as early as possible in the process: the reference point of `boot_time_ns`. */
export function markBoot(): ReadyTimes {
  return { bootTimeNs: bootTimeNs(), hrtimeAtBoot: process.hrtime.bigint() };
}

export function buildReadyFrame(times: ReadyTimes, agentVersion: string): Buffer {
  const readyTimeNs = times.bootTimeNs + (process.hrtime.bigint() - times.hrtimeAtBoot);
  return encodeMessage(0, {
    type: 'ready',
    payload: { bootTimeNs: times.bootTimeNs, initTimeNs: 0n, readyTimeNs, agentVersion },
  });
}
