/**
 * One peer of the agent: decodes its frames, answers them, and owns the sessions it started.
 *
 * Bad input never ends the connection except a framing error (the stream is out of step); every
 * other problem is answered with `core.error` (to peers whose `v` >= 5) and the connection goes
 * on. Output flow control: when the bytes waiting to be written to this peer pass the high water
 * (outbound.ts), every session of this peer stops being read until the peer catches up, so a
 * client that stops reading cannot grow the agent's memory or slow anyone else. On a socket the
 * frames go through a native writer, and exec output is routed to it without passing through
 * JavaScript (outbound.ts); routed sessions are held back by the writer itself.
 */

import type { Duplex } from 'node:stream';

import { SpawnError } from '../errors.js';
import {
  FrameDecoder,
  canReceiveCoreError,
  decodeEnvelope,
  decodePayload,
  encodeDataFrame,
  encodeMessage,
  lookupMessageType,
  toCoreError,
  type Frame,
  type OutgoingMessage,
  type ReceivedMessage,
  type CoreErrorKind,
} from '../protocol/index.js';
import type { ActivityMeter } from '../activity/meter.js';
import type { Logger } from '../log/logger.js';
import { ExecSession, type ExecOwner } from './exec-session.js';
import { TcpSession } from './tcp-session.js';
import { prepareExec, type ExecDefaults } from './exec-request.js';
import { toExecFailed } from './exec-failed.js';
import { inRange, type IdRange } from './id-ranges.js';
import { FsService } from '../fs/fs-service.js';
import type { HandleTable } from '../fs/handle-table.js';
import type { NativeRoute } from '../native/binding.js';
import { NativeOutbound, StreamOutbound, type Outbound, type OutboundEvents } from './outbound.js';
/** Ids of ended sessions remembered, so late input for them is dropped quietly. */
const ENDED_IDS_KEPT = 65536;

/** What a connection needs from the agent. */
export interface ConnectionHost {
  readonly meter: ActivityMeter;
  readonly log: Logger;
  readonly execDefaults: ExecDefaults;
  /** The agent-wide numbering of filesystem handles. */
  readonly fsHandles: HandleTable;
  /** `core.clock.sync` arrived. */
  clockSync(unixTimeNanos: bigint): void;
  /** `core.shutdown` arrived. */
  shutdown(from: Connection): void;
  /** The connection ended (for whatever reason). */
  closed(conn: Connection): void;
}

export class Connection implements ExecOwner {
  readonly #stream: Duplex;
  readonly #out: Outbound;
  readonly #host: ConnectionHost;
  /** The peer's id range (relay handshake), or null for a single-peer transport. */
  readonly range: IdRange | null;
  #decoder = new FrameDecoder();
  readonly #sessions = new Map<number, ExecSession>();
  readonly #tcp = new Map<number, TcpSession>();
  readonly #fs: FsService;
  readonly #ended = new Set<number>();
  #peerVersion = 7;
  #pressured = false;
  #closed = false;
  readonly label: string;

