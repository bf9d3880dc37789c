/**
 * `AgentClient`: a connection to an msb-agentd (or any generation-7 agent or relay), with
 * promise-based requests and exec sessions shaped like spawnSession()'s.
 */

import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';

import { ProtocolError, invalidOption } from '../errors.js';
import {
  PROTOCOL_GENERATION,
  lookupMessageType,
  type ExecRequest,
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
import { toExecRequest, type ClientExecOptions } from './exec-payloads.js';
import { ClientConnection } from './connection.js';
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
    const handshake = await readHandshake(socket, { prefix: true, timeoutMs: remaining, peer: `the agent at ${peer}` });
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

  /** One request, one terminal reply of type `reply`. */
  #request(message: OutgoingMessage, reply: MessageName): Promise<ReceivedMessage> {
    const info = lookupMessageType(message.type);
    if (info.generation > this.version) {
      return Promise.reject(
        new ProtocolError(
          'MSB_ERR_UNKNOWN_MESSAGE',
          `${info.wire} needs protocol generation ${info.generation}; the agent speaks ${this.version}`,
        ),
      );
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
    const socket = address.kind === 'unix' ? netConnect(address.path) : netConnect(address.port, address.host);
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
