/**
 * The client's socket to the agent, reading through net's `onread` with a buffer chosen per read
 * (frame-aligned-reads.ts): a large frame, such as a chunk of bulk exec output or a file read, is
 * read straight into a buffer of its own and passed on whole, so JavaScript never copies it; small
 * frames are read through a 16 KiB scratch buffer and copied out. Chunks are emitted as ordinary
 * 'data' events, so the handshake and the connection read it like any stream.
 *
 * The socket starts paused: with `onread`, net starts reading as soon as it connects and would
 * hand the agent's first bytes to a callback with nobody listening yet. Reading starts with the
 * first resume() (the handshake's); pause() stops it at once (uv_read_stop), as flow control needs.
 */

import { connect as netConnect, type Socket } from 'node:net';

import type { Address } from '../transport/address.js';
import { FrameAlignedReads } from './frame-aligned-reads.js';
import { ID_RANGE_PREFIX_SIZE } from './handshake.js';

export function connectBulkSocket(address: Address): Socket {
  // unix and tcp are stream listeners: the id-range prefix comes first (PROTOCOL §6.1).
  const reads = new FrameAlignedReads(ID_RANGE_PREFIX_SIZE);
  const emit = (chunk: Buffer): void => void socket.emit('data', chunk);
  const onread = {
    buffer: () => reads.nextBuffer(),
    callback: (bytes: number): boolean => {
      reads.received(bytes, emit);
      return true;
    },
  };
  const socket =
    address.kind === 'unix' ? netConnect({ path: address.path, onread }) : netConnect({ port: address.port, host: address.host, onread });
  // A frame cut off by the end of the stream still reaches the decoder, which reports it.
  socket.prependListener('end', () => reads.flush(emit));
  socket.pause();
  return socket;
}
