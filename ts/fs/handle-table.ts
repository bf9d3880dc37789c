/**
 * The agent-wide table of filesystem handles (PROTOCOL §4.9.1). Numbers start at 1 and count up,
 * skipping numbers in use, so a handle is never 0 and never reused while open. The table only
 * numbers and finds handles; the connection that opened one owns it (ownership checks, limits and
 * cleanup are the fs service's).
 */

import type { U64 } from '../protocol/index.js';
import type { FsHandle } from './fs-handle.js';

export class HandleTable {
  readonly #handles = new Map<number, FsHandle>();
  #next = 1;

  /** A free number for a new handle. */
  allocate(): number {
    while (this.#handles.has(this.#next)) this.#next = this.#next >= Number.MAX_SAFE_INTEGER ? 1 : this.#next + 1;
    const n = this.#next;
    this.#next = n >= Number.MAX_SAFE_INTEGER ? 1 : n + 1;
    return n;
  }

  add(h: FsHandle): void {
    this.#handles.set(h.number, h);
  }

  /** The handle, or undefined (a number beyond 2^53 arrives as a bigint and is never ours). */
  get(n: U64): FsHandle | undefined {
    return typeof n === 'number' ? this.#handles.get(n) : undefined;
  }

  remove(h: FsHandle): void {
    if (this.#handles.get(h.number) === h) this.#handles.delete(h.number);
  }

  get size(): number {
    return this.#handles.size;
  }
}
