// The path operations of the filesystem service (PROTOCOL §4.9.2) against real files: results,
// FsEntryInfo fields checked against lstat, and every error path with its upstream prefix.
import t from 'tap';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  existsSync,
  realpathSync,
} from 'node:fs';
import { join } from 'node:path';

import { rawConnect } from '../fixtures/raw-client.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';
import { fsError, fsOk, listOf, statOf } from '../fixtures/fs-client.js';
import type { FsEntryInfo, FsSetAttrs } from '../../ts/protocol/index.js';

const { path: sock, dir, clients } = await startAgentOnSocket(t, 'fsops');
const c = await rawConnect(sock);
clients.push(c);
let nextId = c.idStart;
const id = (): number => nextId++;
const root = join(dir, 'tree');
mkdirSync(root);
const p = (name: string): string => join(root, name);

const ENOENT = 'No such file or directory (os error 2)';
const EEXIST = 'File exists (os error 17)';
const ENOTDIR = 'Not a directory (os error 20)';
const EISDIR = 'Is a directory (os error 21)';
const ENOTEMPTY = 'Directory not empty (os error 39)';
const NO_ATTRS: FsSetAttrs = { mode: null, uid: null, gid: null, size: null, atime: null, mtime: null };

function expected(path: string, follow = false): FsEntryInfo {
  const st = (follow ? statSync : lstatSync)(path, { bigint: true });
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  const secs = (ns: bigint): number => Number(ns / 1_000_000_000n);
  return {
    path,
    kind,
    size: Number(st.size),
    mode: Number(st.mode),
    modified: secs(st.mtimeNs),
    uid: Number(st.uid),
    gid: Number(st.gid),
    atime: secs(st.atimeNs),
    mtime: secs(st.mtimeNs),
  };
}

t.test('Stat and lstat: every FsEntryInfo field matches lstat, full st_mode with type bits', async (t) => {
  writeFileSync(p('a.txt'), 'hello');
  chmodSync(p('a.txt'), 0o640);
  utimesSync(p('a.txt'), 1_700_000_001, 1_600_000_002);
  symlinkSync('a.txt', p('link'));
  const file = statOf(await fsOk(c, id(), { type: 'stat', path: p('a.txt'), followSymlink: true }));
  t.same(file, expected(p('a.txt')));
  t.equal(file.mode, 0o100640, 'type bits included');
  t.equal(file.atime, 1_700_000_001);
  t.equal(file.mtime, 1_600_000_002);
  t.equal(file.modified, 1_600_000_002);
  const link = statOf(await fsOk(c, id(), { type: 'stat', path: p('link'), followSymlink: false }));
  t.same(link, expected(p('link')));
  t.equal(link.kind, 'symlink');
  const followed = statOf(await fsOk(c, id(), { type: 'stat', path: p('link'), followSymlink: true }));
  t.same(followed, { ...expected(p('a.txt')), path: p('link') }, 'path is the requested string');
  const d = statOf(await fsOk(c, id(), { type: 'stat', path: root, followSymlink: true }));
  t.same(d, expected(root));
  t.equal(d.kind, 'dir');
  const dev = statOf(await fsOk(c, id(), { type: 'stat', path: '/dev/null', followSymlink: true }));
  t.equal(dev.kind, 'other');
  t.equal(await fsError(c, id(), { type: 'stat', path: p('missing'), followSymlink: true }), `stat: ${ENOENT}`);
  t.equal(await fsError(c, id(), { type: 'stat', path: p('a.txt/x'), followSymlink: true }), `stat: ${ENOTDIR}`);
});

t.test('RealPath resolves symlinks, and a missing leaf under an existing parent', async (t) => {
  mkdirSync(p('real'));
  symlinkSync('real', p('alias'));
  const real = realpathSync(p('real'));
  t.same(await fsOk(c, id(), { type: 'realPath', path: p('alias') }), { type: 'path', path: real });
  t.same(await fsOk(c, id(), { type: 'realPath', path: p('alias/not-yet') }), { type: 'path', path: `${real}/not-yet` });
  t.equal(await fsError(c, id(), { type: 'realPath', path: p('nope/deeper') }), `realpath: ${ENOENT}`);
});

