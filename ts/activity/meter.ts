/**
 * Activity accounting (PROTOCOL §4.6): `activity_seq`, the cumulative counters and the active
 * stream counts. The numbers live in a SharedArrayBuffer so the heartbeat worker can read them
 * without the event loop's help. All counters are u64 and saturate. The clock is injected so
 * idleness can be tested without waiting.
 */

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Slot of each number in the shared array. */
export const SLOT = {
  activitySeq: 0,
  hostMessages: 1,
  guestMessages: 2,
  execOutputBytes: 3,
  fsBytes: 4,
  tcpBytes: 5,
  activeExec: 6,
  activeFsStreams: 7,
  activeTcpStreams: 8,
} as const;
export const SLOT_COUNT = 9;

export type ActiveKind = 'exec' | 'fs' | 'tcp';

export interface ActivitySnapshot {
  activity_seq: bigint;
  active_exec_sessions: number;
  active_fs_streams: number;
  active_tcp_streams: number;
  activity_counters: {
    host_messages: bigint;
    guest_messages: bigint;
    exec_output_bytes: bigint;
    fs_bytes: bigint;
    tcp_bytes: bigint;
  };
}

export class ActivityMeter {
  /** Shared with the heartbeat worker. */
  readonly buffer = new SharedArrayBuffer(SLOT_COUNT * 8);
  readonly #v = new BigUint64Array(this.buffer);
  readonly #now: () => number;
  #lastActivityAt: number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#lastActivityAt = now();
  }

  #add(slot: number, n: bigint): void {
    const cur = Atomics.load(this.#v, slot);
    Atomics.store(this.#v, slot, cur > U64_MAX - n ? U64_MAX : cur + n);
  }

  #bump(): void {
    this.#add(SLOT.activitySeq, 1n);
    this.#lastActivityAt = this.#now();
  }

  /** A host frame that counts (everything but clock sync, ping and touch before its payload). */
  recordHostMessage(): void {
    this.#bump();
    this.#add(SLOT.hostMessages, 1n);
  }

  /** A frame we emitted (everything but pong, touched and error). */
  recordGuestMessage(): void {
    this.#bump();
    this.#add(SLOT.guestMessages, 1n);
  }

  /** `count` frames we emitted at once (routed exec output, counted natively). */
  recordGuestMessages(count: number): void {
    if (count <= 0) return;
    this.#bump();
    this.#add(SLOT.activitySeq, BigInt(count - 1));
    this.#add(SLOT.guestMessages, BigInt(count));
  }

  execOutput(bytes: number): void {
    this.#add(SLOT.execOutputBytes, BigInt(bytes));
  }

  fsBytes(bytes: number): void {
    this.#add(SLOT.fsBytes, BigInt(bytes));
  }

  tcpBytes(bytes: number): void {
    this.#add(SLOT.tcpBytes, BigInt(bytes));
  }

  /** Adjusts an active count by +1 or -1. */
  adjustActive(kind: ActiveKind, delta: 1 | -1): void {
    const slot = kind === 'exec' ? SLOT.activeExec : kind === 'fs' ? SLOT.activeFsStreams : SLOT.activeTcpStreams;
    const cur = Atomics.load(this.#v, slot);
    Atomics.store(this.#v, slot, delta > 0 ? cur + 1n : cur > 0n ? cur - 1n : 0n);
  }

  get activitySeq(): bigint {
    return Atomics.load(this.#v, SLOT.activitySeq);
  }

  /**
   * Idle as the host decides it: nothing active and `activity_seq` unchanged for `idleMs`.
   * A live exec is activity for its whole life, traffic or not.
   */
  isIdle(idleMs: number): boolean {
    if (Atomics.load(this.#v, SLOT.activeExec) > 0n) return false;
    if (Atomics.load(this.#v, SLOT.activeTcpStreams) > 0n || Atomics.load(this.#v, SLOT.activeFsStreams) > 0n) return false;
    return this.#now() - this.#lastActivityAt >= idleMs;
  }

  snapshot(): ActivitySnapshot {
    const v = this.#v;
    const at = (slot: number): bigint => Atomics.load(v, slot);
    return {
      activity_seq: at(SLOT.activitySeq),
      active_exec_sessions: Number(at(SLOT.activeExec)),
      active_fs_streams: Number(at(SLOT.activeFsStreams)),
      active_tcp_streams: Number(at(SLOT.activeTcpStreams)),
      activity_counters: {
        host_messages: at(SLOT.hostMessages),
        guest_messages: at(SLOT.guestMessages),
        exec_output_bytes: at(SLOT.execOutputBytes),
        fs_bytes: at(SLOT.fsBytes),
        tcp_bytes: at(SLOT.tcpBytes),
      },
    };
  }
}
