#!/usr/bin/env node
// Makes a fresh clone runnable: Debian crate sources for the Rust build, npm dependencies, the
// native addon and the TypeScript build. Idempotent: each step runs only when its output is
// missing or older than its inputs, and says what it is doing. Uses only Node built-ins, so it
// works before `npm ci`.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const REGISTRY = '/usr/share/cargo/registry';
const CRATES = [
  { dir: 'libc-0.2.139', pkg: 'librust-libc-dev' },
  { dir: 'nix-0.26.1', pkg: 'librust-nix-dev' },
];

function say(msg) {
  console.error(`[bootstrap] ${msg}`);
}

function fail(msg) {
  console.error(`[bootstrap] error: ${msg}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Newest mtime under `path` (files only), skipping names in `skip`. */
function newest(path, skip = new Set()) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const name of readdirSync(path)) {
    if (skip.has(name)) continue;
    max = Math.max(max, newest(join(path, name), skip));
  }
  return max;
}

function mtime(path) {
  return existsSync(path) ? statSync(path).mtimeMs : 0;
}

// 1. Node.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) fail(`Node >= 20.19 is required, this is ${process.version}`);

// 2. Rust toolchain and the Debian crate sources (crates.io is not reachable).
if (!has('cargo')) fail('cargo is not on PATH: install Rust (rustup) first');
const missing = CRATES.filter((c) => !existsSync(join(REGISTRY, c.dir)));
if (missing.length > 0) {
  const pkgs = missing.map((c) => c.pkg);
  const isRoot = process.getuid?.() === 0;
  if (!isRoot) fail(`missing Debian crate sources; run as root:\n  apt-get update && apt-get install -y ${pkgs.join(' ')}`);
  say(`installing Debian crate sources: ${pkgs.join(' ')}`);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', ...pkgs], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

// 3. npm dependencies.
const stamp = join(root, 'node_modules', '.package-lock.json');
if (mtime(stamp) < mtime(join(root, 'package-lock.json')) || mtime(stamp) < mtime(join(root, 'package.json'))) {
  say('installing npm dependencies');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  // tap compiles its plugin set on first use; do it once here so that parallel test runs never
  // race to rebuild it.
  run('npx', ['tap', 'build']);
}

// 4. Native addon.
const triple = { x64: 'linux-x64-gnu', arm64: 'linux-arm64-gnu' }[process.arch];
if (!triple || process.platform !== 'linux') fail(`unsupported platform ${process.platform}/${process.arch}`);
const addon = join(root, `spawn-core.${triple}.node`);
const rustInputs = Math.max(newest(join(root, 'crates'), new Set(['target'])), mtime(join(root, 'Cargo.lock')));
if (mtime(addon) < rustInputs) {
  say('building the native addon');
  run('npm', ['run', '--silent', 'build:native']);
}

// 5. TypeScript.
const distIndex = join(root, 'dist', 'index.js');
if (mtime(distIndex) < Math.max(newest(join(root, 'ts')), mtime(join(root, 'tsconfig.json')))) {
  say('compiling TypeScript');
  run('npm', ['run', '--silent', 'build:ts']);
}

say(`ready (node ${process.version}, ${execFileSync('cargo', ['--version']).toString().trim()})`);
