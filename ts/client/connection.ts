/**
 * One client connection after the handshake: frames out, frames in, routed by correlation id to
 * the session that owns it, and the read side paused while any session's output stream is full.
 *
 * Routing: a frame for an id with no open session is dropped (also id 0). After a frame with
 * FLAG_TERMINAL the id is free again. A frame whose envelope or payload does not decode fails the
 * session on its id with the codec's ProtocolError (its `kind` is the core.error kind) and frees
 * the id. A framing error (bad length) is fatal: every session fails with it and the stream closes.
 *
 * Flow control: output streams call `block(token)` when `push()` returns false and
 * `unblock(token)` when they are read again (or end, or are destroyed). While any token is held
 * the stream is paused, so the transport's buffer fills and the agent's writes wait: a consumer
 * that stops reading cannot make the client buffer without bound. It also holds back every other
 * session of this connection, as one byte stream must.
 */

import type { Duplex } from 'node:stream';

import type { ProtocolError, TransportError } from '../errors.js';
import {
  FLAG_TERMINAL,
  decodeMessage,
  encodeMessage,
  type FrameDecoder,
  type OutgoingMessage,
  type ReceivedMessage,
} from '../protocol/index.js';
import { transportClosed } from './client-errors.js';
import { IdAllocator } from './id-allocator.js';

/** The receiving end of one id: an exec, a ping, … */
export interface SessionHandler {
  /** A decoded frame for this id. After a terminal frame the id is freed by the connection. */
  handle(message: ReceivedMessage): void;
  /** The session cannot go on: the connection closed, or a frame for it did not decode. */
  fail(err: ProtocolError | TransportError): void;
}

/** What an output stream needs from the connection. */
export interface FlowControl {
  block(token: object): void;
  unblock(token: object): void;
}

export class ClientConnection implements FlowControl {
  readonly #stream: Duplex;
  readonly #decoder: FrameDecoder;
  readonly #ids: IdAllocator;
  readonly #sessions = new Map<number, SessionHandler>();
  readonly #blockers = new Set<object>();
  #drainWaiters: ((err?: Error) => void)[] = [];
  #failure: ProtocolError | TransportError | null = null;
  #streamError: Error | null = null;
  readonly #closed: Promise<void>;

