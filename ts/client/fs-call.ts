/**
 * One `core.fs.request` on the client side: its data chunks (a streaming Read) go to `onData`,
 * its terminal `core.fs.response` settles `result` (FsError when `ok` is false).
 */

import { FsError, type ProtocolError, type TransportError } from '../errors.js';
import { lookupMessageType, type FsOp, type FsResponseData, type ReceivedMessage } from '../protocol/index.js';
import { fromCoreError, unexpectedTerminal } from './client-errors.js';
import type { ClientConnection, SessionHandler } from './connection.js';

export interface FsCall {
  /** The request's id: a Write stream's chunks go on it. */
  readonly id: number;
  readonly result: Promise<FsResponseData | null>;
}

interface Settle {
  resolve(d: FsResponseData | null): void;
  reject(e: Error): void;
}

class FsCallHandler implements SessionHandler {
  readonly #op: FsOp;
  readonly #onData: ((chunk: Buffer) => void) | undefined;
  readonly #settle: Settle;

  constructor(op: FsOp, onData: ((chunk: Buffer) => void) | undefined, settle: Settle) {
    this.#op = op;
    this.#onData = onData;
    this.#settle = settle;
  }

  handle(m: ReceivedMessage): void {
    if (m.type === 'fsData') this.#onData?.(m.payload.data);
    else if (m.type === 'fsResponse') {
      if (m.payload.ok) this.#settle.resolve(m.payload.data);
      else this.#settle.reject(new FsError(this.#op.type, m.payload.error ?? `${this.#op.type} failed`));
    } else if (m.type === 'error') this.#settle.reject(fromCoreError(m.payload, 'fsRequest'));
    else if (lookupMessageType(m.type).isTerminal) this.#settle.reject(unexpectedTerminal(m.type, 'fsRequest'));
  }

  fail(err: ProtocolError | TransportError): void {
    this.#settle.reject(err);
  }
}

/**
 * Sends `op` on a fresh id.
 * @throws the connection's failure when it is closed (nothing is sent).
 */
export function startFsCall(conn: ClientConnection, op: FsOp, onData?: (chunk: Buffer) => void): FsCall {
  let settle!: Settle;
  const result = new Promise<FsResponseData | null>((resolve, reject) => (settle = { resolve, reject }));
  const id = conn.open(new FsCallHandler(op, onData, settle));
  try {
    conn.send(id, { type: 'fsRequest', payload: { op } });
  } catch (err) {
    conn.forget(id);
    throw err;
  }
  return { id, result };
}
