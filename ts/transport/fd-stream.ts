/**
 * A Duplex over a native fd stream (serial device, vsock connection, any adopted socket). The
 * native reader owns the descriptor: reads arrive as events, writes are queued and never block
 * the event loop, and a paused consumer stops the reads. `nativeWriterOf` gives an owner that
 * writes only through the stream's native writer (the agent's connection, which routes exec
 * output to it) that writer, and tells it when the writer's congestion ends.
 */

import { Duplex } from 'node:stream';

import type { NativeEvent } from '../native/binding.js';
import type { NativeStream, NativeWriter } from '../native/index.js';

/** Writes accepted ahead of the device before write callbacks wait. */
const AHEAD_BYTES = 1024 * 1024;

/** The native writer under a nativeDuplex stream; `onDrain` runs when its congestion is over. */
export interface WriterAccess {
  readonly writer: NativeWriter;
  onDrain: (() => void) | null;
}

const writers = new WeakMap<Duplex, WriterAccess>();

/** The native writer under a stream made by nativeDuplex, or null for any other stream. */
export function nativeWriterOf(stream: Duplex): WriterAccess | null {
  return writers.get(stream) ?? null;
}

export function nativeDuplex(open: (onEvent: (e: NativeEvent) => void) => NativeStream): Duplex {
  let queued = 0;
  let waiting: ((err?: Error | null) => void) | null = null;
  let paused = false;
  let stream: NativeStream | null = null;
  const duplex = new Duplex({
    read() {
      if (paused && stream) {
        paused = false;
        stream.resume();
      }
    },
    write(chunk: Buffer, _enc, cb) {
      if (!stream || !stream.write(chunk)) return cb(Object.assign(new Error('the stream is closed'), { code: 'EPIPE' }));
      queued += chunk.length;
      if (queued < AHEAD_BYTES) cb();
      else waiting = cb;
    },
    destroy(err, cb) {
      stream?.close();
      cb(err);
    },
  });
  let access: WriterAccess | null = null;
  stream = open((e) => {
    switch (e.type) {
      case 'drain':
        access?.onDrain?.();
        break;
      case 'data':
        if (!duplex.push(e.chunk) && !paused) {
          paused = true;
          stream?.pause();
        }
        break;
      case 'stdin-written':
        queued -= e.bytes;
        if (waiting && queued < AHEAD_BYTES) {
          const cb = waiting;
          waiting = null;
          cb();
        }
        break;
      case 'stdin-error':
        duplex.destroy(Object.assign(new Error(`write failed: ${e.errnoName}`), { code: e.errnoName, errno: e.errno }));
        break;
      case 'exit':
        // The device hung up or the socket closed.
        waiting?.(Object.assign(new Error('the stream ended'), { code: 'EPIPE' }));
        waiting = null;
        duplex.push(null);
        duplex.destroy();
        break;
      default:
        break;
    }
  });
  access = { writer: stream.writer, onDrain: null };
  writers.set(duplex, access);
  return duplex;
}
