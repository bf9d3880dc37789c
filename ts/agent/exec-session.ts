/**
 * One exec on the wire: a native process whose events become `core.exec.*` frames on the id
 * that requested it, and whose stdin/resize/signal requests come from the same id.
 *
 * Host → guest input is bounded per session (`STDIN_QUEUE_MAX`): the protocol has no credit
 * messages, so a frame that would overflow the queue of a child that is not reading is refused
 * with `core.exec.stdin.error` (ENOBUFS) instead of blocking the connection.
 */

import type { NativeEvent, NativeRoute } from '../native/binding.js';
import { NativeProcess, signalNumber, spawnNative } from '../native/index.js';
import type { OutgoingMessage } from '../protocol/index.js';
import type { NormalizedOptions } from '../spawn-options.js';
import type { ActivityMeter } from '../activity/meter.js';
import type { Logger } from '../log/logger.js';

/** Bytes of stdin accepted ahead of the child per session. */
export const STDIN_QUEUE_MAX = 16 * 1024 * 1024;
const ENOBUFS = 105;

/** What a session needs from the connection that owns it. */
export interface ExecOwner {
  /** Queue a frame to the peer (dropped if the peer is gone). */
  send(id: number, message: OutgoingMessage): void;
  /** Where session `id`'s output can go natively, or null to send it as `data` events come. */
  route(id: number): NativeRoute | null;
  /** The session sent its terminal frame. */
  ended(id: number): void;
  readonly meter: ActivityMeter;
  readonly log: Logger;
}

export class ExecSession {
  readonly id: number;
  readonly pid: number;
  readonly #proc: NativeProcess;
  readonly #owner: ExecOwner;
  readonly #graceMs: number;
  /** Output goes to the connection's writer from native code (outbound.ts), not through here. */
  readonly routed: boolean;
  #stdinQueued = 0;
  #stdinClosed = false;
  #paused = false;
  #done = false;

  private constructor(id: number, proc: NativeProcess, owner: ExecOwner, graceMs: number, routed: boolean) {
    this.id = id;
    this.routed = routed;
    this.pid = proc.pid;
    this.#proc = proc;
    this.#owner = owner;
    this.#graceMs = graceMs;
  }

  /**
   * Spawns and announces the session (`core.exec.started`). A SpawnError propagates; the caller
   * answers it with `core.exec.failed`.
   */
  static start(id: number, spawn: NormalizedOptions, owner: ExecOwner): ExecSession {
    let session: ExecSession | null = null;
    const early: NativeEvent[] = [];
    const route = owner.route(id);
    const proc = spawnNative({ ...spawn.native, route }, (e) => (session ? session.#onEvent(e) : early.push(e)));
    const s = new ExecSession(id, proc, owner, spawn.killGraceMs, route !== null);
    owner.meter.adjustActive('exec', 1);
    owner.send(id, { type: 'execStarted', payload: { pid: proc.pid } });
    // A routed session starts paused, so that its output cannot overtake `started`.
    if (route) for (const stream of [0, 1] as const) proc.resume(stream);
    session = s;
    for (const e of early) s.#onEvent(e);
    return s;
  }

  get isDone(): boolean {
    return this.#done;
  }

  #onEvent(e: NativeEvent): void {
    switch (e.type) {
      case 'data':
        this.#owner.meter.execOutput(e.chunk.length);
        this.#owner.send(this.id, {
          type: e.stream === 'stderr' ? 'execStderr' : 'execStdout',
          payload: { data: e.chunk },
        });
        break;
      case 'routed':
        this.#owner.meter.execOutput(e.bytes);
        this.#owner.meter.recordGuestMessages(e.frames);
        break;
      case 'stdin-written':
        this.#stdinQueued -= e.bytes;
        break;
      case 'stdin-error':
        this.#stdinClosed = true;
        this.#owner.send(this.id, {
          type: 'execStdinError',
          payload: { errno: e.errno, errnoName: e.errnoName, message: `write to stdin failed: ${e.errnoName}` },
        });
        break;
      case 'exit':
        this.#done = true;
        this.#owner.meter.adjustActive('exec', -1);
        this.#owner.send(this.id, {
          type: 'execExited',
          payload: { code: e.signal !== null ? -1 : (e.code ?? -1), signal: e.signal },
        });
        this.#owner.ended(this.id);
        break;
    }
  }

  /** `core.exec.stdin`: empty data is EOF (VEOF on a PTY). */
  stdin(data: Buffer): void {
    if (this.#done || this.#stdinClosed) return;
    if (data.length === 0) {
      this.#stdinClosed = true;
      this.#proc.closeStdin();
      return;
    }
    if (this.#stdinQueued + data.length > STDIN_QUEUE_MAX) {
      this.#owner.send(this.id, {
        type: 'execStdinError',
        payload: {
          errno: ENOBUFS,
          errnoName: 'ENOBUFS',
          message: `stdin refused: the process is not reading its input (${this.#stdinQueued} bytes already queued)`,
        },
      });
      return;
    }
    if (this.#proc.write(data)) this.#stdinQueued += data.length;
  }

  /** `core.exec.resize`; a no-op in pipe mode, as upstream. */
  resize(rows: number, cols: number): void {
    if (this.#done || rows < 1 || cols < 1) return;
    try {
      this.#proc.resize(rows, cols);
    } catch (err) {
      this.#owner.log.debug('resize ignored', { id: this.id, error: (err as Error).message });
    }
  }

  /** `core.exec.signal` to the whole group; numbers outside 1..64 are ignored. */
  signal(signo: number): void {
    if (this.#done || !Number.isInteger(signo) || signo < 1 || signo > 64) return;
    this.#proc.signal(signo, true);
  }

  /** Pause or resume reading this child's output (connection flow control). */
  setPaused(paused: boolean): void {
    if (this.#paused === paused || this.#done) return;
    this.#paused = paused;
    for (const stream of [0, 1] as const) {
      if (paused) this.#proc.pause(stream);
      else this.#proc.resume(stream);
    }
  }

  /** The peer went away (SIGHUP first) or the agent stops (SIGTERM first); SIGKILL after grace. */
  terminate(first: 'SIGHUP' | 'SIGTERM'): void {
    if (this.#done) return;
    this.setPaused(false);
    this.#proc.terminate(signalNumber(first), this.#graceMs);
  }
}
