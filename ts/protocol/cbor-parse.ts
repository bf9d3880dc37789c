/**
 * A strict, small CBOR reader (RFC 8949) that keeps what the protocol needs to validate payloads.
 *
 * Why not cbor-x's decoder: cbor-x 1.6 rejects indefinite-length strings and trailing bytes (both
 * MUST be accepted, PROTOCOL §2.4), turns tags into Dates, Sets, typed arrays, shared references or
 * record definitions that persist in decoder state, decodes `24.0` and `24` to the same number,
 * and lets a duplicate key silently win. This reader instead:
 *
 * - returns integers as `number` when they are safe integers, otherwise as `bigint` (any head
 *   width, so a non-shortest `1b 00..05` is 5);
 * - returns floats wrapped in CborFloat, so a float can never pass as an integer;
 * - returns byte strings as Buffer views into the input (no copy), text as strings (UTF-8 checked);
 * - returns maps as plain objects whose keys are all own properties (a `__proto__` key is an
 *   ordinary key, as with JSON.parse), rejecting duplicate and non-text keys;
 * - accepts indefinite lengths for strings, byte strings, arrays and maps;
 * - skips every tag and returns the tagged item;
 * - returns `null` for `f6` and `undefined` for `f7`, and rejects other simple values;
 * - ignores bytes after the first item (the caller gets the offset where it ended).
 *
 * Anything malformed, truncated or nested deeper than MAX_DEPTH is a ProtocolError MSB_ERR_BAD_CBOR.
 */

import { ProtocolError } from '../errors.js';

/** A CBOR float (major type 7). The protocol has no float fields; this marks one so it is rejected. */
export class CborFloat {
  constructor(readonly value: number) {}
}

/** Nesting limit; ciborium, the upstream decoder, uses the same recursion limit. */
export const MAX_DEPTH = 256;

const BREAK = 0xff;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Parse the first CBOR item of `input`; `end` is the offset just after it. */
export function parseCbor(input: Uint8Array): { value: unknown; end: number } {
  const reader = new Reader(Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.length));
  const value = reader.readItem(0);
  return { value, end: reader.pos };
}

function fail(message: string): never {
  throw new ProtocolError('MSB_ERR_BAD_CBOR', `invalid CBOR: ${message}`);
}

