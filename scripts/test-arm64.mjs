#!/usr/bin/env node
// `npm run test:arm64`: runs the linux-arm64-gnu release binary on this x64 machine under qemu
// user-mode emulation, inside Debian's arm64 node (nodejs:arm64 and the packages it needs,
// fetched with `apt-get download` and unpacked with `dpkg -x` into a temp dir: never installed,
// so the host's node is untouched). Debian's arm64 node is 18, below the package's engines floor,
// so the check drives the raw addon from a small CommonJS script rather than loading dist/: it
// loads the addon, runs a PTY session and a pipe session, reads their output and exit codes, and
// checks a typed spawn failure. One line per check; exit status 1 if any failed.
//
// qemu: Debian 12's qemu-user-static (7.2) answers clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD),
// the spawn core's one way to start a child, with EINVAL, so every spawn would fail there. The
// system's qemu-aarch64(-static) is used when it is 10 or newer (verified: 10.0 runs it);
// otherwise `qemu-user` (static binaries, 10.x) comes from this release's backports suite,
// through a private apt sources list and lists directory, downloaded and unpacked like node.
//
// Adds the arm64 dpkg architecture (for nodejs:arm64) when missing and running as root.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = join(root, 'target', 'npm', 'artifacts', 'spawn-core.linux-arm64-gnu.node');
const QEMU_MIN_MAJOR = 10;

let failures = 0;
let tmp = null;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? `: ${detail}` : ''}`);
  if (!ok) failures += 1;
  return ok;
}

function say(msg) {
  console.log(`# ${msg}`);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().slice(-800)}`);
  return r.stdout ?? '';
}

const isRoot = process.getuid?.() === 0;
const aptEnv = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

function ensureArm64Packages() {
  const foreign = run('dpkg', ['--print-foreign-architectures']).split('\n');
  const candidate = () => /Candidate: (?!\(none\))/.test(run('apt-cache', ['policy', 'nodejs:arm64']));
  if (foreign.includes('arm64') && candidate()) return;
  if (!isRoot) throw new Error('needs the arm64 dpkg architecture; run as root:\n  dpkg --add-architecture arm64 && apt-get update');
  if (!foreign.includes('arm64')) run('dpkg', ['--add-architecture', 'arm64']);
  say('apt-get update');
  run('apt-get', ['update', '-qq'], { env: aptEnv });
}

function qemuMajor(bin) {
  const m = /version (\d+)\./.exec(spawnSync(bin, ['--version'], { encoding: 'utf8' }).stdout ?? '');
  return m ? Number(m[1]) : 0;
}

/** The deb822 or one-line apt source that serves `suite` on this machine: [uri, signedBy]. */
function aptSourceFor(suite) {
  const dir = '/etc/apt/sources.list.d';
  const files = existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : [];
  for (const file of ['/etc/apt/sources.list', ...files].filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name) => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1].trim();
        if ((field('Types') ?? '').split(/\s+/).includes('deb') && (field('Suites') ?? '').split(/\s+/).includes(suite)) {
          return [field('URIs').split(/\s+/)[0], field('Signed-By')];
        }
      }
    } else if (file.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)/.exec(line.trim());
        if (m && m[3] === suite) return [m[2], /signed-by=(\S+)/.exec(m[1] ?? '')?.[1]];
      }
    }
  }
  throw new Error(`no apt source for ${suite} in /etc/apt`);
}

