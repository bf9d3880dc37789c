// ActivityMeter (PROTOCOL §4.6, LESSONS §10): what counts as activity, what does not, and the
// rule that a live exec is activity for its whole life, with or without traffic
// (superradcompany/microsandbox#934: a long exec with no host input was reclaimed as idle).
// The clock is injected, so ten idle periods take no time.
import t from 'tap';

import { ActivityMeter, SLOT, SLOT_COUNT } from '../../ts/activity/meter.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const IDLE_MS = 30_000;

/** A meter on a clock the test moves by hand. */
function meterAt(start = 1_000_000): { meter: ActivityMeter; advance(ms: number): void } {
  let now = start;
  const meter = new ActivityMeter(() => now);
  return { meter, advance: (ms) => void (now += ms) };
}

const ZERO = {
  activity_seq: 0n,
  active_exec_sessions: 0,
  active_fs_streams: 0,
  active_tcp_streams: 0,
  activity_counters: { host_messages: 0n, guest_messages: 0n, exec_output_bytes: 0n, fs_bytes: 0n, tcp_bytes: 0n },
};

t.test('a new meter reads all zeros and is not idle before one idle period', async (t) => {
  const { meter, advance } = meterAt();
  t.strictSame(meter.snapshot(), ZERO);
  t.equal(meter.activitySeq, 0n);
  t.equal(meter.isIdle(IDLE_MS), false);
  advance(IDLE_MS - 1);
  t.equal(meter.isIdle(IDLE_MS), false);
  advance(1);
  t.equal(meter.isIdle(IDLE_MS), true, 'idle after exactly one idle period');
});

t.test('host and guest messages each advance activity_seq by one and their own counter', async (t) => {
  const { meter } = meterAt();
  meter.recordHostMessage();
  meter.recordHostMessage();
  meter.recordGuestMessage();
  t.strictSame(meter.snapshot(), {
    ...ZERO,
    activity_seq: 3n,
    activity_counters: { ...ZERO.activity_counters, host_messages: 2n, guest_messages: 1n },
  });
  t.equal(meter.activitySeq, 3n);
});

t.test('byte counters add exactly and never move activity_seq', async (t) => {
  const { meter } = meterAt();
  meter.execOutput(12_345);
  meter.execOutput(1);
  meter.fsBytes(3_145_728);
  meter.tcpBytes(65_536);
  meter.tcpBytes(0);
  t.strictSame(meter.snapshot(), {
    ...ZERO,
    activity_counters: { ...ZERO.activity_counters, exec_output_bytes: 12_346n, fs_bytes: 3_145_728n, tcp_bytes: 65_536n },
  });
});

t.test('a live exec keeps the meter busy across ten idle periods with no traffic (microsandbox#934)', async (t) => {
  const { meter, advance } = meterAt();
  meter.recordHostMessage(); // core.exec.request
  meter.adjustActive('exec', 1);
  meter.recordGuestMessage(); // core.exec.started
  const seq = meter.activitySeq;
  for (let period = 1; period <= 10; period++) {
    advance(IDLE_MS);
    t.equal(meter.isIdle(IDLE_MS), false, `not idle after ${period} silent idle period(s)`);
  }
  t.equal(meter.activitySeq, seq, 'silence did not move activity_seq');
  t.equal(meter.snapshot().active_exec_sessions, 1);
  // The exit: the count drops and core.exec.exited is one guest message.
  meter.adjustActive('exec', -1);
  meter.recordGuestMessage();
  t.equal(meter.snapshot().active_exec_sessions, 0);
  t.equal(meter.isIdle(IDLE_MS), false, 'the exit itself is fresh activity');
  advance(IDLE_MS - 1);
  t.equal(meter.isIdle(IDLE_MS), false);
  advance(1);
  t.equal(meter.isIdle(IDLE_MS), true, 'idle one full period after the exit');
});