  constructor(stream: Duplex, host: ConnectionHost, range: IdRange | null, label: string) {
    this.#stream = stream;
    this.#host = host;
    this.range = range;
    this.label = label;
    this.#fs = new FsService(this, host.fsHandles);
    const events: OutboundEvents = {
      drain: () => this.#relieve(),
      failed: (reason) => this.close(reason),
    };
    this.#out = NativeOutbound.for(stream, events) ?? new StreamOutbound(stream, events);
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', (err) => this.#host.log.debug('connection error', { conn: label, error: err.message }));
    stream.on('close', () => this.close('peer closed'));
    stream.on('end', () => this.close('peer ended'));
    // A reopened serial device: whatever partial frame was buffered is gone for good.
    stream.on('reopen', () => (this.#decoder = new FrameDecoder()));
  }

  get meter(): ActivityMeter {
    return this.#host.meter;
  }

  get log(): Logger {
    return this.#host.log;
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Writes raw bytes (the handshake prefix and ready frame). */
  writeRaw(bytes: Buffer): void {
    if (!this.#closed) this.#out.write(bytes);
  }

  route(id: number): NativeRoute | null {
    return this.#closed ? null : this.#out.route(id);
  }

  send(id: number, message: OutgoingMessage): void {
    if (this.#closed) return;
    const info = lookupMessageType(message.type);
    if (message.type !== 'pong' && message.type !== 'touched' && message.type !== 'error') {
      this.#host.meter.recordGuestMessage();
    }
    try {
      if (message.type === 'execStdout' || message.type === 'execStderr' || message.type === 'tcpData') {
        // Bulk output: header and chunk go out in one writev, the chunk never copied. (Not
        // fsData: a read stream reuses its buffer as soon as send() returns.)
        const [head, data] = encodeDataFrame(id, message.type, message.payload.data);
        this.#out.writeData(head, data);
      } else {
        this.#out.write(encodeMessage(id, message));
      }
    } catch (err) {
      this.#host.log.error('cannot encode a frame', { type: info.wire, id, error: (err as Error).message });
      return;
    }
    if (!this.#pressured && this.#out.congested) {
      this.#pressured = true;
      for (const s of this.#sessions.values()) if (!s.routed) s.setPaused(true);
      for (const s of this.#tcp.values()) s.setPaused(true);
      this.#fs.setPaused(true);
    }
  }

  ended(id: number): void {
    this.#sessions.delete(id);
    this.#tcp.delete(id);
    this.#ended.add(id);
    if (this.#ended.size > ENDED_IDS_KEPT) {
      const oldest = this.#ended.values().next().value as number;
      this.#ended.delete(oldest);
    }
  }

  #relieve(): void {
    if (!this.#pressured) return;
    this.#pressured = false;
    for (const s of this.#sessions.values()) if (!s.routed) s.setPaused(false);
    for (const s of this.#tcp.values()) s.setPaused(false);
    this.#fs.setPaused(false);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    try {
      this.#decoder.push(chunk);
      for (let frame = this.#decoder.readFrame(); frame; frame = this.#decoder.readFrame()) {
        this.#onFrame(frame);
        if (this.#closed) return;
      }
    } catch (err) {
      // A framing error: the stream is out of step. Only this connection ends.
      this.#host.log.warn('malformed frame, closing the connection', { conn: this.label, error: (err as Error).message });
      this.close('malformed frame');
    }
  }

  #replyError(id: number, kind: CoreErrorKind, message: string, offendingType: string | null, version: number): void {
    if (!canReceiveCoreError(version)) {
      this.#host.log.info('dropped a bad frame (peer too old for core.error)', { conn: this.label, id, kind, message });
      return;
    }
    this.send(id, { type: 'error', payload: { kind, message, offendingType } });
  }

  #onFrame(frame: Frame): void {
    const env = decodeEnvelope(frame);
    if (!env.ok) {
      const r = env.rejection;
      const v = r.version ?? this.#peerVersion;
      if (canReceiveCoreError(v)) this.send(frame.id, toCoreError(r));
      else this.#host.log.info('dropped a bad frame', { conn: this.label, id: frame.id, kind: r.kind });
      return;
    }
    const e = env.envelope;
    this.#peerVersion = e.version;
    const info = lookupMessageType(e.type);
    // A client may use its own range, and id 0 for control frames (ping, touch, clock sync,
    // shutdown: answered on this connection, PROTOCOL §6.6); never id 0 to start a session.
    const outside = this.range !== null && !inRange(this.range, frame.id);
    if (outside && (frame.id !== 0 || info.isSessionStart)) {
      this.#replyError(frame.id, 'invalid_session', `id ${frame.id} is outside this client's range`, info.wire, e.version);
      return;
    }
    if (e.type !== 'clockSync' && e.type !== 'ping' && e.type !== 'touch' && info.direction !== 'guest-to-host') {
      this.#host.meter.recordHostMessage();
    }
    if (info.direction === 'guest-to-host' || e.type === 'bootstrap' || e.type === 'initAck' || e.type === 'error') {
      this.#host.log.debug('ignored a frame the agent does not handle', { conn: this.label, type: info.wire });
      return;
    }
    const decoded = decodePayload(e);
    if (!decoded.ok) {
      this.#replyError(frame.id, 'invalid_payload', decoded.rejection.error.message, info.wire, e.version);
      return;
    }
    this.#dispatch({ id: e.id, flags: e.flags, version: e.version, type: e.type, payload: decoded.payload } as ReceivedMessage);
  }

  #dispatch(m: ReceivedMessage): void {
    switch (m.type) {
      case 'ping':
        this.send(m.id, { type: 'pong', payload: {} });
        return;
      case 'touch':
        this.#host.meter.recordHostMessage();
        this.send(m.id, { type: 'touched', payload: { activitySeq: this.#host.meter.activitySeq } });
        return;
      case 'clockSync':
        this.#host.clockSync(BigInt(m.payload.unixTimeNanos));
        return;
      case 'shutdown':
        this.#host.shutdown(this);
        return;
      case 'relayClientDisconnected':
        this.#dropRange(m.payload.idStart, m.payload.idEndExclusive);
        return;
      case 'execRequest':
        this.#startExec(m.id, m.payload, m.version);
        return;
      case 'execStdin':
      case 'execResize':
      case 'execSignal': {
        const s = this.#sessions.get(m.id);
        if (!s) return this.#unknownSession(m.id, lookupMessageType(m.type).wire, m.version);
        if (m.type === 'execStdin') s.stdin(m.payload.data);
        else if (m.type === 'execResize') s.resize(m.payload.rows, m.payload.cols);
        else s.signal(m.payload.signal);
        return;
      }
      case 'fsRequest':
        if (this.#isLive(m.id)) {
          this.#replyError(m.id, 'invalid_session', `id ${m.id} already has a live session`, 'core.fs.request', m.version);
          return;
        }
        this.#ended.delete(m.id);
        this.#fs.request(m.id, m.payload.op);
        return;
      case 'fsData':
        if (this.#fs.data(m.id, m.payload.data)) return;
        if (this.#ended.has(m.id) || this.#fs.has(m.id)) {
          // Chunks after the stream's terminal response (or on a read): the host already has its answer.
          this.#host.log.debug('fs data without a write stream dropped', { conn: this.label, id: m.id });
          return;
        }
        this.send(m.id, { type: 'fsResponse', payload: { ok: false, error: `unknown write session: ${m.id}`, data: null } });
        return;
      case 'tcpConnect': {
        if (this.#isLive(m.id)) {
          this.#replyError(m.id, 'invalid_session', `id ${m.id} already has a live session`, 'core.tcp.connect', m.version);
          return;
        }
        this.#ended.delete(m.id);
        const session = TcpSession.start(m.id, m.payload, this);
        if (!session.isDone) this.#tcp.set(m.id, session);
        if (this.#pressured) session.setPaused(true);
        return;
      }
      case 'tcpData': {
        const s = this.#tcp.get(m.id);
        if (s) s.data(m.payload.data);
        else if (!this.#ended.has(m.id)) this.send(m.id, { type: 'tcpFailed', payload: { error: `unknown TCP session: ${m.id}` } });
        return;
      }
      case 'tcpEof':
        this.#tcp.get(m.id)?.eof();
        return;
      case 'tcpClose':
        this.#tcp.get(m.id)?.close();
        return;
      default:
        this.#host.log.debug('ignored', { conn: this.label, type: lookupMessageType(m.type).wire });
    }
  }

  #isLive(id: number): boolean {
    return this.#sessions.has(id) || this.#tcp.has(id) || this.#fs.has(id);
  }

  #unknownSession(id: number, wire: string, version: number): void {
    if (this.#ended.has(id)) {
      this.#host.log.debug('late input for an ended session dropped', { conn: this.label, id, type: wire });
      return;
    }
    this.#replyError(id, 'invalid_session', `no exec session with id ${id}`, wire, version);
  }

  #startExec(id: number, req: Extract<ReceivedMessage, { type: 'execRequest' }>['payload'], version: number): void {
    if (this.#isLive(id)) {
      // Never disturb the live session; the host broke the protocol, not its process.
      this.#replyError(id, 'invalid_session', `id ${id} already has a live exec session`, 'core.exec.request', version);
      return;
    }
    this.#ended.delete(id);
    const prepared = prepareExec(req, this.#host.execDefaults);
    try {
      if (prepared instanceof SpawnError) throw prepared;
      const session = ExecSession.start(id, prepared, this);
      if (!session.isDone) this.#sessions.set(id, session);
      if (this.#pressured && !session.routed) session.setPaused(true);
    } catch (err) {
      if (!(err instanceof SpawnError)) throw err;
      this.send(id, { type: 'execFailed', payload: toExecFailed(err) });
      this.ended(id);
    }
  }

  #dropRange(start: number, end: number): void {
    // Exec sessions are signalled by the relay itself (PROTOCOL §4.4); TCP sessions are aborted.
    this.#host.log.info('relay client disconnected', { conn: this.label, idStart: start, idEndExclusive: end });
    for (const [id, s] of [...this.#tcp]) if (id >= start && id < end) s.terminate();
    this.#fs.dropRange(start, end);
  }

  /** Ends the connection; its sessions get SIGHUP, then SIGKILL after the grace period. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#host.log.debug('connection closed', { conn: this.label, reason, sessions: this.#sessions.size });
    for (const s of this.#sessions.values()) s.terminate('SIGHUP');
    for (const s of [...this.#tcp.values()]) s.terminate();
    this.#fs.close();
    this.#out.close();
    this.#stream.destroy();
    this.#host.closed(this);
  }

  /** Agent shutdown: SIGTERM to every session group (SIGKILL after grace). */
  terminateSessions(): void {
    for (const s of this.#sessions.values()) s.terminate('SIGTERM');
    for (const s of [...this.#tcp.values()]) s.terminate();
  }
}
