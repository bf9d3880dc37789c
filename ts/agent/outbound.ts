/**
 * Where a connection's frames go: a Node stream, or a native writer (on a duplicate of a Node
 * socket's descriptor, whose reads stay with Node, or the writer of a native fd stream: vsock,
 * an adopted fd).
 *
 * With a native writer, exec output does not pass through JavaScript at all: the reader thread
 * sends it as frames on the same ordered queue (crates/spawn-core/src/route.rs), right after
 * reading it, while every other frame is sent from here.
 * Congestion is the writer's queue above its high water (4 MiB, as OUTPUT_HIGH_WATER): routed
 * sessions are then held natively, the rest by the connection when `congested` says so.
 */

import type { Duplex } from 'node:stream';

import { adoptWriter, type NativeWriter } from '../native/index.js';
import { nativeWriterOf } from '../transport/fd-stream.js';
import type { NativeEvent, NativeRoute } from '../native/binding.js';
import { dataFrameParts } from '../protocol/index.js';

/** Bytes queued to a Node stream above which the connection holds its producers back. */
export const OUTPUT_HIGH_WATER = 4 * 1024 * 1024;

/**
 * The kernel send buffer asked for on a unix socket connection (the kernel doubles it, and caps
 * it at net.core.wmem_max unless the agent has CAP_NET_ADMIN; TCP tunes its own). The default,
 * 208 KiB, holds about five 32 KiB socket buffers: a client that takes a moment over its reads (a
 * JavaScript one does, for each read) finds the socket nearly empty when it comes back, while the
 * agent's queue waits on it. With 2 MiB asked, 1 GB streams at ~1.8 x the rate (bench/README,
 * sixth round).
 */
export const UNIX_SEND_BUFFER = 2 * 1024 * 1024;

export interface OutboundEvents {
  /** Congestion is over: producers may resume. */
  drain(): void;
  /** Writing failed or the writer ended: the peer is gone. */
  failed(reason: string): void;
}

export interface Outbound {
  write(bytes: Buffer): void;
  /** A data frame as head and chunk, written together without copying the chunk. */
  writeData(head: Buffer, data: Buffer): void;
  /** True from a write that found the peer backed up until `drain`. */
  readonly congested: boolean;
  /** The route for exec session `id`'s output, or null when output must come through `write`. */
  route(id: number): NativeRoute | null;
  close(): void;
}

export class StreamOutbound implements Outbound {
  readonly #stream: Duplex;

  constructor(stream: Duplex, events: OutboundEvents) {
    this.#stream = stream;
    stream.on('drain', () => events.drain());
  }

  get congested(): boolean {
    return this.#stream.writableLength > OUTPUT_HIGH_WATER;
  }

  write(bytes: Buffer): void {
    this.#stream.write(bytes);
  }

  writeData(head: Buffer, data: Buffer): void {
    this.#stream.cork();
    this.#stream.write(head);
    this.#stream.write(data);
    this.#stream.uncork();
  }

  route(): null {
    return null;
  }

  close(): void {
    this.#stream.destroy();
  }
}

let routeParts: Pick<NativeRoute, 'stdout' | 'stderr'> | null = null;

export class NativeOutbound implements Outbound {
  readonly #events: OutboundEvents;
  readonly #writer: NativeWriter;
  /** The writer is ours to close (a socket's duplicate), not the stream's. */
  readonly #owned: boolean;
  #congested = false;
  #closed = false;

  private constructor(events: OutboundEvents, attach: (out: NativeOutbound) => NativeWriter, owned: boolean) {
    this.#events = events;
    this.#owned = owned;
    this.#writer = attach(this);
  }

  /**
   * The native writer for `stream`: a writer over a duplicate of a Node socket's descriptor (the
   * owner keeps reading the socket itself), or the writer of a native fd stream; null for any
   * other stream. A native stream's failure and end reach the owner through the stream.
   */
  static for(stream: Duplex, events: OutboundEvents): NativeOutbound | null {
    const fd = socketFd(stream);
    if (fd !== null) {
      return new NativeOutbound(events, (out) => adoptWriter(fd, (e) => out.#onWriterEvent(e), UNIX_SEND_BUFFER), true);
    }
    const access = nativeWriterOf(stream);
    if (access === null) return null;
    return new NativeOutbound(
      events,
      (out) => {
        access.onDrain = () => out.#drained();
        return access.writer;
      },
      false,
    );
  }

  #drained(): void {
    this.#congested = false;
    this.#events.drain();
  }

  #onWriterEvent(e: NativeEvent): void {
    if (e.type === 'drain') this.#drained();
    else if (e.type === 'stdin-error') this.#events.failed(`write failed: ${e.errnoName}`);
    else if (e.type === 'exit' && !this.#closed) this.#events.failed('the writer ended');
  }

  get congested(): boolean {
    return this.#congested;
  }

  /** The kernel send buffer the connection's socket has, if it is a unix socket we sized. */
  get sendBuffer(): number | null {
    return this.#writer.sendBuffer;
  }

  write(bytes: Buffer): void {
    if (this.#writer.send(bytes) === 'congested') this.#congested = true;
  }

  writeData(head: Buffer, data: Buffer): void {
    if (this.#writer.send(head, data) === 'congested') this.#congested = true;
  }

  route(id: number): NativeRoute {
    routeParts ??= { stdout: dataFrameParts('execStdout'), stderr: dataFrameParts('execStderr') };
    return { writer: this.#writer.handle, id, ...routeParts };
  }

  close(): void {
    this.#closed = true;
    if (this.#owned) this.#writer.close();
  }
}

/** The descriptor under a Node socket, or null for any other stream. */
export function socketFd(stream: Duplex): number | null {
  const fd = (stream as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}
