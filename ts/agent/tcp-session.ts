/**
 * One forwarded TCP connection (PROTOCOL §4.10): `core.tcp.connect` resolves the host inside the
 * guest, tries each address within 30 s, then bytes flow both ways until both directions have
 * ended. Never blocks the connection: host data goes to a per-session queue bounded in bytes
 * (`TCP_QUEUE_MAX`); a frame that would overflow it fails the session with `core.tcp.failed`.
 * Reads from the destination pause while the owning connection is over its high-water mark.
 */

import { lookup } from 'node:dns/promises';
import { connect, type Socket } from 'node:net';

import type { TcpConnect } from '../protocol/index.js';
import type { ExecOwner } from './exec-session.js';

export const TCP_CONNECT_TIMEOUT_MS = 30_000;
/** Host → destination bytes accepted ahead of the socket per session. */
export const TCP_QUEUE_MAX = 16 * 1024 * 1024;

export class TcpSession {
  readonly id: number;
  readonly #owner: ExecOwner;
  readonly #target: string;
  #socket: Socket | null = null;
  /** Host data that arrived before the connection was up. */
  #early: Buffer[] = [];
  #earlyBytes = 0;
  #eofRequested = false;
  #readDone = false;
  #writeDone = false;
  #paused = false;
  #done = false;

  private constructor(id: number, req: TcpConnect, owner: ExecOwner) {
    this.id = id;
    this.#owner = owner;
    this.#target = `${req.host}:${req.port}`;
  }

  static start(id: number, req: TcpConnect, owner: ExecOwner): TcpSession {
    const s = new TcpSession(id, req, owner);
    owner.meter.adjustActive('tcp', 1);
    void s.#connect(req.host, req.port);
    return s;
  }

  get isDone(): boolean {
    return this.#done;
  }

  async #connect(host: string, port: number): Promise<void> {
    const deadline = Date.now() + TCP_CONNECT_TIMEOUT_MS;
    let addresses: { address: string; family: number }[];
    try {
      addresses = await lookup(host, { all: true });
    } catch (err) {
      return this.#fail(`connect ${this.#target}: ${(err as Error).message}`);
    }
    let lastError = 'no address';
    for (const a of addresses) {
      if (this.#done) return;
      const left = deadline - Date.now();
      if (left <= 0) return this.#fail(`connect ${this.#target} timed out`);
      const result = await tryConnect(a.address, port, left);
      if (this.#done) {
        if (typeof result !== 'string') result.destroy();
        return;
      }
      if (typeof result !== 'string') return this.#connected(result);
      lastError = result;
      if (result === 'timed out') return this.#fail(`connect ${this.#target} timed out`);
    }
    this.#fail(`connect ${this.#target}: ${lastError}`);
  }

  #connected(socket: Socket): void {
    this.#socket = socket;
    socket.setNoDelay(true);
    this.#owner.send(this.id, { type: 'tcpConnected', payload: {} });
    socket.on('data', (chunk: Buffer) => {
      this.#owner.meter.tcpBytes(chunk.length);
      this.#owner.send(this.id, { type: 'tcpData', payload: { data: chunk } });
    });
    socket.on('end', () => {
      this.#readDone = true;
      this.#owner.send(this.id, { type: 'tcpEof', payload: {} });
      this.#maybeClosed();
    });
    socket.on('error', (err) => this.#fail(`TCP stream: ${err.message}`));
    if (this.#paused) socket.pause();
    for (const b of this.#early) socket.write(b);
    this.#early = [];
    this.#earlyBytes = 0;
    if (this.#eofRequested) this.#shutdownWrite();
  }

  /** `core.tcp.data` from the host. */
  data(chunk: Buffer): void {
    if (this.#done || this.#eofRequested) return;
    const queued = this.#socket ? this.#socket.writableLength : this.#earlyBytes;
    if (queued + chunk.length > TCP_QUEUE_MAX) {
      return this.#fail(`write TCP stream: the destination is not reading (${queued} bytes already queued)`);
    }
    this.#owner.meter.tcpBytes(chunk.length);
    if (this.#socket) this.#socket.write(chunk);
    else {
      this.#early.push(chunk);
      this.#earlyBytes += chunk.length;
    }
  }

  /** `core.tcp.eof` from the host: shut down our write side after the queued data. */
  eof(): void {
    if (this.#done || this.#eofRequested) return;
    this.#eofRequested = true;
    if (this.#socket) this.#shutdownWrite();
  }

  #shutdownWrite(): void {
    this.#socket!.end(() => {
      this.#writeDone = true;
      this.#maybeClosed();
    });
  }

  /** `core.tcp.close`: abort the connection; the session ends with `core.tcp.closed`. */
  close(): void {
    if (this.#done) return;
    this.#socket?.destroy();
    this.#end({ type: 'tcpClosed', payload: {} });
  }

  /** Connection flow control. */
  setPaused(paused: boolean): void {
    this.#paused = paused;
    if (paused) this.#socket?.pause();
    else this.#socket?.resume();
  }

  /** The client went away: drop everything, say nothing. */
  terminate(): void {
    if (this.#done) return;
    this.#socket?.destroy();
    this.#done = true;
    this.#owner.meter.adjustActive('tcp', -1);
    this.#owner.ended(this.id);
  }

  #maybeClosed(): void {
    if (this.#readDone && this.#writeDone) {
      this.#socket?.destroy();
      this.#end({ type: 'tcpClosed', payload: {} });
    }
  }

  #fail(error: string): void {
    if (this.#done) return;
    this.#socket?.destroy();
    this.#end({ type: 'tcpFailed', payload: { error } });
  }

  #end(message: { type: 'tcpClosed'; payload: Record<string, never> } | { type: 'tcpFailed'; payload: { error: string } }): void {
    this.#done = true;
    this.#owner.meter.adjustActive('tcp', -1);
    this.#owner.send(this.id, message);
    this.#owner.ended(this.id);
  }
}

/** Connects to one address within `timeoutMs`: the socket, or the error text. */
function tryConnect(address: string, port: number, timeoutMs: number): Promise<Socket | string> {
  return new Promise((resolve) => {
    // Half-open: the destination's EOF must not end our write side (PROTOCOL §4.10).
    const socket = connect({ host: address, port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timed out');
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      resolve(err.message);
    });
  });
}
