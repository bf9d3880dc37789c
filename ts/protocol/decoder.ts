/**
 * Incremental frame decoder: turns a byte stream, split or coalesced in any way, into frames.
 *
 * Memory and copying: a frame that lies inside one pushed chunk is returned as a view of that chunk
 * (no copy). A frame spread over several chunks is copied once into a buffer of its exact size,
 * allocated as soon as its length is known, so feeding a 4 MiB frame one byte at a time costs
 * 4 MiB of copying, not O(n²). Bytes after a complete frame stay buffered for the next one.
 *
 * Fatal errors (PROTOCOL §1.4): a length below 5 or above MAX_FRAME_SIZE means the stream is
 * desynchronised. The decoder reports it as a ProtocolError from `readFrame()` at the position of the
 * bad header, after every frame before it, and stays failed: later calls throw the same error.
 * Buffered input can never exceed MAX_FRAME_SIZE + 4 bytes without a complete frame, because the
 * length check runs as soon as 4 bytes of a header are present.
 */

import { ProtocolError } from '../errors.js';
import { LENGTH_PREFIX_SIZE, checkFrameLength, type Frame } from './frame.js';

export class FrameDecoder {
  /** Pushed chunks not yet consumed; `queue[queueIndex]` is read from `queueOffset`. */
  private queue: Buffer[] = [];
  private queueIndex = 0;
  private queueOffset = 0;
  private queuedBytes = 0;
  /** The length prefix while it arrives in pieces. */
  private readonly prefix = Buffer.alloc(LENGTH_PREFIX_SIZE);
  private prefixFilled = 0;
  /** The frame being assembled from several chunks, prefix included. */
  private partial: Buffer | null = null;
  private partialFilled = 0;
  private fatal: ProtocolError | null = null;

  /**
   * Append bytes from the stream. The decoder keeps a reference to `chunk` (frames may be views
   * into it), so the caller must not modify it afterwards. Node's socket and stream chunks are safe.
   *
   * @throws ProtocolError the fatal error, if the decoder already failed.
   */
  push(chunk: Uint8Array): void {
    if (this.fatal !== null) throw this.fatal;
    if (chunk.length === 0) return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    this.queue.push(buf);
    this.queuedBytes += buf.length;
  }

  /**
   * Return the next complete frame, or null when more bytes are needed.
   *
   * @throws ProtocolError `MSB_ERR_FRAME_TOO_LARGE` or `MSB_ERR_BAD_FRAME` when the next frame's
   *   length is out of range. The decoder is then failed for good.
   */
  readFrame(): Frame | null {
    if (this.fatal !== null) throw this.fatal;
    if (this.partial === null) {
      const total = this.readLength();
      if (total === null) return null;
      const head = this.queue[this.queueIndex];
      if (this.prefixFilled === 0 && head !== undefined && head.length - this.queueOffset >= total) {
        const bytes = head.subarray(this.queueOffset, this.queueOffset + total);
        this.consume(total);
        return toFrame(bytes);
      }
      this.partial = Buffer.allocUnsafe(total);
      if (this.prefixFilled > 0) {
        this.prefix.copy(this.partial, 0);
        this.partialFilled = LENGTH_PREFIX_SIZE;
        this.prefixFilled = 0;
      }
    }
    this.partialFilled += this.copyInto(this.partial, this.partialFilled);
    if (this.partialFilled < this.partial.length) return null;
    const bytes = this.partial;
    this.partial = null;
    this.partialFilled = 0;
    return toFrame(bytes);
  }

  /**
   * Declare the end of the stream.
   *
   * @throws ProtocolError `MSB_ERR_BAD_FRAME` when the stream ended inside a frame, or the fatal
   *   error if the decoder already failed. Complete frames should be read before calling this.
   */
  end(): void {
    if (this.fatal !== null) throw this.fatal;
    const left = this.bufferedBytes;
    if (left > 0) {
      this.fatal = new ProtocolError('MSB_ERR_BAD_FRAME', `stream ended inside a frame (${left} bytes buffered)`);
      throw this.fatal;
    }
  }

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.queuedBytes + this.prefixFilled + this.partialFilled;
  }

  /** The fatal error, once the decoder has failed; null before. */
  get failure(): ProtocolError | null {
    return this.fatal;
  }

  /**
   * Make the 4 length bytes available and return the whole frame size, or null if they have not
   * all arrived. On the fast path (all 4 in the head chunk) nothing is consumed yet.
   */
  private readLength(): number | null {
    const head = this.queue[this.queueIndex];
    let len: number;
    if (this.prefixFilled === 0 && head !== undefined && head.length - this.queueOffset >= LENGTH_PREFIX_SIZE) {
      len = head.readUInt32BE(this.queueOffset);
    } else {
      this.prefixFilled += this.copyInto(this.prefix, this.prefixFilled);
      if (this.prefixFilled < LENGTH_PREFIX_SIZE) return null;
      len = this.prefix.readUInt32BE(0);
    }
    try {
      return checkFrameLength(len);
    } catch (err) {
      this.fatal = err as ProtocolError;
      throw err;
    }
  }

  /** Copy queued bytes into `target` from `offset` until it is full or the queue is empty. */
  private copyInto(target: Buffer, offset: number): number {
    let copied = 0;
    while (offset + copied < target.length && this.queueIndex < this.queue.length) {
      const head = this.queue[this.queueIndex] as Buffer;
      const n = Math.min(target.length - offset - copied, head.length - this.queueOffset);
      head.copy(target, offset + copied, this.queueOffset, this.queueOffset + n);
      copied += n;
      this.consume(n);
    }
    return copied;
  }

  /** Drop `n` bytes from the front of the queue; they must all be in the head chunk. */
  private consume(n: number): void {
    this.queueOffset += n;
    this.queuedBytes -= n;
    if (this.queueOffset === (this.queue[this.queueIndex] as Buffer).length) {
      this.queueIndex += 1;
      this.queueOffset = 0;
      if (this.queueIndex === this.queue.length) {
        this.queue = [];
        this.queueIndex = 0;
      } else if (this.queueIndex >= 1024) {
        this.queue = this.queue.slice(this.queueIndex);
        this.queueIndex = 0;
      }
    }
  }
}

function toFrame(bytes: Buffer): Frame {
  return { id: bytes.readUInt32BE(4), flags: bytes[8] as number, body: bytes.subarray(9) };
}
