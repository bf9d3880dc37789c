// The addon loader: MSB_AGENTD_NATIVE_PATH, the local build, the platform package, and the one
// error when none loads. That error must name each attempt with its own reason and say what to
// do: a bare "Cannot find module" for a missing prebuilt is how native packages strand users.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { NativeError } from '../../ts/errors.js';
import { describeLoadError, formatLoadError, loadNative, platformTriple } from '../../ts/native/load.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const platform = platformTriple()!.name;
const LOCAL_BUILD = join(ROOT, `spawn-core.${platform}.node`);
const PACKAGE = `msb-agentd-${platform}`;

const dir = mkdtempSync(join(tmpdir(), 'e-native-load-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Text where an ELF file should be: dlopen refuses it. */
const garbage = join(dir, 'garbage.node');
writeFileSync(garbage, 'this is not a shared object\n'.repeat(20));
/** Loads fine, but is not the addon. */
const impostor = join(dir, 'impostor.cjs');
writeFileSync(impostor, 'module.exports = { spawn() {} };\n');

function loadError(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof NativeError) return err;
    throw err;
  }
  throw new Error('expected a NativeError');
}

t.test('formatLoadError names every attempt with its reason and the three ways out', async (t) => {
  const msg = formatLoadError({
    where: 'linux/x64/gnu',
    platform: 'linux-x64-gnu',
    version: '1.2.3',
    override: false,
    attempts: [
      { what: 'local build /pkg/spawn-core.linux-x64-gnu.node', why: 'not found' },
      { what: 'platform package msb-agentd-linux-x64-gnu', why: 'not installed' },
    ],
  });
  t.equal(
    msg,
    [
      'msb-agentd: cannot load its native addon spawn-core.linux-x64-gnu.node (linux/x64/gnu). Tried:',
      '  1. local build /pkg/spawn-core.linux-x64-gnu.node: not found',
      '  2. platform package msb-agentd-linux-x64-gnu: not installed',
      'To fix:',
      '  - install the platform package: npm install msb-agentd-linux-x64-gnu@1.2.3',
      '    (an optional dependency of msb-agentd: installs with --omit=optional or --no-optional skip it)',
      '  - or set MSB_AGENTD_NATIVE_PATH to a spawn-core.linux-x64-gnu.node you have',
      '  - or build from source in a checkout of msb-agentd: npm run build:native',
    ].join('\n'),
  );
});

t.test('formatLoadError with the override says to fix or unset it', async (t) => {
  const msg = formatLoadError({
    where: 'linux/arm64/gnu',
    platform: 'linux-arm64-gnu',
    version: '1.2.3',
    override: true,
    attempts: [{ what: 'MSB_AGENTD_NATIVE_PATH=/x.node', why: 'invalid ELF header' }],
  });
  t.match(msg, /^msb-agentd: cannot load its native addon spawn-core\.linux-arm64-gnu\.node \(linux\/arm64\/gnu\)\. Tried:\n {2}1\. MSB_AGENTD_NATIVE_PATH=\/x\.node: invalid ELF header\n/);
  t.match(msg, 'point MSB_AGENTD_NATIVE_PATH at a working spawn-core.linux-arm64-gnu.node, or unset it');
  t.notMatch(msg, 'npm install');

  // A platform without a prebuilt (musl, another arch) can still use the override.
  const other = formatLoadError({
    where: 'linux/x64/musl',
    platform: null,
    version: '1.2.3',
    override: true,
    attempts: [{ what: 'MSB_AGENTD_NATIVE_PATH=/x.node', why: 'not found' }],
  });
  t.match(other, /^msb-agentd: cannot load its native addon spawn-core \.node file \(linux\/x64\/musl\)\. Tried:\n/);
  t.match(other, 'point MSB_AGENTD_NATIVE_PATH at a working spawn-core .node file');
});

t.test('describeLoadError keeps one short line', async (t) => {
  const notFound = Object.assign(new Error("Cannot find module 'x'"), { code: 'MODULE_NOT_FOUND' });
  t.equal(describeLoadError(notFound, '/a/x.node'), 'not found');
  t.equal(describeLoadError(notFound, null), 'not installed');
  t.equal(describeLoadError(new Error('/a/x.node: invalid ELF header'), '/a/x.node'), 'invalid ELF header');
  t.equal(
    describeLoadError(new Error("/lib/libc.so.6: version `GLIBC_2.34' not found (required by /a/x.node)\nmore"), '/a/x.node'),
    "/lib/libc.so.6: version `GLIBC_2.34' not found (required by /a/x.node)",
  );
  const long = describeLoadError(new Error('x'.repeat(1000)), null);
  t.equal(long.length, 300);
  t.ok(long.endsWith('…'));
  t.equal(describeLoadError('a string', null), 'a string');
});

