/**
 * Where each read from the agent's socket lands, chosen so that a large frame is read straight
 * into a buffer of its own and never copied in JavaScript.
 *
 * Between frames, reads go into a small scratch buffer (`SCRATCH_SIZE`). Complete frames found
 * there are copied out (they are small: at most the scratch size). A frame that is not complete
 * and larger than the scratch buffer gets an exact-size buffer; the part already read is copied
 * into it once and every later read targets its unfilled rest, so the read ends exactly at the
 * frame's end. The finished frame is handed on as one chunk, which the frame decoder then takes
 * as a view (decoder.ts's fast path) rather than assembling it from pieces.
 *
 * Bytes before the first frame (`skip`: the id-range prefix of PROTOCOL §6.1) pass through as read.
 * Output is the same byte stream, only cut at other places: every emitted chunk is owned (never
 * reused), and their concatenation is exactly what the socket delivered. A length outside the
 * protocol's range switches alignment off for good; the bytes then pass through as read, and the
 * decoder reports the desynchronised stream as before.
 */

import { LENGTH_PREFIX_SIZE, MAX_FRAME_SIZE, FRAME_HEADER_SIZE } from '../protocol/frame.js';

/** Size of the between-frames read: the most a large frame can have copied before direct reads. */
export const SCRATCH_SIZE = 16 * 1024;

export class FrameAlignedReads {
  readonly #scratch = Buffer.allocUnsafe(SCRATCH_SIZE);
  /** Bytes of an incomplete small frame (or length prefix) carried over to the next read. */
  #carry: Buffer | null = null;
  /** The large frame being read directly, and how much of it has arrived. */
  #frame: Buffer | null = null;
  #filled = 0;
  /** Set once a length was out of range: no more alignment. */
  #passthrough = false;
  /** Bytes before the first frame (the handshake's id-range prefix) still to pass through. */
  #skip: number;

  constructor(skip = 0) {
    this.#skip = skip;
  }

  /** The buffer the next read should fill. */
  nextBuffer(): Buffer {
    return this.#frame === null ? this.#scratch : this.#frame.subarray(this.#filled);
  }

  /** `n` bytes were read into the buffer nextBuffer() returned; chunks ready to pass on go to `emit`. */
  received(n: number, emit: (chunk: Buffer) => void): void {
    if (this.#frame !== null) {
      this.#filled += n;
      if (this.#filled === this.#frame.length) {
        const frame = this.#frame;
        this.#frame = null;
        this.#filled = 0;
        emit(frame);
      }
      return;
    }
    const read = this.#scratch.subarray(0, n);
    if (this.#passthrough) return emit(Buffer.from(read));
    const data = this.#carry === null ? read : Buffer.concat([this.#carry, read]);
    this.#carry = null;
    let pos = Math.min(this.#skip, data.length);
    this.#skip -= pos;
    while (data.length - pos >= LENGTH_PREFIX_SIZE) {
      const len = data.readUInt32BE(pos);
      if (len < FRAME_HEADER_SIZE || len > MAX_FRAME_SIZE) {
        this.#passthrough = true;
        pos = data.length;
        break;
      }
      const total = LENGTH_PREFIX_SIZE + len;
      if (data.length - pos >= total) {
        pos += total;
        continue;
      }
      if (total > SCRATCH_SIZE) {
        // Large and incomplete: the rest of it is read in place.
        this.#frame = Buffer.allocUnsafe(total);
        this.#filled = data.copy(this.#frame, 0, pos);
        if (pos > 0) emit(Buffer.from(data.subarray(0, pos)));
        return;
      }
      break;
    }
    if (pos > 0) emit(Buffer.from(data.subarray(0, pos)));
    if (pos < data.length) this.#carry = Buffer.from(data.subarray(pos));
  }

  /** At the end of the stream: whatever was held back, so the decoder sees the truncated frame. */
  flush(emit: (chunk: Buffer) => void): void {
    const held = this.#frame !== null ? this.#frame.subarray(0, this.#filled) : this.#carry;
    this.#frame = null;
    this.#filled = 0;
    this.#carry = null;
    if (held !== null && held.length > 0) emit(held);
  }
}
