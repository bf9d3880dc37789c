// Handles of the filesystem service (PROTOCOL §4.9.1 with W17 fixed): open semantics, ReadDir
// batches, FStat/FSetStat, the kind and permission checks, ownership across clients, the
// 1024-handle limit, id 0, and handles closed when their client goes (fd count back to baseline).
import t from 'tap';
import { mkdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';

import { rawConnect, rawOver, type RawClient } from '../fixtures/raw-client.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';
import { fsCall, fsError, fsOk, listOf, openHandle, statOf } from '../fixtures/fs-client.js';
import { eventually, fdCount } from '../fixtures/harness.js';
import type { FsOpenOptions, FsSetAttrs } from '../../ts/protocol/index.js';

const { agent, path: sock, dir, clients } = await startAgentOnSocket(t, 'fshandles');
const a = await rawConnect(sock);
const b = await rawConnect(sock);
clients.push(a, b);
const ids = new Map<RawClient, number>([
  [a, a.idStart],
  [b, b.idStart],
]);
const id = (c: RawClient = a): number => {
  const n = ids.get(c)!;
  ids.set(c, n + 1);
  return n;
};
const p = (name: string): string => join(dir, name);
const NONE: FsOpenOptions = { read: false, write: false, append: false, create: false, truncate: false, createNew: false, mode: null };
const NO_ATTRS: FsSetAttrs = { mode: null, uid: null, gid: null, size: null, atime: null, mtime: null };
const EINVAL = 'Invalid argument (os error 22)';

t.test('OpenFile follows Rust OpenOptions: access modes, creation flags, default mode with umask', async (t) => {
  const open = (path: string, o: Partial<FsOpenOptions>) => fsCall(a, id(), { type: 'openFile', path, options: { ...NONE, ...o } });
  for (const bad of [{}, { read: true, create: true }, { read: true, truncate: true }, { read: true, createNew: true }, { append: true, truncate: true }]) {
    const r = await open(p('o1'), bad);
    t.same(r, { ok: false, error: `open: ${EINVAL}`, data: null }, `EINVAL for ${JSON.stringify(bad)}`);
  }
  t.equal((await open(p('o1'), { read: true })).error, 'open: No such file or directory (os error 2)');
  const umask = process.umask();
  const h = await openHandle(a, id(), p('o1'), { write: true, create: true });
  t.ok(h > 0, 'handle numbers are never 0');
  t.equal(statSync(p('o1')).mode & 0o777, 0o666 & ~umask, 'mode 0o666 minus the umask');
  await openHandle(a, id(), p('o2'), { write: true, create: true, mode: 0o600 });
  t.equal(statSync(p('o2')).mode & 0o777, 0o600 & ~umask);
  t.equal((await open(p('o1'), { write: true, createNew: true })).error, 'open: File exists (os error 17)');
  t.equal((await open(p('o1/x'), { write: true, create: true })).error, 'open: Not a directory (os error 20)');
  t.equal((await open(dir, { write: true })).error, 'open: Is a directory (os error 21)');
  writeFileSync(p('o3'), 'old contents');
  await openHandle(a, id(), p('o3'), { write: true, truncate: true });
  t.equal(readFileSync(p('o3'), 'utf8'), '', 'truncate');
  const h2 = await openHandle(a, id(), p('o1'), { read: true });
  t.not(h2, h, 'a new number for each open');
});

t.test('OpenDir / ReadDir in batches, then an empty list; kind checks both ways', async (t) => {
  const d = p('many');
  mkdirSync(d);
  for (let i = 0; i < 7; i++) writeFileSync(join(d, `f${i}`), 'x'.repeat(i));
  const data = await fsOk(a, id(), { type: 'openDir', path: d });
  if (data?.type !== 'handle') throw new Error('no handle');
  const h = Number(data.handle);
  const seen: string[] = [];
  const batch1 = listOf(await fsOk(a, id(), { type: 'readDir', handle: h, limit: 3 }));
  t.equal(batch1.length, 3);
  seen.push(...batch1.map((e) => e.path));
  const batch2 = listOf(await fsOk(a, id(), { type: 'readDir', handle: h, limit: 0 }));
  t.equal(batch2.length, 1, 'limit 0 means 1');
  seen.push(...batch2.map((e) => e.path));
  const rest = listOf(await fsOk(a, id(), { type: 'readDir', handle: h, limit: null }));
  t.equal(rest.length, 3);
  seen.push(...rest.map((e) => e.path));
  t.same(seen.sort(), [...Array(7).keys()].map((i) => join(d, `f${i}`)));
  for (const e of [...batch1, ...batch2, ...rest]) t.equal(e.size, Number(e.path.slice(-1)), `${e.path} size`);
  t.same(listOf(await fsOk(a, id(), { type: 'readDir', handle: h, limit: null })), [], 'the end is an empty list');
  const fstat = statOf(await fsOk(a, id(), { type: 'fstat', handle: h }));
  t.equal(fstat.path, d);
  t.equal(fstat.kind, 'dir');
  t.equal(await fsError(a, id(), { type: 'read', handle: h, offset: 0, len: null }), `read: handle ${h} is a directory`);
  t.equal(await fsError(a, id(), { type: 'write', handle: h, offset: 0, len: null }), `write: handle ${h} is a directory`);
  t.equal(await fsError(a, id(), { type: 'fsetstat', handle: h, attrs: NO_ATTRS }), `fsetstat: handle ${h} is a directory`);
  const f = await openHandle(a, id(), join(d, 'f3'), { read: true });
  t.equal(await fsError(a, id(), { type: 'readDir', handle: f, limit: null }), `readdir: handle ${f} is a file`);
  t.equal(await fsError(a, id(), { type: 'openDir', path: join(d, 'f3') }), 'opendir: Not a directory (os error 20)');
  t.same(await fsOk(a, id(), { type: 'closeHandle', handle: h }), null);
});

t.test('FStat and FSetStat on a file handle; permission checks for Read and Write', async (t) => {
  writeFileSync(p('fs1'), '0123456789');
  const h = await openHandle(a, id(), p('fs1'), { read: true, write: true });
  const st = statOf(await fsOk(a, id(), { type: 'fstat', handle: h }));
  t.equal(st.path, p('fs1'));
  t.equal(st.size, 10);
  t.equal(st.mode, statSync(p('fs1')).mode);
  await fsOk(a, id(), { type: 'fsetstat', handle: h, attrs: { ...NO_ATTRS, size: 4, mode: 0o604, uid: 55, gid: 66, mtime: 5_000_000 } });
  const after = statSync(p('fs1'));
  t.equal(after.size, 4);
  t.equal(after.mode, 0o100604);
  t.equal(after.uid, 55);
  t.equal(after.gid, 66);
  t.equal(Math.floor(after.mtimeMs / 1000), 5_000_000);
  const ro = await openHandle(a, id(), p('fs1'), { read: true });
  t.equal(await fsError(a, id(), { type: 'write', handle: ro, offset: 0, len: null }), `write: handle ${ro} is not open for writing`);
  const wo = await openHandle(a, id(), p('fs1'), { write: true });
  t.equal(await fsError(a, id(), { type: 'read', handle: wo, offset: 0, len: null }), `read: handle ${wo} is not open for reading`);
});

t.test('CloseHandle, then every use of the number is an invalid handle', async (t) => {
  writeFileSync(p('c1'), 'x');
  const h = await openHandle(a, id(), p('c1'), { read: true });
  t.same(await fsCall(a, id(), { type: 'closeHandle', handle: h }), { ok: true, error: null, data: null });
  t.equal(await fsError(a, id(), { type: 'closeHandle', handle: h }), `close: invalid handle: ${h}`);
  t.equal(await fsError(a, id(), { type: 'fstat', handle: h }), `fstat: invalid handle: ${h}`);
  t.equal(await fsError(a, id(), { type: 'read', handle: h, offset: 0, len: null }), `read: invalid handle: ${h}`);
  t.equal(await fsError(a, id(), { type: 'readDir', handle: 987654, limit: null }), 'readdir: invalid handle: 987654');
  t.equal(await fsError(a, id(), { type: 'fstat', handle: 2n ** 63n }), `fstat: invalid handle: ${2n ** 63n}`);
});

t.test('a handle belongs to the client that opened it', async (t) => {
  writeFileSync(p('own'), 'mine');
  const h = await openHandle(a, id(), p('own'), { read: true });
  const other = `handle ${h} is owned by a different relay client`;
  t.equal(await fsError(b, id(b), { type: 'fstat', handle: h }), `fstat: ${other}`);
  t.equal(await fsError(b, id(b), { type: 'read', handle: h, offset: 0, len: null }), `read: ${other}`);
  t.equal(await fsError(b, id(b), { type: 'closeHandle', handle: h }), `close: ${other}`);
  t.equal(statOf(await fsOk(a, id(), { type: 'fstat', handle: h })).size, 4, 'the owner still uses it');
});

t.test('id 0 never carries a filesystem request', async (t) => {
  a.send(0, { type: 'fsRequest', payload: { op: { type: 'stat', path: dir, followSymlink: true } } });
  const r = await a.next((m) => m.id === 0);
  t.equal(r.type, 'error', 'a stream client: id 0 is for control frames only');
  t.equal((r.payload as { kind: string }).kind, 'invalid_session');
  // A single-peer transport owns every id, 0 included; the fs service still refuses 0 (W17).
  const server = createServer();
  const path = join(dir, 'peer.sock');
  server.listen(path);
  await once(server, 'listening');
  t.teardown(() => server.close());
  const accepted = once(server, 'connection');
  const near = connect(path);
  const [far] = (await accepted) as [Socket];
  await agent.listen({ kind: 'stream', stream: far });
  const peer = await rawOver(near, false);
  clients.push(peer);
  peer.send(0, { type: 'fsRequest', payload: { op: { type: 'openDir', path: dir } } });
  const r0 = await peer.next((m) => m.id === 0);
  t.same(r0.payload, { ok: false, error: 'opendir: id 0 cannot carry a filesystem request (it is reserved for control frames)', data: null });
  t.same(listOf(await fsOk(peer, 1, { type: 'list', path: join(dir, 'many') })).length, 7, 'other ids work');
});

t.test('unknown write session; duplicate live id', async (t) => {
  const never = id();
  a.send(never, { type: 'fsData', payload: { data: Buffer.from('x') } });
  const u = await a.next((m) => m.id === never);
  t.same(u.payload, { ok: false, error: `unknown write session: ${never}`, data: null });
  writeFileSync(p('dup'), '');
  const h = await openHandle(a, id(), p('dup'), { write: true });
  const w = id();
  a.send(w, { type: 'fsRequest', payload: { op: { type: 'write', handle: h, offset: 0, len: null } } });
  a.send(w, { type: 'fsRequest', payload: { op: { type: 'stat', path: dir, followSymlink: true } } });
  const dup = await a.next((m) => m.id === w);
  t.equal(dup.type, 'error');
  t.equal((dup.payload as { kind: string }).kind, 'invalid_session');
  a.send(w, { type: 'fsData', payload: { data: Buffer.from('still fine') } });
  a.send(w, { type: 'fsData', payload: { data: Buffer.alloc(0) } });
  t.same((await a.next((m) => m.id === w)).payload, { ok: true, error: null, data: null }, 'the live stream was not disturbed');
  t.equal(readFileSync(p('dup'), 'utf8'), 'still fine');
});

t.test('1024 handles per client; the next one is refused; other clients are unaffected', async (t) => {
  const baseline = fdCount();
  const c = await rawConnect(sock);
  let next = c.idStart;
  const opens: Promise<number>[] = [];
  for (let i = 0; i < 1024; i++) opens.push(openHandle(c, next++, '/dev/null', { read: true }));
  const handles = await Promise.all(opens);
  t.equal(new Set(handles).size, 1024);
  const err = await fsError(c, next++, { type: 'openDir', path: dir });
  t.match(err, /^opendir: too many open filesystem handles for relay client: \d+/);
  const fromB = await openHandle(b, id(b), '/dev/null', { read: true });
  t.ok(fromB > 0, 'another client can still open');
  await fsOk(b, id(b), { type: 'closeHandle', handle: fromB });
  await fsOk(c, next++, { type: 'closeHandle', handle: handles[0]! });
  t.ok((await openHandle(c, next++, '/dev/null', { read: true })) > 0, 'after a close there is room again');
  c.close();
  t.ok(await eventually(() => fdCount() <= baseline, 10000), `fd count back to ${baseline} (now ${fdCount()})`);
});

t.test('disconnect closes every handle of the client: fd count back to baseline', async (t) => {
  const baseline = fdCount();
  const c = await rawConnect(sock);
  let next = c.idStart;
  const opens: Promise<number>[] = [];
  for (let i = 0; i < 200; i++) opens.push(openHandle(c, next++, '/dev/null', { read: true }));
  const dirs: Promise<unknown>[] = [];
  for (let i = 0; i < 20; i++) dirs.push(fsOk(c, next++, { type: 'openDir', path: dir }));
  await Promise.all([...opens, ...dirs]);
  t.ok(fdCount() >= baseline + 220, 'the handles hold descriptors');
  c.close();
  t.ok(await eventually(() => fdCount() <= baseline, 10000), `fd count back to ${baseline} (now ${fdCount()})`);
});

t.test('core.relay.client.disconnected closes the handles of that range', async (t) => {
  writeFileSync(p('relay'), 'x');
  const c = await rawConnect(sock);
  clients.push(c);
  const h = await openHandle(c, c.idStart, p('relay'), { read: true });
  c.send(0, { type: 'relayClientDisconnected', payload: { idStart: c.idStart, idEndExclusive: c.idEnd } });
  t.equal(await fsError(c, c.idStart + 1, { type: 'fstat', handle: h }), `fstat: invalid handle: ${h}`);
});

t.test('edge values get one typed answer each and leave nothing open', async (t) => {
  const baseline = fdCount();
  writeFileSync(p('edge'), 'edge');
  const h = await openHandle(a, id(), p('edge'), { read: true, write: true });
  const U64_MAX = 2n ** 64n - 1n;
  const answers = await Promise.all([
    fsCall(a, id(), { type: 'read', handle: h, offset: U64_MAX, len: null }),
    fsCall(a, id(), { type: 'read', handle: h, offset: 0, len: U64_MAX }),
    fsCall(a, id(), { type: 'readDir', handle: h, limit: 0xffff_ffff }),
    fsCall(a, id(), { type: 'closeHandle', handle: 0 }),
    fsCall(a, id(), { type: 'setStat', path: p('edge'), followSymlink: true, attrs: { ...NO_ATTRS, atime: 2n ** 63n - 1n } }),
    fsCall(a, id(), { type: 'setStat', path: p('edge'), followSymlink: true, attrs: { ...NO_ATTRS, size: U64_MAX } }),
    fsCall(a, id(), { type: 'mkdir', path: p('odd-mode'), mode: 0xffff_ffff }),
    fsCall(a, id(), { type: 'stat', path: '', followSymlink: true }),
    fsCall(a, id(), { type: 'openFile', path: p('odd-open'), options: { ...NONE, write: true, create: true, mode: 0x8000_0000 } }),
    fsCall(a, id(), { type: 'fsetstat', handle: h, attrs: { ...NO_ATTRS, mode: 0xffff_ffff } }),
  ]);
  t.same(answers[0], { ok: false, error: `read: offset ${U64_MAX} is too large`, data: null });
  t.same(answers[1], { ok: true, error: null, data: null }, 'len beyond the file: read to EOF');
  t.same(answers[2], { ok: false, error: `readdir: handle ${h} is a file`, data: null });
  t.same(answers[3], { ok: false, error: 'close: invalid handle: 0', data: null });
  t.equal(answers[4]!.ok, false, `an atime beyond any clock is refused: ${answers[4]!.error}`);
  t.match(answers[4]!.error, /^setstat: /);
  t.equal(answers[5]!.ok, false, `a size beyond any file is refused: ${answers[5]!.error}`);
  t.match(answers[5]!.error, /^setstat: /);
  t.equal(statSync(p('edge')).size, 4, 'the file is untouched');
  t.same(answers[6], { ok: true, error: null, data: null });
  t.equal(statSync(p('odd-mode')).mode, 0o47777, 'chmod keeps the permission bits of an oversized mode');
  t.same(answers[7], { ok: false, error: 'stat: No such file or directory (os error 2)', data: null });
  t.equal(answers[8]!.ok, true, 'open with a mode of 2^31: only the permission bits count');
  await fsOk(a, id(), { type: 'closeHandle', handle: Number((answers[8]!.data as { handle: number }).handle) });
  t.same(answers[9], { ok: true, error: null, data: null });
  t.equal(statSync(p('edge')).mode, 0o107777, 'fchmod with 0xffffffff sets every permission bit');
  t.same(await fsCall(a, id(), { type: 'setStat', path: p('edge'), followSymlink: false, attrs: { ...NO_ATTRS, mode: 0x8000_01a4 } }), { ok: true, error: null, data: null });
  t.equal(statSync(p('edge')).mode, 0o100644, '0x800001a4 has permission bits 0644');
  await fsOk(a, id(), { type: 'closeHandle', handle: h });
  t.ok(await eventually(() => fdCount() <= baseline, 5000), 'no descriptor left behind');
});
