/**
 * One open file or directory of the filesystem service. Operations on a handle run one after
 * another through its own queue (never a global lock): a streaming read takes the queue for one
 * chunk at a time, so a `CloseHandle` or `FStat` in the middle of a 1 GiB read waits for one
 * chunk, not for the whole read, and never holds up anything else.
 */

import type { Dir } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

import { FsFailure } from './fs-error.js';

/** Who opened a handle: the connection, the relay client slot of the opening id, and that id. */
export interface HandleOwner {
  readonly conn: object;
  readonly slot: number;
  readonly id: number;
}

export type HandleTarget = { kind: 'file'; file: FileHandle } | { kind: 'dir'; dir: Dir };

export interface Access {
  read: boolean;
  write: boolean;
  append: boolean;
}

export class FsHandle {
  readonly number: number;
  /** The path given at open (FStat reports it; a directory's FStat re-resolves it). */
  readonly path: string;
  readonly owner: HandleOwner;
  readonly access: Access;
  readonly #target: HandleTarget;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(number: number, path: string, owner: HandleOwner, target: HandleTarget, access: Access) {
    this.number = number;
    this.path = path;
    this.owner = owner;
    this.#target = target;
    this.access = access;
  }

  get kind(): 'file' | 'dir' {
    return this.#target.kind;
  }

  /**
   * Runs `fn` after every operation queued before it. Once the handle has been closed, `fn` is
   * not run and the promise rejects with an FsFailure whose message has no prefix.
   */
  run<T>(fn: (target: HandleTarget) => Promise<T>): Promise<T> {
    const result = this.#tail.then(() => {
      if (this.#closed) throw new FsFailure(`handle ${this.number} was closed`);
      return fn(this.#target);
    });
    this.#tail = result.catch(() => {});
    return result;
  }

  /** Closes after the queued operations; later ones fail. Rejects with the close(2) error. */
  close(): Promise<void> {
    return this.run(async (t) => {
      this.#closed = true;
      if (t.kind === 'file') await t.file.close();
      else await t.dir.close();
    });
  }
}
