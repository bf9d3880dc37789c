/**
 * Correlation-id ranges of the relay handshake (PROTOCOL §6.2): 128 client slots, each owning
 * `[s·STEP + 1, (s+1)·STEP)`. Id 0 is for control frames. The lowest free slot is taken first.
 */

export const MAX_CLIENTS = 128;
export const ID_STEP = Math.floor((2 ** 32 - 1) / MAX_CLIENTS); // 33_554_431

export interface IdRange {
  slot: number;
  idStart: number;
  idEndExclusive: number;
}

export function rangeOfSlot(slot: number): IdRange {
  return { slot, idStart: slot * ID_STEP + 1, idEndExclusive: (slot + 1) * ID_STEP };
}

/** The slot that owns `id` (`(id − 1) / STEP`), or null for id 0 and ids in no range. */
export function slotOfId(id: number): number | null {
  if (id === 0 || id % ID_STEP === 0) return null;
  const slot = Math.floor((id - 1) / ID_STEP);
  return slot < MAX_CLIENTS ? slot : null;
}

export function inRange(r: IdRange, id: number): boolean {
  return id >= r.idStart && id < r.idEndExclusive;
}

/** Hands out the lowest free slot; `null` when all 128 are taken. */
export class SlotAllocator {
  readonly #used = new Set<number>();

  take(): IdRange | null {
    for (let s = 0; s < MAX_CLIENTS; s++) {
      if (!this.#used.has(s)) {
        this.#used.add(s);
        return rangeOfSlot(s);
      }
    }
    return null;
  }

  release(slot: number): void {
    this.#used.delete(slot);
  }

  get inUse(): number {
    return this.#used.size;
  }
}

/** The 8-byte handshake prefix `[id_start BE][id_end_exclusive BE]`. */
export function encodeHandshakePrefix(r: IdRange): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(r.idStart, 0);
  b.writeUInt32BE(r.idEndExclusive, 4);
  return b;
}
