/**
 * The client side of the connection start (PROTOCOL §6.1):
 *
 * ```
 * [id_start u32 BE][id_end_exclusive u32 BE][core.ready frame]      stream listeners (unix, tcp)
 * [core.ready frame]                                                single-peer transports (stdio, serial)
 * ```
 *
 * Checked as upstream's clients check it: `idStart < idEnd` and at least one usable non-zero id
 * (`idEnd − max(1, idStart) > 0`); the first frame must decode as `core.ready` (flags, envelope and
 * payload). Without the prefix, ids are any u32 but 0: `[1, 2^32)`. Bytes that follow the ready
 * frame stay in the returned decoder. The legacy pre-0.5 handshake that upstream's Rust client
 * guesses at is not supported.
 */

import type { Duplex } from 'node:stream';

import { ProtocolError, type TransportError } from '../errors.js';
import { FrameDecoder, decodeMessage, lookupMessageType, type Ready } from '../protocol/index.js';
import { transportClosed } from './client-errors.js';

/** The id range of a connection without the handshake prefix: every u32 but 0. */
export const SINGLE_PEER_RANGE = { idStart: 1, idEndExclusive: 2 ** 32 } as const;
/** Bytes of the id-range prefix that stream listeners send before the ready frame. */
export const ID_RANGE_PREFIX_SIZE = 8;

export interface HandshakeResult {
  idStart: number;
  idEndExclusive: number;
  ready: Ready;
  /** The `v` of the ready frame: the agent's generation. */
  readyVersion: number;
  /** Holds whatever arrived after the ready frame. */
  decoder: FrameDecoder;
}

export interface HandshakeOptions {
  /** Whether the 8-byte id-range prefix comes first (stream listeners) or not (single-peer). */
  prefix: boolean;
  /** Deadline in ms; on expiry the stream is destroyed. */
  timeoutMs: number;
  /** The caller's whole time limit, named in the expiry message, when connecting used part of it. */
  limitMs?: number;
  /** Who is at the other end, for messages (`the agent at unix:/run/agent.sock`). */
  peer: string;
}

/**
 * Reads the handshake from `stream`, leaving it paused with no listeners of ours.
 *
 * Rejects (and destroys the stream) with ProtocolError MSB_ERR_BAD_FRAME for a range without
 * usable ids or a first frame that is not `core.ready`; the codec's ProtocolError
 * (MSB_ERR_BAD_CBOR, MSB_ERR_UNKNOWN_MESSAGE, MSB_ERR_FRAME_TOO_LARGE, …) for a first frame
 * that does not decode; TransportError MSB_ERR_TRANSPORT_CLOSED when the stream ends, fails or
 * the deadline passes first.
 */
export function readHandshake(stream: Duplex, opts: HandshakeOptions): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder();
    let prefix: Buffer | null = opts.prefix ? Buffer.alloc(0) : null;
    let range: { idStart: number; idEndExclusive: number } | null = opts.prefix ? null : SINGLE_PEER_RANGE;

    const cleanup = (): void => {
      clearTimeout(timer);
      stream.pause();
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
    };
    const fail = (err: ProtocolError | TransportError): void => {
      cleanup();
      // The stream is ours to discard; what it reports while being torn down (Duplex.from
      // streams emit an AbortError on destroy) is of no interest now.
      stream.on('error', () => {});
      stream.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      if (prefix !== null) {
        prefix = Buffer.concat([prefix, chunk]);
        if (prefix.length < ID_RANGE_PREFIX_SIZE) return;
        chunk = prefix.subarray(ID_RANGE_PREFIX_SIZE);
        range = { idStart: prefix.readUInt32BE(0), idEndExclusive: prefix.readUInt32BE(4) };
        prefix = null;
        const { idStart, idEndExclusive } = range;
        if (!(idStart < idEndExclusive) || idEndExclusive - Math.max(1, idStart) <= 0) {
          fail(
            new ProtocolError(
              'MSB_ERR_BAD_FRAME',
              `${opts.peer} sent the id range [${idStart}, ${idEndExclusive}), which has no usable id`,
            ),
          );
          return;
        }
      }
      let frame;
      try {
        decoder.push(chunk);
        frame = decoder.readFrame();
      } catch (err) {
        fail(err as ProtocolError);
        return;
      }
      if (frame === null) return;
      const decoded = decodeMessage(frame);
      if (!decoded.ok) {
        fail(decoded.rejection.error);
        return;
      }
      const m = decoded.message;
      if (m.type !== 'ready') {
        fail(
          new ProtocolError(
            'MSB_ERR_BAD_FRAME',
            `${opts.peer} sent ${lookupMessageType(m.type).wire} where core.ready must come first`,
          ),
        );
        return;
      }
      cleanup();
      const r = range as { idStart: number; idEndExclusive: number };
      resolve({ ...r, ready: m.payload, readyVersion: m.version, decoder });
    };
    const onEnd = (): void => fail(transportClosed(`${opts.peer} closed the connection during the handshake`));
    const onError = (err: Error): void =>
      fail(transportClosed(`the connection to ${opts.peer} failed during the handshake: ${err.message}`, err));
    const timer = setTimeout(
      () => fail(transportClosed(`no handshake from ${opts.peer} within ${opts.limitMs ?? opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );

    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
    stream.resume();
  });
}
