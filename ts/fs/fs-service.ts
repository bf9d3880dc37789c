/**
 * The filesystem service of one connection (PROTOCOL §4.9, with §7 W2, W16 and W17 fixed).
 *
 * Every operation runs on libuv's thread pool and answers asynchronously, so no fs request holds
 * up the event loop, another session or the heartbeat. Operations on one handle are queued on
 * that handle. Handles are numbered agent-wide but owned by the relay client slot of the id that
 * opened them on this connection: another client's use gets "owned by a different relay client",
 * each slot may hold `MAX_HANDLES_PER_CLIENT`, and a client's handles close when it disconnects
 * (or its range is dropped). Id 0 is refused: a handle opened on it could never be used.
 */

import { open, opendir, stat } from 'node:fs/promises';

import type { ActivityMeter } from '../activity/meter.js';
import type { FsOp, FsResponseData, FsSetAttrs, OutgoingMessage, U64 } from '../protocol/index.js';
import { ID_STEP } from '../agent/id-ranges.js';
import { childPath, listedEntries, toEntryInfo } from './entry-info.js';
import { EINVAL, FsFailure, checkPath, errorDetail, osErrorText, withPrefix } from './fs-error.js';
import { FsHandle, type HandleOwner, type HandleTarget } from './fs-handle.js';
import type { HandleTable } from './handle-table.js';
import { openFlags } from './open-flags.js';
import { isPathOp, permissionBits, runPathOp } from './path-ops.js';
import { ReadStream } from './read-stream.js';
import { WriteStream } from './write-stream.js';
import type { StreamOwner } from './stream-owner.js';

export const MAX_HANDLES_PER_CLIENT = 1024;
const READ_DIR_DEFAULT = 128;

/** The error prefix of each op (upstream's texts). */
const PREFIX: Record<FsOp['type'], string> = {
  realPath: 'realpath: ',
  stat: 'stat: ',
  setStat: 'setstat: ',
  list: 'readdir: ',
  readLink: 'readlink: ',
  symlink: 'symlink: ',
  mkdir: 'mkdir: ',
  remove: 'remove: ',
  removeDir: 'remove_dir: ',
  copy: 'copy: ',
  rename: 'rename: ',
  openFile: 'open: ',
  openDir: 'opendir: ',
  closeHandle: 'close: ',
  read: 'read: ',
  write: 'write: ',
  readDir: 'readdir: ',
  fstat: 'fstat: ',
  fsetstat: 'fsetstat: ',
};

/** What the service needs from its connection. */
export interface FsServiceOwner {
  send(id: number, message: OutgoingMessage): void;
  /** The id sent its terminal frame. */
  ended(id: number): void;
  readonly meter: ActivityMeter;
}

type Result = FsResponseData | null;
type Outcome = { ok: true; data: Result } | { ok: false; error: unknown };

export class FsService {
  readonly #owner: FsServiceOwner;
  readonly #table: HandleTable;
  /** Ids with an operation in progress (streams included), with whether the client went away. */
  readonly #pending = new Map<number, { cancelled: boolean }>();
  readonly #reads = new Map<number, ReadStream>();
  readonly #writes = new Map<number, WriteStream>();
  /** This connection's open handles. */
  readonly #handles = new Set<FsHandle>();
  /** Handles open or being opened, per relay client slot (the 1024 limit). */
  readonly #perSlot = new Map<number, number>();
  readonly #streams: StreamOwner;
  #paused = false;
  #closed = false;

