/**
 * The envelope `{v, t, p}` inside each frame body, and the two directions between frames and typed
 * messages. This is the API an agent router or a client uses:
 *
 * ```ts
 * const frame = decoder.readFrame()            // fatal errors are thrown there (decoder.ts)
 * const result = decodeMessage(frame)          // never throws for any input
 * if (result.ok) route(result.message)         // result.message.type narrows result.message.payload
 * else if (canReceiveCoreError(result.rejection.version ?? peerVersion))
 *   write(encodeMessage(frame.id, toCoreError(result.rejection)))
 * ```
 *
 * A rejection is recoverable: the frame is dropped and the connection goes on (PROTOCOL §1.4).
 * Its `kind` is the `core.error` kind to answer with, checked in the order upstream checks:
 * `malformed_message` (body is not CBOR, or `v`/`t`/`p` missing or ill-typed),
 * `unsupported_message_type` (well-formed, but `t` is unknown), `invalid_flags` (the defined flag
 * bits differ from the type's; reserved bits are ignored), then `invalid_payload` (`p` does not
 * decode as the type's payload). `invalid_session` is for the router to decide; this layer never
 * produces it. A router that wants to ignore some types (upstream ignores guest-to-host types it
 * receives) calls decodeEnvelope, looks at the type, and only then decodePayload.
 */

import { ProtocolError } from '../errors.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import { KNOWN_FLAGS_MASK, encodeFrame, type Frame } from './frame.js';
import {
  CORE_ERROR_MIN_GENERATION,
  ENVELOPE_KEYS,
  PROTOCOL_GENERATION,
  findWireType,
  lookupMessageType,
  selectPayloadCodec,
  type CoreError,
  type CoreErrorKind,
  type MessageName,
  type Payloads,
} from './messages.js';
import { bytes, ignored, isCborMap, type Codec } from './schema.js';

/** The `core.error` kinds a frame can be rejected with by this layer. */
export type RejectionKind = Extract<
  CoreErrorKind,
  'malformed_message' | 'unsupported_message_type' | 'invalid_flags' | 'invalid_payload'
>;

/** Why a frame could not become a message. Data, not an exception: answer it and carry on. */
export interface MessageRejection {
  readonly kind: RejectionKind;
  /** The frame's correlation id: answer on it. */
  readonly id: number;
  readonly flags: number;
  /** The sender's `v`, when it was readable. */
  readonly version: number | null;
  /** The `t` string, when it was readable (also when unknown). */
  readonly offendingType: string | null;
  /**
   * `code` is MSB_ERR_BAD_CBOR (malformed_message, invalid_payload), MSB_ERR_UNKNOWN_MESSAGE
   * (unsupported_message_type) or MSB_ERR_BAD_FRAME (invalid_flags); `message` is the prose
   * for `core.error`.
   */
  readonly error: ProtocolError;
}

/** A frame whose envelope is valid; the payload is still encoded. */
export interface Envelope {
  readonly id: number;
  readonly flags: number;
  readonly version: number;
  readonly type: MessageName;
  /** The payload's CBOR bytes (the content of `p`). */
  readonly payload: Buffer;
}

/** A decoded message; checking `type` narrows `payload`. */
export type ReceivedMessage = {
  [K in MessageName]: {
    readonly id: number;
    readonly flags: number;
    readonly version: number;
    readonly type: K;
    readonly payload: Payloads[K];
  };
}[MessageName];

/** A message to send; checking `type` narrows `payload`. */
export type OutgoingMessage = { [K in MessageName]: { type: K; payload: Payloads[K] } }[MessageName];

export type EnvelopeResult = { ok: true; envelope: Envelope } | { ok: false; rejection: MessageRejection };
export type PayloadResult<K extends MessageName> =
  | { ok: true; payload: Payloads[K] }
  | { ok: false; rejection: MessageRejection };
export type MessageResult = { ok: true; message: ReceivedMessage } | { ok: false; rejection: MessageRejection };

const CODE_OF: { readonly [K in RejectionKind]: string } = {
  malformed_message: 'MSB_ERR_BAD_CBOR',
  unsupported_message_type: 'MSB_ERR_UNKNOWN_MESSAGE',
  invalid_flags: 'MSB_ERR_BAD_FRAME',
  invalid_payload: 'MSB_ERR_BAD_CBOR',
};

