/**
 * `AgentClient`: a connection to an msb-agentd (or any generation-7 agent or relay), with
 * promise-based requests and exec sessions shaped like spawnSession()'s.
 */

import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';

import { ProtocolError, invalidOption } from '../errors.js';
import {
  PROTOCOL_GENERATION,
  lookupMessageType,
  type ExecRequest,
  type FsEntryInfo,
  type FsOp,
  type FsResponseData,
  type MessageName,
  type OutgoingMessage,
  type Ready,
  type ReceivedMessage,
  type U64,
} from '../protocol/index.js';
import { defaultAddress, formatAddress, parseAddress, type Address } from '../transport/address.js';
import { fromCoreError, transportClosed, unexpectedTerminal } from './client-errors.js';
import type { ClientExec } from './client-exec.js';
import { ExecSessionHandler } from './exec-handler.js';
import { TcpStream } from './tcp-stream.js';
import { startFsCall } from './fs-call.js';
import {
  RemoteFileReader,
  writeRemoteFile,
  type FileSource,
  type ReadStreamOptions,
  type WriteFileOptions,
} from './remote-file.js';
import { toExecRequest, type ClientExecOptions } from './exec-payloads.js';
import { ClientConnection } from './connection.js';
import { connectBulkSocket } from './bulk-socket.js';
import { readHandshake, type HandshakeResult } from './handshake.js';

/** How long connect() and fromStream() wait for the handshake by default. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ConnectOptions {
  /** Deadline for connecting and reading the handshake, in ms (default 10 000). */
  timeoutMs?: number;
}

export interface FromStreamOptions extends ConnectOptions {
  /**
   * true: the stream starts with the 8-byte id-range prefix of a stream listener (unix, tcp,
   * an upstream relay). false: a single-peer transport (stdio, serial, vsock): `core.ready` comes
   * first and every id but 0 is ours.
   */
  handshake: boolean;
}

/**
 * A client of an agent. Requests go out on ids from the range the agent assigned; replies and
 * output come back on them. One connection is one ordered byte stream: an exec whose output is
 * not read holds back everything behind it (see `ClientExec.stdout`).
 * @example
 * const client = await AgentClient.connect('unix:/run/msb-agentd.sock');
 * const p = await client.exec({ cmd: 'uname', args: ['-a'] });
 * p.stdout.pipe(process.stdout);
 * console.log(await p.exited, await client.ping(), 'ms');
 * await client.close();
 */
export class AgentClient {
  /** The agent's `core.ready` payload (timings, `agentVersion`). */
  readonly ready: Ready;
  /** The negotiated generation: min(7, the ready frame's `v`). Newer message types are refused locally. */
  readonly version: number;
  /** The correlation ids this client may use: `[idStart, idEndExclusive)` (id 0 is never used for requests). */
  readonly idRange: { readonly idStart: number; readonly idEndExclusive: number };

  readonly #connection: ClientConnection;

  /** @internal use AgentClient.connect() or AgentClient.fromStream() */
  constructor(stream: Duplex, handshake: HandshakeResult) {
    this.ready = handshake.ready;
    this.version = Math.min(PROTOCOL_GENERATION, handshake.readyVersion);
    this.idRange = Object.freeze({ idStart: handshake.idStart, idEndExclusive: handshake.idEndExclusive });
    this.#connection = new ClientConnection(stream, handshake.decoder, this.idRange);
  }

  /**
   * Connects to the agent at `address` (`unix:PATH`, `tcp:HOST:PORT`, or an Address; the
   * default address of `msb-agentd serve` when omitted) and reads its handshake.
   * @throws TypeError (code MSB_ERR_INVALID_OPTION) for a malformed address or timeout.
   * Rejects (never throws) with TransportError MSB_ERR_TRANSPORT_CLOSED when the agent is not reachable (the
   * errno error is the `cause`), closes the connection during the handshake, or sends no
   * handshake within `timeoutMs`; with ProtocolError MSB_ERR_BAD_FRAME for an id range with no
   * usable id or a first frame that is not `core.ready`, or the codec's ProtocolError when
   * that frame does not decode.
   * @example
   * const client = await AgentClient.connect('tcp:127.0.0.1:7000', { timeoutMs: 2000 });
   */
  static async connect(address?: string | Address, opts: ConnectOptions = {}): Promise<AgentClient> {
    const target = address === undefined ? defaultAddress() : typeof address === 'string' ? parseAddress(address) : address;
    const timeoutMs = checkTimeout(opts.timeoutMs);
    const peer = formatAddress(target);
    const deadline = performance.now() + timeoutMs;
    const socket = await openSocket(target, peer, timeoutMs);
    const remaining = Math.max(1, Math.ceil(deadline - performance.now()));
    const handshake = await readHandshake(socket, { prefix: true, timeoutMs: remaining, limitMs: timeoutMs, peer: `the agent at ${peer}` });
    return new AgentClient(socket, handshake);
  }

