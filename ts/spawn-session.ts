/**
 * `spawnSession()`: Node streams over a native process, with the exit contract: `exited`
 * resolves only after the process is reaped and every byte it wrote has been pushed to
 * `stdout`/`stderr`, which have ended by then.
 */

import { Readable, Writable } from 'node:stream';

import { SpawnError, invalidOption } from './errors.js';
import type { NativeEvent, NativeStreamIndex } from './native/binding.js';
import { NativeProcess, signalName, signalNumber, spawnNative } from './native/index.js';
import { normalizeOptions, type NormalizedOptions, type SpawnSessionOptions } from './spawn-options.js';

export type { SpawnSessionOptions } from './spawn-options.js';

export type ExitReason = 'exited' | 'signaled' | 'timeout' | 'aborted' | 'killed';

/** How a session ended. A signal death has `code: null`, never 0. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: ExitReason;
}

/** Readable side buffer before the native reader is paused. */
const OUTPUT_HIGH_WATER_MARK = 256 * 1024;
/** stdin bytes accepted ahead of the child before write callbacks wait. */
const STDIN_AHEAD_BYTES = 1024 * 1024;

/** An output stream whose backpressure pauses the native reader. */
class OutputStream extends Readable {
  #proc: NativeProcess | null = null;
  readonly #index: NativeStreamIndex;
  #paused = false;

  constructor(index: NativeStreamIndex) {
    super({ highWaterMark: OUTPUT_HIGH_WATER_MARK });
    this.#index = index;
  }

  attach(proc: NativeProcess): void {
    this.#proc = proc;
  }

  deliver(chunk: Buffer): void {
    if (!this.push(chunk) && !this.#paused && this.#proc) {
      this.#paused = true;
      this.#proc.pause(this.#index);
    }
  }

  override _read(): void {
    if (this.#paused && this.#proc) {
      this.#paused = false;
      this.#proc.resume(this.#index);
    }
  }
}

/** stdin: writes are queued natively and never block; EPIPE is an 'error' event, not a crash. */
class InputStream extends Writable {
  #proc: NativeProcess | null = null;
  #queued = 0;
  /** The callback of a write that waits for the queue to fall under STDIN_AHEAD_BYTES. */
  #waiting: ((err?: Error | null) => void) | null = null;

  constructor() {
    super({ decodeStrings: true });
    // Without a listener an 'error' (EPIPE from a child that exited unread) would crash the
    // process; child_process users know that pain. Listeners added by the caller still see it.
    this.on('error', () => {});
  }

