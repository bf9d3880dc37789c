/**
 * Types of the raw addon (`spawn-core.linux-<arch>-gnu.node`). Hand-written: napi build generates
 * nothing for a crate without napi-derive. `test/native/binding.test.ts` checks these names
 * against the real addon. No `Native*` name appears in the public typings.
 */

/** Opaque handle of one session (a Node-API External). */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

export interface NativeRlimit {
  resource: number;
  soft: bigint;
  hard: bigint;
}

export interface NativeSpawnOptions {
  /** As given; Rust resolves it against the PATH in `env`. */
  file: string;
  args: string[];
  /** The final "K=V" entries, merged and validated by TypeScript, each followed by a NUL. */
  env: string;
  cwd: string | null;
  mode: 'pty' | 'pipes';
  rows: number;
  cols: number;
  /** "name[:group]" or numeric; looked up before the clone. */
  user: string | null;
  stdin: 'pipe' | 'null';
  rlimits: NativeRlimit[];
  restricted: boolean;
  /** Where HOME comes from when env has none: the user's home, or also root's when no user. */
  homeDefault: 'user' | 'user-or-root';
  /** How long to keep reading after the leader exited. */
  drainMs: number;
  afterDrain: 'wait' | 'kill-group' | 'detach';
  /**
   * Send the output as frames on a writer (`adoptWriter`) from the reader thread instead of as
   * `data` events; `routed` events count what was sent. The session starts paused: the owner
   * queues what must come first, then resumes both streams.
   */
  route?: NativeRoute | null;
}

/** One stream's data frame as fixed parts: see crates/spawn-core/src/route.rs. */
export interface NativeFrameParts {
  flags: number;
  /** The envelope up to the byte-string header of its payload. */
  envelope: Buffer;
  /** The payload up to the byte-string header of `data`. */
  payload: Buffer;
}

export interface NativeRoute {
  writer: NativeHandle;
  /** The frames' id. */
  id: number;
  /** Stdout's frame, also the PTY's. */
  stdout: NativeFrameParts;
  stderr: NativeFrameParts;
}

export type NativeEvent =
  | { type: 'data'; stream: 'stdout' | 'stderr' | 'pty'; chunk: Buffer }
  | { type: 'connection'; fd: number }
  | { type: 'listener-error'; errno: number; errnoName: string }
  | { type: 'stdin-written'; bytes: number }
  | { type: 'stdin-error'; errno: number; errnoName: string }
  | { type: 'exit'; code: number | null; signal: number | null }
  /** A routed session sent this many frames holding this many bytes of output. */
  | { type: 'routed'; frames: number; bytes: number }
  /** A writer's congestion, which a `send` reported, is over. */
  | { type: 'drain' };

/**
 * What the addon calls: output as `(stream code, chunk)` (0 stdout, 1 stderr, 2 pty: no object
 * built per chunk in native code), every other event as one object. `toNativeEvents` adapts.
 */
/**
 * Output arrives as (stream code, Buffer), or from a bulk pipe's slab as (stream code, the slab's
 * ArrayBuffer on its first chunk and undefined after, offset, length); (stream code, null) says
 * the stream's slab was let go; other events arrive as the event.
 */
export type RawEventCallback = (
  event: NativeEvent | NativeStreamCode,
  chunk?: Buffer | ArrayBuffer | null,
  offset?: number,
  length?: number,
) => void;
export type NativeStreamCode = 0 | 1 | 2;

export interface NativeSpawnFailure {
  kind: string;
  stage: string;
  errno: number | null;
  errnoName: string | null;
  path: string | null;
  detail: string | null;
}

export interface NativeSpawned {
  pid: number;
  handle: NativeHandle;
}

/** Output stream index: 0 is stdout (or the PTY), 1 is stderr. */
export type NativeStreamIndex = 0 | 1;

export interface NativeBinding {
  spawn(options: NativeSpawnOptions, onEvent: RawEventCallback): NativeSpawned | NativeSpawnFailure;
  /** Queues bytes for stdin; false when stdin is closed or failed. Never blocks. */
  write(handle: NativeHandle, data: Buffer): boolean;
  /** EOF after queued bytes: pipes close, a PTY gets VEOF. */
  closeStdin(handle: NativeHandle): void;
  /** False once the session has ended; throws in pipe mode. */
  resize(handle: NativeHandle, rows: number, cols: number): boolean;
  /** Sends exactly this signal; false if the leader was already reaped. */
  signal(handle: NativeHandle, signo: number, group: boolean): boolean;
  pause(handle: NativeHandle, stream: NativeStreamIndex): void;
  resume(handle: NativeHandle, stream: NativeStreamIndex): void;
  /** Signal the group now, SIGKILL after graceMs if anything is left. */
  terminate(handle: NativeHandle, signo: number, graceMs: number): void;
  /** SIGKILL the group if running, drop output, release everything at the reap. Idempotent. */
  close(handle: NativeHandle): void;
  stats(): { sessions: number; readerRunning: boolean };
  /** Agent only: become a child subreaper and reap adopted orphans (never in library mode). */
  enableSubreaper(): void;
  /** Agent only: clock_settime(CLOCK_REALTIME). Throws MSB_ERR_NATIVE (EPERM) without CAP_SYS_TIME. */
  setClock(unixTimeNanos: bigint): void;
  /**
   * Opens a character device (raw mode if it is a terminal) as a byte stream: input arrives as
   * `data` events (stream 'stdout'), `write` queues output, and the stream's end (EOF, hang-up)
   * is an `exit` event with code and signal null. Use the other functions with the handle.
   */
  openDevice(path: string, onEvent: RawEventCallback): { handle: NativeHandle };
  /** As openDevice, for an open descriptor whose ownership passes to the addon. */
  adoptFd(fd: number, onEvent: RawEventCallback): { handle: NativeHandle };
  /** Listens on AF_VSOCK `port`; each accepted connection's fd arrives as a `connection` event. */
  vsockListen(port: number, onEvent: RawEventCallback): void;
  /** The C library's text for a positive errno ("Exec format error"). */
  strerror(errno: number): string;
  /**
   * A writer over a duplicate of `fd` (the caller keeps its descriptor and reads it): one ordered
   * queue for `send` and for the output of sessions routed to it. Events: `stdin-error` when a
   * write fails, `drain`, then `exit` when it ends (after `close` or a failure). With
   * `sendBuffer` (bytes), a unix stream socket first gets a kernel send buffer of at least that
   * size (SO_SNDBUF, capped by net.core.wmem_max unless the process has CAP_NET_ADMIN);
   * `sendBuffer` in the result is the size it has then (the kernel's doubled figure), null when
   * the descriptor was left alone.
   */
  adoptWriter(
    fd: number,
    onEvent: RawEventCallback,
    sendBuffer?: number | null,
  ): { handle: NativeHandle; sendBuffer: number | null };
  /** A writer's send of `head` and `data` as one write: 0 done or queued, 1 queued and congested (a `drain` event follows), -1 closed. */
  send(handle: NativeHandle, head: Buffer, data?: Buffer | null): -1 | 0 | 1;
}

export const NATIVE_EXPORTS = [
  'spawn',
  'write',
  'closeStdin',
  'resize',
  'signal',
  'pause',
  'resume',
  'terminate',
  'close',
  'stats',
  'enableSubreaper',
  'setClock',
  'openDevice',
  'adoptFd',
  'vsockListen',
  'strerror',
  'adoptWriter',
  'send',
] as const;