t.test('List: every entry but . and .., lstat-ed, path <dir>/<name>', async (t) => {
  const d = p('listme');
  mkdirSync(d);
  writeFileSync(join(d, 'f'), 'x');
  mkdirSync(join(d, 'sub'));
  symlinkSync('/nonexistent-target', join(d, 'dangling'));
  const entries = listOf(await fsOk(c, id(), { type: 'list', path: d }));
  t.same(
    entries.map((e) => e.path).sort(),
    ['dangling', 'f', 'sub'].map((n) => join(d, n)),
  );
  for (const e of entries) t.same(e, expected(e.path), `${e.path} matches lstat`);
  t.same(listOf(await fsOk(c, id(), { type: 'list', path: `${d}/` })).map((e) => e.path).sort(), ['dangling', 'f', 'sub'].map((n) => join(d, n)), 'no doubled slash');
  t.equal(await fsError(c, id(), { type: 'list', path: p('absent') }), `readdir: opendir: ${ENOENT}`);
  t.equal(await fsError(c, id(), { type: 'list', path: join(d, 'f') }), `readdir: opendir: ${ENOTDIR}`);
});

t.test('ReadLink and Symlink', async (t) => {
  t.same(await fsOk(c, id(), { type: 'symlink', target: 'some/where', linkPath: p('sl') }), null);
  t.equal(readlinkSync(p('sl')), 'some/where');
  t.same(await fsOk(c, id(), { type: 'readLink', path: p('sl') }), { type: 'path', path: 'some/where' });
  t.equal(await fsError(c, id(), { type: 'symlink', target: 'x', linkPath: p('sl') }), `symlink: ${EEXIST}`);
  t.equal(await fsError(c, id(), { type: 'readLink', path: p('nothing') }), `readlink: ${ENOENT}`);
  writeFileSync(p('plain'), '');
  t.equal(await fsError(c, id(), { type: 'readLink', path: p('plain') }), 'readlink: Invalid argument (os error 22)');
});

t.test('Mkdir: -p semantics, exact mode without umask, existing dir is fine, a file is EEXIST', async (t) => {
  const deep = p('m/n/o');
  t.same(await fsOk(c, id(), { type: 'mkdir', path: deep, mode: 0o700 }), null);
  t.equal(statSync(deep).mode, 0o40700);
  t.same(await fsOk(c, id(), { type: 'mkdir', path: deep, mode: null }), null, 'exists already');
  t.same(await fsOk(c, id(), { type: 'mkdir', path: p('m/open'), mode: 0o777 }), null);
  t.equal(statSync(p('m/open')).mode, 0o40777, 'umask not applied');
  writeFileSync(p('m/file'), '');
  t.equal(await fsError(c, id(), { type: 'mkdir', path: p('m/file'), mode: null }), `mkdir: ${EEXIST}`);
  t.equal(await fsError(c, id(), { type: 'mkdir', path: p('m/file/sub'), mode: null }), `mkdir: ${ENOTDIR}`);
});

t.test('Remove, RemoveDir (plain and recursive) and their errors', async (t) => {
  writeFileSync(p('gone'), 'x');
  t.same(await fsOk(c, id(), { type: 'remove', path: p('gone') }), null);
  t.notOk(existsSync(p('gone')));
  t.equal(await fsError(c, id(), { type: 'remove', path: p('gone') }), `remove: ${ENOENT}`);
  mkdirSync(p('rd/inner'), { recursive: true });
  writeFileSync(p('rd/inner/f'), 'x');
  t.equal(await fsError(c, id(), { type: 'remove', path: p('rd') }), `remove: ${EISDIR}`);
  t.equal(await fsError(c, id(), { type: 'removeDir', path: p('rd'), recursive: false }), `remove_dir: ${ENOTEMPTY}`);
  writeFileSync(p('notadir'), '');
  t.equal(await fsError(c, id(), { type: 'removeDir', path: p('notadir'), recursive: false }), `remove_dir: ${ENOTDIR}`);
  t.equal(await fsError(c, id(), { type: 'removeDir', path: p('notadir'), recursive: true }), `remove_dir: ${ENOTDIR}`);
  t.ok(existsSync(p('notadir')), 'a file is never removed by RemoveDir');
  t.same(await fsOk(c, id(), { type: 'removeDir', path: p('rd'), recursive: true }), null);
  t.notOk(existsSync(p('rd')));
  mkdirSync(p('empty'));
  t.same(await fsOk(c, id(), { type: 'removeDir', path: p('empty'), recursive: false }), null);
  t.equal(await fsError(c, id(), { type: 'removeDir', path: p('empty'), recursive: true }), `remove_dir: ${ENOENT}`);
});

