/**
 * The client's socket to the agent, reading through one reused buffer (net's `onread`) instead
 * of a fresh 64 KiB allocation per read. Bulk output (a large exec stdout, a file read) then
 * arrives in reads of up to `READ_BUFFER_SIZE`, a quarter as many or fewer, each copied once into
 * a chunk of exactly its size (the buffer is reused by the next read) and emitted as an ordinary
 * 'data' event, so the handshake and the connection read it like any stream.
 *
 * The socket starts paused: with `onread`, net starts reading as soon as it connects and would
 * hand the agent's first bytes to a callback with nobody listening yet. Reading starts with the
 * first resume() (the handshake's); pause() stops it at once (uv_read_stop), as flow control needs.
 */

import { connect as netConnect, type Socket } from 'node:net';

import type { Address } from '../transport/address.js';

/** One per connection; the unix socket's default send buffer (~208 KiB) fits in one read. */
export const READ_BUFFER_SIZE = 256 * 1024;

export function connectBulkSocket(address: Address): Socket {
  const onread = {
    buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      socket.emit('data', Buffer.from(buffer.subarray(0, bytes)));
      return true;
    },
  };
  const socket =
    address.kind === 'unix' ? netConnect({ path: address.path, onread }) : netConnect({ port: address.port, host: address.host, onread });
  socket.pause();
  return socket;
}
