/**
 * Small two-way codecs between decoded CBOR values and typed payloads, so that each payload is
 * described once (messages.ts) and both directions follow the same rules:
 *
 * - decoding accepts what upstream's serde types accept (PROTOCOL §2.4): unknown keys are ignored,
 *   missing keys take their default or fail when required, `undefined` counts as null, byte fields
 *   may arrive as arrays of small ints, integers may have any head width;
 * - encoding refuses what upstream would reject (a value out of range for its field, a missing
 *   required field, an unknown enum string), so we never send a payload the peer cannot decode.
 *
 * Both directions throw ProtocolError `MSB_ERR_BAD_CBOR` with the path of the offending field.
 * Wire names are not written here; messages.ts passes them in.
 */

import { ProtocolError } from '../errors.js';
import { CborFloat } from './cbor-parse.js';
import type { CborValue } from './cbor.js';

export interface Codec<T> {
  /** Check a decoded CBOR value and turn it into T. */
  decode(value: unknown, path: string): T;
  /** Check T and turn it into a value for encodeCbor. */
  encode(value: T, path: string): CborValue;
}

/** One struct field: its wire key, codec, and what happens when it is missing or empty. */
export interface Field<T> {
  readonly wire: string;
  readonly codec: Codec<T>;
  /** Value used when the key is missing on decode; without it the field is required. */
  readonly fallback?: () => T;
  /** On encode, leave the key out when this returns true (serde `skip_serializing_if`). */
  readonly omitIf?: (value: T) => boolean;
}

/** An unsigned or signed integer (u64 and i64 decode to bigint beyond the safe range). */
export type U64 = number | bigint;
export type I64 = number | bigint;

