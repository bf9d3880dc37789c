/**
 * Frames of the bulk data messages (`core.exec.stdout`, `core.exec.stderr`, `core.tcp.data`,
 * `core.fs.data`, `core.exec.stdin`) as two parts: a small head (frame header, the envelope up to
 * the byte-string header of `data`) and the chunk itself, untouched. Written together with one
 * writev, the chunk is never copied; the bytes are exactly encodeMessage's. The envelope carries
 * `p` as a byte string holding the encoded payload `{data}`, and `data` is the last item of both
 * (checked when the parts are first built), so only two byte-string headers depend on the size.
 */

import { encodeFrameHeader, LENGTH_PREFIX_SIZE, FRAME_HEADER_SIZE } from './frame.js';
import { encodeMessage, encodePayload } from './envelope.js';
import type { MessageName } from './messages.js';

export type DataMessageName = 'execStdout' | 'execStderr' | 'execStdin' | 'tcpData' | 'fsData';

interface Parts {
  flags: number;
  /** The envelope up to the byte-string header of `p`. */
  envelope: Buffer;
  /** The payload up to the byte-string header of `data`. */
  payload: Buffer;
}

const partsByType = new Map<MessageName, Parts>();

function partsOf(type: DataMessageName): Parts {
  let parts = partsByType.get(type);
  if (!parts) {
    const message = { type, payload: { data: Buffer.alloc(0) } } as Parameters<typeof encodeMessage>[1];
    const frame = encodeMessage(0, message);
    const payload = encodePayload(message);
    const tail = Buffer.concat([byteStringHeader(payload.length), payload]);
    const headerSize = LENGTH_PREFIX_SIZE + FRAME_HEADER_SIZE;
    // An empty byte string is the single byte 0x40; it must end the payload, and the payload the envelope.
    if (payload[payload.length - 1] !== 0x40 || !frame.subarray(frame.length - tail.length).equals(tail)) {
      throw new Error(`${type}: data is not the last item of its envelope`);
    }
    parts = {
      flags: frame[headerSize - 1]!,
      envelope: Buffer.from(frame.subarray(headerSize, frame.length - tail.length)),
      payload: Buffer.from(payload.subarray(0, payload.length - 1)),
    };
    partsByType.set(type, parts);
  }
  return parts;
}

/** CBOR major type 2 (byte string) header for `n` bytes. */
function byteStringHeader(n: number): Buffer {
  if (n < 24) return Buffer.from([0x40 + n]);
  if (n < 0x100) return Buffer.from([0x58, n]);
  if (n < 0x10000) {
    const b = Buffer.allocUnsafe(3);
    b[0] = 0x59;
    b.writeUInt16BE(n, 1);
    return b;
  }
  const b = Buffer.allocUnsafe(5);
  b[0] = 0x5a;
  b.writeUInt32BE(n, 1);
  return b;
}

/**
 * The fixed parts of a data message's frame (for the native router, crates/spawn-core/src/route.rs):
 * the flags, the envelope up to the header of `p`, the payload up to the header of `data`.
 */
export function dataFrameParts(type: DataMessageName): { flags: number; envelope: Buffer; payload: Buffer } {
  const parts = partsOf(type);
  return { flags: parts.flags, envelope: parts.envelope, payload: parts.payload };
}

/**
 * The frame of `{type, payload: {data}}` on `id` as [head, data]; their concatenation equals
 * encodeMessage(id, message). The caller must not modify `data` until it has been written.
 * @throws ProtocolError as encodeFrameHeader (`MSB_ERR_FRAME_TOO_LARGE`, `MSB_ERR_BAD_FRAME`).
 */
export function encodeDataFrame(id: number, type: DataMessageName, data: Buffer): [Buffer, Buffer] {
  const parts = partsOf(type);
  const dataHeader = byteStringHeader(data.length);
  const payloadLength = parts.payload.length + dataHeader.length + data.length;
  const payloadHeader = byteStringHeader(payloadLength);
  const header = encodeFrameHeader(id, parts.flags, parts.envelope.length + payloadHeader.length + payloadLength);
  return [Buffer.concat([header, parts.envelope, payloadHeader, parts.payload, dataHeader]), data];
}