  /**
   * A client over any byte stream: a socket you opened, a child's stdio, a serial line.
   * The client owns the stream from now on and destroys it on close().
   * @throws TypeError (code MSB_ERR_INVALID_OPTION) for bad options.
   * Rejects as connect() does for the handshake.
   * @example
   * const agent = spawn('msb-agentd', ['serve', '--stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
   * const client = await AgentClient.fromStream(Duplex.from({ readable: agent.stdout, writable: agent.stdin }), { handshake: false });
   */
  static async fromStream(stream: Duplex, opts: FromStreamOptions): Promise<AgentClient> {
    if (typeof opts !== 'object' || opts === null || typeof opts.handshake !== 'boolean') {
      throw invalidOption('type', 'fromStream() needs { handshake: boolean }');
    }
    const timeoutMs = checkTimeout(opts.timeoutMs);
    const handshake = await readHandshake(stream, { prefix: opts.handshake, timeoutMs, peer: 'the agent on the stream' });
    return new AgentClient(stream, handshake);
  }

  /** Resolves when the connection has closed, for whatever reason. */
  get closed(): Promise<void> {
    return this.#connection.closed;
  }

  /** Whether the connection is closed (by close(), by the agent, or by a fatal frame error). */
  get isClosed(): boolean {
    return this.#connection.failure !== null;
  }

