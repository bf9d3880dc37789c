#!/usr/bin/env node
// `npm run build:release`: builds the addon for linux-x64-gnu and linux-arm64-gnu, stages the
// publishable packages and packs them:
//
//   target/npm/artifacts/spawn-core.linux-{x64,arm64}-gnu.node   the two release binaries
//   target/npm/stage/                                             the root package as published
//   target/npm/stage/npm/linux-{x64,arm64}-gnu/                   the platform packages
//   target/npm/*.tgz                                              `npm pack` of all three
//   target/npm/glibc-floors.json                                  newest GLIBC_ version each needs
//
// Compilers: x64 with this machine's cargo (rustup), arm64 with Debian's rustc-web and its arm64
// std (PATH=/usr/bin:/bin, so Debian's cargo runs), each in its own --target-dir. Linkers: by
// default napi-rs's cross toolchains (gcc with a glibc 2.17 sysroot, shipped as npm packages,
// fetched once with `npm pack` into target/cross-toolchains/ and checked against pinned
// integrity hashes), so the binaries run on any glibc that Node 20 runs on. With
// --system-toolchain the linkers are this machine's cc and Debian's aarch64-linux-gnu-gcc
// instead, and the binaries need the glibc they were linked against (2.34 on Debian 12).
//
// The packages are laid out by `napi create-npm-dirs`, `napi artifacts` and `napi prepublish
// --no-gh-release --skip-optional-publish` inside the stage, never in the repository: prepublish
// writes the platform packages into the manifest's `optionalDependencies`, and the repository's
// own package.json (and so `npm ci`) must not depend on packages that exist only once released.
//
// Installs the Debian packages it needs with apt-get when missing and running as root.

import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'target', 'npm');
const artifacts = join(out, 'artifacts');
const stage = join(out, 'stage');
const toolchainDir = join(root, 'target', 'cross-toolchains');
const napi = join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const systemToolchain = process.argv.includes('--system-toolchain');

// napi-rs's prebuilt cross toolchains for an x64 host (gcc 4.8, glibc 2.17 sysroot).
const TARGETS = [
  {
    triple: 'x86_64-unknown-linux-gnu',
    platform: 'linux-x64-gnu',
    targetDir: 'target/release-x64',
    // The host's own cargo (rustup).
    path: process.env.PATH,
    toolchain: {
      pkg: '@napi-rs/cross-toolchain-x64-target-x86_64',
      version: '1.0.0',
      integrity: 'sha512-lecoghCfoTAX9MLFcIx9/nL9M8xdkZ9n8Pki8qjKUNzjiq1zbECdEbzIZAMMHRtrXxifK9dAyYuh8gSxNbr2og==',
    },
    systemLinker: null,
    systemObjdump: 'objdump',
  },
  {
    triple: 'aarch64-unknown-linux-gnu',
    platform: 'linux-arm64-gnu',
    targetDir: 'target/aarch64-cross',
    // Debian's cargo and rustc, which know the arm64 std in /usr/lib/rustlib; node is run by
    // absolute path, so it needs no PATH entry.
    path: '/usr/bin:/bin',
    toolchain: {
      pkg: '@napi-rs/cross-toolchain-x64-target-aarch64',
      version: '1.0.3',
      integrity: 'sha512-EMFcy/ahFsmCY3BI1tMC3wRUYZ+cDuILg7nP1micaKXW1tO1+RvUB1CC6QYe+cv2W4Tuz9wr3qcFExWyjgWf2w==',
    },
    // As in .cargo/config.toml.
    systemLinker: 'aarch64-linux-gnu-gcc',
    systemObjdump: 'aarch64-linux-gnu-objdump',
  },
];

const DEBIAN_PACKAGES = [
  { pkg: 'rustc-web', file: '/usr/bin/rustc' },
  { pkg: 'cargo-web', file: '/usr/bin/cargo' },
  { pkg: 'libstd-rust-web-dev:arm64', file: '/usr/lib/rustlib/aarch64-unknown-linux-gnu/lib' },
  { pkg: 'gcc-aarch64-linux-gnu', file: '/usr/bin/aarch64-linux-gnu-gcc', system: true },
  { pkg: 'libc6-dev-arm64-cross', file: '/usr/aarch64-linux-gnu/lib/crt1.o', system: true },
];

// Fields of the repository's manifest that only serve development; the published one drops them
// (its `scripts` would name files the package does not ship, such as scripts/bootstrap.mjs).
const DEV_ONLY_FIELDS = ['scripts', 'devDependencies', 'tap', 'allowScripts', 'overrides'];

function say(msg) {
  console.error(`[build-release] ${msg}`);
}

function fail(msg) {
  console.error(`[build-release] error: ${msg}`);
  process.exit(1);
}

