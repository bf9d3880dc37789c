/**
 * A TCP connection made from inside the guest (`core.tcp.*`), as a Duplex: writes become
 * `core.tcp.data` frames (at most 1 MiB each), `end()` sends `core.tcp.eof`, destroying it sends
 * `core.tcp.close`. The destination's bytes and EOF arrive as the readable side; `core.tcp.failed`
 * destroys it with a TransportError (MSB_ERR_TCP_FAILED) carrying the agent's text.
 */

import { Duplex } from 'node:stream';

import { TransportError, type ProtocolError } from '../errors.js';
import type { ReceivedMessage } from '../protocol/index.js';
import type { ClientConnection, SessionHandler } from './connection.js';

const TCP_CHUNK_SIZE = 1024 * 1024;
const READ_HIGH_WATER_MARK = 256 * 1024;

export class TcpStream extends Duplex implements SessionHandler {
  readonly #conn: ClientConnection;
  #id = 0;
  #settle: { resolve(s: TcpStream): void; reject(err: Error): void } | null;
  #terminal = false;

  /** @internal use AgentClient.connectTcp() */
  constructor(conn: ClientConnection, settle: { resolve(s: TcpStream): void; reject(err: Error): void }) {
    super({ readableHighWaterMark: READ_HIGH_WATER_MARK, allowHalfOpen: true });
    this.#conn = conn;
    this.#settle = settle;
  }

  /** @internal */
  start(id: number, host: string, port: number): void {
    this.#id = id;
    this.#conn.send(id, { type: 'tcpConnect', payload: { host, port } });
  }

  handle(m: ReceivedMessage): void {
    switch (m.type) {
      case 'tcpConnected':
        this.#settle?.resolve(this);
        this.#settle = null;
        return;
      case 'tcpData':
        if (!this.push(m.payload.data)) this.#conn.block(this);
        return;
      case 'tcpEof':
        this.push(null);
        return;
      case 'tcpClosed':
        this.#terminal = true;
        this.push(null);
        this.#conn.unblock(this);
        return;
      case 'tcpFailed':
        this.#terminal = true;
        this.fail(new TransportError('MSB_ERR_TCP_FAILED', m.payload.error));
        return;
      default:
        return;
    }
  }

  fail(err: ProtocolError | TransportError): void {
    this.#terminal = true;
    this.#conn.unblock(this);
    if (this.#settle) {
      // Not connected yet: the rejection is the report; the stream was never handed out.
      this.#settle.reject(err);
      this.#settle = null;
      this.destroy();
      return;
    }
    this.destroy(err);
  }

  override _read(): void {
    this.#conn.unblock(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    try {
      let full = false;
      for (let off = 0; off < chunk.length; off += TCP_CHUNK_SIZE) {
        full = !this.#conn.send(this.#id, { type: 'tcpData', payload: { data: chunk.subarray(off, off + TCP_CHUNK_SIZE) } });
      }
      if (full) this.#conn.whenDrained(cb);
      else cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    try {
      this.#conn.send(this.#id, { type: 'tcpEof', payload: {} });
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#conn.unblock(this);
    if (!this.#terminal && this.#id !== 0) {
      try {
        this.#conn.send(this.#id, { type: 'tcpClose', payload: {} });
      } catch {
        // The connection is gone: so is the session.
      }
    }
    cb(err);
  }
}
