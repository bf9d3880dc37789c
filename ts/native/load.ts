/**
 * Finds and loads the addon (`spawn-core.<platform>.node`):
 *
 * 1. `MSB_AGENTD_NATIVE_PATH`, when set, is the only file tried: an explicit choice that fails is
 *    reported, never silently replaced by another build.
 * 2. Otherwise the local build at the package root (`npm run build:native` in a checkout).
 * 3. Then the platform package (`msb-agentd-linux-<arch>-gnu`, an optional dependency).
 *
 * A file that loads but lacks the addon's functions (another addon, a stale build) counts as a
 * failure. If nothing loads, one NativeError (code MSB_ERR_NATIVE_LOAD) names every attempt, why
 * each failed, and what to do; the original errors are in its `cause` (an AggregateError).
 */

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { platformArchTriples } from '@napi-rs/triples';

import { NativeError } from '../errors.js';
import { VERSION } from '../version.js';
import { NATIVE_EXPORTS, type NativeBinding } from './binding.js';

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SUPPORTED = ['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu'];
const REASON_MAX = 300;

/** One place the loader looked, and why it did not get an addon there. */
export interface LoadAttempt {
  /** What was tried: "MSB_AGENTD_NATIVE_PATH=/x.node", "local build /repo/spawn-core...node", ... */
  what: string;
  /** Short reason: "not found", "not installed", the loader's own message. */
  why: string;
}

/** What the loader needs to know to describe a failure. */
export interface LoadFailure {
  /** "linux/x64/gnu". */
  where: string;
  /** "linux-x64-gnu", or null on a platform without a prebuilt (only the override is tried). */
  platform: string | null;
  version: string;
  /** True when MSB_AGENTD_NATIVE_PATH was set (and so was the only attempt). */
  override: boolean;
  attempts: LoadAttempt[];
}

/** 'gnu' when the running Node links glibc, else 'musl' (or null off Linux). */
function detectLibc(): string | null {
  if (process.platform !== 'linux') return null;
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl';
}

/** The napi-rs platform name (`linux-x64-gnu`) of this process, or null if unsupported. */
export function platformTriple(): { name: string; triple: string } | null {
  const libc = detectLibc();
  // The package's typings call the triple `raw`; its data calls it `triple`.
  type Entry = { platformArchABI: string; abi: string | null; triple?: string; raw?: string };
  const candidates = (platformArchTriples[process.platform]?.[process.arch] ?? []) as Entry[];
  const tripleOf = (t: Entry) => t.triple ?? t.raw ?? '';
  const match = candidates.find((t) => t.abi === libc && SUPPORTED.includes(tripleOf(t)));
  return match ? { name: match.platformArchABI, triple: tripleOf(match) } : null;
}

/**
 * The reason of one failed attempt in a line: "not found" / "not installed" for what is absent,
 * otherwise the first line of the loader's message without the file name it repeats
 * ("invalid ELF header", "version `GLIBC_2.34' not found (required by ...)").
 */
export function describeLoadError(err: unknown, file: string | null): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'MODULE_NOT_FOUND') return file === null ? 'not installed' : 'not found';
  let text = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();
  if (file !== null && text.startsWith(`${file}: `)) text = text.slice(file.length + 2);
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 1)}…` : text;
}

/** The message of the one error thrown when no addon loads. Pure, for tests. */
export function formatLoadError(f: LoadFailure): string {
  const file = f.platform ? `spawn-core.${f.platform}.node` : 'spawn-core .node file';
  const pkg = `msb-agentd-${f.platform ?? '<platform>'}`;
  const tried = f.attempts.map((a, i) => `  ${i + 1}. ${a.what}: ${a.why}`).join('\n');
  const todo = f.override
    ? [
        `  - point MSB_AGENTD_NATIVE_PATH at a working ${file}, or unset it to use the installed one`,
        '    (when it is set, it is the only file tried)',
      ]
    : [
        `  - install the platform package: npm install ${pkg}@${f.version}`,
        '    (an optional dependency of msb-agentd: installs with --omit=optional or --no-optional skip it)',
        `  - or set MSB_AGENTD_NATIVE_PATH to a ${file} you have`,
        '  - or build from source in a checkout of msb-agentd: npm run build:native',
      ];
  return [`msb-agentd: cannot load its native addon ${file} (${f.where}). Tried:`, tried, 'To fix:', ...todo].join('\n');
}

/** Checks that a loaded module is this addon, not another one or a build missing functions. */
function asBinding(mod: unknown): NativeBinding {
  const missing = NATIVE_EXPORTS.filter((name) => typeof (mod as Record<string, unknown> | null)?.[name] !== 'function');
  if (missing.length > 0) {
    throw new Error(`loaded, but it is not this version's spawn-core addon (missing ${missing.join(', ')})`);
  }
  return mod as NativeBinding;
}

export interface LoadOptions {
  /** Where the local build and the platform package are looked up (the package root). */
  packageRoot?: string;
  /** Where MSB_AGENTD_NATIVE_PATH is read (process.env). */
  env?: NodeJS.ProcessEnv;
}

export function loadNative(opts: LoadOptions = {}): NativeBinding {
  const packageRoot = opts.packageRoot ?? PACKAGE_ROOT;
  const env = opts.env ?? process.env;
  const where = `${process.platform}/${process.arch}/${detectLibc() ?? 'unknown libc'}`;
  const platform = platformTriple();
  const override = env.MSB_AGENTD_NATIVE_PATH;
  if (!platform && !override) {
    throw new NativeError(
      'MSB_ERR_UNSUPPORTED_PLATFORM',
      `msb-agentd has prebuilt binaries for Linux x64 and arm64 with glibc; this is ${where}. ` +
        'To use a build of crates/spawn-core for it, set MSB_AGENTD_NATIVE_PATH to its .node file.',
    );
  }
  // The platform package resolves from the package root, as from dist/native/ once installed.
  const require = createRequire(join(packageRoot, 'package.json'));
  const attempts: LoadAttempt[] = [];
  const errors: unknown[] = [];
  const attempt = (what: string, file: string | null, load: () => unknown): NativeBinding | null => {
    try {
      return asBinding(load());
    } catch (err) {
      attempts.push({ what, why: describeLoadError(err, file) });
      errors.push(err);
      return null;
    }
  };

  if (override) {
    const file = resolve(override);
    const b = attempt(`MSB_AGENTD_NATIVE_PATH=${override}`, file, () => require(file));
    if (b) return b;
  } else if (platform) {
    const local = join(packageRoot, `spawn-core.${platform.name}.node`);
    if (existsSync(local)) {
      const b = attempt(`local build ${local}`, local, () => require(local));
      if (b) return b;
    } else {
      attempts.push({ what: `local build ${local}`, why: 'not found' });
    }
    const pkg = `msb-agentd-${platform.name}`;
    const b = attempt(`platform package ${pkg}`, null, () => {
      const dir = dirname(require.resolve(`${pkg}/package.json`));
      const file = join(dir, `spawn-core.${platform.name}.node`);
      if (!existsSync(file)) throw new Error(`installed at ${dir}, but without spawn-core.${platform.name}.node`);
      return require(file);
    });
    if (b) return b;
  }
  throw new NativeError(
    'MSB_ERR_NATIVE_LOAD',
    formatLoadError({ where, platform: platform?.name ?? null, version: VERSION, override: Boolean(override), attempts }),
    { cause: new AggregateError(errors, 'native addon load attempts') },
  );
}
