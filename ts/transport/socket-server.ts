/**
 * Stream listeners (unix socket, TCP): multi-client, each connection starting with the relay
 * handshake. The unix socket is created 0600; the default directory 0700. A path that exists is
 * taken over only if it is a stale socket (nobody answers); the file is removed on close. TCP binds
 * loopback unless remote access was asked for.
 */

import { chmodSync, lstatSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, isIP, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';

import { TransportError } from '../errors.js';
import type { Address } from './address.js';
import { formatAddress } from './address.js';

export interface SocketServerOptions {
  address: Address;
  allowRemote?: boolean;
  /** Create the socket's directory (0700) if missing: used for the default address. */
  createDir?: boolean;
  onConnection(socket: Socket): void;
}

export interface SocketServer {
  readonly address: Address;
  close(): Promise<void>;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** True if something accepts connections on the unix socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

async function prepareUnixPath(path: string, createDir: boolean): Promise<void> {
  if (createDir) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!st.isSocket()) {
    throw new TransportError('MSB_ERR_TRANSPORT_CLOSED', `refusing to listen on ${path}: it exists and is not a socket`);
  }
  if (await socketAnswers(path)) {
    throw new TransportError('MSB_ERR_TRANSPORT_CLOSED', `refusing to listen on ${path}: another agent is serving it`);
  }
  unlinkSync(path);
}

/** Listens; resolves once the socket accepts connections. */
export async function listenSocket(opts: SocketServerOptions): Promise<SocketServer> {
  const a = opts.address;
  if (a.kind === 'unix') await prepareUnixPath(a.path, opts.createDir ?? false);
  if (a.kind === 'tcp' && !opts.allowRemote && !isLoopback(a.host)) {
    throw new TransportError(
      'MSB_ERR_TRANSPORT_CLOSED',
      `refusing to listen on ${formatAddress(a)}: not a loopback address (the protocol has no authentication; pass --allow-remote to accept that)`,
    );
  }
  const server: Server = createServer({ noDelay: true } as never, opts.onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new TransportError('MSB_ERR_TRANSPORT_CLOSED', `cannot listen on ${formatAddress(a)}: ${err.message}`, { cause: err })));
    if (a.kind === 'unix') server.listen(a.path, () => resolve());
    else server.listen(a.port, a.host, () => resolve());
  });
  if (a.kind === 'unix') chmodSync(a.path, 0o600);
  const bound: Address =
    a.kind === 'tcp' ? { kind: 'tcp', host: a.host, port: (server.address() as { port: number }).port } : a;
  return {
    address: bound,
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (a.kind === 'unix') {
          try {
            unlinkSync(a.path);
          } catch {
            // already gone
          }
        }
      });
    },
  };
}
