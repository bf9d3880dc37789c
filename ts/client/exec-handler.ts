/**
 * The frames of one exec id, routed by the connection: before `core.exec.started` they settle
 * the `exec()` promise (started, failed, core.error); after it they feed the ClientExec (output,
 * stdin errors, the exit, or a core.error that ends it without an exit).
 */

import type { ProtocolError, TransportError } from '../errors.js';
import { FLAG_TERMINAL, type ExecRequest, type ReceivedMessage } from '../protocol/index.js';
import { fromCoreError, unexpectedTerminal } from './client-errors.js';
import { ClientExec } from './client-exec.js';
import type { ClientConnection, SessionHandler } from './connection.js';
import { toExitInfo, toSpawnError } from './exec-payloads.js';

export class ExecSessionHandler implements SessionHandler {
  readonly #request: ExecRequest;
  readonly #connection: ClientConnection;
  readonly #resolve: (exec: ClientExec) => void;
  readonly #reject: (err: Error) => void;
  #id = 0;
  #exec: ClientExec | null = null;

  constructor(
    request: ExecRequest,
    connection: ClientConnection,
    settle: { resolve: (exec: ClientExec) => void; reject: (err: Error) => void },
  ) {
    this.#request = request;
    this.#connection = connection;
    this.#resolve = settle.resolve;
    this.#reject = settle.reject;
  }

  /** Sends the request on the id the connection gave this handler. */
  start(id: number): void {
    this.#id = id;
    this.#connection.send(id, { type: 'execRequest', payload: this.#request });
  }

  handle(m: ReceivedMessage): void {
    const exec = this.#exec;
    if (exec === null) {
      if (m.type === 'execStarted') {
        this.#exec = new ClientExec(m.payload.pid, this.#request.tty, this.#connection, (msg) =>
          this.#connection.send(this.#id, msg),
        );
        this.#resolve(this.#exec);
      } else if (m.type === 'execFailed') this.#reject(toSpawnError(this.#request, m.payload));
      else if (m.type === 'error') this.#reject(fromCoreError(m.payload, 'execRequest'));
      else if (isTerminal(m)) this.#reject(unexpectedTerminal(m.type, 'execRequest'));
      return;
    }
    switch (m.type) {
      case 'execStdout':
        exec.deliver('stdout', m.payload.data);
        break;
      case 'execStderr':
        exec.deliver('stderr', m.payload.data);
        break;
      case 'execStdinError':
        exec.stdinFailed(m.payload);
        break;
      case 'execExited':
        exec.finish(toExitInfo(m.payload));
        break;
      case 'execFailed':
        exec.abort(toSpawnError(this.#request, m.payload));
        break;
      case 'error':
        exec.abort(fromCoreError(m.payload, 'execRequest'));
        break;
      default:
        if (isTerminal(m)) exec.abort(unexpectedTerminal(m.type, 'execRequest'));
    }
  }

  fail(err: ProtocolError | TransportError): void {
    if (this.#exec === null) this.#reject(err);
    else this.#exec.abort(err);
  }
}

function isTerminal(m: ReceivedMessage): boolean {
  return (m.flags & FLAG_TERMINAL) !== 0;
}