t.test('nothing to load: the local build and the platform package, each with its reason', async (t) => {
  const empty = join(dir, 'empty-root');
  mkdirSync(empty);
  const err = loadError(() => loadNative({ packageRoot: empty, env: {} }));
  t.equal(err.code, 'MSB_ERR_NATIVE_LOAD');
  t.match(err.message, `  1. local build ${join(empty, `spawn-core.${platform}.node`)}: not found\n`);
  t.match(err.message, `  2. platform package ${PACKAGE}: not installed\n`);
  t.match(err.message, `npm install ${PACKAGE}@`);
  t.match(err.message, 'MSB_AGENTD_NATIVE_PATH');
  t.match(err.message, 'npm run build:native');
  t.ok(err.cause instanceof AggregateError);
  t.equal((err.cause as AggregateError).errors.length, 1, 'the one real load attempt is kept as the cause');
});

t.test('a local build that does not load, and a platform package without its binary', async (t) => {
  const root = join(dir, 'broken-root');
  mkdirSync(join(root, 'node_modules', PACKAGE), { recursive: true });
  writeFileSync(join(root, 'node_modules', PACKAGE, 'package.json'), JSON.stringify({ name: PACKAGE, version: '0.0.0' }));
  writeFileSync(join(root, `spawn-core.${platform}.node`), 'not an ELF file\n'.repeat(20));
  const err = loadError(() => loadNative({ packageRoot: root, env: {} }));
  t.match(err.message, `  1. local build ${join(root, `spawn-core.${platform}.node`)}: invalid ELF header\n`);
  t.match(err.message, `  2. platform package ${PACKAGE}: installed at ${join(root, 'node_modules', PACKAGE)}, but without spawn-core.${platform}.node\n`);
  t.equal((err.cause as AggregateError).errors.length, 2);
});

t.test('the platform package is loaded when there is no local build', async (t) => {
  const root = join(dir, 'installed-root');
  const pkgDir = join(root, 'node_modules', PACKAGE);
  mkdirSync(pkgDir, { recursive: true });
  writeFileSync(join(pkgDir, 'package.json'), JSON.stringify({ name: PACKAGE, version: '0.0.0' }));
  // A link to the local build: the same file, so this process never maps a second copy.
  symlinkSync(LOCAL_BUILD, join(pkgDir, `spawn-core.${platform}.node`));
  const b = loadNative({ packageRoot: root, env: {} });
  t.equal(typeof b.spawn, 'function');
});

t.test('MSB_AGENTD_NATIVE_PATH is the only file tried when set', async (t) => {
  const garbageErr = loadError(() => loadNative({ env: { MSB_AGENTD_NATIVE_PATH: garbage } }));
  t.match(garbageErr.message, `  1. MSB_AGENTD_NATIVE_PATH=${garbage}: invalid ELF header\nTo fix:`);
  t.notMatch(garbageErr.message, 'local build', 'a failing override never falls back to another build');

  const missing = join(dir, 'missing.node');
  t.match(loadError(() => loadNative({ env: { MSB_AGENTD_NATIVE_PATH: missing } })).message, `MSB_AGENTD_NATIVE_PATH=${missing}: not found\n`);

  t.match(
    loadError(() => loadNative({ env: { MSB_AGENTD_NATIVE_PATH: impostor } })).message,
    /: loaded, but it is not this version's spawn-core addon \(missing write, closeStdin, .*send\)\n/,
  );

  // Relative to the working directory, as a user typing it expects.
  const b = loadNative({ env: { MSB_AGENTD_NATIVE_PATH: relative(process.cwd(), LOCAL_BUILD) } });
  t.equal(typeof b.spawn, 'function');
});

t.test('through the public API in a fresh process: a bad override is the error the caller sees', async (t) => {
  const script = `
    import { run } from ${JSON.stringify(join(ROOT, 'ts', 'index.ts'))};
    try { await run({ cmd: 'true' }); console.log('loaded'); }
    catch (err) { console.log(JSON.stringify({ name: err.name, code: err.code, message: err.message })); }
  `;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, MSB_AGENTD_NATIVE_PATH: garbage },
    encoding: 'utf8',
    timeout: 30000,
  });
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { name: string; code: string; message: string };
  t.equal(out.name, 'NativeError');
  t.equal(out.code, 'MSB_ERR_NATIVE_LOAD');
  t.match(out.message, `MSB_AGENTD_NATIVE_PATH=${garbage}: invalid ELF header`);
});
