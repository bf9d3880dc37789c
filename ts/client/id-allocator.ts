/**
 * Correlation ids for one connection (PROTOCOL §6.1): handed out from `max(1, idStart)` upward,
 * wrapping before `idEndExclusive`, skipping ids whose session is still open. Id 0 is never
 * handed out: it is reserved for control frames (`core.shutdown`).
 */

import { SessionError } from '../errors.js';

export class IdAllocator {
  /** The first id handed out (never 0). */
  readonly first: number;
  /** One past the last id handed out. */
  readonly endExclusive: number;
  #next: number;
  readonly #inUse = new Set<number>();

  /** The range must hold at least one non-zero id (the handshake checked that). */
  constructor(idStart: number, idEndExclusive: number) {
    this.first = Math.max(1, idStart);
    this.endExclusive = idEndExclusive;
    this.#next = this.first;
  }

  /**
   * Takes the next free id.
   * @throws SessionError MSB_ERR_SESSION_EXISTS when every id of the range belongs to an open session.
   */
  take(): number {
    if (this.#inUse.size >= this.endExclusive - this.first) {
      throw new SessionError(
        'MSB_ERR_SESSION_EXISTS',
        `every correlation id in [${this.first}, ${this.endExclusive}) belongs to an open session`,
      );
    }
    // Terminates: at least one id of the range is free.
    for (;;) {
      const id = this.#next;
      this.#next = id + 1 >= this.endExclusive ? this.first : id + 1;
      if (!this.#inUse.has(id)) {
        this.#inUse.add(id);
        return id;
      }
    }
  }

  /** Frees an id after its session's terminal frame (or its failure). */
  release(id: number): void {
    this.#inUse.delete(id);
  }

  /** Whether `id` belongs to an open session. */
  isInUse(id: number): boolean {
    return this.#inUse.has(id);
  }

  /** The number of open sessions. */
  get size(): number {
    return this.#inUse.size;
  }
}
