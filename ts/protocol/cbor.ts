/**
 * CBOR behind two functions, `encodeCbor` and `decodeCbor`.
 *
 * Encoding uses cbor-x, configured and fed so that its output is exactly what serde + ciborium
 * (upstream) produce (PROTOCOL §2.3): shortest heads, definite lengths, no tags, no floats, text keys
 * in insertion order. cbor-x gets there only with help, which `normalize` gives it:
 *
 * - integers between -2^32 and 2^32-1 are passed as numbers (cbor-x writes the shortest head);
 *   beyond that as bigint, because cbor-x writes any larger *number* as a float64, which upstream
 *   rejects. A bigint gets the 9-byte head, which is also the shortest form for those values;
 * - byte strings are passed as Buffer views (a bare Uint8Array would get tag 64 by default);
 * - maps get `variableMapSize` (otherwise cbor-x writes a 16-bit map head, `b9 00 03`);
 * - lone UTF-16 surrogates become U+FFFD (cbor-x would write them as invalid UTF-8, and the peer
 *   would reject the whole payload);
 * - floats, unsafe integers, `undefined` outside an object and other JS values are refused.
 *
 * Decoding uses the strict reader in cbor-parse.ts; see there why it is not cbor-x.
 */

import { Encoder } from 'cbor-x';
import { ProtocolError } from '../errors.js';
import { parseCbor } from './cbor-parse.js';

export { CborFloat } from './cbor-parse.js';

/** A value encodeCbor accepts. Object properties that are `undefined` are left out of the map. */
export type CborValue = null | boolean | number | bigint | string | Uint8Array | readonly CborValue[] | CborObject;

/** A CBOR map with text keys, written in the object's key order. */
export interface CborObject {
  readonly [key: string]: CborValue | undefined;
}

const encoder = new Encoder({
  useRecords: false,
  variableMapSize: true,
  tagUint8Array: false,
  pack: false,
  bundleStrings: false,
  structuredClone: false,
  useSelfDescribedHeader: false,
  useFloat32: 0,
  alwaysUseFloat: false,
  largeBigIntToFloat: false,
});

const U32_LIMIT = 2 ** 32;
const U64_LIMIT = 2n ** 64n;
const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;

/**
 * Encode one value as canonical CBOR (shortest heads, definite lengths).
 *
 * @throws ProtocolError `MSB_ERR_BAD_CBOR` for a value the protocol cannot carry: a float or an
 *   unsafe integer number (use bigint above 2^53), an integer outside -(2^64-1)..2^64-1, `undefined`
 *   outside an object, or an object that is not a plain object.
 */
export function encodeCbor(value: CborValue): Buffer {
  let normalized: unknown;
  try {
    // The fast pass builds no path strings; only a refused value is walked again to name where.
    normalized = normalize(value, null);
  } catch (err) {
    if (err !== REFUSED) throw err;
    normalize(value, '$');
    throw err;
  }
  return encoder.encode(normalized);
}

/** Thrown by the path-less pass; never escapes encodeCbor. */
const REFUSED = new Error('refused');

/**
 * Decode the first CBOR item of `bytes`; trailing bytes are ignored, as upstream does.
 * Integers are numbers when safe, otherwise bigints; floats are CborFloat; byte strings are Buffer
 * views into `bytes`; maps are plain objects with text keys.
 *
 * @throws ProtocolError `MSB_ERR_BAD_CBOR` for malformed, truncated or unsupported input.
 */
export function decodeCbor(bytes: Uint8Array): unknown {
  return parseCbor(bytes).value;
}

/** `path` is null in the fast pass (a refusal then throws REFUSED), else the value's location. */
function normalize(value: unknown, path: string | null): unknown {
  switch (typeof value) {
    case 'boolean':
      return value;
    case 'string':
      return LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATES, '\ufffd') : value;
    case 'number':
      if (!Number.isSafeInteger(value)) refuse(path, `${value} is not a safe integer (use a bigint above 2^53)`);
      if (value === 0) return 0; // -0 would otherwise be a float candidate
      return value >= -U32_LIMIT && value < U32_LIMIT ? value : BigInt(value);
    case 'bigint':
      // -2^64 itself is left out: cbor-x would write it as a tag-3 bignum, and no field needs it.
      if (value <= -U64_LIMIT || value >= U64_LIMIT) refuse(path, `${value} is outside -(2^64-1)..2^64-1`);
      return value >= -U32_LIMIT && value < U32_LIMIT ? Number(value) : value;
    case 'object':
      if (value === null) return null;
      if (value instanceof Uint8Array) {
        return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
      }
      if (Array.isArray(value)) return value.map((item, i) => normalize(item, path === null ? null : `${path}[${i}]`));
      return normalizeObject(value, path);
    default:
      return refuse(path, `${typeof value} cannot be encoded`);
  }
}

function normalizeObject(value: object, path: string | null): Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) refuse(path, 'only plain objects can be encoded as maps');
  const out: Record<string, unknown> = {};
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    const safeKey = normalize(key, path) as string;
    const safeItem = normalize(item, path === null ? null : `${path}.${key}`);
    // A key named __proto__ must become an own property, not the prototype.
    if (safeKey === '__proto__') Object.defineProperty(out, safeKey, { value: safeItem, enumerable: true, writable: true, configurable: true });
    else out[safeKey] = safeItem;
  }
  return out;
}

function refuse(path: string | null, why: string): never {
  if (path === null) throw REFUSED;
  throw new ProtocolError('MSB_ERR_BAD_CBOR', `cannot encode ${path}: ${why}`);
}
