/**
 * Agent addresses: `unix:PATH` or `tcp:HOST:PORT`, and the default address shared by `serve`
 * and the clients: `unix:$XDG_RUNTIME_DIR/msb-agentd.sock`, else
 * `unix:/tmp/msb-agentd-<uid>/agent.sock` (the directory is created 0700 by the server).
 */

import { join } from 'node:path';

import { invalidOption } from '../errors.js';

export type Address = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export function defaultAddress(env: NodeJS.ProcessEnv = process.env): Address {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime) return { kind: 'unix', path: join(runtime, 'msb-agentd.sock') };
  const uid = process.getuid?.() ?? 0;
  return { kind: 'unix', path: `/tmp/msb-agentd-${uid}/agent.sock` };
}

/**
 * Parses `unix:PATH` or `tcp:HOST:PORT` (`tcp:[::1]:PORT` for IPv6).
 * @throws TypeError (MSB_ERR_INVALID_OPTION) for anything else.
 */
export function parseAddress(text: string): Address {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (path === '') throw invalidOption('type', `address "${text}" has an empty path`);
    return { kind: 'unix', path };
  }
  if (text.startsWith('tcp:')) {
    const rest = text.slice(4);
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(rest);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port < 0 || port > 65535) throw invalidOption('type', `address "${text}" is not tcp:HOST:PORT`);
    return { kind: 'tcp', host: m[1] ?? m[2]!, port };
  }
  throw invalidOption('type', `address "${text}" must start with unix: or tcp:`);
}

export function formatAddress(a: Address): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return a.host.includes(':') ? `tcp:[${a.host}]:${a.port}` : `tcp:${a.host}:${a.port}`;
}