t.test('live fs and tcp streams also keep the meter busy; counts never go below zero', async (t) => {
  const { meter, advance } = meterAt();
  meter.adjustActive('fs', 1);
  meter.adjustActive('tcp', 1);
  meter.adjustActive('tcp', 1);
  advance(10 * IDLE_MS);
  t.equal(meter.isIdle(IDLE_MS), false);
  t.match(meter.snapshot(), { active_exec_sessions: 0, active_fs_streams: 1, active_tcp_streams: 2 });
  meter.adjustActive('fs', -1);
  t.equal(meter.isIdle(IDLE_MS), false, 'tcp streams are still open');
  meter.adjustActive('tcp', -1);
  meter.adjustActive('tcp', -1);
  t.equal(meter.isIdle(IDLE_MS), true);
  meter.adjustActive('exec', -1);
  meter.adjustActive('fs', -1);
  meter.adjustActive('tcp', -1);
  t.strictSame(meter.snapshot(), ZERO, 'an extra -1 saturates at 0 instead of wrapping to 2^64 - 1');
});

t.test('touch semantics: one recordHostMessage refreshes idleness and advances activity_seq once', async (t) => {
  const { meter, advance } = meterAt();
  advance(IDLE_MS);
  t.equal(meter.isIdle(IDLE_MS), true);
  // core.touch: the connection records exactly one host message after the payload is valid.
  meter.recordHostMessage();
  t.equal(meter.activitySeq, 1n);
  t.equal(meter.isIdle(IDLE_MS), false, 'the touch refreshed idleness');
  advance(IDLE_MS - 1);
  t.equal(meter.isIdle(IDLE_MS), false);
  advance(1);
  t.equal(meter.isIdle(IDLE_MS), true);
  t.equal(meter.snapshot().activity_counters.host_messages, 1n);
});

t.test('byte counters alone do not refresh idleness (only frames do)', async (t) => {
  const { meter, advance } = meterAt();
  advance(IDLE_MS);
  meter.execOutput(100);
  meter.fsBytes(100);
  meter.tcpBytes(100);
  t.equal(meter.isIdle(IDLE_MS), true);
});

t.test('the shared buffer holds every number at its SLOT, as the heartbeat worker reads it', async (t) => {
  const { meter } = meterAt();
  t.equal(meter.buffer.byteLength, SLOT_COUNT * 8);
  meter.recordHostMessage();
  meter.recordGuestMessage();
  meter.recordGuestMessage();
  meter.execOutput(7);
  meter.fsBytes(8);
  meter.tcpBytes(9);
  meter.adjustActive('exec', 1);
  meter.adjustActive('fs', 1);
  meter.adjustActive('fs', 1);
  meter.adjustActive('tcp', 1);
  meter.adjustActive('tcp', 1);
  meter.adjustActive('tcp', 1);
  const v = new BigUint64Array(meter.buffer);
  t.strictSame(
    Object.fromEntries(Object.entries(SLOT).map(([name, slot]) => [name, v[slot]])),
    {
      activitySeq: 3n,
      hostMessages: 1n,
      guestMessages: 2n,
      execOutputBytes: 7n,
      fsBytes: 8n,
      tcpBytes: 9n,
      activeExec: 1n,
      activeFsStreams: 2n,
      activeTcpStreams: 3n,
    },
  );
  t.equal(new Set(Object.values(SLOT)).size, SLOT_COUNT, 'every slot is distinct and all are used');
});

t.test('counters saturate at 2^64 - 1 instead of wrapping', async (t) => {
  const { meter } = meterAt();
  const v = new BigUint64Array(meter.buffer);
  v[SLOT.execOutputBytes] = U64_MAX - 5n;
  meter.execOutput(5);
  t.equal(meter.snapshot().activity_counters.exec_output_bytes, U64_MAX, 'reaching the max exactly');
  meter.execOutput(1);
  meter.execOutput(4096);
  t.equal(meter.snapshot().activity_counters.exec_output_bytes, U64_MAX, 'stays at the max');
  v[SLOT.activitySeq] = U64_MAX;
  v[SLOT.hostMessages] = U64_MAX - 1n;
  meter.recordHostMessage();
  meter.recordHostMessage();
  t.equal(meter.activitySeq, U64_MAX);
  t.equal(meter.snapshot().activity_counters.host_messages, U64_MAX);
});
