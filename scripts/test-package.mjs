#!/usr/bin/env node
// `npm run test:package`: installs the packed packages the way a user would and uses them.
//
// Packs (through `npm run build:release`, when the tarballs are missing or older than the
// sources) the root package and the linux-x64-gnu platform package, installs both tarballs into a
// fresh project under the system temp directory (nothing there can resolve this repository: no
// links, no NODE_PATH, no npm_* variables), and there checks the CLI, an exec through a served
// agent, ESM and CommonJS imports, a `tsc` type check of a consumer, and the file modes that
// make the bin and the addon usable. One line per check; exit status 1 if any failed. The agent
// is always stopped and the temp directory always removed.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const packDir = join(root, 'target', 'npm');
const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const rootTarball = join(packDir, `msb-agentd-${version}.tgz`);
const x64Tarball = join(packDir, `msb-agentd-linux-x64-gnu-${version}.tgz`);
// The consumer's TypeScript toolchain: the versions this repository is built and tested with.
const devVersion = (name) => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

let failures = 0;
let agent = null;
let tmp = null;

function check(name, ok, detail = '') {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${!ok && detail ? `: ${detail}` : ''}`);
  if (!ok) failures += 1;
  return ok;
}

// Node 20's official builds need glibc 2.28; a release binary that needs more would narrow the
// platforms the README promises (build:release links against glibc 2.17).
const NODE_GLIBC_FLOOR = [2, 28];

function compareVersions(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/** Newest GLIBC_x.y version among the binary's dynamic symbols (`objdump -T`), or null. */
function glibcFloor(file) {
  const r = spawnSync('objdump', ['-T', file], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const versions = [...r.stdout.matchAll(/GLIBC_([\d.]+)/g)].map((m) => m[1].split('.').map(Number));
  return versions.sort(compareVersions).at(-1) ?? null;
}

function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const name of readdirSync(path)) if (name !== 'target') max = Math.max(max, newest(join(path, name)));
  return max;
}

/** The environment of a user's shell: nothing that points back into this repository. */
function consumerEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('npm_') || k === 'NODE_PATH' || k === 'NODE_OPTIONS' || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  // npx runs the installed bin and must never fetch one from the registry instead.
  env.npm_config_yes = 'false';
  return env;
}

function runIn(cwd, cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd, env: consumerEnv(), encoding: 'utf8', timeout: 120_000, ...opts });
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

/** Why a command failed, in a line: its error lines if any (not a stack's tail), else its last lines. */
function brief(r) {
  if (r.error) return r.error.message;
  const lines = (r.stderr || r.stdout).trim().split('\n');
  const key = lines.filter((l) => /error|msb-agentd:/i.test(l)).slice(0, 3);
  return `exit ${r.status ?? r.signal}: ${(key.length > 0 ? key : lines.slice(-5)).join(' | ')}`.slice(0, 600);
}

async function waitFor(predicate, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (predicate()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return predicate();
}

async function stopAgent() {
  if (!agent || agent.exitCode !== null || agent.signalCode !== null) return;
  const exited = new Promise((r) => agent.once('exit', r));
  agent.kill('SIGTERM');
  const timer = setTimeout(() => agent.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function cleanup() {
  if (agent && agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

const ESM_CONSUMER = `
import { createRequire } from 'node:module';
import { run, spawnSession, SpawnError, Agent, AgentClient } from 'msb-agentd';
import { AgentClient as Client2 } from 'msb-agentd/client';
import { encodeFrame, FrameDecoder } from 'msb-agentd/protocol';

for (const [name, v] of Object.entries({ spawnSession, SpawnError, Agent, AgentClient, Client2, encodeFrame, FrameDecoder })) {
  if (typeof v !== 'function') throw new Error(name + ' is ' + typeof v);
}
const r = await run({ cmd: 'echo', args: ['esm'] });
const s = await spawnSession({ cmd: 'sh', args: ['-c', 'printf tty; exit 3'], tty: true });
let out = '';
s.stdout.on('data', (d) => { out += d; });
const exit = await s.exited;
const addons = Object.keys(createRequire(import.meta.url).cache).filter((k) => /spawn-core[^/]*\.node$/.test(k));
console.log(JSON.stringify({ stdout: r.stdout.toString(), code: r.code, tty: out, ttyCode: exit.code, addons }));
`;

const CJS_CONSUMER = `
const { run, SpawnError } = require('msb-agentd');
const { FrameDecoder } = require('msb-agentd/protocol');
if (typeof FrameDecoder !== 'function') throw new Error('FrameDecoder is ' + typeof FrameDecoder);
run({ cmd: 'nonexistent-command-for-msb-agentd' }).then(
  () => { throw new Error('spawning a missing command resolved'); },
  (err) => {
    if (!(err instanceof SpawnError)) throw err;
    return run({ cmd: 'echo', args: ['cjs'] }).then((r) => console.log(JSON.stringify({ stdout: r.stdout.toString(), kind: err.kind })));
  },
);
`;

const TS_CONSUMER = `
import { spawnSession, run, SpawnError, type SpawnSessionOptions, type ExitInfo } from 'msb-agentd';
import { AgentClient } from 'msb-agentd/client';
import { encodeFrame } from 'msb-agentd/protocol';

const opts: SpawnSessionOptions = { cmd: 'bash', args: ['-lc', 'echo hi'], tty: true, rows: 40, cols: 120 };
export async function main(): Promise<number | null> {
  const s = await spawnSession(opts);
  s.resize(50, 100);
  const info: ExitInfo = await s.exited;
  const r = await run({ cmd: 'uname', args: ['-a'] });
  const n: number | null = r.code;
  void n;
  void AgentClient;
  void encodeFrame;
  void SpawnError;
  // The typings must reject a wrong option type; if they were 'any' this directive would fail.
  // @ts-expect-error cmd is a string
  await spawnSession({ cmd: 42 });
  return info.code;
}
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    noEmit: true,
    types: ['node'],
  },
  files: ['consumer.ts'],
};