/** Decode and check the envelope of a frame (not its payload). Never throws. */
export function decodeEnvelope(frame: Frame): EnvelopeResult {
  let version: number | null = null;
  let offendingType: string | null = null;
  const rejectWith = (kind: RejectionKind, message: string, cause?: unknown): EnvelopeResult => ({
    ok: false,
    rejection: {
      kind,
      id: frame.id,
      flags: frame.flags,
      version,
      offendingType,
      error: new ProtocolError(CODE_OF[kind], message, cause === undefined ? undefined : { cause }),
    },
  });

  let map: unknown;
  try {
    map = decodeCbor(frame.body);
  } catch (err) {
    return rejectWith('malformed_message', `malformed envelope: ${(err as Error).message}`, err);
  }
  if (!isCborMap(map)) return rejectWith('malformed_message', 'malformed envelope: the body is not a map');
  const { version: vKey, type: tKey, payload: pKey } = ENVELOPE_KEYS;
  const v = map[vKey];
  const t = map[tKey];
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xff) version = v;
  if (typeof t === 'string') offendingType = t;

  if (!Object.hasOwn(map, vKey)) return rejectWith('malformed_message', `malformed envelope: missing field ${vKey}`);
  if (version === null) return rejectWith('malformed_message', `malformed envelope: ${vKey} must be an integer 0..255`);
  if (!Object.hasOwn(map, tKey)) return rejectWith('malformed_message', `malformed envelope: missing field ${tKey}`);
  if (offendingType === null) return rejectWith('malformed_message', `malformed envelope: ${tKey} must be a text string`);
  if (!Object.hasOwn(map, pKey)) return rejectWith('malformed_message', `malformed envelope: missing field ${pKey}`);
  let payload: Buffer;
  try {
    payload = bytes.decode(map[pKey], pKey);
  } catch (err) {
    return rejectWith('malformed_message', `malformed envelope: ${(err as Error).message}`, err);
  }

  const info = findWireType(offendingType);
  if (info === undefined) return rejectWith('unsupported_message_type', `unsupported message type: ${offendingType}`);
  if ((frame.flags & KNOWN_FLAGS_MASK) !== info.flags) {
    return rejectWith('invalid_flags', `invalid flags for ${info.wire}: got ${frame.flags}, expected ${info.flags}`);
  }
  return { ok: true, envelope: { id: frame.id, flags: frame.flags, version, type: info.name, payload } };
}

/**
 * Decode the payload of a valid envelope with the defaults of PROTOCOL §2-3. Never throws.
 * `core.shutdown` always succeeds with `null`: its payload is not read.
 */
export function decodePayload<K extends MessageName>(envelope: Envelope & { readonly type: K }): PayloadResult<K> {
  const info = lookupMessageType(envelope.type);
  const codec = selectPayloadCodec(envelope.type);
  try {
    // A payload that is never read (shutdown) is not parsed either: any bytes are accepted.
    const value = codec === ignored ? null : decodeCbor(envelope.payload);
    return { ok: true, payload: codec.decode(value, 'payload') };
  } catch (err) {
    return {
      ok: false,
      rejection: {
        kind: 'invalid_payload',
        id: envelope.id,
        flags: envelope.flags,
        version: envelope.version,
        offendingType: info.wire,
        error: new ProtocolError(CODE_OF.invalid_payload, `decode payload for ${info.wire}: ${(err as Error).message}`, {
          cause: err,
        }),
      },
    };
  }
}

/** Decode a frame into a typed message, or say which `core.error` it deserves. Never throws. */
export function decodeMessage(frame: Frame): MessageResult {
  const decoded = decodeEnvelope(frame);
  if (!decoded.ok) return decoded;
  const { envelope } = decoded;
  const payload = decodePayload(envelope);
  if (!payload.ok) return payload;
  const message = {
    id: envelope.id,
    flags: envelope.flags,
    version: envelope.version,
    type: envelope.type,
    payload: payload.payload,
  } as ReceivedMessage;
  return { ok: true, message };
}

/**
 * Encode a message's payload alone (the bytes that go into `p`).
 *
 * @throws ProtocolError `MSB_ERR_BAD_CBOR` when a field is missing, of the wrong type, out of range
 *   for its wire type, or an enum value the protocol does not define; `MSB_ERR_UNKNOWN_MESSAGE` for
 *   an unknown `type`.
 */
export function encodePayload(message: OutgoingMessage): Buffer {
  const info = lookupMessageType(message.type);
  const codec = selectPayloadCodec(message.type) as Codec<unknown>;
  return encodeCbor(codec.encode(message.payload, info.wire));
}

/**
 * Encode a message as a complete frame: length prefix, `id`, the type's flags, and the envelope
 * `{v, t, p}`. The bytes are identical to upstream's for the same values.
 *
 * @param options.version The `v` to send; PROTOCOL_GENERATION (7) by default.
 * @throws ProtocolError as encodePayload, `MSB_ERR_BAD_CBOR` for a version outside 0..255, and
 *   as encodeFrame (`MSB_ERR_FRAME_TOO_LARGE`, `MSB_ERR_BAD_FRAME` for a bad id).
 * @example
 * socket.write(encodeMessage(7, { type: 'execSignal', payload: { signal: 15 } }))
 */
export function encodeMessage(id: number, message: OutgoingMessage, options: { version?: number } = {}): Buffer {
  const version = options.version ?? PROTOCOL_GENERATION;
  if (!Number.isInteger(version) || version < 0 || version > 0xff) {
    throw new ProtocolError('MSB_ERR_BAD_CBOR', `envelope version must be an integer 0..255, got ${String(version)}`);
  }
  const info = lookupMessageType(message.type);
  const payload = encodePayload(message);
  const body = encodeCbor({
    [ENVELOPE_KEYS.version]: version,
    [ENVELOPE_KEYS.type]: info.wire,
    [ENVELOPE_KEYS.payload]: payload,
  });
  return encodeFrame({ id, flags: info.flags, body });
}

/** The `core.error` message that answers a rejection (send it on `rejection.id`). */
export function toCoreError(rejection: MessageRejection): { type: 'error'; payload: CoreError } {
  return {
    type: 'error',
    payload: { kind: rejection.kind, message: rejection.error.message, offendingType: rejection.offendingType },
  };
}

/** Whether a peer that sent envelope version `version` understands `core.error` (generation 5+). */
export function canReceiveCoreError(version: number | null): boolean {
  return version !== null && version >= CORE_ERROR_MIN_GENERATION;
}