  constructor(owner: FsServiceOwner, table: HandleTable) {
    this.#owner = owner;
    this.#table = table;
    this.#streams = {
      send: (id, m) => owner.send(id, m),
      meter: owner.meter,
      streamEnded: (id) => {
        this.#reads.delete(id);
        this.#writes.delete(id);
        this.#pending.delete(id);
        owner.ended(id);
      },
    };
  }

  /** Whether `id` has an fs operation in progress. */
  has(id: number): boolean {
    return this.#pending.has(id);
  }

  get openHandles(): number {
    return this.#handles.size;
  }

  /** `core.fs.request`. The caller has checked that `id` is not live. */
  request(id: number, op: FsOp): void {
    const prefix = PREFIX[op.type];
    if (id === 0) {
      this.#owner.send(id, fail(`${prefix}id 0 cannot carry a filesystem request (it is reserved for control frames)`));
      return;
    }
    const state = { cancelled: false };
    this.#pending.set(id, state);
    try {
      this.#start(id, op, state);
    } catch (error) {
      this.#reply(id, state, { ok: false, error });
    }
  }

  /** `core.fs.data` for a write stream. False when `id` has none (the caller answers). */
  data(id: number, chunk: Buffer): boolean {
    const w = this.#writes.get(id);
    if (!w) return false;
    w.data(chunk);
    return true;
  }

  /** Connection flow control: read streams wait while the peer is not reading. */
  setPaused(paused: boolean): void {
    this.#paused = paused;
    for (const r of this.#reads.values()) r.setPaused(paused);
  }

  /** A relay client went away: its operations end silently and its handles close. */
  dropRange(start: number, end: number): void {
    this.#cancel((id) => id >= start && id < end);
  }

  /** The connection closed: everything of it ends and every handle it opened closes. */
  close(): void {
    this.#closed = true;
    this.#cancel(() => true);
  }

  #cancel(matches: (id: number) => boolean): void {
    for (const [id, state] of this.#pending) if (matches(id)) state.cancelled = true;
    for (const [id, r] of [...this.#reads]) if (matches(id)) r.abort();
    for (const [id, w] of [...this.#writes]) if (matches(id)) w.abort();
    for (const h of [...this.#handles]) if (matches(h.owner.id)) this.#closeHandle(h).catch(() => {});
  }

  #start(id: number, op: FsOp, state: { cancelled: boolean }): void {
    if (isPathOp(op)) return this.#answer(id, state, runPathOp(op));
    switch (op.type) {
      case 'openFile':
      case 'openDir':
        return this.#answer(id, state, this.#open(id, op, state));
      case 'closeHandle': {
        const h = this.#owned(op.handle, 'close: ', id);
        return this.#answer(id, state, withPrefix('close: ', () => this.#closeHandle(h)).then(() => null));
      }
      case 'read': {
        const h = this.#file(op.handle, 'read: ', id);
        if (!h.access.read) throw new FsFailure(`read: handle ${h.number} is not open for reading`);
        const offset = safe(op.offset, 'read: ', 'offset');
        const len = op.len === null ? null : Number(op.len);
        this.#reads.set(id, ReadStream.start(id, h, offset, len, this.#streams, this.#paused));
        return;
      }
      case 'write': {
        const h = this.#file(op.handle, 'write: ', id);
        if (!h.access.write && !h.access.append) throw new FsFailure(`write: handle ${h.number} is not open for writing`);
        const offset = safe(op.offset, 'write: ', 'offset');
        const len = op.len === null ? null : safe(op.len, 'write: ', 'len');
        this.#writes.set(id, WriteStream.start(id, h, offset, len, this.#streams));
        return;
      }
      case 'readDir': {
        const h = this.#owned(op.handle, 'readdir: ', id);
        if (h.kind !== 'dir') throw new FsFailure(`readdir: handle ${h.number} is a file`);
        const limit = Math.max(1, op.limit ?? READ_DIR_DEFAULT);
        return this.#answer(id, state, withPrefix('readdir: ', () => h.run((t) => readBatch(t, h.path, limit))));
      }
      case 'fstat': {
        const h = this.#owned(op.handle, 'fstat: ', id);
        return this.#answer(
          id,
          state,
          withPrefix('fstat: ', () =>
            h.run(async (t) => ({
              type: 'stat' as const,
              entry: toEntryInfo(h.path, t.kind === 'file' ? await t.file.stat({ bigint: true }) : await stat(h.path, { bigint: true })),
            })),
          ),
        );
      }
      case 'fsetstat': {
        const h = this.#file(op.handle, 'fsetstat: ', id);
        return this.#answer(id, state, withPrefix('fsetstat: ', () => h.run((t) => fsetstat(t, op.attrs))).then(() => null));
      }
    }
  }

  async #open(id: number, op: Extract<FsOp, { type: 'openFile' | 'openDir' }>, state: { cancelled: boolean }): Promise<Result> {
    const prefix = PREFIX[op.type];
    checkPath(prefix, op.path);
    const slot = slotOf(id);
    const held = this.#perSlot.get(slot) ?? 0;
    if (held >= MAX_HANDLES_PER_CLIENT) {
      throw new FsFailure(`${prefix}too many open filesystem handles for relay client: ${slot} (at most ${MAX_HANDLES_PER_CLIENT})`);
    }
    this.#perSlot.set(slot, held + 1);
    let h: FsHandle;
    try {
      h = await this.#openTarget(op, { conn: this, slot, id });
    } catch (err) {
      this.#release(slot);
      throw err;
    }
    if (state.cancelled || this.#closed) {
      // The client left while we were opening: nobody can ever use or close this handle.
      this.#release(slot);
      await h.close().catch(() => {});
      return null;
    }
    this.#table.add(h);
    this.#handles.add(h);
    return { type: 'handle', handle: h.number };
  }

  async #openTarget(op: Extract<FsOp, { type: 'openFile' | 'openDir' }>, owner: HandleOwner): Promise<FsHandle> {
    const prefix = PREFIX[op.type];
    if (op.type === 'openDir') {
      const dir = await withPrefix(prefix, () => opendir(op.path, { bufferSize: 128 }));
      return new FsHandle(this.#table.allocate(), op.path, owner, { kind: 'dir', dir }, { read: true, write: false, append: false });
    }
    const flags = openFlags(op.options);
    if (flags === null) throw new FsFailure(`open: ${osErrorText(EINVAL)}`);
    const file = await withPrefix(prefix, () => open(op.path, flags, permissionBits(op.options.mode ?? 0o666)));
    const { read, write, append } = op.options;
    return new FsHandle(this.#table.allocate(), op.path, owner, { kind: 'file', file }, { read, write, append });
  }

  #release(slot: number): void {
    const n = (this.#perSlot.get(slot) ?? 1) - 1;
    if (n > 0) this.#perSlot.set(slot, n);
    else this.#perSlot.delete(slot);
  }

  /** Removes the handle at once (later requests find it gone) and closes it after its queue. */
  #closeHandle(h: FsHandle): Promise<void> {
    if (!this.#handles.delete(h)) return h.close();
    this.#table.remove(h);
    this.#release(h.owner.slot);
    return h.close();
  }

  /** The handle behind `n`, if `id`'s client owns it. */
  #owned(n: U64, prefix: string, id: number): FsHandle {
    const h = this.#table.get(n);
    if (!h) throw new FsFailure(`${prefix}invalid handle: ${n}`);
    if (h.owner.conn !== this || h.owner.slot !== slotOf(id)) {
      throw new FsFailure(`${prefix}handle ${n} is owned by a different relay client`);
    }
    return h;
  }

  #file(n: U64, prefix: string, id: number): FsHandle {
    const h = this.#owned(n, prefix, id);
    if (h.kind !== 'file') throw new FsFailure(`${prefix}handle ${n} is a directory`);
    return h;
  }

  /** Sends the result of a one-shot operation as its terminal response. */
  #answer(id: number, state: { cancelled: boolean }, result: Promise<Result>): void {
    result.then(
      (data) => this.#reply(id, state, { ok: true, data }),
      (error: unknown) => this.#reply(id, state, { ok: false, error }),
    );
  }

  #reply(id: number, state: { cancelled: boolean }, outcome: Outcome): void {
    if (this.#pending.get(id) === state) this.#pending.delete(id);
    if (state.cancelled) return;
    if (outcome.ok) {
      this.#owner.send(id, { type: 'fsResponse', payload: { ok: true, error: null, data: outcome.data } });
    } else {
      const e = outcome.error;
      this.#owner.send(id, fail(e instanceof FsFailure ? e.message : `fs: ${errorDetail(e)}`));
    }
    this.#owner.ended(id);
  }
}

function fail(error: string): OutgoingMessage {
  return { type: 'fsResponse', payload: { ok: false, error, data: null } };
}

/** The relay client slot of an id, by upstream's formula (id > 0). */
function slotOf(id: number): number {
  return Math.floor((id - 1) / ID_STEP);
}

function safe(v: U64, prefix: string, what: string): number {
  if (typeof v === 'bigint' || v > Number.MAX_SAFE_INTEGER) throw new FsFailure(`${prefix}${what} ${v} is too large`);
  return v;
}

async function readBatch(t: HandleTarget, path: string, limit: number): Promise<Result> {
  if (t.kind !== 'dir') throw new FsFailure('not a directory handle');
  const names: string[] = [];
  while (names.length < limit) {
    const entry = await t.dir.read();
    if (entry === null) break;
    names.push(childPath(path, entry.name));
  }
  return { type: 'list', entries: await listedEntries(names) };
}

async function fsetstat(t: HandleTarget, a: FsSetAttrs): Promise<void> {
  if (t.kind !== 'file') throw new FsFailure('not a file handle');
  const f = t.file;
  if (a.size !== null) await f.truncate(Number(a.size));
  if (a.mode !== null) await f.chmod(permissionBits(a.mode));
  if (a.uid !== null || a.gid !== null) await f.chown(a.uid ?? -1, a.gid ?? -1);
  if (a.atime !== null || a.mtime !== null) {
    const cur = a.atime === null || a.mtime === null ? await f.stat({ bigint: true }) : null;
    const atime = a.atime !== null ? Number(a.atime) : Number(cur!.atimeNs / 1_000_000_000n);
    const mtime = a.mtime !== null ? Number(a.mtime) : Number(cur!.mtimeNs / 1_000_000_000n);
    await f.utimes(atime, mtime);
  }
}