  /**
   * Round trip of `core.ping` → `core.pong`, in milliseconds.
   * Rejects with ProtocolError MSB_ERR_UNKNOWN_MESSAGE when the agent is older than generation 6
   * (nothing is sent); with a ProtocolError carrying `kind` when it answers `core.error`;
   * TransportError MSB_ERR_TRANSPORT_CLOSED when the connection goes first.
   * @example
   * console.log(`${(await client.ping()).toFixed(2)} ms`);
   */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.#request({ type: 'ping', payload: {} }, 'pong');
    return performance.now() - started;
  }

  /**
   * Records activity on the agent (`core.touch`) and returns its `activity_seq` after the touch
   * (a bigint when the agent sent a 64-bit value). Rejects as ping() does.
   * @example
   * const seq = await client.touch();
   */
  async touch(): Promise<U64> {
    const reply = await this.#request({ type: 'touch', payload: {} }, 'touched');
    return (reply as Extract<ReceivedMessage, { type: 'touched' }>).payload.activitySeq;
  }

  /**
   * Starts a process in the guest. Resolves on `core.exec.started`.
   * @throws (as a rejection) TypeError | RangeError (code MSB_ERR_INVALID_OPTION) for invalid
   * options; nothing is sent then. Also rejects with SpawnError (the agent's `kind`, `errno` — positive —, `errnoName`, `stage`,
   * and its message) on `core.exec.failed`: never a made-up exit; with a ProtocolError carrying
   * `kind` on `core.error`; TransportError MSB_ERR_TRANSPORT_CLOSED when the connection goes.
   * @example
   * try { await client.exec({ cmd: 'nope' }); }
   * catch (err) { if (err instanceof SpawnError && err.kind === 'not_found') console.error(err.errnoName); }
   */
  exec(opts: ClientExecOptions): Promise<ClientExec> {
    let request: ExecRequest;
    try {
      request = toExecRequest(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const handler = new ExecSessionHandler(request, this.#connection, { resolve, reject });
      const id = this.#connection.open(handler);
      try {
        handler.start(id);
      } catch (err) {
        this.#connection.forget(id);
        throw err;
      }
    });
  }

  /**
   * Opens a TCP connection from inside the guest to `host:port` (resolved by the guest).
   * Resolves once the agent reports it connected.
   * @throws nothing synchronously; rejects with TransportError MSB_ERR_TCP_FAILED (the agent's
   * reason, e.g. "connect 10.0.0.5:80: connect ECONNREFUSED …") or MSB_ERR_TRANSPORT_CLOSED.
   * @example
   * const sock = await client.connectTcp('127.0.0.1', 5432);
   * sock.end('hello');
   */
  connectTcp(host: string, port: number): Promise<TcpStream> {
    if (typeof host !== 'string' || host === '' || !Number.isInteger(port) || port < 0 || port > 65535) {
      return Promise.reject(invalidOption('type', 'connectTcp needs a host and a port in 0..65535'));
    }
    return new Promise((resolve, reject) => {
      const stream = new TcpStream(this.#connection, { resolve, reject });
      const id = this.#connection.open(stream);
      try {
        stream.start(id, host, port);
      } catch (err) {
        this.#connection.forget(id);
        reject(err);
      }
    });
  }

  /**
   * Any filesystem operation (PROTOCOL §3 `FsOp`), answered with its response data. The helpers
   * below cover the common ones; streaming Read/Write are readFile/createReadStream/writeFile.
   * Rejects with FsError (the agent's text, e.g. "stat: No such file or directory (os error 2)"),
   * a ProtocolError carrying `kind` on `core.error`, or TransportError MSB_ERR_TRANSPORT_CLOSED.
   * @example
   * const real = await client.fs({ type: 'realPath', path: 'app/../etc' });
   */
  async fs(op: FsOp): Promise<FsResponseData | null> {
    this.#requireGeneration('fsRequest');
    return startFsCall(this.#connection, op).result;
  }

  /**
   * Metadata of a path in the guest: full st_mode (type bits included), size, uid, gid, times in
   * whole seconds. `followSymlinks: false` describes a link itself (lstat).
   * Rejects as fs() does.
   * @example
   * const { size, kind } = await client.stat('/etc/hosts');
   */
  async stat(path: string, opts: { followSymlinks?: boolean } = {}): Promise<FsEntryInfo> {
    const data = await this.fs({ type: 'stat', path: checkPathArg(path), followSymlink: opts.followSymlinks ?? true });
    if (data?.type !== 'stat') throw new ProtocolError('MSB_ERR_BAD_CBOR', 'the agent answered Stat without an entry');
    return data.entry;
  }

  /**
   * The entries of a directory (without `.` and `..`), each lstat'ed, `path` = `<dir>/<name>`.
   * Rejects as fs() does.
   * @example
   * for (const e of await client.list('/tmp')) console.log(e.kind, e.path);
   */
  async list(path: string): Promise<FsEntryInfo[]> {
    const data = await this.fs({ type: 'list', path: checkPathArg(path) });
    if (data?.type !== 'list') throw new ProtocolError('MSB_ERR_BAD_CBOR', 'the agent answered List without entries');
    return data.entries;
  }

  /**
   * `mkdir -p`; with `mode`, the leaf gets exactly that mode (no umask). Rejects as fs() does.
   * @example
   * await client.mkdir('/srv/app/data', { mode: 0o750 });
   */
  async mkdir(path: string, opts: { mode?: number } = {}): Promise<void> {
    await this.fs({ type: 'mkdir', path: checkPathArg(path), mode: opts.mode ?? null });
  }

  /**
   * Removes a file or symlink; a directory only with `recursive: true` (then with everything in
   * it) or when it is empty. Rejects as fs() does.
   * @example
   * await client.remove('/tmp/build', { recursive: true });
   */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    const entry = await this.stat(path, { followSymlinks: false });
    if (entry.kind === 'dir') await this.fs({ type: 'removeDir', path, recursive: opts.recursive ?? false });
    else await this.fs({ type: 'remove', path });
  }

  /**
   * rename(2) in the guest. Rejects as fs() does.
   * @example
   * await client.rename('/tmp/upload.part', '/srv/app.tar');
   */
  async rename(from: string, to: string): Promise<void> {
    await this.fs({ type: 'rename', src: checkPathArg(from), dst: checkPathArg(to) });
  }

  /**
   * The whole content of a file in the guest. For large files prefer createReadStream().
   * Rejects as fs() does.
   * @example
   * const config = JSON.parse((await client.readFile('/etc/app.json')).toString());
   */
  async readFile(path: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.createReadStream(path)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * A file in the guest as a Readable, read as the consumer reads it (a paused consumer pauses
   * the agent's reading). It errors with FsError when the file cannot be opened or read.
   * @throws (as a stream error) as fs() rejects.
   * @example
   * client.createReadStream('/var/log/app.log').pipe(process.stdout);
   */
  createReadStream(path: string, opts: ReadStreamOptions = {}): Readable {
    this.#requireGeneration('fsRequest');
    return new RemoteFileReader(this.#connection, checkPathArg(path), opts);
  }

  /**
   * Creates or truncates a file in the guest and writes `data` (bytes, a string, or any async
   * iterable of them, e.g. a Readable) to it, in windows the agent acknowledges, so memory stays
   * bounded on both sides. Resolves with the number of bytes written.
   * Rejects as fs() does.
   * @example
   * await client.writeFile('/srv/app.tar', createReadStream('app.tar'), { mode: 0o644 });
   */
  async writeFile(path: string, data: FileSource, opts: WriteFileOptions = {}): Promise<number> {
    this.#requireGeneration('fsRequest');
    return writeRemoteFile(this.#connection, checkPathArg(path), data, opts);
  }

  /**
   * Asks the agent to stop (`core.shutdown` on id 0 with FLAG_SHUTDOWN). Nothing is answered;
   * the agent ends its sessions and closes the connection (unless it runs with
   * `--ignore-shutdown`).
   * @throws TransportError MSB_ERR_TRANSPORT_CLOSED when the client is closed.
   * @example
   * client.shutdown();
   * await client.close();
   */
  shutdown(): void {
    this.#connection.send(0, { type: 'shutdown', payload: null });
  }

  /**
   * Closes the connection after flushing what was written. Pending requests reject and running
   * execs' `exited` rejects with TransportError MSB_ERR_TRANSPORT_CLOSED (the agent ends those
   * processes). Idempotent.
   * @example
   * await client.close();
   */
  async close(): Promise<void> {
    await this.#connection.close(transportClosed('the client was closed'));
  }

  /** @throws ProtocolError MSB_ERR_UNKNOWN_MESSAGE when the agent's generation lacks `type`. */
  #requireGeneration(type: MessageName): void {
    const info = lookupMessageType(type);
    if (info.generation > this.version) {
      throw new ProtocolError(
        'MSB_ERR_UNKNOWN_MESSAGE',
        `${info.wire} needs protocol generation ${info.generation}; the agent speaks ${this.version}`,
      );
    }
  }

  /** One request, one terminal reply of type `reply`. */
  #request(message: OutgoingMessage, reply: MessageName): Promise<ReceivedMessage> {
    try {
      this.#requireGeneration(message.type);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      const id = this.#connection.open({
        handle: (m) => {
          if (m.type === reply) resolve(m);
          else if (m.type === 'error') reject(fromCoreError(m.payload, message.type));
          else if (isTerminal(m)) reject(unexpectedTerminal(m.type, message.type));
        },
        fail: reject,
      });
      try {
        this.#connection.send(id, message);
      } catch (err) {
        this.#connection.forget(id);
        reject(err);
      }
    });
  }
}

