/**
 * Whole-file transfers over the fs service, as the upstream SDK does them (OpenFile → Read/Write
 * streams → CloseHandle), with flow control both ways:
 *
 * - Reads come back as a Readable whose backpressure pauses the connection, so the agent stops
 *   reading the file (its output flow control) instead of anyone buffering it.
 * - Writes go in windows of `WRITE_WINDOW` bytes, one Write stream each, and the next window starts
 *   only once the agent has answered the last: the agent accepts at most 16 MiB ahead of its disk
 *   per stream, and the protocol has no credit messages, so this is how a large upload stays
 *   under that bound however slow the guest's disk is.
 */

import { Readable } from 'node:stream';

import type { FsOpenOptions, FsResponseData } from '../protocol/index.js';
import type { ClientConnection } from './connection.js';
import { startFsCall, type FsCall } from './fs-call.js';

/** Largest `data` of one `core.fs.data` (PROTOCOL §3.2). */
export const FS_CHUNK_SIZE = 3 * 1024 * 1024;
/** Bytes sent per Write stream before waiting for the agent's answer. */
export const WRITE_WINDOW = 8 * 1024 * 1024;
const READ_HIGH_WATER_MARK = 1024 * 1024;

const READ_ONLY: FsOpenOptions = { read: true, write: false, append: false, create: false, truncate: false, createNew: false, mode: null };

function handleOf(data: FsResponseData | null): number | bigint {
  if (data?.type !== 'handle') throw new Error(`the agent answered OpenFile without a handle: ${JSON.stringify(data)}`);
  return data.handle;
}

async function closeQuietly(conn: ClientConnection, handle: number | bigint): Promise<void> {
  try {
    await startFsCall(conn, { type: 'closeHandle', handle }).result;
  } catch {
    // The transfer's own outcome is what the caller needs; a failed close is secondary.
  }
}

export interface ReadStreamOptions {
  /** First byte to read (default 0). */
  offset?: number;
  /** Bytes to read at most (default: to the end of the file). */
  length?: number;
}

/** A file in the guest as a Readable; it errors with FsError (or the transport's error). */
export class RemoteFileReader extends Readable {
  readonly #conn: ClientConnection;
  readonly #path: string;
  readonly #opts: ReadStreamOptions;
  #started = false;
  #handle: number | bigint | null = null;

  constructor(conn: ClientConnection, path: string, opts: ReadStreamOptions = {}) {
    super({ highWaterMark: READ_HIGH_WATER_MARK });
    this.#conn = conn;
    this.#path = path;
    this.#opts = opts;
  }

  override _read(): void {
    this.#conn.unblock(this);
    if (this.#started) return;
    this.#started = true;
    void this.#run().catch((err: Error) => this.destroy(err));
  }

  async #run(): Promise<void> {
    const handle = handleOf(await startFsCall(this.#conn, { type: 'openFile', path: this.#path, options: READ_ONLY }).result);
    if (this.destroyed) return closeQuietly(this.#conn, handle);
    this.#handle = handle;
    try {
      const read = startFsCall(
        this.#conn,
        { type: 'read', handle, offset: this.#opts.offset ?? 0, len: this.#opts.length ?? null },
        (chunk) => {
          // A chunk is a view into a received frame of about the same size: no copy needed.
          if (!this.destroyed && !this.push(chunk)) this.#conn.block(this);
        },
      );
      await read.result;
    } finally {
      this.#conn.unblock(this);
      if (this.#handle !== null) await closeQuietly(this.#conn, handle);
      this.#handle = null;
    }
    this.push(null);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#conn.unblock(this);
    // Closing the handle ends the agent's read at its next chunk instead of at the end of the file.
    if (this.#handle !== null && this.#conn.failure === null) void closeQuietly(this.#conn, this.#handle);
    this.#handle = null;
    cb(err);
  }
}

export interface WriteFileOptions {
  /** Permission bits of a file that is created (default 0o666; the agent's umask applies). */
  mode?: number;
  /** Called with the bytes sent so far, after each chunk. */
  onProgress?: (bytes: number) => void;
}

export type FileSource = Uint8Array | string | AsyncIterable<Uint8Array | string>;

/** Creates or truncates `path` in the guest and writes `source` to it; resolves with the byte count. */
export async function writeRemoteFile(conn: ClientConnection, path: string, source: FileSource, opts: WriteFileOptions = {}): Promise<number> {
  const options: FsOpenOptions = { read: false, write: true, append: false, create: true, truncate: true, createNew: false, mode: opts.mode ?? null };
  const handle = handleOf(await startFsCall(conn, { type: 'openFile', path, options }).result);
  let total = 0;
  let window: { call: FsCall; sent: number; failure: Error | null } | null = null;
  const endWindow = async (): Promise<void> => {
    const w = window!;
    window = null;
    conn.send(w.call.id, { type: 'fsData', payload: { data: Buffer.alloc(0) } });
    await w.call.result;
  };
  try {
    for await (const piece of chunksOf(source)) {
      if (window === null) {
        const call = startFsCall(conn, { type: 'write', handle, offset: total, len: null });
        const w: { call: FsCall; sent: number; failure: Error | null } = { call, sent: 0, failure: null };
        call.result.catch((err: Error) => (w.failure = err));
        window = w;
      }
      const w: { call: FsCall; sent: number; failure: Error | null } = window;
      if (w.failure) throw w.failure;
      if (!conn.send(w.call.id, { type: 'fsData', payload: { data: piece } })) {
        await new Promise<void>((resolve, reject) => conn.whenDrained((err) => (err ? reject(err) : resolve())));
      }
      w.sent += piece.length;
      total += piece.length;
      opts.onProgress?.(total);
      if (w.sent >= WRITE_WINDOW) await endWindow();
    }
    if (window !== null) await endWindow();
  } finally {
    await closeQuietly(conn, handle);
  }
  return total;
}

/** The source cut into chunks of at most FS_CHUNK_SIZE. */
async function* chunksOf(source: FileSource): AsyncGenerator<Buffer> {
  const pieces: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> =
    typeof source === 'string' || source instanceof Uint8Array ? [source] : source;
  for await (const p of pieces) {
    const b = typeof p === 'string' ? Buffer.from(p) : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
    for (let off = 0; off < b.length; off += FS_CHUNK_SIZE) yield b.subarray(off, off + FS_CHUNK_SIZE);
  }
}
