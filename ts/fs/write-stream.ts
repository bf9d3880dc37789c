/**
 * A streaming `Write` (PROTOCOL §4.9.5): the host sends `core.fs.data` chunks on the request's id
 * and an empty chunk to finish. Each chunk is written whole at the running offset (or appended)
 * through the handle's queue. Two guards upstream lacks (§7 W16, DESIGN §5): a chunk that would
 * take the stream past its declared `len` is refused before anything of it is written, and at
 * most `WRITE_QUEUE_MAX` bytes may wait for the disk; beyond that the stream fails instead of
 * the agent buffering without bound.
 */

import { FsFailure, errorDetail } from './fs-error.js';
import type { FsHandle } from './fs-handle.js';
import type { StreamOwner } from './stream-owner.js';

/** Bytes of one write stream accepted ahead of the disk. */
export const WRITE_QUEUE_MAX = 16 * 1024 * 1024;

export class WriteStream {
  readonly id: number;
  readonly #handle: FsHandle;
  readonly #owner: StreamOwner;
  readonly #offset: number;
  readonly #len: number | null;
  /** Bytes accepted into the queue so far (written or waiting). */
  #accepted = 0;
  #written = 0;
  #last: Promise<void> = Promise.resolve();
  /** A chunk was refused or a write failed: no more chunks are taken. */
  #failed = false;
  /** Chunks still queued are dropped, not written (a write failed, or the queue overflowed). */
  #dropQueued = false;
  #done = false;

  private constructor(id: number, handle: FsHandle, offset: number, len: number | null, owner: StreamOwner) {
    this.id = id;
    this.#handle = handle;
    this.#offset = offset;
    this.#len = len;
    this.#owner = owner;
  }

  /** Registers the stream; nothing is sent until the host's empty chunk (or a failure). */
  static start(id: number, handle: FsHandle, offset: number, len: number | null, owner: StreamOwner): WriteStream {
    owner.meter.adjustActive('fs', 1);
    return new WriteStream(id, handle, offset, len, owner);
  }

  get handle(): FsHandle {
    return this.#handle;
  }

  /** One `core.fs.data` from the host; empty means end of stream. */
  data(chunk: Buffer): void {
    if (this.#done || this.#failed) return;
    if (chunk.length === 0) {
      void this.#finish();
      return;
    }
    const total = this.#accepted + chunk.length;
    if (this.#len !== null && total > this.#len) {
      // The chunks before it are written first, so the answer describes the file as it is.
      this.#failed = true;
      void this.#last.then(() =>
        this.#respond(`write length mismatch: expected ${this.#len}, got at least ${total} bytes (the chunk was not written)`),
      );
      return;
    }
    const waiting = this.#accepted - this.#written;
    if (waiting + chunk.length > WRITE_QUEUE_MAX) {
      // The file is not keeping up: answer now (waiting could take forever) and drop the queue.
      this.#failed = true;
      this.#dropQueued = true;
      return this.#respond(`write: ${waiting} bytes are already waiting for the disk; at most ${WRITE_QUEUE_MAX} may be in flight per stream`);
    }
    const position = this.#handle.access.append ? null : this.#offset + this.#accepted;
    this.#accepted = total;
    this.#last = this.#handle
      .run(async (t) => {
        if (this.#dropQueued) return;
        if (t.kind !== 'file') throw new FsFailure(`handle ${this.#handle.number} is a directory`);
        await writeAll(t.file, chunk, position);
        this.#written += chunk.length;
        this.#owner.meter.fsBytes(chunk.length);
      })
      .catch((err: unknown) => {
        this.#failed = true;
        this.#dropQueued = true;
        this.#respond(`write: ${err instanceof FsFailure ? err.message : errorDetail(err)}`);
      });
  }

  async #finish(): Promise<void> {
    await this.#last;
    if (this.#done || this.#failed) return;
    if (this.#len !== null && this.#written !== this.#len) {
      return this.#respond(`write length mismatch: expected ${this.#len}, wrote ${this.#written}`);
    }
    this.#respond(null);
  }

  /** The client went away: queued chunks are skipped, nothing is sent. */
  abort(): void {
    this.#dropQueued = true;
    this.#end();
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
    this.#owner.streamEnded(this.id);
  }
}

async function writeAll(
  file: import('node:fs/promises').FileHandle,
  chunk: Buffer,
  position: number | null,
): Promise<void> {
  let off = 0;
  while (off < chunk.length) {
    const { bytesWritten } = await file.write(chunk, off, chunk.length - off, position === null ? null : position + off);
    off += bytesWritten;
  }
}
