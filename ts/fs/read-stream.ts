/**
 * A streaming `Read` (PROTOCOL §4.9.4): positional reads of at most 3 MiB, each sent as one
 * `core.fs.data`, then the terminal response. Reads go through the handle's queue one chunk at a
 * time and wait while the connection is over its output high-water mark, so a client that stops
 * reading holds at most a chunk or two in the agent, not the file.
 */

import { FsFailure, errorDetail } from './fs-error.js';
import type { FsHandle } from './fs-handle.js';
import { FS_CHUNK_SIZE, type StreamOwner } from './stream-owner.js';

export class ReadStream {
  readonly id: number;
  readonly #handle: FsHandle;
  readonly #owner: StreamOwner;
  #paused = false;
  #resume: (() => void) | null = null;
  #done = false;

  private constructor(id: number, handle: FsHandle, owner: StreamOwner) {
    this.id = id;
    this.#handle = handle;
    this.#owner = owner;
  }

  /** `len` null reads to EOF. */
  static start(id: number, handle: FsHandle, offset: number, len: number | null, owner: StreamOwner, paused: boolean): ReadStream {
    const s = new ReadStream(id, handle, owner);
    s.#paused = paused;
    owner.meter.adjustActive('fs', 1);
    void s.#run(offset, len ?? Number.POSITIVE_INFINITY);
    return s;
  }

  get handle(): FsHandle {
    return this.#handle;
  }

  setPaused(paused: boolean): void {
    this.#paused = paused;
    if (!paused && this.#resume) {
      this.#resume();
      this.#resume = null;
    }
  }

  /** The client went away: stop after the chunk in flight, send nothing more. */
  abort(): void {
    this.#end();
  }

  async #run(offset: number, len: number): Promise<void> {
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(FS_CHUNK_SIZE, len)));
    let position = offset;
    let left = len;
    while (left > 0) {
      if (this.#paused) await new Promise<void>((resolve) => (this.#resume = resolve));
      if (this.#done) return;
      const want = Math.min(buf.length, left);
      let n: number;
      try {
        n = await this.#handle.run(async (t) => {
          if (t.kind !== 'file') throw new FsFailure(`handle ${this.#handle.number} is a directory`);
          return (await t.file.read(buf, 0, want, position)).bytesRead;
        });
      } catch (err) {
        return this.#respond(`read: ${err instanceof FsFailure ? err.message : errorDetail(err)}`);
      }
      if (this.#done) return;
      if (n === 0) break;
      // The frame encoder copies the bytes, so the buffer is free for the next read.
      this.#owner.send(this.id, { type: 'fsData', payload: { data: buf.subarray(0, n) } });
      this.#owner.meter.fsBytes(n);
      position += n;
      left -= n;
    }
    this.#respond(null);
  }

  #respond(error: string | null): void {
    if (this.#done) return;
    this.#owner.send(this.id, { type: 'fsResponse', payload: { ok: error === null, error, data: null } });
    this.#end();
  }

  #end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#owner.meter.adjustActive('fs', -1);
    this.#resume?.();
    this.#owner.streamEnded(this.id);
  }
}