/** A qemu-aarch64 that supports CLONE_PIDFD: the system's, or backports' unpacked into `dir`. */
function qemuAarch64(dir) {
  for (const bin of ['/usr/bin/qemu-aarch64-static', '/usr/bin/qemu-aarch64']) {
    if (existsSync(bin) && qemuMajor(bin) >= QEMU_MIN_MAJOR) return bin;
  }
  const codename = /^VERSION_CODENAME=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  if (!codename) throw new Error('cannot tell the Debian release from /etc/os-release');
  const [uri, signedBy] = aptSourceFor(codename);
  const lists = join(dir, 'lists');
  mkdirSync(join(lists, 'partial'), { recursive: true });
  const sources = join(dir, 'sources.list');
  writeFileSync(sources, `deb ${signedBy ? `[signed-by=${signedBy}] ` : ''}${uri} ${codename}-backports main\n`);
  const apt = [
    ...['-o', `Dir::Etc::SourceList=${sources}`, '-o', 'Dir::Etc::SourceParts=/nonexistent', '-o', `Dir::State::Lists=${lists}`],
    ...['-o', 'Dir::Cache::pkgcache=', '-o', 'Dir::Cache::srcpkgcache=', '-o', `APT::Architectures::=${run('dpkg', ['--print-architecture']).trim()}`],
  ];
  say(`fetching qemu-user from ${codename}-backports (the system's qemu is older than ${QEMU_MIN_MAJOR})`);
  run('apt-get', [...apt, 'update', '-qq']);
  run('apt-get', [...apt, 'download', '-qq', 'qemu-user'], { cwd: dir });
  const deb = readdirSync(dir).find((f) => f.startsWith('qemu-user_') && f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download qemu-user left no .deb in ${dir}`);
  run('dpkg', ['-x', join(dir, deb), join(dir, 'root')]);
  const bin = join(dir, 'root', 'usr', 'bin', 'qemu-aarch64');
  const major = qemuMajor(bin);
  if (major < QEMU_MIN_MAJOR) throw new Error(`${codename}-backports has qemu ${major}, ${QEMU_MIN_MAJOR} or newer is needed`);
  return bin;
}

/** The Architecture field of each named package ('all', 'amd64', ...). */
function architectures(names) {
  const arch = new Map();
  let pkg = null;
  for (const line of run('apt-cache', ['show', '--no-all-versions', ...names]).split('\n')) {
    if (line.startsWith('Package: ')) pkg = line.slice(9).trim();
    else if (line.startsWith('Architecture: ') && pkg) arch.set(pkg, line.slice(14).trim());
  }
  return arch;
}

/**
 * nodejs:arm64 and what it needs at run time, following Depends: the arm64 libraries and the
 * arch-all JavaScript packages Debian's node loads its externalized builtins from
 * (/usr/share/nodejs: acorn, cjs-module-lexer, undici). A dependency that is only satisfied by
 * a host-architecture package (the `nodejs` alternative of node-acorn) is skipped.
 */
function nodeClosure() {
  const take = new Set(['nodejs:arm64']);
  let level = ['nodejs:arm64'];
  while (level.length > 0) {
    // Each dependency as its list of alternatives, virtual names replaced by their providers
    // (listed below them, indented): ` |Depends: a` joins the next entry's group.
    const groups = [];
    let open = false;
    let virtual = false;
    const flags = ['--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances'];
    for (const line of run('apt-cache', ['depends', ...flags, ...level]).split('\n')) {
      const dep = /^ ([ |])(?:Pre)?Depends: (<)?([^<>\s]+)>?$/.exec(line);
      if (dep) {
        if (!open) groups.push([]);
        virtual = dep[2] === '<';
        if (!virtual) groups.at(-1).push(dep[3]);
        open = dep[1] === '|';
      } else if (virtual && /^ {4}\S+$/.test(line)) {
        groups.at(-1).push(line.trim());
      } else {
        virtual = false;
      }
    }
    const bare = [...new Set(groups.flat().filter((n) => !n.includes(':')))];
    const arch = bare.length > 0 ? architectures(bare) : new Map();
    const usable = (n) => n.endsWith(':arm64') || arch.get(n) === 'all';
    const next = [];
    for (const group of groups) {
      const pick = group.find(usable);
      if (pick && !take.has(pick)) {
        take.add(pick);
        next.push(pick);
      }
    }
    level = next;
  }
  return [...take];
}

// Runs under node 18 on arm64: the raw addon, no dist/ (engines >= 20.19).
const SMOKE = `
'use strict';
const addon = require(process.argv[2]);
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timed out' })); process.exit(2); }, 60000);

function session(mode, script) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let handle = null;
    let exit = null;
    const done = () => { if (handle && exit) { addon.close(handle); resolve({ out: Buffer.concat(chunks).toString(), exit }); } };
    const r = addon.spawn({
      file: 'sh', args: ['-c', script], env: 'PATH=/usr/bin:/bin\\0TERM=dumb\\0', cwd: null, mode,
      rows: 24, cols: 80, user: null, stdin: 'pipe', rlimits: [], restricted: false,
      homeDefault: 'user', drainMs: 100, afterDrain: 'detach',
    }, (ev, chunk) => {
      // Output comes as (stream code, Buffer); every other event as one object.
      if (typeof ev === 'number') chunks.push(Buffer.from(chunk));
      else if (ev.type === 'exit') { exit = { code: ev.code, signal: ev.signal }; done(); }
    });
    if (!r.handle) return reject(new Error('spawn failed: ' + JSON.stringify(r)));
    handle = r.handle;
    if (mode === 'pty') addon.resize(handle, 30, 100);
    addon.write(handle, Buffer.from('from-stdin\\n'));
    addon.closeStdin(handle);
    done();
  });
}

