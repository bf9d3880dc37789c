/**
 * Where each read from the agent's socket lands, chosen so that reads are large and a large frame
 * is never copied in JavaScript.
 *
 * Reads fill a slab (`SLAB_SIZE`) from its unused tail, as much as the socket holds. Each complete
 * frame is handed on at once: a large one (`VIEW_MIN` or more) as a view into the slab, which the
 * frame decoder then takes as is (decoder.ts's fast path); a run of small ones copied out together,
 * so that a small chunk the application keeps pins no slab. An incomplete frame stays where it is
 * while the slab has room for all of it; otherwise its start moves to the next slab (at most one
 * copy of part of a frame per slab). A slab lives as long as views into it do.
 *
 * Bytes before the first frame (`skip`: the id-range prefix of PROTOCOL §6.1) pass through as read.
 * Output is the same byte stream, only cut at other places: every emitted chunk is owned (never
 * written again), and their concatenation is exactly what the socket delivered. A length outside
 * the protocol's range switches framing off for good; the bytes then pass through as read, and the
 * decoder reports the desynchronised stream as before.
 */

import { LENGTH_PREFIX_SIZE, MAX_FRAME_SIZE, FRAME_HEADER_SIZE } from '../protocol/frame.js';

/**
 * Size of one read slab: one ArrayBuffer per this much output, not one per frame. Four of the
 * agent's largest output frames (256 KiB of data, its slab size, plus a head of a few dozen bytes)
 * fit whole, so a stream of them never has a frame's start moved to the next slab.
 */
export const SLAB_SIZE = 1024 * 1024 + 4096;
/** Frames at least this large are handed on as views into the slab; smaller ones are copied. */
export const VIEW_MIN = 16 * 1024;
/** Less room than this left in the slab starts a new one, so reads stay large. */
const MIN_ROOM = 64 * 1024;

export class FrameAlignedReads {
  #slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
  /** The first byte of the slab not yet handed on. */
  #start = 0;
  /** Bytes read into the slab. */
  #end = 0;
  /** Length of the incomplete frame at #start once its prefix has arrived, else 0. */
  #pending = 0;
  /** Set once a length was out of range: no more framing. */
  #passthrough = false;
  /** Bytes before the first frame (the handshake's id-range prefix) still to pass through. */
  #skip: number;

  constructor(skip = 0) {
    this.#skip = skip;
  }

  /** The buffer the next read should fill. */
  nextBuffer(): Buffer {
    // An incomplete frame of known length must fit whole; otherwise a read needs MIN_ROOM.
    const fits =
      this.#pending > 0 ? this.#start + this.#pending <= this.#slab.length : this.#slab.length - this.#end >= MIN_ROOM;
    if (!fits) this.#moveToNewSlab(Math.max(this.#pending, MIN_ROOM));
    return this.#slab.subarray(this.#end);
  }

  /** `n` bytes were read into the buffer nextBuffer() returned; chunks ready to pass on go to `emit`. */
  received(n: number, emit: (chunk: Buffer) => void): void {
    this.#end += n;
    const slab = this.#slab;
    let pos = this.#start;
    if (this.#skip > 0) {
      const k = Math.min(this.#skip, this.#end - pos);
      this.#skip -= k;
      pos += k;
    }
    // [copyFrom, pos): small frames (and pass-through bytes) waiting to be copied out together.
    let copyFrom = this.#start;
    this.#pending = 0;
    while (!this.#passthrough && this.#end - pos >= LENGTH_PREFIX_SIZE) {
      const len = slab.readUInt32BE(pos);
      if (len < FRAME_HEADER_SIZE || len > MAX_FRAME_SIZE) {
        this.#passthrough = true;
        break;
      }
      const total = LENGTH_PREFIX_SIZE + len;
      if (this.#end - pos < total) {
        this.#pending = total;
        break;
      }
      if (total >= VIEW_MIN) {
        if (pos > copyFrom) emit(Buffer.from(slab.subarray(copyFrom, pos)));
        emit(slab.subarray(pos, pos + total));
        copyFrom = pos + total;
      }
      pos += total;
    }
    if (this.#passthrough) pos = this.#end;
    if (pos > copyFrom) emit(Buffer.from(slab.subarray(copyFrom, pos)));
    this.#start = pos;
  }

  /** At the end of the stream: whatever was held back, so the decoder sees the truncated frame. */
  flush(emit: (chunk: Buffer) => void): void {
    const held = this.#slab.subarray(this.#start, this.#end);
    this.#start = this.#end;
    this.#pending = 0;
    if (held.length > 0) emit(Buffer.from(held));
  }

  /** Continues in a fresh slab of at least `need` bytes, carrying over what was not handed on. */
  #moveToNewSlab(need: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(SLAB_SIZE, need));
    const carried = this.#slab.copy(next, 0, this.#start, this.#end);
    this.#slab = next;
    this.#start = 0;
    this.#end = carried;
  }
}
