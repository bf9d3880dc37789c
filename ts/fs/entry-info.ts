/**
 * `FsEntryInfo` (PROTOCOL §3.2) from a stat: full st_mode with the type bits, whole seconds for
 * the times (floored, as `st_mtime` is), sizes beyond 2^53 kept exact as bigints.
 */

import { lstat } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';

import type { FsEntryInfo, FsEntryKind } from '../protocol/index.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

function kindOf(mode: number): FsEntryKind {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    default:
      return 'other';
  }
}

/** Floor of ns / 1e9, as a number (bigint division truncates toward zero). */
function seconds(ns: bigint): number {
  const q = ns / 1_000_000_000n;
  return Number(ns < 0n && q * 1_000_000_000n !== ns ? q - 1n : q);
}

function exact(n: bigint): number | bigint {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
}

export function toEntryInfo(path: string, st: BigIntStats): FsEntryInfo {
  const mode = Number(st.mode);
  const mtime = seconds(st.mtimeNs);
  return {
    path,
    kind: kindOf(mode),
    size: exact(st.size),
    mode,
    modified: mtime,
    uid: Number(st.uid),
    gid: Number(st.gid),
    atime: seconds(st.atimeNs),
    mtime,
  };
}

/** `<dir>/<name>`, as Rust's Path::join writes it (no doubled slash). */
export function childPath(dir: string, name: string): string {
  return dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`;
}

/** A directory entry: lstat'ed; one that cannot be is still listed, as `other` with zeros. */
export async function listedEntry(path: string): Promise<FsEntryInfo> {
  try {
    return toEntryInfo(path, await lstat(path, { bigint: true }));
  } catch {
    return { path, kind: 'other', size: 0, mode: 0, modified: null, uid: 0, gid: 0, atime: null, mtime: null };
  }
}

/** lstat of many entries, a bounded number at a time (each is one thread-pool job). */
export async function listedEntries(paths: string[]): Promise<FsEntryInfo[]> {
  const out: FsEntryInfo[] = [];
  for (let i = 0; i < paths.length; i += 32) {
    out.push(...(await Promise.all(paths.slice(i, i + 32).map(listedEntry))));
  }
  return out;
}
