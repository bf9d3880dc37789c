/**
 * A process started through the agent (`core.exec.*`, PROTOCOL §3.2 and §4.5), shaped like
 * spawnSession()'s Session: `stdout`/`stderr` Readables, a `stdin` Writable, `resize`, `kill`,
 * and `exited`, which resolves only after both output streams have been given their last byte
 * and ended.
 */

import type { Readable, Writable } from 'node:stream';

import { invalidOption } from '../errors.js';
import type { OutgoingMessage } from '../protocol/index.js';
import { ExecInput, ExecOutput } from './client-streams.js';
import type { ClientConnection } from './connection.js';
import { checkSize, type ClientExitInfo } from './exec-payloads.js';
import { toSignalNumber } from './signals.js';

/**
 * A running remote process, from `AgentClient.exec()`.
 * @example
 * const p = await client.exec({ cmd: 'cat' });
 * p.stdout.pipe(process.stdout);
 * p.stdin.end('hello\n');
 * const { code } = await p.exited;
 */
export class ClientExec {
  /** The guest pid of the process, which is also its process group. */
  readonly pid: number;
  /** Output (the PTY's in tty mode). A consumer that stops reading pauses the whole connection. */
  readonly stdout: Readable;
  /** Standard error, or null in tty mode. */
  readonly stderr: Readable | null;
  /**
   * Standard input; `end()` is EOF. A `core.exec.stdin.error` from the agent is an 'error'
   * event here (`code` = errno name, or `'EIO'`), never a crash: a no-op listener is installed.
   */
  readonly stdin: Writable;
  /**
   * Resolves with the exit once both output streams have ended (or at once for a stream nobody
   * consumes: its data stays readable). Rejects with TransportError MSB_ERR_TRANSPORT_CLOSED if
   * the connection goes before the exit, or with a ProtocolError carrying `kind` if the agent
   * answers the session with `core.error`: never a made-up exit.
   */
  readonly exited: Promise<ClientExitInfo>;

  readonly #send: (message: OutgoingMessage) => boolean;
  readonly #tty: boolean;
  readonly #out: ExecOutput;
  readonly #err: ExecOutput | null;
  readonly #in: ExecInput;
  #settle!: { resolve: (info: ClientExitInfo) => void; reject: (err: Error) => void };
  #isDone = false;

  /** @internal use AgentClient.exec() */
  constructor(pid: number, tty: boolean, connection: ClientConnection, send: (message: OutgoingMessage) => boolean) {
    this.pid = pid;
    this.#tty = tty;
    this.#send = send;
    this.#out = new ExecOutput(connection);
    this.#err = tty ? null : new ExecOutput(connection);
    this.#in = new ExecInput({ send, whenDrained: (cb) => connection.whenDrained(cb) });
    this.stdout = this.#out;
    this.stderr = this.#err;
    this.stdin = this.#in;
    this.exited = new Promise((resolve, reject) => (this.#settle = { resolve, reject }));
    // A caller that never looks at `exited` must not crash on a lost connection.
    this.exited.catch(() => {});
  }

  /**
   * Sets the terminal size (`core.exec.resize`); the foreground group gets SIGWINCH. A no-op after the exit.
   * @throws TypeError (code MSB_ERR_INVALID_OPTION) on a pipe session, RangeError for sizes outside 1..65535.
   * @example
   * process.stdout.on('resize', () => p.resize(process.stdout.rows, process.stdout.columns));
   */
  resize(rows: number, cols: number): void {
    if (!this.#tty) throw invalidOption('type', 'resize() needs a tty session (exec with tty: true)');
    checkSize('rows', rows);
    checkSize('cols', cols);
    if (this.#isDone) return;
    this.#send({ type: 'execResize', payload: { rows, cols } });
  }

  /**
   * Sends exactly `signal` (default SIGTERM) to the process group (`core.exec.signal`). No
   * escalation. Returns false if the process had already ended.
   * @throws TypeError (code MSB_ERR_INVALID_OPTION) for an unknown signal name.
   * @example
   * p.kill('SIGINT');
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    const signo = toSignalNumber(signal);
    if (this.#isDone) return false;
    this.#send({ type: 'execSignal', payload: { signal: signo } });
    return true;
  }

  /** @internal */
  deliver(stream: 'stdout' | 'stderr', data: Buffer): void {
    // A PTY session has one output; a stray stderr frame is not dropped but shown there.
    (stream === 'stderr' ? (this.#err ?? this.#out) : this.#out).deliver(data);
  }

  /** @internal */
  stdinFailed(...args: Parameters<ExecInput['failed']>): void {
    this.#in.failed(...args);
  }

  /** @internal `core.exec.exited`: resolve once the streams are done (PROTOCOL §4.3: no output follows). */
  finish(info: ClientExitInfo): void {
    if (!this.#end()) return;
    const streams = this.#err ? [this.#out, this.#err] : [this.#out];
    // One turn later, so a caller that attaches its consumers right after `await exec()` (in
    // the same turn the exit arrived) is waited for instead of raced.
    setImmediate(() => void Promise.all(streams.map(whenEnded)).then(() => this.#settle.resolve(info)));
  }

  /** @internal The session ended without an exit. */
  abort(err: Error): void {
    if (this.#end()) this.#settle.reject(err);
  }

  #end(): boolean {
    if (this.#isDone) return false;
    this.#isDone = true;
    this.#out.finish();
    this.#err?.finish();
    this.#in.sessionEnded();
    return true;
  }
}

/**
 * Resolves when `stream` has emitted 'end', or at once if nothing ever consumed it
 * (`readableFlowing === null`), as spawnSession() does: unread output waits in the buffer
 * instead of holding the exit.
 */
function whenEnded(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed || stream.readableFlowing === null) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