async function main() {
  // 1. Tarballs, rebuilt when a source is newer.
  const sources = ['package.json', 'bin', 'ts', 'crates', 'Cargo.lock', 'README.md', 'tsconfig.json', 'scripts/build-release.mjs'];
  const newestSource = Math.max(...sources.map((s) => newest(join(root, s))));
  const packedAt = Math.min(...[rootTarball, x64Tarball].map((t) => (existsSync(t) ? statSync(t).mtimeMs : 0)));
  if (packedAt < newestSource) {
    console.log('# packing: npm run build:release');
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-release.mjs')], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`build:release exited with ${r.status ?? r.signal}`);
  }

  // 2. A consumer project outside the repository.
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'msb-agentd-package-')));
  if (tmp.startsWith(realpathSync(root) + sep)) throw new Error(`temp dir ${tmp} is inside the repository`);
  const proj = join(tmp, 'consumer');
  const sock = join(tmp, 'a.sock');
  const nm = join(proj, 'node_modules');
  mkdirSync(proj);
  writeFileSync(join(proj, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }, null, 2)}\n`);
  console.log(`# consumer project: ${proj}`);
  const install = runIn(proj, 'npm', [
    'install',
    '--no-audit',
    '--no-fund',
    rootTarball,
    x64Tarball,
    `typescript@${devVersion('typescript')}`,
    `@types/node@${devVersion('@types/node')}`,
  ]);
  if (!check('npm install of the packed tarballs', install.status === 0, brief(install))) return;

  // 3. What landed in node_modules.
  const pkgDir = join(nm, 'msb-agentd');
  const shipped = readdirSync(pkgDir).sort();
  check('package ships only bin, dist, package.json, README.md', shipped.join(',') === 'README.md,bin,dist,package.json', shipped.join(', '));
  const maps = readdirSync(join(pkgDir, 'dist'), { recursive: true }).filter((f) => f.endsWith('.map') || f.startsWith('demo.'));
  check('dist has no source maps or demo', maps.length === 0, maps.join(', '));
  const addonFiles = readdirSync(join(nm, 'msb-agentd-linux-x64-gnu')).filter((f) => f.endsWith('.node'));
  check('platform package holds spawn-core.linux-x64-gnu.node', addonFiles.join() === 'spawn-core.linux-x64-gnu.node', addonFiles.join(', '));
  for (const f of addonFiles) {
    const file = join(nm, 'msb-agentd-linux-x64-gnu', f);
    const mode = statSync(file).mode;
    check(`${f} is readable by all (mode ${(mode & 0o777).toString(8)})`, (mode & 0o444) === 0o444);
    const floor = glibcFloor(file);
    check(`${f} needs glibc <= ${NODE_GLIBC_FLOOR.join('.')} (Node 20's own floor): ${floor?.join('.') ?? 'unknown'}`, floor !== null && compareVersions(floor, NODE_GLIBC_FLOOR) <= 0);
  }
  const binFile = join(pkgDir, 'bin', 'msb-agentd.js');
  const binMode = statSync(binFile).mode;
  check(`bin/msb-agentd.js is executable by all (mode ${(binMode & 0o777).toString(8)})`, (binMode & 0o111) === 0o111);
  const firstLine = readFileSync(binFile, 'utf8').split('\n')[0];
  check('bin/msb-agentd.js starts with #!/usr/bin/env node', firstLine === '#!/usr/bin/env node', JSON.stringify(firstLine));
  let binLinked = false;
  try {
    accessSync(join(nm, '.bin', 'msb-agentd'), constants.X_OK);
    binLinked = realpathSync(join(nm, '.bin', 'msb-agentd')) === realpathSync(binFile);
  } catch {}
  check('node_modules/.bin/msb-agentd runs bin/msb-agentd.js', binLinked);

  // 4. The CLI.
  const ver = runIn(proj, 'npx', ['msb-agentd', '--version']);
  check(`npx msb-agentd --version prints ${version}`, ver.status === 0 && ver.stdout.trim() === version, brief(ver) + ` stdout=${JSON.stringify(ver.stdout)}`);

  let agentLog = '';
  agent = spawn(join(nm, '.bin', 'msb-agentd'), ['serve', '--listen', `unix:${sock}`], { cwd: proj, env: consumerEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  agent.stdout.on('data', (d) => (agentLog += d));
  agent.stderr.on('data', (d) => (agentLog += d));
  const listening = await waitFor(() => existsSync(sock) || agent.exitCode !== null, 15_000);
  if (check('msb-agentd serve listens on a unix socket', listening && existsSync(sock), agentLog.trim().slice(-600))) {
    const hi = runIn(proj, 'npx', ['msb-agentd', 'exec', '--connect', `unix:${sock}`, '--', 'echo', 'hi']);
    check('npx msb-agentd exec -- echo hi prints "hi\\n", exit 0', hi.status === 0 && hi.stdout === 'hi\n', `${brief(hi)} stdout=${JSON.stringify(hi.stdout)}`);
    const code = runIn(proj, 'npx', ['msb-agentd', 'exec', '--connect', `unix:${sock}`, '--', 'sh', '-c', 'exit 7']);
    check('npx msb-agentd exec passes the remote exit code (7)', code.status === 7, brief(code));
    const ping = runIn(proj, 'npx', ['msb-agentd', 'ping', '--connect', `unix:${sock}`]);
    check('npx msb-agentd ping', ping.status === 0, brief(ping));
  }
  await stopAgent();
  check('the agent stops on SIGTERM and removes its socket', !existsSync(sock), agentLog.trim().slice(-600));

  // 5. The library, from ESM and from CommonJS.
  writeFileSync(join(proj, 'esm.mjs'), ESM_CONSUMER);
  const esm = runIn(proj, process.execPath, ['esm.mjs']);
  let esmOut = null;
  try {
    esmOut = JSON.parse(esm.stdout);
  } catch {}
  check(
    'ESM import: run(), a PTY session and its exit code',
    esm.status === 0 && esmOut?.stdout === 'esm\n' && esmOut.code === 0 && esmOut.tty.includes('tty') && esmOut.ttyCode === 3,
    `${brief(esm)} stdout=${esm.stdout.trim()}`,
  );
  const expectedAddon = join(nm, 'msb-agentd-linux-x64-gnu', 'spawn-core.linux-x64-gnu.node');
  check('the addon is loaded from the installed platform package', esmOut?.addons?.length === 1 && esmOut.addons[0] === expectedAddon, JSON.stringify(esmOut?.addons));

  writeFileSync(join(proj, 'cjs.cjs'), CJS_CONSUMER);
  const cjs = runIn(proj, process.execPath, ['cjs.cjs']);
  let cjsOut = null;
  try {
    cjsOut = JSON.parse(cjs.stdout);
  } catch {}
  check('CommonJS require(): run() and SpawnError', cjs.status === 0 && cjsOut?.stdout === 'cjs\n' && cjsOut.kind === 'not_found', `${brief(cjs)} stdout=${cjs.stdout.trim()}`);

  // 6. The typings, as a TypeScript consumer sees them.
  writeFileSync(join(proj, 'consumer.ts'), TS_CONSUMER);
  writeFileSync(join(proj, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
  const tsc = runIn(proj, process.execPath, [join(nm, 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  check('tsc type-checks a consumer of msb-agentd, /client and /protocol', tsc.status === 0, brief(tsc) + tsc.stdout.trim().slice(0, 600));
}

const started = Date.now();
try {
  await main();
} catch (err) {
  check('test:package ran to the end', false, err instanceof Error ? err.message : String(err));
} finally {
  await stopAgent().catch(() => {});
  cleanup();
}
console.log(`# ${failures === 0 ? 'all checks passed' : `${failures} check(s) failed`} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(failures === 0 ? 0 : 1);
