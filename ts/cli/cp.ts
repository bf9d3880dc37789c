/**
 * `msb-agentd cp SRC DST`: copies one file between this machine and the guest, in either
 * direction. The guest side is written `guest:PATH`; `-` is local stdin (as SRC) or stdout (as
 * DST). As cp(1): a DST that is a directory receives the file under SRC's name, and a new file
 * gets SRC's permission bits. Directories are not copied (say so, exit 1). On a terminal, files of
 * 1 MiB or more show a progress bar on stderr. Exit: 0 done, 1 the copy failed, 255 agent
 * unreachable, 2 bad usage.
 */

import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';

import type { AgentClient } from '../client/index.js';
import { FsError, MsbError } from '../errors.js';
import { ProgressBar } from './progress.js';
import { UsageError } from './usage-error.js';
import { agentAddress, connectOrReport } from './connect.js';

const GUEST_PREFIX = 'guest:';
const PROGRESS_MIN_BYTES = 1024 * 1024;

type Endpoint = { side: 'guest'; path: string } | { side: 'local'; path: string } | { side: 'stdio' };

export function parseEndpoint(arg: string): Endpoint {
  if (arg === '-') return { side: 'stdio' };
  if (arg.startsWith(GUEST_PREFIX)) {
    const path = arg.slice(GUEST_PREFIX.length);
    if (path === '') throw new UsageError(`"${arg}" names no guest path`);
    return { side: 'guest', path };
  }
  if (arg === '') throw new UsageError('an empty path');
  return { side: 'local', path: arg };
}

export interface CpFlags {
  connect?: string;
  progress?: boolean;
}

export async function cpCommand(src: string, dst: string, flags: CpFlags): Promise<number> {
  const from = parseEndpoint(src);
  const to = parseEndpoint(dst);
  if ((from.side === 'guest') === (to.side === 'guest')) {
    throw new UsageError('exactly one of SRC and DST must be a guest path (guest:PATH)');
  }
  const address = agentAddress(flags.connect);
  const client = await connectOrReport(address);
  if (!client) return 255;
  try {
    if (from.side === 'guest') await download(client, from.path, to as Exclude<Endpoint, { side: 'guest' }>, flags);
    else await upload(client, from as Exclude<Endpoint, { side: 'guest' }>, (to as { path: string }).path, flags);
    return 0;
  } catch (err) {
    process.stderr.write(`msb-agentd cp: ${(err as Error).message}\n`);
    return err instanceof MsbError && err.code === 'MSB_ERR_TRANSPORT_CLOSED' ? 255 : 1;
  } finally {
    await client.close();
  }
}

function progressFor(flags: CpFlags, label: string, total: number): ProgressBar | null {
  const wanted = flags.progress ?? (process.stderr.isTTY === true && total >= PROGRESS_MIN_BYTES);
  return wanted ? new ProgressBar(process.stderr, label, total) : null;
}

async function upload(client: AgentClient, from: Exclude<Endpoint, { side: 'guest' }>, guestPath: string, flags: CpFlags): Promise<void> {
  let mode: number | undefined;
  let total = 0;
  let name = 'stdin';
  if (from.side === 'local') {
    const st = await stat(from.path);
    if (st.isDirectory()) throw new FsError('copy', `${from.path} is a directory (cp copies single files)`);
    mode = st.mode & 0o7777;
    total = st.size;
    name = basename(from.path);
  }
  let target = guestPath;
  const existing = await client.stat(guestPath).catch((err: unknown) => (err instanceof FsError ? null : Promise.reject(err)));
  if (existing?.kind === 'dir') target = `${guestPath.replace(/\/+$/, '')}/${name}`;
  const bar = progressFor(flags, name, total);
  const source = from.side === 'local' ? createReadStream(from.path, { highWaterMark: 1024 * 1024 }) : process.stdin;
  const written = await client.writeFile(target, source, { mode, onProgress: (n) => bar?.update(n) });
  bar?.finish(written);
}

async function download(client: AgentClient, guestPath: string, to: Exclude<Endpoint, { side: 'guest' }>, flags: CpFlags): Promise<void> {
  const entry = await client.stat(guestPath);
  if (entry.kind === 'dir') throw new FsError('copy', `guest:${guestPath} is a directory (cp copies single files)`);
  let target: string | null = null;
  if (to.side === 'local') {
    target = to.path;
    const local = await stat(to.path).catch(() => null);
    if (local?.isDirectory()) target = `${to.path.replace(/\/+$/, '')}/${basename(guestPath)}`;
  }
  const total = Number(entry.size);
  const bar = progressFor(flags, basename(guestPath), total);
  let done = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      done += chunk.length;
      bar?.update(done);
      cb(null, chunk);
    },
  });
  const sink = target === null ? process.stdout : createWriteStream(target, { mode: entry.mode & 0o7777 });
  await pipeline(client.createReadStream(guestPath), counter, sink);
  bar?.finish(done);
}
