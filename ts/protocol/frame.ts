/**
 * Frame layout of the microsandbox agent protocol (every generation, including 7):
 *
 * ```
 * offset  size   field
 * 0       4      len    u32 big-endian: the number of bytes that FOLLOW this field (5 + body length)
 * 4       4      id     u32 big-endian correlation id (0 is reserved for control frames)
 * 8       1      flags  bit set: 0x01 TERMINAL, 0x02 SESSION_START, 0x04 SHUTDOWN, 0x08-0x80 reserved
 * 9       len-5  body   one CBOR item: the envelope {v, t, p} (see messages.ts)
 * ```
 *
 * `id` and `flags` sit outside the CBOR so that relays can route without parsing it.
 * `len` is at least FRAME_HEADER_SIZE (5: id + flags) and at most MAX_FRAME_SIZE (4 MiB), so a whole
 * frame, length prefix included, is at most MAX_FRAME_SIZE + 4 bytes. A length outside that range
 * means the stream is desynchronised; that is fatal for the connection (see decoder.ts).
 */

import { ProtocolError } from '../errors.js';

/** Largest allowed `len`: id + flags + body, not counting the 4-byte length prefix. */
export const MAX_FRAME_SIZE = 4 * 1024 * 1024;
/** Bytes of id + flags, which `len` always covers; also the smallest valid `len`. */
export const FRAME_HEADER_SIZE = 5;
/** Bytes of the `len` field that precedes every frame. */
export const LENGTH_PREFIX_SIZE = 4;

/** Set on the last frame of a session (the types whose MessageTypeInfo.isTerminal is true). */
export const FLAG_TERMINAL = 0x01;
/** Set on the first frame of a session (MessageTypeInfo.isSessionStart). */
export const FLAG_SESSION_START = 0x02;
/** Set on the shutdown message only. */
export const FLAG_SHUTDOWN = 0x04;
/** The bits this generation defines. Receivers compare only these; the rest are reserved. */
export const KNOWN_FLAGS_MASK = FLAG_TERMINAL | FLAG_SESSION_START | FLAG_SHUTDOWN;

/** One frame: the header fields and the CBOR body (the envelope), without the length prefix. */
export interface Frame {
  /** Correlation id, an unsigned 32-bit integer. */
  readonly id: number;
  /** The flags byte, 0-255. */
  readonly flags: number;
  /** The envelope bytes. A frame from FrameDecoder may be a view into the pushed chunk. */
  readonly body: Buffer;
}

/**
 * Encode a frame: length prefix, id, flags, then the body bytes.
 *
 * @throws ProtocolError `MSB_ERR_FRAME_TOO_LARGE` when `5 + body.length > MAX_FRAME_SIZE` (nothing
 *   is produced), `MSB_ERR_BAD_FRAME` when `id` is not a u32 or `flags` not a u8.
 */
export function encodeFrame(frame: { id: number; flags: number; body: Uint8Array }): Buffer {
  const header = encodeFrameHeader(frame.id, frame.flags, frame.body.length);
  const out = Buffer.allocUnsafe(header.length + frame.body.length);
  header.copy(out, 0);
  out.set(frame.body, header.length);
  return out;
}

/**
 * Encode only the 9 header bytes of a frame whose body has `bodyLength` bytes, for callers that
 * write header and body separately (writev) and want to avoid copying a large body.
 *
 * @throws ProtocolError as encodeFrame.
 */
export function encodeFrameHeader(id: number, flags: number, bodyLength: number): Buffer {
  if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) {
    throw new ProtocolError('MSB_ERR_BAD_FRAME', `frame id must be an integer 0..4294967295, got ${String(id)}`);
  }
  if (!Number.isInteger(flags) || flags < 0 || flags > 0xff) {
    throw new ProtocolError('MSB_ERR_BAD_FRAME', `frame flags must be an integer 0..255, got ${String(flags)}`);
  }
  const len = FRAME_HEADER_SIZE + bodyLength;
  if (len > MAX_FRAME_SIZE) {
    throw new ProtocolError(
      'MSB_ERR_FRAME_TOO_LARGE',
      `frame of ${len} bytes exceeds MAX_FRAME_SIZE (${MAX_FRAME_SIZE})`,
    );
  }
  const header = Buffer.allocUnsafe(LENGTH_PREFIX_SIZE + FRAME_HEADER_SIZE);
  header.writeUInt32BE(len, 0);
  header.writeUInt32BE(id, 4);
  header[8] = flags;
  return header;
}

/**
 * Check a frame's `len` field and return the size of the whole frame (prefix included).
 *
 * @throws ProtocolError `MSB_ERR_FRAME_TOO_LARGE` above MAX_FRAME_SIZE, `MSB_ERR_BAD_FRAME` below 5.
 */
export function checkFrameLength(len: number): number {
  if (len > MAX_FRAME_SIZE) {
    throw new ProtocolError(
      'MSB_ERR_FRAME_TOO_LARGE',
      `frame length ${len} exceeds MAX_FRAME_SIZE (${MAX_FRAME_SIZE}); the stream is desynchronised`,
    );
  }
  if (len < FRAME_HEADER_SIZE) {
    throw new ProtocolError(
      'MSB_ERR_BAD_FRAME',
      `frame length ${len} is below the minimum of ${FRAME_HEADER_SIZE}; the stream is desynchronised`,
    );
  }
  return LENGTH_PREFIX_SIZE + len;
}
