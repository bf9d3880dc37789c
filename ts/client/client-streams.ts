/**
 * The Node streams of a remote exec: output Readables whose backpressure pauses the connection,
 * and a stdin Writable that turns writes into `core.exec.stdin` frames.
 */

import { Readable, Writable } from 'node:stream';

import type { ExecStdinError, OutgoingMessage } from '../protocol/index.js';
import type { FlowControl } from './connection.js';
import { VIEW_MIN } from './frame-aligned-reads.js';

/** Output buffered per stream before the connection stops reading (as spawnSession's). */
export const OUTPUT_HIGH_WATER_MARK = 256 * 1024;
/**
 * Largest `data` of one `core.exec.stdin` frame. A frame is at most MAX_FRAME_SIZE (4 MiB); 1 MiB
 * keeps frames far below it and lets other sessions' frames interleave with a large write.
 */
export const STDIN_CHUNK_SIZE = 1024 * 1024;

/** stdout or stderr of a remote process. */
export class ExecOutput extends Readable {
  readonly #flow: FlowControl;
  #finished = false;

  constructor(flow: FlowControl) {
    super({ highWaterMark: OUTPUT_HIGH_WATER_MARK });
    this.#flow = flow;
  }

  /** One chunk from the agent. Data for a destroyed or finished stream is dropped. */
  deliver(data: Buffer): void {
    if (this.#finished || this.destroyed) return;
    // A decoded chunk is a view into what was received; a small one is copied so that it does
    // not keep a large receive buffer alive while it waits here. A large one stays a view (into a
    // read slab, frame-aligned-reads.ts): copying it would cost more than the memory it pins.
    const chunk = data.byteLength < VIEW_MIN && data.byteLength * 2 < data.buffer.byteLength ? Buffer.from(data) : data;
    if (!this.push(chunk)) this.#flow.block(this);
  }

  /** No more data will come: end the stream, and stop holding the connection for it. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (!this.destroyed) this.push(null);
    this.#flow.unblock(this);
  }

  override _read(): void {
    this.#flow.unblock(this);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#finished = true;
    this.#flow.unblock(this);
    cb(err);
  }
}

/** Where the stdin stream sends its frames. */
export interface StdinChannel {
  /** Sends on the exec's id; false when the transport is full. Throws once the connection is closed. */
  send(message: OutgoingMessage): boolean;
  whenDrained(cb: (err?: Error) => void): void;
}

/**
 * stdin of a remote process. Each write becomes `core.exec.stdin` frames of at most
 * STDIN_CHUNK_SIZE bytes; its callback runs once the transport has room again. `end()` sends the
 * empty frame that means EOF (on a PTY the agent writes the terminal's VEOF). An empty write sends
 * nothing, since an empty frame would close stdin.
 */
export class ExecInput extends Writable {
  readonly #channel: StdinChannel;
  /** The callback of a write that waits for the transport to drain. */
  #waiting: ((err?: Error | null) => void) | null = null;
  #sessionEnded = false;

  constructor(channel: StdinChannel) {
    super({ decodeStrings: true });
    this.#channel = channel;
    // Without a listener an 'error' (the agent could not write, the process is gone) would crash
    // the process; listeners the caller adds still see it, as with spawnSession().
    this.on('error', () => {});
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (chunk.length === 0) return cb();
    if (this.#sessionEnded) return cb(stdinClosedError());
    let hasRoom = true;
    try {
      for (let at = 0; at < chunk.length; at += STDIN_CHUNK_SIZE) {
        const data = chunk.subarray(at, Math.min(chunk.length, at + STDIN_CHUNK_SIZE));
        hasRoom = this.#channel.send({ type: 'execStdin', payload: { data } });
      }
    } catch (err) {
      return cb(err as Error);
    }
    if (hasRoom) return cb();
    this.#waiting = cb;
    this.#channel.whenDrained((err) => {
      if (this.#waiting !== cb) return;
      this.#waiting = null;
      cb(err ?? null);
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#sessionEnded) return cb();
    try {
      this.#channel.send({ type: 'execStdin', payload: { data: Buffer.alloc(0) } });
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  /**
   * `core.exec.stdin.error`: the agent could not write to the process. `code` is the errno name
   * (`'EPIPE'`, `'ENOBUFS'`…) or `'EIO'` when the agent gave none; `errno` is positive or null.
   */
  failed(e: ExecStdinError): void {
    const err = Object.assign(new Error(e.message), {
      code: e.errnoName ?? 'EIO',
      errno: e.errno,
      syscall: 'write',
    });
    if (!this.#failWaiting(err)) this.destroy(err);
  }

  /** The session is over: nothing more is sent; a waiting write fails with EPIPE. */
  sessionEnded(): void {
    this.#sessionEnded = true;
    // Only a waiting write needs the error; building one (its stack) costs ~15 us per exec.
    if (this.#waiting !== null) this.#failWaiting(stdinClosedError());
    if (!this.destroyed) this.destroy();
  }

  #failWaiting(err: Error): boolean {
    const waiting = this.#waiting;
    this.#waiting = null;
    if (waiting === null) return false;
    waiting(err);
    return true;
  }
}

function stdinClosedError(): Error {
  return Object.assign(new Error('stdin is closed: the remote process ended'), { code: 'EPIPE', syscall: 'write' });
}
