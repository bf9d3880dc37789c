/**
 * The typed façade over the addon: the one place where native spawn failures become
 * `SpawnError`, signal numbers become names, and callback exceptions are re-raised.
 */

import { constants } from 'node:os';

import { NativeError, SpawnError, EXEC_FAILURE_KINDS, type ExecFailureKind } from '../errors.js';
import type {
  NativeBinding,
  NativeEvent,
  NativeHandle,
  NativeSpawnFailure,
  NativeSpawnOptions,
  NativeStreamIndex,
  RawEventCallback,
} from './binding.js';
import { loadNative } from './load.js';

let binding: NativeBinding | null = null;

/** The addon, loaded on first use so that importing never throws. */
export function native(): NativeBinding {
  binding ??= loadNative();
  return binding;
}

/** Runs an addon call; an internal failure (code MSB_ERR_NATIVE) becomes a NativeError. */
function guard<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'MSB_ERR_NATIVE' && !(err instanceof NativeError)) {
      throw new NativeError('MSB_ERR_NATIVE', (err as Error).message, { cause: err });
    }
    throw err;
  }
}

/** A started native process. Methods are safe to call after exit (they do nothing). */
export class NativeProcess {
  readonly pid: number;
  readonly #handle: NativeHandle;
  readonly #binding: NativeBinding;

  constructor(b: NativeBinding, pid: number, handle: NativeHandle) {
    this.#binding = b;
    this.pid = pid;
    this.#handle = handle;
  }