/** @throws TypeError (MSB_ERR_INVALID_OPTION) for a path that is not a non-empty string. */
function checkPathArg(path: string): string {
  if (typeof path !== 'string' || path === '') throw invalidOption('type', `a guest path must be a non-empty string, got ${String(path)}`);
  return path;
}

function isTerminal(m: ReceivedMessage): boolean {
  return lookupMessageType(m.type).isTerminal;
}

function checkTimeout(ms: number | undefined): number {
  if (ms === undefined) return DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (typeof ms !== 'number' || !(ms > 0) || !Number.isFinite(ms)) {
    throw invalidOption('range', `timeoutMs must be a positive number of milliseconds, got ${String(ms)}`);
  }
  return ms;
}

/** Connects the socket; a failure says where the agent was expected and carries the errno error. */
function openSocket(address: Address, peer: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectBulkSocket(address);
    const finish = (err: Error | null): void => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('error', onError);
      if (err === null) {
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(err);
    };
    const onConnect = (): void => finish(null);
    const onError = (err: NodeJS.ErrnoException): void =>
      finish(transportClosed(`the agent is not reachable at ${peer}: ${err.message}`, err));
    const timer = setTimeout(
      () => finish(transportClosed(`the agent is not reachable at ${peer}: no connection within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.once('connect', onConnect);
    socket.once('error', onError);
  });
}