  /** Takes over a stream the handshake left paused; `decoder` may already hold frames. */
  constructor(stream: Duplex, decoder: FrameDecoder, range: { idStart: number; idEndExclusive: number }) {
    this.#stream = stream;
    this.#decoder = decoder;
    this.#ids = new IdAllocator(range.idStart, range.idEndExclusive);
    this.#closed = new Promise((resolve) => {
      if (stream.destroyed && stream.closed) resolve();
      else stream.once('close', () => resolve());
    });
    stream.on('data', (chunk: Buffer) => this.#receive(chunk));
    stream.on('drain', () => this.#wakeDrainWaiters());
    stream.on('error', (err: Error) => {
      this.#streamError ??= err;
      this.#teardown(transportClosed(`the connection to the agent failed: ${err.message}`, err));
    });
    stream.on('end', () => this.#teardown(this.#endError()));
    stream.on('close', () => this.#teardown(this.#endError()));
    this.#receive(null);
    if (stream.destroyed) this.#teardown(this.#endError());
    if (this.#failure === null) stream.resume();
  }

  /** The error every later call fails with, once the connection is closed; null while open. */
  get failure(): ProtocolError | TransportError | null {
    return this.#failure;
  }

  /** Resolves when the underlying stream has closed. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /**
   * Allocates an id for `handler`.
   * @throws the connection's failure once closed; SessionError MSB_ERR_SESSION_EXISTS when
   * every id of the range is in use.
   */
  open(handler: SessionHandler): number {
    if (this.#failure !== null) throw this.#failure;
    const id = this.#ids.take();
    this.#sessions.set(id, handler);
    return id;
  }

  /** Forgets a session whose id will not be used again (its request never went out). */
  forget(id: number): void {
    this.#sessions.delete(id);
    this.#ids.release(id);
  }

  /**
   * Encodes and writes one message; false when the transport's buffer is full (see whenDrained).
   * @throws the connection's failure once closed; ProtocolError from the codec for a message
   * that cannot be encoded (nothing is written then).
   */
  send(id: number, message: OutgoingMessage): boolean {
    if (this.#failure !== null) throw this.#failure;
    return this.#stream.write(encodeMessage(id, message));
  }

  /** Calls `cb` once the transport's buffer has room (at once if it has), or with the failure. */
  whenDrained(cb: (err?: Error) => void): void {
    if (this.#failure !== null) cb(this.#failure);
    else if (!this.#stream.writableNeedDrain) cb();
    else this.#drainWaiters.push(cb);
  }

  block(token: object): void {
    if (this.#blockers.has(token)) return;
    this.#blockers.add(token);
    if (this.#blockers.size === 1) this.#stream.pause();
  }

  unblock(token: object): void {
    if (!this.#blockers.delete(token)) return;
    if (this.#blockers.size === 0 && this.#failure === null) this.#stream.resume();
  }

  /**
   * Fails every open session with `reason` and closes the stream, after flushing what was
   * already written (a last `core.shutdown`, stdin). Idempotent.
   */
  async close(reason: TransportError): Promise<void> {
    if (this.#failure === null) {
      this.#teardown(reason, { flush: true });
    }
    await this.#closed;
  }

  #endError(): TransportError {
    const cause = this.#streamError ?? undefined;
    return transportClosed('the agent closed the connection', cause);
  }

  #receive(chunk: Buffer | null): void {
    if (this.#failure !== null) return;
    try {
      if (chunk !== null) this.#decoder.push(chunk);
      for (let frame = this.#decoder.readFrame(); frame !== null; frame = this.#decoder.readFrame()) {
        this.#route(frame);
        if (this.#failure !== null) return;
      }
    } catch (err) {
      // Only the decoder throws here: a bad length desynchronises the stream (PROTOCOL §1.4).
      this.#teardown(err as ProtocolError);
    }
  }

  #route(frame: { id: number; flags: number; body: Buffer }): void {
    const handler = this.#sessions.get(frame.id);
    if (handler === undefined) return;
    const decoded = decodeMessage(frame);
    if (!decoded.ok) {
      this.#end(frame.id);
      const { error, kind, offendingType } = decoded.rejection;
      deliver(() => handler.fail(Object.assign(error, { kind, offendingType })));
      return;
    }
    if ((frame.flags & FLAG_TERMINAL) !== 0) this.#end(frame.id);
    deliver(() => handler.handle(decoded.message));
  }

  #end(id: number): void {
    this.#sessions.delete(id);
    this.#ids.release(id);
  }

  #wakeDrainWaiters(err?: Error): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w(err);
  }

  #teardown(reason: ProtocolError | TransportError, opts: { flush?: boolean } = {}): void {
    if (this.#failure !== null) return;
    this.#failure = reason;
    this.#blockers.clear();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    for (const s of sessions) deliver(() => s.fail(reason));
    this.#wakeDrainWaiters(reason);
    const stream = this.#stream;
    if (!opts.flush || stream.destroyed) {
      stream.destroy();
      return;
    }
    // end() writes what is queued, then half-closes; the peer closes its side in answer. A peer
    // that never reads would hold that forever, so the stream is destroyed after a bound.
    const timer = setTimeout(() => stream.destroy(), FLUSH_BOUND_MS);
    timer.unref();
    stream.once('close', () => clearTimeout(timer));
    stream.once('finish', () => stream.destroy());
    stream.end();
  }
}

/** How long close() lets queued frames flush before the stream is destroyed. */
const FLUSH_BOUND_MS = 2000;

/**
 * Runs a handler step; an exception (thrown by a user's listener on a stream we pushed to) is
 * re-raised on the next tick, so it surfaces without breaking the frame loop.
 */
function deliver(step: () => void): void {
  try {
    step();
  } catch (err) {
    process.nextTick(() => {
      throw err;
    });
  }
}