  attach(proc: NativeProcess): void {
    this.#proc = proc;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (chunk.length === 0) return cb();
    if (!this.#proc || !this.#proc.write(chunk)) return cb(stdinClosedError());
    this.#queued += chunk.length;
    if (this.#queued < STDIN_AHEAD_BYTES) return cb();
    this.#waiting = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#proc?.closeStdin();
    cb();
  }

  written(bytes: number): void {
    this.#queued -= bytes;
    if (this.#waiting && this.#queued < STDIN_AHEAD_BYTES) {
      const resume = this.#waiting;
      this.#waiting = null;
      resume();
    }
  }

  failed(errno: number, errnoName: string): void {
    const err = Object.assign(new Error(`write to stdin failed: ${errnoName}`), {
      code: errnoName,
      errno,
      syscall: 'write',
    });
    // A write waiting for room gets the error (Writable then emits it once); else destroy.
    if (!this.#fail(() => err)) this.destroy(err);
  }

  /** The session ended: a waiting write fails with EPIPE, then the stream is destroyed. */
  sessionEnded(): void {
    this.#fail(stdinClosedError);
    if (!this.destroyed) this.destroy();
  }

  /** Fails the waiting write, if any; `error` is only built then (a stack trace costs ~20 µs). */
  #fail(error: () => Error): boolean {
    const waiting = this.#waiting;
    this.#waiting = null;
    if (!waiting) return false;
    waiting(error());
    return true;
  }
}

function stdinClosedError(): Error {
  return Object.assign(new Error('stdin is closed: the process ended or a write failed'), {
    code: 'EPIPE',
    syscall: 'write',
  });
}

/**
 * A running process, returned by `spawnSession()`.
 * @example
 * const s = await spawnSession({ cmd: 'cat' });
 * s.stdin.end('hello');
 * for await (const chunk of s.stdout) process.stdout.write(chunk);
 * await s.exited;
 */
export class Session {
  readonly pid: number;
  /** Output (the PTY's in tty mode), with real backpressure. */
  readonly stdout: Readable;
  /** Standard error, or null in tty mode. */
  readonly stderr: Readable | null;
  /** Standard input; `end()` is EOF (VEOF on a PTY). */
  readonly stdin: Writable;
  /** Resolves after the reap and after every output byte was pushed. Never rejects. */
  readonly exited: Promise<ExitInfo>;

  readonly #proc: NativeProcess;
  readonly #tty: boolean;
  #cause: 'timeout' | 'aborted' | 'killed' | null = null;
  #done = false;
  #closed = false;

  /** @internal use spawnSession() */
  constructor(proc: NativeProcess, parts: SessionParts, exited: Promise<ExitInfo>) {
    this.#proc = proc;
    this.#tty = parts.stderr === null;
    this.pid = proc.pid;
    this.stdout = parts.stdout;
    this.stderr = parts.stderr;
    this.stdin = parts.stdin;
    this.exited = exited;
  }

  /** @internal */
  markCause(cause: 'timeout' | 'aborted' | 'killed'): void {
    this.#cause ??= cause;
  }

  /** @internal */
  cause(): 'timeout' | 'aborted' | 'killed' | null {
    return this.#cause;
  }

  /** @internal */
  markDone(): void {
    this.#done = true;
  }

  /**
   * Sets the terminal size; the child's foreground group gets SIGWINCH. A no-op after exit.
   * @throws TypeError (code MSB_ERR_INVALID_OPTION) on a pipe session, RangeError for sizes
   * outside 1..65535.
   */
  resize(rows: number, cols: number): void {
    if (!this.#tty) throw invalidOption('type', 'resize() needs a tty session (spawned with tty: true)');
    for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
      if (!Number.isInteger(v) || v < 1 || v > 65535) throw invalidOption('range', `${name} must be an integer in 1..65535`);
    }
    if (this.#done) return;
    this.#proc.resize(rows, cols);
  }

  /**
   * Sends exactly `signal` (default SIGTERM) to the process group, or to the leader alone with
   * `{ group: false }`. No escalation. Returns false if the process had already exited.
   */
  kill(signal: NodeJS.Signals | number = 'SIGTERM', opts: { group?: boolean } = {}): boolean {
    const signo = signalNumber(signal);
    if (this.#done) return false;
    const sent = this.#proc.signal(signo, opts.group ?? true);
    if (sent && signo !== 0) this.markCause('killed');
    return sent;
  }

  /**
   * Kills the group with SIGKILL if it still runs and releases every native resource at once;
   * pending output is discarded. Idempotent. `exited` still resolves.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#done) this.markCause('killed');
    this.#proc.close();
    (this.stdin as InputStream).sessionEnded();
  }
}

interface SessionParts {
  stdout: OutputStream;
  stderr: OutputStream | null;
  stdin: InputStream;
}

/**
 * Resolves when `stream` has emitted 'end', or at once if nothing ever consumed it
 * (`readableFlowing === null`: no 'data' listener, no pipe, no iterator), so unread output
 * waits in the buffer instead of holding the exit. A stream paused by its consumer
 * (`readableFlowing === false`: an iterator, a backpressured pipe) is waited for.
 */
function ended(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed || stream.readableFlowing === null) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
  });
}

/**
 * Starts a process in a PTY (`tty: true`) or with pipes.
 * @throws TypeError | RangeError (code MSB_ERR_INVALID_OPTION) for invalid options.
 * Rejects with `SpawnError` (with `kind`, `stage`, `errno` — positive — and `errnoName`) when
 * the process cannot be started; it never reports a fake exit.
 * @example
 * const s = await spawnSession({ cmd: 'bash', args: ['-lc', 'echo hi'], tty: true });
 * s.stdout.pipe(process.stdout);
 * const { code } = await s.exited;
 */
export async function spawnSession(options: SpawnSessionOptions): Promise<Session> {
  return startSession(options, 'user');
}

/** @internal spawnSession with the agent's HOME rule. */
export function startSession(options: SpawnSessionOptions, homeDefault: 'user' | 'user-or-root'): Session {
  const normalized = normalizeOptions(options, homeDefault);
  if (normalized instanceof SpawnError) throw normalized;
  return start(normalized);
}

function start(n: NormalizedOptions): Session {
  const tty = n.native.mode === 'pty';
  const parts: SessionParts = {
    stdout: new OutputStream(0),
    stderr: tty ? null : new OutputStream(1),
    stdin: new InputStream(),
  };
  let resolveExit!: (info: ExitInfo) => void;
  const exited = new Promise<ExitInfo>((resolve) => (resolveExit = resolve));
  let session: Session | null = null;
  let pendingExit: NativeEvent | null = null;

  const onExit = (e: Extract<NativeEvent, { type: 'exit' }>, s: Session): void => {
    s.markDone();
    clearTimer();
    n.signal?.removeEventListener('abort', onAbort);
    parts.stdout.push(null);
    parts.stderr?.push(null);
    parts.stdin.sessionEnded();
    const signal = e.signal === null ? null : signalName(e.signal);
    const cause = s.cause();
    const reason: ExitReason =
      cause === 'timeout' || cause === 'aborted'
        ? cause
        : e.signal !== null
          ? cause === 'killed'
            ? 'killed'
            : 'signaled'
          : 'exited';
    const info: ExitInfo = { code: e.signal !== null ? null : e.code, signal, reason };
    const streams = [parts.stdout, ...(parts.stderr ? [parts.stderr] : [])];
    void Promise.all(streams.map(ended)).then(() => resolveExit(info));
  };

  const onEvent = (e: NativeEvent): void => {
    switch (e.type) {
      case 'data':
        (e.stream === 'stderr' ? parts.stderr : parts.stdout)?.deliver(e.chunk);
        break;
      case 'stdin-written':
        parts.stdin.written(e.bytes);
        break;
      case 'stdin-error':
        parts.stdin.failed(e.errno, e.errnoName);
        break;
      case 'exit':
        if (session) onExit(e, session);
        else pendingExit = e;
        break;
    }
  };

  const proc = spawnNative(n.native, onEvent);
  parts.stdout.attach(proc);
  parts.stderr?.attach(proc);
  parts.stdin.attach(proc);
  const s = new Session(proc, parts, exited);
  session = s;

  let timer: NodeJS.Timeout | null = null;
  const clearTimer = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
  };
  const terminate = (cause: 'timeout' | 'aborted'): void => {
    s.markCause(cause);
    proc.terminate(signalNumber('SIGTERM'), n.killGraceMs);
  };
  function onAbort(): void {
    terminate('aborted');
  }
  if (n.timeoutMs !== null) {
    timer = setTimeout(() => terminate('timeout'), n.timeoutMs);
    timer.unref();
  }
  if (n.signal) {
    if (n.signal.aborted) onAbort();
    else n.signal.addEventListener('abort', onAbort, { once: true });
  }
  if (pendingExit) onExit(pendingExit as Extract<NativeEvent, { type: 'exit' }>, s);
  return s;
}