class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  readItem(depth: number): unknown {
    if (depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`);
    const start = this.pos;
    const initial = this.readByte();
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (major === 7) return this.readSimple(info, start);
    if (info === 31) return this.readIndefinite(major, depth, start);
    const arg = this.readArgument(info, start);
    switch (major) {
      case 0:
        return arg;
      case 1:
        // -1 - n; -(2^53) is not a safe integer, so it becomes a bigint like the rest beyond.
        return typeof arg === 'number' && arg < Number.MAX_SAFE_INTEGER ? -1 - arg : -1n - BigInt(arg);
      case 2:
        return this.readBytes(arg, start);
      case 3:
        return decodeText(this.readBytes(arg, start), start);
      case 4:
        return this.readArray(this.checkCount(arg, 1, start), depth);
      case 5:
        return this.readMap(this.checkCount(arg, 2, start), depth);
      default:
        // major 6: a tag. Tags are ignored; the tagged item stands for itself (PROTOCOL §2.4).
        return this.readItem(depth + 1);
    }
  }

  private readByte(): number {
    if (this.pos >= this.buf.length) fail(`unexpected end of input at offset ${this.pos}`);
    const b = this.buf[this.pos] as number;
    this.pos += 1;
    return b;
  }

  private need(n: number, start: number): void {
    if (this.buf.length - this.pos < n) fail(`item at offset ${start} runs past the end of input`);
  }

  /** The head's argument: a safe integer as number, anything larger as bigint. */
  private readArgument(info: number, start: number): number | bigint {
    if (info < 24) return info;
    switch (info) {
      case 24:
        this.need(1, start);
        return this.buf[this.pos++] as number;
      case 25:
        this.need(2, start);
        this.pos += 2;
        return this.buf.readUInt16BE(this.pos - 2);
      case 26:
        this.need(4, start);
        this.pos += 4;
        return this.buf.readUInt32BE(this.pos - 4);
      case 27: {
        this.need(8, start);
        const value = this.buf.readBigUInt64BE(this.pos);
        this.pos += 8;
        return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
      }
      default:
        return fail(`reserved additional information ${info} at offset ${start}`);
    }
  }

  private readBytes(length: number | bigint, start: number): Buffer {
    if (typeof length === 'bigint' || length > this.buf.length - this.pos) {
      fail(`string at offset ${start} runs past the end of input`);
    }
    this.pos += length;
    return this.buf.subarray(this.pos - length, this.pos);
  }

  /** An array or map cannot have more items than there are bytes left; check before allocating. */
  private checkCount(count: number | bigint, minBytes: number, start: number): number {
    if (typeof count === 'bigint' || count * minBytes > this.buf.length - this.pos) {
      fail(`container at offset ${start} declares more items than the input holds`);
    }
    return count;
  }

  private readArray(count: number, depth: number): unknown[] {
    const out: unknown[] = [];
    for (let i = 0; i < count; i++) out.push(this.readItem(depth + 1));
    return out;
  }

  private readMap(count: number, depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < count; i++) this.readEntry(out, depth);
    return out;
  }

  private readEntry(out: Record<string, unknown>, depth: number): void {
    const keyAt = this.pos;
    const key = this.readItem(depth + 1);
    if (typeof key !== 'string') fail(`map key at offset ${keyAt} is not a text string`);
    if (Object.hasOwn(out, key)) fail(`duplicate map key ${JSON.stringify(key)} at offset ${keyAt}`);
    // defineProperty, not assignment: a "__proto__" key must not replace the prototype.
    Object.defineProperty(out, key, { value: this.readItem(depth + 1), enumerable: true, writable: true, configurable: true });
  }

  private readIndefinite(major: number, depth: number, start: number): unknown {
    switch (major) {
      case 2:
      case 3: {
        const chunks: Buffer[] = [];
        while (this.peekIsNotBreak()) {
          const chunkAt = this.pos;
          const initial = this.readByte();
          if (initial >> 5 !== major || (initial & 0x1f) === 31) {
            fail(`chunk at offset ${chunkAt} of the indefinite string at offset ${start} has the wrong type`);
          }
          const chunk = this.readBytes(this.readArgument(initial & 0x1f, chunkAt), chunkAt);
          if (major === 3) decodeText(chunk, chunkAt);
          chunks.push(chunk);
        }
        const joined = Buffer.concat(chunks);
        return major === 2 ? joined : decodeText(joined, start);
      }
      case 4: {
        const out: unknown[] = [];
        while (this.peekIsNotBreak()) out.push(this.readItem(depth + 1));
        return out;
      }
      case 5: {
        const out: Record<string, unknown> = {};
        while (this.peekIsNotBreak()) this.readEntry(out, depth);
        return out;
      }
      default:
        return fail(`indefinite length is not allowed for major type ${major} at offset ${start}`);
    }
  }

  /** True if another item follows inside an indefinite container; consumes the break otherwise. */
  private peekIsNotBreak(): boolean {
    if (this.pos >= this.buf.length) fail('indefinite-length item is not terminated');
    if (this.buf[this.pos] !== BREAK) return true;
    this.pos += 1;
    return false;
  }

  private readSimple(info: number, start: number): unknown {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25:
        this.need(2, start);
        this.pos += 2;
        return new CborFloat(decodeHalf(this.buf.readUInt16BE(this.pos - 2)));
      case 26:
        this.need(4, start);
        this.pos += 4;
        return new CborFloat(this.buf.readFloatBE(this.pos - 4));
      case 27:
        this.need(8, start);
        this.pos += 8;
        return new CborFloat(this.buf.readDoubleBE(this.pos - 8));
      case 31:
        return fail(`unexpected break at offset ${start}`);
      default:
        return fail(`unsupported simple value (additional information ${info}) at offset ${start}`);
    }
  }
}

function decodeText(bytes: Buffer, start: number): string {
  try {
    return utf8.decode(bytes);
  } catch {
    return fail(`text string at offset ${start} is not valid UTF-8`);
  }
}

/** IEEE 754 half precision, as RFC 8949 Appendix D describes it. */
function decodeHalf(half: number): number {
  const exp = (half >> 10) & 0x1f;
  const mant = half & 0x3ff;
  let value: number;
  if (exp === 0) value = mant * 2 ** -24;
  else if (exp !== 31) value = (mant + 1024) * 2 ** (exp - 25);
  else value = mant === 0 ? Infinity : NaN;
  return half & 0x8000 ? -value : value;
}