t.test('Copy: bytes and permission bits of a regular file; directories refused', async (t) => {
  writeFileSync(p('src'), 'payload');
  chmodSync(p('src'), 0o751);
  t.same(await fsOk(c, id(), { type: 'copy', src: p('src'), dst: p('dst') }), null);
  t.equal(readFileSync(p('dst'), 'utf8'), 'payload');
  t.equal(statSync(p('dst')).mode, 0o100751);
  t.equal(await fsError(c, id(), { type: 'copy', src: p('absent'), dst: p('x') }), `copy: ${ENOENT}`);
  t.match(await fsError(c, id(), { type: 'copy', src: root, dst: p('x') }), /^copy: the source path is neither a regular file/);
  t.notOk(existsSync(p('x')), 'nothing created');
  t.equal(await fsError(c, id(), { type: 'copy', src: p('src'), dst: p('nodir/dst') }), `copy: ${ENOENT}`);
});

t.test('Rename, and its errors', async (t) => {
  writeFileSync(p('r1'), 'moved');
  t.same(await fsOk(c, id(), { type: 'rename', src: p('r1'), dst: p('r2') }), null);
  t.equal(readFileSync(p('r2'), 'utf8'), 'moved');
  t.equal(await fsError(c, id(), { type: 'rename', src: p('r1'), dst: p('r3') }), `rename: ${ENOENT}`);
  mkdirSync(p('full'));
  writeFileSync(p('full/x'), '');
  mkdirSync(p('e2'));
  t.equal(await fsError(c, id(), { type: 'rename', src: p('e2'), dst: p('full') }), `rename: ${ENOTEMPTY}`);
  t.equal(await fsError(c, id(), { type: 'rename', src: p('e2'), dst: p('r2') }), `rename: ${ENOTDIR}`);
  t.equal(await fsError(c, id(), { type: 'rename', src: p('r2'), dst: p('e2') }), `rename: ${EISDIR}`);
});

t.test('SetStat: size, mode, owner and times, following or not', async (t) => {
  writeFileSync(p('ss'), 'abcdef');
  await fsOk(c, id(), { type: 'setStat', path: p('ss'), followSymlink: true, attrs: { ...NO_ATTRS, size: 3, mode: 0o600, uid: 1234, gid: 4321, atime: 1_000_000, mtime: 2_000_000 } });
  const st = statSync(p('ss'));
  t.equal(st.size, 3, 'truncated (not read back: a read would move atime)');
  t.equal(st.mode, 0o100600);
  t.equal(st.uid, 1234);
  t.equal(st.gid, 4321);
  t.equal(Math.floor(st.atimeMs / 1000), 1_000_000);
  t.equal(Math.floor(st.mtimeMs / 1000), 2_000_000);
  await fsOk(c, id(), { type: 'setStat', path: p('ss'), followSymlink: true, attrs: { ...NO_ATTRS, gid: 7, mtime: 3_000_000 } });
  const st2 = statSync(p('ss'));
  t.equal(st2.uid, 1234, 'a missing uid is left alone');
  t.equal(st2.gid, 7);
  t.equal(Math.floor(st2.atimeMs / 1000), 1_000_000, 'a missing atime keeps its value');
  t.equal(Math.floor(st2.mtimeMs / 1000), 3_000_000);
  symlinkSync('ss', p('ss-link'));
  t.equal(
    await fsError(c, id(), { type: 'setStat', path: p('ss-link'), followSymlink: false, attrs: { ...NO_ATTRS, mode: 0o644 } }),
    'setstat: chmod on symlink without following is not supported',
  );
  await fsOk(c, id(), { type: 'setStat', path: p('ss-link'), followSymlink: false, attrs: { ...NO_ATTRS, uid: 99, mtime: 4_000_000 } });
  t.equal(lstatSync(p('ss-link')).uid, 99, 'lchown on the link');
  t.equal(statSync(p('ss')).uid, 1234, 'the target is untouched');
  t.equal(Math.floor(lstatSync(p('ss-link')).mtimeMs / 1000), 4_000_000);
  t.equal(await fsError(c, id(), { type: 'setStat', path: p('none'), followSymlink: true, attrs: { ...NO_ATTRS, size: 0 } }), `setstat: ${ENOENT}`);
});

t.test('a path with a NUL byte is refused before any syscall', async (t) => {
  t.equal(await fsError(c, id(), { type: 'stat', path: 'a\0b', followSymlink: true }), 'stat: file name contained an unexpected NUL byte');
  t.equal(await fsError(c, id(), { type: 'mkdir', path: `${root}/x\0y`, mode: null }), 'mkdir: file name contained an unexpected NUL byte');
  t.equal(await fsError(c, id(), { type: 'rename', src: p('r2'), dst: 'bad\0' }), 'rename: file name contained an unexpected NUL byte');
  t.ok(existsSync(p('r2')), 'nothing was moved');
  t.equal(
    await fsError(c, id(), { type: 'openFile', path: '\0', options: { read: true, write: false, append: false, create: false, truncate: false, createNew: false, mode: null } }),
    'open: file name contained an unexpected NUL byte',
  );
});
