/**
 * `Agent`: the daemon as an embeddable object, shaped like `net.Server`: construct, `listen()`
 * one or more transports, `close()`. All connections share the activity meter and heartbeat;
 * each owns its sessions.
 */

import { existsSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

import { ActivityMeter } from '../activity/meter.js';
import { DEFAULT_HEARTBEAT_DIR, startHeartbeat, type Heartbeat } from '../activity/heartbeat.js';
import { SILENT, type Logger } from '../log/logger.js';
import { adoptFdStream, enableSubreaper, listenVsock, setRealtimeClock } from '../native/index.js';
import { nativeDuplex } from '../transport/fd-stream.js';
import { serialDuplex } from '../transport/serial.js';
import { VERSION } from '../version.js';
import { defaultAddress, formatAddress, type Address } from '../transport/address.js';
import { listenSocket, type SocketServer } from '../transport/socket-server.js';
import { Connection, type ConnectionHost } from './connection.js';
import { SCRIPTS_DIR, environmentEntries, type ExecDefaults } from './exec-request.js';
import { SlotAllocator, encodeHandshakePrefix } from './id-ranges.js';
import { HandleTable } from '../fs/handle-table.js';
import { buildReadyFrame, markBoot, type ReadyTimes } from './ready.js';

export interface AgentOptions {
  /** Default exec user (PROTOCOL §5.2 spec); none = no switch. */
  user?: string;
  cwd?: string;
  securityProfile?: 'default' | 'restricted';
  afterExit?: 'detach' | 'kill-group' | 'wait';
  drainMs?: number;
  /** Between the first signal and SIGKILL on disconnect, shutdown and timeouts (default 5000). */
  graceMs?: number;
  /** Heartbeat JSON path; default `/.msb/heartbeat.json` when `/.msb` exists, else none. */
  heartbeatFile?: string | null;
  /** `core.shutdown` is ignored (logged). */
  ignoreShutdown?: boolean;
  /** Become a child subreaper and reap adopted orphans (agent processes only, never a library host). */
  subreaper?: boolean;
  /** Let `core.clock.sync` set the realtime clock (otherwise it is logged and ignored). */
  ownClock?: boolean;
  logger?: Logger;
  /** Called after a `core.shutdown` stopped the agent (the CLI exits 0). */
  onShutdown?: () => void;
}

/** What `listen()` takes. */
export type ListenTarget =
  | { kind: 'socket'; address?: Address; allowRemote?: boolean }
  | { kind: 'stream'; stream: Duplex; label?: string }
  /** A serial character device, reopened after a hang-up with its sessions kept. */
  | { kind: 'serial'; path: string }
  /** An open descriptor (a socket or device) handed over to the agent, which now owns it. */
  | { kind: 'fd'; fd: number }
  /** AF_VSOCK connections to `port`, each a single peer. */
  | { kind: 'vsock'; port: number };

/**
 * The agent daemon, embeddable in a host program.
 * @throws TransportError (MSB_ERR_TRANSPORT_CLOSED) from `listen()` when an address cannot be served.
 * @example
 * const agent = new Agent({ graceMs: 2000 });
 * await agent.listen({ kind: 'socket', address: parseAddress('unix:/run/agent.sock') });
 * process.on('SIGTERM', () => void agent.close());
 */
export class Agent implements ConnectionHost {
  readonly meter = new ActivityMeter();
  readonly log: Logger;
  readonly execDefaults: ExecDefaults;
  readonly fsHandles = new HandleTable();
  readonly #opts: AgentOptions;
  readonly #times: ReadyTimes = markBoot();
  readonly #slots = new SlotAllocator();
  readonly #connections = new Set<Connection>();
  readonly #servers: SocketServer[] = [];
  #ready: Buffer | null = null;
  #heartbeat: Heartbeat | null = null;
  #closing: Promise<void> | null = null;
  #nextLabel = 1;

  constructor(opts: AgentOptions = {}) {
    this.#opts = opts;
    this.log = opts.logger ?? SILENT;
    this.execDefaults = {
      user: opts.user ?? null,
      cwd: opts.cwd ?? null,
      securityProfile: opts.securityProfile ?? 'default',
      afterExit: opts.afterExit ?? 'detach',
      drainMs: opts.drainMs ?? 100,
      graceMs: opts.graceMs ?? 5000,
      scriptsDir: SCRIPTS_DIR,
      baseEnv: environmentEntries(),
    };
    const hb =
      opts.heartbeatFile !== undefined
        ? opts.heartbeatFile
        : existsSync(DEFAULT_HEARTBEAT_DIR)
          ? `${DEFAULT_HEARTBEAT_DIR}/heartbeat.json`
          : null;
    if (hb) this.#heartbeat = startHeartbeat(this.meter, hb);
    if (opts.subreaper) enableSubreaper();
  }

  /** `core.clock.sync`: set the clock if we own it and it is more than 100 ms off (PROTOCOL §4.4). */
  clockSync(unixTimeNanos: bigint): void {
    if (!this.#opts.ownClock) {
      this.log.info('clock sync ignored (start with --own-clock to let the host set the clock)');
      return;
    }
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const drift = unixTimeNanos > nowNs ? unixTimeNanos - nowNs : nowNs - unixTimeNanos;
    if (drift <= 100_000_000n) return;
    try {
      setRealtimeClock(unixTimeNanos);
      this.log.info('clock set from the host', { driftMs: Number(drift / 1_000_000n) });
    } catch (err) {
      this.log.warn('cannot set the clock', { error: (err as Error).message });
    }
  }

  /** The cached `core.ready` frame (built on first use). */
  get readyFrame(): Buffer {
    this.#ready ??= buildReadyFrame(this.#times, VERSION);
    return this.#ready;
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Starts serving a transport. A socket serves many clients, each behind the relay handshake;
   * a stream is one peer with raw frames, `core.ready` first.
   * @returns the bound address for sockets (TCP port 0 gets a real port), else null.
   * @throws TransportError (MSB_ERR_TRANSPORT_CLOSED) when the address cannot be served.
   */
  async listen(target: ListenTarget): Promise<Address | null> {
    if (target.kind === 'stream') {
      this.#attach(target.stream, null, target.label ?? `stream-${this.#nextLabel++}`);
      return null;
    }
    if (target.kind === 'serial') {
      this.#attach(serialDuplex(target.path, this.log), null, `serial:${target.path}`);
      this.log.info('serving a serial device', { path: target.path });
      return null;
    }
    if (target.kind === 'fd') {
      this.#attach(nativeDuplex((onEvent) => adoptFdStream(target.fd, onEvent)), null, `fd-${target.fd}`);
      return null;
    }
    if (target.kind === 'vsock') {
      listenVsock(target.port, (e) => {
        if (e.type === 'connection') {
          if (this.#closing) return void adoptFdStream(e.fd, () => {}).close();
          this.#attach(nativeDuplex((onEvent) => adoptFdStream(e.fd, onEvent)), null, `vsock-${this.#nextLabel++}`);
        } else if (e.type === 'listener-error') {
          this.log.error('vsock listener stopped', { port: target.port, errno: e.errnoName });
        }
      });
      this.log.info('listening on vsock', { port: target.port });
      return null;
    }
    const address = target.address ?? defaultAddress();
    const server = await listenSocket({
      address,
      allowRemote: target.allowRemote ?? false,
      createDir: target.address === undefined,
      onConnection: (socket) => this.#accept(socket),
    });
    this.#servers.push(server);
    if (address.kind === 'tcp' && target.allowRemote) {
      this.log.warn('listening beyond loopback: the protocol has no authentication', { address: formatAddress(server.address) });
    }
    this.log.info('listening', { address: formatAddress(server.address) });
    return server.address;
  }

  #accept(socket: Socket): void {
    const range = this.#slots.take();
    if (!range) {
      this.log.warn('refusing a client: all 128 id ranges are in use');
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn = this.#attach(socket, range, `client-${range.slot}`);
    conn.writeRaw(Buffer.concat([encodeHandshakePrefix(range), this.readyFrame]));
  }

  #attach(stream: Duplex, range: ReturnType<SlotAllocator['take']>, label: string): Connection {
    const conn = new Connection(stream, this, range, label);
    this.#connections.add(conn);
    if (!range) conn.writeRaw(this.readyFrame);
    this.log.debug('peer connected', { conn: label });
    return conn;
  }

  closed(conn: Connection): void {
    this.#connections.delete(conn);
    if (conn.range) this.#slots.release(conn.range.slot);
  }

  shutdown(from: Connection): void {
    if (this.#opts.ignoreShutdown) {
      this.log.info('core.shutdown ignored (--ignore-shutdown)', { conn: from.label });
      return;
    }
    this.log.info('core.shutdown received: stopping', { conn: from.label });
    void this.close().then(() => this.#opts.onShutdown?.());
  }

  /**
   * Stops serving: SIGTERM to every session's group (SIGKILL after the grace period), closes the
   * listeners (removing socket files) and the heartbeat. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const c of this.#connections) c.terminateSessions();
      // Stop accepting first; a server's close completes only once its connections are gone.
      const servers = Promise.all(this.#servers.map((s) => s.close()));
      for (const c of [...this.#connections]) c.close('agent stopping');
      await servers;
      await this.#heartbeat?.stop();
    })();
    return this.#closing;
  }
}