function run(cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

function capture(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...opts });
  if (r.error) fail(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

function ensureDebianPackages() {
  const missing = DEBIAN_PACKAGES.filter((p) => (systemToolchain || !p.system) && !existsSync(p.file)).map((p) => p.pkg);
  if (missing.length === 0) return;
  const foreign = capture('dpkg', ['--print-foreign-architectures']).split('\n');
  const steps = [
    ...(foreign.includes('arm64') ? [] : ['dpkg --add-architecture arm64']),
    'apt-get update',
    `apt-get install -y ${missing.join(' ')}`,
  ];
  if (process.getuid?.() !== 0) fail(`Debian packages for the arm64 build are missing; run as root:\n  ${steps.join(' && ')}`);
  say(`installing ${missing.join(' ')}`);
  if (!foreign.includes('arm64')) run('dpkg', ['--add-architecture', 'arm64']);
  run('apt-get', ['update', '-qq']);
  run('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** The unpacked napi-rs toolchain of one target (fetched and unpacked on first use). */
function crossToolchain({ triple, toolchain: tc }) {
  const dir = join(toolchainDir, `${tc.pkg.split('/')[1]}-${tc.version}`);
  const gcc = join(dir, 'bin', `${triple}-gcc`);
  if (existsSync(gcc)) return dir;
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  say(`fetching ${tc.pkg}@${tc.version}`);
  const [packed] = JSON.parse(capture('npm', ['pack', '--json', '--pack-destination', tmp, `${tc.pkg}@${tc.version}`], { cwd: tmp }));
  if (packed.integrity !== tc.integrity) fail(`${tc.pkg}@${tc.version}: integrity ${packed.integrity}, expected ${tc.integrity}`);
  run('tar', ['-xzf', join(tmp, packed.filename), '-C', tmp]);
  run('tar', ['-xJf', join(tmp, 'package', `${triple}.tar.xz`), '-C', tmp]);
  rmSync(join(tmp, 'package'), { recursive: true, force: true });
  rmSync(join(tmp, packed.filename), { force: true });
  if (!existsSync(join(tmp, 'bin', `${triple}-gcc`))) fail(`${tc.pkg}@${tc.version} has no bin/${triple}-gcc`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

function build(target) {
  const env = { ...process.env, PATH: target.path };
  const linkerVar = `CARGO_TARGET_${target.triple.toUpperCase().replaceAll('-', '_')}_LINKER`;
  let objdump = target.systemObjdump;
  if (!systemToolchain) {
    const tc = crossToolchain(target);
    env[linkerVar] = join(tc, 'bin', `${target.triple}-gcc`);
    objdump = join(tc, 'bin', `${target.triple}-objdump`);
  } else if (target.systemLinker) {
    env[linkerVar] = target.systemLinker;
  }
  run(
    process.execPath,
    [
      napi,
      'build',
      '--platform',
      '--release',
      '--manifest-path',
      'crates/spawn-core/Cargo.toml',
      '--features',
      'node',
      '--target',
      target.triple,
      '--target-dir',
      target.targetDir,
      '--output-dir',
      artifacts,
      '--no-js',
      '--no-dts-header',
    ],
    { env },
  );
  return glibcFloor(join(artifacts, `spawn-core.${target.platform}.node`), objdump);
}

/** Highest GLIBC_x.y symbol version the binary needs (from `objdump -T`). */
function glibcFloor(file, objdump) {
  const versions = [...capture(objdump, ['-T', file]).matchAll(/GLIBC_(\d+)\.(\d+)(?:\.(\d+))?/g)].map((m) =>
    [m[1], m[2], m[3] ?? '0'].map(Number),
  );
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  const top = versions.at(-1);
  return top ? `${top[0]}.${top[1]}${top[2] ? `.${top[2]}` : ''}` : 'none';
}

const started = Date.now();
if (process.platform !== 'linux' || process.arch !== 'x64') fail(`release builds run on a linux x64 host; this is ${process.platform}/${process.arch}`);

// 1. A bootstrapped checkout: crate sources, node_modules, the local build, dist.
run(process.execPath, [join(root, 'scripts', 'bootstrap.mjs')]);
ensureDebianPackages();

// 2. The binaries, into target/npm/artifacts (never over the local build at the package root,
//    which running tests may have mapped).
rmSync(out, { recursive: true, force: true });
mkdirSync(artifacts, { recursive: true });
const floors = {};
for (const target of TARGETS) floors[target.platform] = build(target);

// 3. The root package: the manifest without development fields, a clean TypeScript build, bin/.
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const field of DEV_ONLY_FIELDS) delete manifest[field];
mkdirSync(stage, { recursive: true });
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
cpSync(join(root, 'README.md'), join(stage, 'README.md'));
cpSync(join(root, 'bin'), join(stage, 'bin'), { recursive: true });
for (const name of readdirSync(join(stage, 'bin'))) chmodSync(join(stage, 'bin', name), 0o755);
run(process.execPath, [tsc, '-p', 'tsconfig.json', '--outDir', join(stage, 'dist'), '--sourceMap', 'false']);

// 4. The platform packages, and optionalDependencies on them in the staged manifest.
run(process.execPath, [napi, 'create-npm-dirs', '--cwd', stage]);
run(process.execPath, [napi, 'artifacts', '--cwd', stage, '--output-dir', artifacts]);
run(process.execPath, [napi, 'prepublish', '--cwd', stage, '--no-gh-release', '--skip-optional-publish']);

// 5. Tarballs.
const packageDirs = [stage, ...readdirSync(join(stage, 'npm')).map((d) => join(stage, 'npm', d))];
for (const dir of packageDirs) run('npm', ['pack', '--silent', '--pack-destination', out], { cwd: dir });

// 6. What each binary needs from the C library.
writeFileSync(join(out, 'glibc-floors.json'), `${JSON.stringify(floors, null, 2)}\n`);
for (const [name, floor] of Object.entries(floors)) say(`${name}: needs glibc >= ${floor}`);
for (const name of readdirSync(out).filter((n) => n.endsWith('.tgz'))) say(`packed ${join(out, name)}`);
say(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