(async () => {
  const pty = await session('pty', 'read line; echo "pty:$line"; stty size; tty; exit 7');
  const pipes = await session('pipes', 'read line; echo "pipe:$line"; echo err >&2; exit 3');
  const failure = addon.spawn({
    file: 'no-such-command-msb', args: [], env: 'PATH=/usr/bin:/bin\\0', cwd: null, mode: 'pipes',
    rows: 24, cols: 80, user: null, stdin: 'pipe', rlimits: [], restricted: false,
    homeDefault: 'user', drainMs: 100, afterDrain: 'detach',
  }, () => {});
  clearTimeout(timer);
  console.log(JSON.stringify({ arch: process.arch, node: process.version, pty, pipes, failure, strerror: addon.strerror(2) }));
})().catch((err) => { console.log(JSON.stringify({ error: String(err && err.stack || err) })); process.exit(1); });
`;

async function main() {
  ensureArm64Packages();
  if (!existsSync(addon)) {
    say('no arm64 build yet: npm run build:release');
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-release.mjs')], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`build:release exited with ${r.status ?? r.signal}`);
  }

  tmp = mkdtempSync(join(tmpdir(), 'msb-agentd-arm64-'));
  const debs = join(tmp, 'debs');
  const sysroot = join(tmp, 'root');
  mkdirSync(debs);
  mkdirSync(sysroot);
  mkdirSync(join(tmp, 'qemu'));
  const qemu = qemuAarch64(join(tmp, 'qemu'));
  say(`${qemu}: qemu ${qemuMajor(qemu)}`);
  const pkgs = nodeClosure();
  say(`apt-get download ${pkgs.join(' ')}`);
  run('apt-get', ['download', ...pkgs], { cwd: debs });
  for (const deb of readdirSync(debs).filter((f) => f.endsWith('.deb'))) run('dpkg', ['-x', join(debs, deb), sysroot]);
  const node = ['usr/bin/nodejs', 'usr/bin/node'].map((p) => join(sysroot, p)).find((p) => existsSync(p));
  if (!check('Debian arm64 node unpacked', node !== undefined, `no usr/bin/node in ${sysroot}`)) return;

  const smoke = join(tmp, 'smoke.cjs');
  writeFileSync(smoke, SMOKE);
  const libs = ['lib/aarch64-linux-gnu', 'usr/lib/aarch64-linux-gnu'].map((p) => join(sysroot, p)).join(':');
  const r = spawnSync(qemu, ['-L', sysroot, node, smoke, addon], {
    encoding: 'utf8',
    timeout: 180_000,
    env: { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: libs },
  });
  let res = null;
  try {
    res = JSON.parse(r.stdout.trim().split('\n').at(-1));
  } catch {}
  const detail = `exit ${r.status ?? r.signal}: ${(r.error?.message ?? `${r.stdout}${r.stderr}`).trim().slice(-800)}`;
  if (!check('the arm64 addon loads and spawns in arm64 node under qemu', r.status === 0 && res !== null && !res.error, res?.error ?? detail)) return;
  say(`node ${res.node} (${res.arch})`);
  check('process.arch is arm64', res.arch === 'arm64', res.arch);
  check('PTY session: stdin echoed through the terminal', res.pty.out.includes('pty:from-stdin'), JSON.stringify(res.pty.out));
  check('PTY session: resized to 30x100', res.pty.out.includes('30 100'), JSON.stringify(res.pty.out));
  check('PTY session: the child has a terminal', /\/dev\/pts\/\d+/.test(res.pty.out), JSON.stringify(res.pty.out));
  check('PTY session: exit code 7', res.pty.exit.code === 7 && res.pty.exit.signal === null, JSON.stringify(res.pty.exit));
  check('pipe session: stdout and stderr', res.pipes.out.includes('pipe:from-stdin') && res.pipes.out.includes('err'), JSON.stringify(res.pipes.out));
  check('pipe session: exit code 3', res.pipes.exit.code === 3, JSON.stringify(res.pipes.exit));
  check(
    'a missing command is a typed failure (not_found, ENOENT)',
    res.failure.kind === 'not_found' && res.failure.errnoName === 'ENOENT',
    JSON.stringify(res.failure),
  );
  check('strerror(2) from the arm64 C library', res.strerror === 'No such file or directory', res.strerror);
}

const started = Date.now();
try {
  await main();
} catch (err) {
  check('test:arm64 ran to the end', false, err instanceof Error ? err.message : String(err));
} finally {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
console.log(`# ${failures === 0 ? 'all checks passed' : `${failures} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(failures === 0 ? 0 : 1);
