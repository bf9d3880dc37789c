/**
 * The path operations of the filesystem service (PROTOCOL §4.9.2): each runs on libuv's thread
 * pool, so none blocks the event loop, and each resolves to its response data or throws an
 * FsFailure whose message is the wire text (`stat: No such file or directory (os error 2)`).
 * They run as the agent's user, on paths used verbatim.
 */

import {
  chmod,
  chown,
  copyFile,
  lchown,
  lstat,
  lutimes,
  mkdir,
  opendir,
  readlink,
  realpath,
  rename,
  rm,
  rmdir,
  stat,
  symlink,
  truncate,
  unlink,
  utimes,
} from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import type { FsOp, FsResponseData, FsSetAttrs } from '../protocol/index.js';
import { childPath, listedEntries, toEntryInfo } from './entry-info.js';
import { FsFailure, checkPath, errorDetail, withPrefix } from './fs-error.js';

type PathOp = Exclude<FsOp, { handle: unknown } | { type: 'openFile' } | { type: 'openDir' }>;
type Result = FsResponseData | null;

/**
 * The bits chmod(2) and open(2) use. Masking first also keeps Node's fs from aborting the
 * process on a mode of 2^31 or more (a u32 from the wire can be).
 */
export function permissionBits(mode: number): number {
  return mode & 0o7777;
}

/** Which ops are path operations (no handle). */
export function isPathOp(op: FsOp): op is PathOp {
  return !('handle' in op) && op.type !== 'openFile' && op.type !== 'openDir';
}

export async function runPathOp(op: PathOp): Promise<Result> {
  switch (op.type) {
    case 'realPath':
      return realPathOp(op.path);
    case 'stat':
      checkPath('stat: ', op.path);
      return withPrefix('stat: ', async () => ({
        type: 'stat',
        entry: toEntryInfo(op.path, await (op.followSymlink ? stat : lstat)(op.path, { bigint: true })),
      }));
    case 'setStat':
      checkPath('setstat: ', op.path);
      await withPrefix('setstat: ', () => setStat(op.path, op.followSymlink, op.attrs));
      return null;
    case 'list':
      checkPath('readdir: ', op.path);
      return { type: 'list', entries: await list(op.path) };
    case 'readLink':
      checkPath('readlink: ', op.path);
      return withPrefix('readlink: ', async () => ({ type: 'path', path: await readlink(op.path) }));
    case 'symlink':
      checkPath('symlink: ', op.target, op.linkPath);
      await withPrefix('symlink: ', () => symlink(op.target, op.linkPath));
      return null;
    case 'mkdir':
      checkPath('mkdir: ', op.path);
      await withPrefix('mkdir: ', () => mkdir(op.path, { recursive: true }));
      if (op.mode !== null) await withPrefix('chmod: ', () => chmod(op.path, permissionBits(op.mode!)));
      return null;
    case 'remove':
      checkPath('remove: ', op.path);
      await withPrefix('remove: ', () => unlink(op.path));
      return null;
    case 'removeDir':
      checkPath('remove_dir: ', op.path);
      await withPrefix('remove_dir: ', () => removeDir(op.path, op.recursive));
      return null;
    case 'copy':
      checkPath('copy: ', op.src, op.dst);
      await withPrefix('copy: ', () => copy(op.src, op.dst));
      return null;
    case 'rename':
      checkPath('rename: ', op.src, op.dst);
      await withPrefix('rename: ', () => rename(op.src, op.dst));
      return null;
  }
}

/** Canonical path; for a missing leaf, the canonical parent plus the leaf's name. */
async function realPathOp(path: string): Promise<Result> {
  checkPath('realpath: ', path);
  try {
    return { type: 'path', path: await realpath(path) };
  } catch (err) {
    const parent = dirname(path);
    const leaf = basename(path);
    if (path !== '' && leaf !== '' && leaf !== '.' && leaf !== '..' && parent !== path) {
      try {
        return { type: 'path', path: childPath(await realpath(parent === '' ? '.' : parent), leaf) };
      } catch {
        // The original error says more than the parent's.
      }
    }
    throw new FsFailure(`realpath: ${errorDetail(err)}`);
  }
}

/** size, mode, owner, then times; the first failure stops the rest (upstream's order). */
async function setStat(path: string, follow: boolean, a: FsSetAttrs): Promise<void> {
  if (a.size !== null) await truncate(path, Number(a.size));
  if (a.mode !== null) {
    if (!follow && (await lstat(path)).isSymbolicLink()) {
      throw new FsFailure('setstat: chmod on symlink without following is not supported');
    }
    await chmod(path, permissionBits(a.mode));
  }
  if (a.uid !== null || a.gid !== null) await (follow ? chown : lchown)(path, a.uid ?? -1, a.gid ?? -1);
  if (a.atime !== null || a.mtime !== null) {
    const current = a.atime === null || a.mtime === null ? await (follow ? stat : lstat)(path, { bigint: true }) : null;
    const atime = a.atime !== null ? Number(a.atime) : Number(current!.atimeNs / 1_000_000_000n);
    const mtime = a.mtime !== null ? Number(a.mtime) : Number(current!.mtimeNs / 1_000_000_000n);
    await (follow ? utimes : lutimes)(path, atime, mtime);
  }
}

/** The whole directory in readdir order, without `.` and `..`, each entry lstat'ed. */
async function list(path: string) {
  let dir;
  try {
    dir = await opendir(path, { bufferSize: 128 });
  } catch (err) {
    throw new FsFailure(`readdir: opendir: ${errorDetail(err)}`);
  }
  const names: string[] = [];
  try {
    for await (const entry of dir) names.push(childPath(path, entry.name));
  } catch (err) {
    throw new FsFailure(`readdir: ${errorDetail(err)}`);
  }
  return listedEntries(names);
}

async function removeDir(path: string, recursive: boolean): Promise<void> {
  if (!recursive) return rmdir(path);
  // Rust's remove_dir_all refuses anything but a directory; rm -r would delete a file too.
  const st = await lstat(path);
  if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  await rm(path, { recursive: true });
}

/** A regular file's bytes and permission bits (libuv's copyfile copies the mode). */
async function copy(src: string, dst: string): Promise<void> {
  const st = await stat(src);
  if (!st.isFile()) throw new FsFailure('copy: the source path is neither a regular file nor a symlink to a regular file');
  await copyFile(src, dst);
}