function reject(path: string, why: string): never {
  throw new ProtocolError('MSB_ERR_BAD_CBOR', `${path}: ${why}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (value instanceof CborFloat) return `float ${value.value}`;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return 'a byte string';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return 'a text string';
  return `${typeof value} ${String(value)}`;
}

/** True for a decoded CBOR map: a plain (or null-prototype) object. */
export function isCborMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}

function integer<T extends number | bigint>(min: bigint, max: bigint, label: string, narrow: boolean): Codec<T> {
  const check = (value: unknown, path: string, what: string): T => {
    if ((typeof value !== 'number' || !Number.isInteger(value)) && typeof value !== 'bigint') {
      reject(path, `${what} ${label}, got ${describe(value)}`);
    }
    const big = BigInt(value);
    if (big < min || big > max) reject(path, `${what} ${label}, got ${String(value)} (out of range)`);
    if (typeof value === 'number' && !Number.isSafeInteger(value)) reject(path, `${String(value)} is not a safe integer`);
    return (narrow ? Number(value) : value) as T;
  };
  return {
    decode: (value, path) => check(value, path, 'expected'),
    encode: (value, path) => check(value, path, 'must be'),
  };
}

export const u8 = integer<number>(0n, 0xffn, 'u8', true);
export const u16 = integer<number>(0n, 0xffffn, 'u16', true);
export const u32 = integer<number>(0n, 0xffff_ffffn, 'u32', true);
export const i32 = integer<number>(-(2n ** 31n), 2n ** 31n - 1n, 'i32', true);
export const u64 = integer<U64>(0n, 2n ** 64n - 1n, 'u64', false);
export const i64 = integer<I64>(-(2n ** 63n), 2n ** 63n - 1n, 'i64', false);

export const bool: Codec<boolean> = {
  decode: (value, path) => (typeof value === 'boolean' ? value : reject(path, `expected a bool, got ${describe(value)}`)),
  encode: (value, path) => (typeof value === 'boolean' ? value : reject(path, `must be a bool, got ${describe(value)}`)),
};

export const text: Codec<string> = {
  decode: (value, path) => (typeof value === 'string' ? value : reject(path, `expected a text string, got ${describe(value)}`)),
  encode: (value, path) => (typeof value === 'string' ? value : reject(path, `must be a string, got ${describe(value)}`)),
};

/** A byte string. Decoding also accepts an array of ints 0..255, as upstream does. */
export const bytes: Codec<Buffer> = {
  decode: (value, path) => {
    if (Buffer.isBuffer(value)) return value;
    if (Array.isArray(value)) {
      return Buffer.from(value.map((item: unknown, i) => u8.decode(item, `${path}[${i}]`)));
    }
    return reject(path, `expected a byte string, got ${describe(value)}`);
  },
  encode: (value, path) => (value instanceof Uint8Array ? value : reject(path, `must be a Uint8Array, got ${describe(value)}`)),
};

export function list<T>(item: Codec<T>): Codec<T[]> {
  return {
    decode: (value, path) => {
      if (!Array.isArray(value)) reject(path, `expected an array, got ${describe(value)}`);
      return value.map((x: unknown, i) => item.decode(x, `${path}[${i}]`));
    },
    encode: (value, path) => {
      if (!Array.isArray(value)) reject(path, `must be an array, got ${describe(value)}`);
      return value.map((x, i) => item.encode(x, `${path}[${i}]`));
    },
  };
}

/** An array of exactly `length` u8 values (IP and MAC addresses). */
export function octets(length: number): Codec<number[]> {
  const inner = list(u8);
  const check = (value: number[], path: string): number[] =>
    value.length === length ? value : reject(path, `expected ${length} octets, got ${value.length}`);
  return {
    decode: (value, path) => check(inner.decode(value, path), path),
    encode: (value, path) => inner.encode(check(value, path), path),
  };
}

/** `Option<T>`: null (and undefined, on decode) is None. */
export function nullable<T>(inner: Codec<T>): Codec<T | null> {
  return {
    decode: (value, path) => (value === null || value === undefined ? null : inner.decode(value, path)),
    encode: (value, path) => (value === null ? null : inner.encode(value, path)),
  };
}

/** A text enum. With `fallback`, unknown strings decode to it (PROTOCOL §7 W24). */
export function oneOf<T extends string>(values: readonly T[], fallback?: T): Codec<T> {
  const known = new Set<string>(values);
  const list = values.join(', ');
  return {
    decode: (value, path) => {
      const s = text.decode(value, path);
      if (known.has(s)) return s as T;
      return fallback ?? reject(path, `unknown variant ${JSON.stringify(s)}, expected one of ${list}`);
    },
    encode: (value, path) => (known.has(value) ? value : reject(path, `must be one of ${list}, got ${JSON.stringify(value)}`)),
  };
}

/** A required field. */
export function required<T>(wire: string, codec: Codec<T>): Field<T> {
  return { wire, codec };
}

/** A field that takes `fallback()` when missing (serde `default`). */
export function defaulted<T>(wire: string, codec: Codec<T>, fallback: () => T, omitIf?: (value: T) => boolean): Field<T> {
  return omitIf ? { wire, codec, fallback, omitIf } : { wire, codec, fallback };
}

/** `Option<T>` written as null when None, None when missing. */
export function optional<T>(wire: string, codec: Codec<T>): Field<T | null> {
  return { wire, codec: nullable(codec), fallback: () => null };
}

/** `Option<T>` left out when None (serde `skip_serializing_if = "Option::is_none"`). */
export function omittable<T>(wire: string, codec: Codec<T>): Field<T | null> {
  return { wire, codec: nullable(codec), fallback: () => null, omitIf: (value) => value === null };
}

type Fields<T> = { readonly [K in keyof T]-?: Field<T[K]> };

/** A struct: a map with the fields in declaration order (the order of `fields`). */
export function struct<T extends object>(fields: Fields<T>): Codec<T> {
  const entries = Object.entries(fields) as [keyof T & string, Field<unknown>][];
  return {
    decode: (value, path) => {
      if (!isCborMap(value)) reject(path, `expected a map, got ${describe(value)}`);
      const out: Record<string, unknown> = {};
      for (const [name, field] of entries) {
        const where = `${path}.${field.wire}`;
        if (Object.hasOwn(value, field.wire)) out[name] = field.codec.decode(value[field.wire], where);
        else if (field.fallback) out[name] = field.fallback();
        else reject(path, `missing field ${field.wire}`);
      }
      return out as T;
    },
    encode: (value, path) => {
      if (typeof value !== 'object' || value === null) reject(path, `must be an object, got ${describe(value)}`);
      const out: Record<string, CborValue> = {};
      for (const [name, field] of entries) {
        const item = (value as Record<string, unknown>)[name];
        if (item === undefined && field.fallback === undefined) reject(path, `missing field ${name}`);
        const actual = item === undefined ? (field.fallback as () => unknown)() : item;
        if (field.omitIf?.(actual)) continue;
        out[field.wire] = field.codec.encode(actual, `${path}.${field.wire}`);
      }
      return out;
    },
  };
}

/** A struct with no fields: any map decodes (extra keys are ignored); encodes as `a0`. */
export const empty: Codec<Record<string, never>> = {
  decode: (value, path) => (isCborMap(value) ? {} : reject(path, `expected a map, got ${describe(value)}`)),
  encode: () => ({}),
};

/** A payload that is never looked at (`core.shutdown`); always encoded as null. */
export const ignored: Codec<null> = {
  decode: () => null,
  encode: () => null,
};

/** One variant of a tagged enum: its TypeScript name, wire name, and the codec of its fields. */
export interface Variant {
  readonly name: string;
  readonly wire: string;
  readonly codec: Codec<object>;
}

/** A newtype variant's value, presented as one named field (`{Handle: 1}` → `{handle: 1}`). */
export function newtype<K extends string, T>(key: K, inner: Codec<T>): Codec<{ [P in K]: T }> {
  return {
    decode: (value, path) => ({ [key]: inner.decode(value, path) }) as { [P in K]: T },
    encode: (value, path) => inner.encode(value[key], path),
  };
}

/**
 * An externally tagged enum: a map with exactly one entry, variant name → variant value
 * (`{"Stat": {...}}`). The TypeScript value is `{type: name, ...fields}`.
 */
export function externallyTagged<T extends { type: string }>(variants: readonly Variant[]): Codec<T> {
  const byWire = new Map(variants.map((v) => [v.wire, v]));
  const byName = new Map(variants.map((v) => [v.name, v]));
  return {
    decode: (value, path) => {
      if (!isCborMap(value)) reject(path, `expected a one-entry map, got ${describe(value)}`);
      const keys = Object.keys(value);
      if (keys.length !== 1) reject(path, `expected a map with exactly one entry, got ${keys.length}`);
      const wire = keys[0] as string;
      const variant = byWire.get(wire) ?? reject(path, `unknown variant ${JSON.stringify(wire)}`);
      return { type: variant.name, ...variant.codec.decode(value[wire], `${path}.${wire}`) } as unknown as T;
    },
    encode: (value, path) => {
      const variant = byName.get(value?.type) ?? reject(path, `unknown variant ${JSON.stringify(value?.type)}`);
      return { [variant.wire]: variant.codec.encode(value, `${path}.${variant.wire}`) };
    },
  };
}

/**
 * An internally tagged enum: one map whose `tagKey` entry names the variant, followed by the
 * variant's fields (`{"kind": "tmpfs", "size_mib": 512}`). The TypeScript value is
 * `{kind: name, ...fields}`.
 */
export function internallyTagged<T extends { kind: string }>(tagKey: string, variants: readonly Variant[]): Codec<T> {
  const byWire = new Map(variants.map((v) => [v.wire, v]));
  const byName = new Map(variants.map((v) => [v.name, v]));
  return {
    decode: (value, path) => {
      if (!isCborMap(value)) reject(path, `expected a map, got ${describe(value)}`);
      if (!Object.hasOwn(value, tagKey)) reject(path, `missing field ${tagKey}`);
      const wire = text.decode(value[tagKey], `${path}.${tagKey}`);
      const variant = byWire.get(wire) ?? reject(`${path}.${tagKey}`, `unknown variant ${JSON.stringify(wire)}`);
      return { kind: variant.name, ...variant.codec.decode(value, path) } as unknown as T;
    },
    encode: (value, path) => {
      const variant = byName.get(value?.kind) ?? reject(path, `unknown variant ${JSON.stringify(value?.kind)}`);
      const fields = variant.codec.encode(value, path) as Record<string, CborValue>;
      return { [tagKey]: variant.wire, ...fields };
    },
  };
}
