/**
 * `FsOpenOptions` → open(2) flags with Rust `OpenOptions` semantics: the access mode comes from
 * read/write/append; create/truncate/create_new need write access; truncate with append is
 * refused unless create_new; anything invalid is EINVAL, as Rust answers it.
 */

import { constants } from 'node:fs';

import type { FsOpenOptions } from '../protocol/index.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_APPEND, O_CREAT, O_TRUNC, O_EXCL } = constants;

/** The flags, or null when Rust would refuse the combination with EINVAL. */
export function openFlags(o: FsOpenOptions): number | null {
  let access: number;
  if (o.append) access = (o.read ? O_RDWR : O_WRONLY) | O_APPEND;
  else if (o.write) access = o.read ? O_RDWR : O_WRONLY;
  else if (o.read) access = O_RDONLY;
  else return null;

  const writable = o.write || o.append;
  if (!writable && (o.create || o.truncate || o.createNew)) return null;
  if (o.append && o.truncate && !o.createNew) return null;

  let creation = 0;
  if (o.createNew) creation = O_CREAT | O_EXCL;
  else {
    if (o.create) creation |= O_CREAT;
    if (o.truncate) creation |= O_TRUNC;
  }
  return access | creation;
}
