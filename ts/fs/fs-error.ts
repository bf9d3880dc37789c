/**
 * Error texts of the filesystem service. The wire carries free-form `error` strings; we keep
 * upstream's shape (`<op prefix>: <detail>`, the detail of an OS error written as Rust prints
 * `io::Error`: "No such file or directory (os error 2)") so hosts that match on prefixes or
 * errno text keep working.
 */

import { constants } from 'node:os';

import { describeErrno } from '../native/index.js';

/** A failed operation; `message` is the full wire text, prefix included. */
export class FsFailure extends Error {}

/** Rust's io::Error text for an errno. */
export function osErrorText(errno: number): string {
  return `${describeErrno(errno)} (os error ${errno})`;
}

/** The detail text of anything a Node fs call threw. */
export function errorDetail(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const errno = code ? (constants.errno as Record<string, number>)[code] : undefined;
  if (errno !== undefined) return osErrorText(errno);
  return err instanceof Error ? err.message : String(err);
}

/** Runs `fn`; anything it throws that is not already an FsFailure gets `prefix`. */
export async function withPrefix<T>(prefix: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof FsFailure) throw err;
    throw new FsFailure(`${prefix}${errorDetail(err)}`);
  }
}

/** Paths go to the kernel as C strings: a NUL byte is refused as Rust refuses it. */
export function checkPath(prefix: string, ...paths: string[]): void {
  for (const p of paths) {
    if (p.includes('\0')) throw new FsFailure(`${prefix}file name contained an unexpected NUL byte`);
  }
}

export const EINVAL = 22;