  write(data: Buffer): boolean {
    return guard(() => this.#binding.write(this.#handle, data));
  }
  closeStdin(): void {
    guard(() => this.#binding.closeStdin(this.#handle));
  }
  resize(rows: number, cols: number): boolean {
    return guard(() => this.#binding.resize(this.#handle, rows, cols));
  }
  signal(signo: number, group: boolean): boolean {
    return guard(() => this.#binding.signal(this.#handle, signo, group));
  }
  pause(stream: NativeStreamIndex): void {
    guard(() => this.#binding.pause(this.#handle, stream));
  }
  resume(stream: NativeStreamIndex): void {
    guard(() => this.#binding.resume(this.#handle, stream));
  }
  terminate(signo: number, graceMs: number): void {
    guard(() => this.#binding.terminate(this.#handle, signo, graceMs));
  }
  close(): void {
    guard(() => this.#binding.close(this.#handle));
  }
}

function isFailure(r: unknown): r is NativeSpawnFailure {
  return typeof r === 'object' && r !== null && 'kind' in r;
}

function toKind(kind: string): ExecFailureKind {
  return (EXEC_FAILURE_KINDS as readonly string[]).includes(kind) ? (kind as ExecFailureKind) : 'other';
}

/** Builds the SpawnError for a failure that happened before anything reached the addon. */
export function spawnFailure(
  program: string,
  spawnargs: readonly string[],
  f: Omit<NativeSpawnFailure, 'kind'> & { kind: ExecFailureKind },
): SpawnError {
  return new SpawnError(program, { ...f, spawnargs });
}

/** What `spawnNative` takes: the addon's options with the environment as a list. */
export type SpawnPlan = Omit<NativeSpawnOptions, 'env'> & { env: string[] };

/** The addon's env block: each entry followed by a NUL (one string to convert, not one each). */
export function envBlock(entries: readonly string[]): string {
  return entries.length === 0 ? '' : entries.join('\0') + '\0';
}

/**
 * Starts a process. `onEvent` runs on the JS thread; if it throws, the exception is re-raised on
 * the next tick (Node-API would otherwise swallow it inside the threadsafe call).
 * @throws SpawnError when the process cannot be started.
 */
export function spawnNative(
  options: SpawnPlan,
  onEvent: (event: NativeEvent) => void,
): NativeProcess {
  const b = native();
  const guarded = (event: NativeEvent): void => {
    try {
      onEvent(event);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  };
  const raw: NativeSpawnOptions = { ...options, env: envBlock(options.env) };
  const result = guard(() => b.spawn(raw, toNativeEvents(guarded)));
  if (isFailure(result)) {
    throw spawnFailure(options.file, [options.file, ...options.args], { ...result, kind: toKind(result.kind) });
  }
  return new NativeProcess(b, result.pid, result.handle);
}

const STREAM_NAMES = ['stdout', 'stderr', 'pty'] as const;

/**
 * Young-generation garbage allocated per slab, as a fraction of the slab's bytes (1/4: one array
 * slot of 8 bytes per 32 bytes of slab).
 *
 * Why: V8 starts a full mark-compact whenever external memory (ArrayBuffer contents) has grown by
 * 64 MiB since the last one, unless scavenges have freed dead ArrayBuffers first; scavenges run
 * only when the young generation fills up, and a slab stream allocates almost nothing there
 * (one Buffer view per chunk). So a bulk stream paid a full collection, whose cost grows with the
 * whole heap, every 64 MiB: 16 per GB. A quarter of each slab in short-lived young garbage makes a
 * scavenge come first even at V8's largest default young generation (16 MiB semi-spaces), and a
 * scavenge costs only what survives it. Measured: mark-compacts per GB 16 -> 0, the JS thread's
 * and V8's helper threads' CPU per GB about -150 ms together (bench/README.md).
 * For a 256 KiB slab it is one 64 KiB array: an array above V8's 128 KiB limit for ordinary
 * objects goes to the young large-object space, mapped afresh each time (bench/README.md, tenth
 * round), so larger slabs would need the ballast in pieces.
 */
const BALLAST_SLOTS_PER_SLAB_BYTE = 1 / 32;

/**
 * The addon's calling convention (output as arguments, see RawEventCallback) turned back into
 * NativeEvents. The slab each stream is filling is kept here until the next one arrives.
 */
export function toNativeEvents(onEvent: (event: NativeEvent) => void): RawEventCallback {
  const slabs: (ArrayBuffer | undefined)[] = [undefined, undefined, undefined];
  // Held only until the next slab arrives, so the allocation cannot be optimized away.
  let ballast: unknown[] | undefined;
  return (event, chunk, offset, length) => {
    if (typeof event !== 'number') return onEvent(event);
    // null: the stream's slab was let go after a quiet spell; keep it no longer.
    if (chunk === null) return void (slabs[event] = undefined);
    if (offset === undefined) return onEvent({ type: 'data', stream: STREAM_NAMES[event], chunk: chunk as Buffer });
    if (chunk !== undefined) {
      slabs[event] = chunk as ArrayBuffer;
      ballast = new Array<unknown>(Math.floor((chunk as ArrayBuffer).byteLength * BALLAST_SLOTS_PER_SLAB_BYTE));
    }
    onEvent({ type: 'data', stream: STREAM_NAMES[event], chunk: Buffer.from(slabs[event] as ArrayBuffer, offset, length) });
  };
}

/** Signal number of a name or number; throws for unknown names. */
export function signalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') return signal;
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  if (n === undefined) {
    const err = new TypeError(`unknown signal: ${String(signal)}`) as TypeError & { code: string };
    err.code = 'MSB_ERR_INVALID_OPTION';
    throw err;
  }
  return n;
}

/** The name of a signal number (`'SIGTERM'`), or null for an unnamed one. */
export function signalName(signo: number): NodeJS.Signals | null {
  for (const [name, n] of Object.entries(constants.signals)) {
    if (n === signo) return name as NodeJS.Signals;
  }
  return null;
}

/** Live native sessions and whether the reader thread runs (for leak checks). */
export function nativeStats(): { sessions: number; readerRunning: boolean } {
  return guard(() => native().stats());
}

/** Agent only: become a child subreaper and reap adopted orphans. */
export function enableSubreaper(): void {
  guard(() => native().enableSubreaper());
}

/** Agent only: set the realtime clock. */
export function setRealtimeClock(unixTimeNanos: bigint): void {
  guard(() => native().setClock(unixTimeNanos));
}

/** A native byte stream over a device or socket fd (the serial and vsock transports). */
export interface NativeStream {
  /** Queues bytes; `stdin-written` events report them written. */
  write(data: Buffer): boolean;
  pause(): void;
  resume(): void;
  close(): void;
  /** The same stream as a writer (sends are not reported back; congestion ends with `drain`). */
  readonly writer: NativeWriter;
}

function streamOf(b: NativeBinding, handle: NativeHandle): NativeStream {
  return {
    write: (data) => guard(() => b.write(handle, data)),
    pause: () => guard(() => b.pause(handle, 0)),
    resume: () => guard(() => b.resume(handle, 0)),
    close: () => guard(() => b.close(handle)),
    writer: new NativeWriter(b, handle),
  };
}

/** Opens a character device as a native stream (raw mode for terminals). */
export function openDeviceStream(path: string, onEvent: (event: NativeEvent) => void): NativeStream {
  const b = native();
  return streamOf(b, guard(() => b.openDevice(path, toNativeEvents(onEvent))).handle);
}

/** Takes ownership of `fd` as a native stream. */
export function adoptFdStream(fd: number, onEvent: (event: NativeEvent) => void): NativeStream {
  const b = native();
  return streamOf(b, guard(() => b.adoptFd(fd, toNativeEvents(onEvent))).handle);
}

/** How a writer took a send. */
export type SendResult = 'sent' | 'congested' | 'closed';

/**
 * A native writer over a descriptor whose reads stay with its owner (an agent connection's
 * socket). Everything written to the descriptor must go through it, in order: sends, and the
 * output of the sessions routed to it (`route`).
 */
export class NativeWriter {
  readonly #handle: NativeHandle;
  readonly #binding: NativeBinding;
  /** The kernel send buffer a unix socket was given (`adoptWriter`'s `sendBuffer`), else null. */
  readonly sendBuffer: number | null;

  constructor(b: NativeBinding, handle: NativeHandle, sendBuffer: number | null = null) {
    this.#binding = b;
    this.#handle = handle;
    this.sendBuffer = sendBuffer;
  }

  /** The handle a NativeRoute names. */
  get handle(): NativeHandle {
    return this.#handle;
  }

  /** Sends `head` and `data` as one write; 'congested' means hold back until a `drain` event. */
  send(head: Buffer, data?: Buffer): SendResult {
    const r = guard(() => this.#binding.send(this.#handle, head, data ?? null));
    return r === 0 ? 'sent' : r === 1 ? 'congested' : 'closed';
  }

  /** Drops what is queued and closes the duplicate; the `exit` event follows. Idempotent. */
  close(): void {
    guard(() => this.#binding.close(this.#handle));
  }
}

/**
 * A writer over a duplicate of `fd` (see NativeWriter). With `sendBuffer`, a unix stream socket
 * is given a kernel send buffer of at least that many bytes first (see the binding).
 */
export function adoptWriter(fd: number, onEvent: (event: NativeEvent) => void, sendBuffer?: number): NativeWriter {
  const b = native();
  const w = guard(() => b.adoptWriter(fd, toNativeEvents(onEvent), sendBuffer ?? null));
  return new NativeWriter(b, w.handle, w.sendBuffer);
}

/** Listens on AF_VSOCK `port`; `onEvent` gets `connection` (an fd to adopt) or `listener-error`. */
export function listenVsock(port: number, onEvent: (event: NativeEvent) => void): void {
  guard(() => native().vsockListen(port, toNativeEvents(onEvent)));
}

/** strerror(3) text for a positive errno. */
export function describeErrno(errno: number): string {
  return guard(() => native().strerror(errno));
}
