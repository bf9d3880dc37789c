/**
 * Finds and loads the addon: MSB_AGENTD_NATIVE_PATH, then the local build at the package root,
 * then the platform package (`msb-agentd-linux-<arch>-gnu`). Every failed attempt is kept, so the
 * final error names the platform, arch, libc, the package expected and every path tried.
 */

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { platformArchTriples } from '@napi-rs/triples';

import { NativeError } from '../errors.js';
import type { NativeBinding } from './binding.js';

const require = createRequire(import.meta.url);
const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SUPPORTED = ['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu'];

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

export function loadNative(): NativeBinding {
  const where = `${process.platform}/${process.arch}/${detectLibc() ?? 'unknown libc'}`;
  const platform = platformTriple();
  if (!platform) {
    throw new NativeError(
      'MSB_ERR_UNSUPPORTED_PLATFORM',
      `msb-agentd supports Linux x64 and arm64 with glibc; this is ${where}`,
    );
  }
  const packageName = `msb-agentd-${platform.name}`;
  const tried: string[] = [];
  const errors: unknown[] = [];
  const attempt = (label: string, load: () => unknown): NativeBinding | null => {
    tried.push(label);
    try {
      return load() as NativeBinding;
    } catch (err) {
      errors.push(err);
      return null;
    }
  };
  const override = process.env.MSB_AGENTD_NATIVE_PATH;
  if (override) {
    const b = attempt(override, () => require(override));
    if (b) return b;
  }
  const local = join(PACKAGE_ROOT, `spawn-core.${platform.name}.node`);
  if (existsSync(local)) {
    const b = attempt(local, () => require(local));
    if (b) return b;
  } else {
    tried.push(`${local} (missing)`);
  }
  const b = attempt(`${packageName}/spawn-core.${platform.name}.node`, () =>
    require(`${packageName}/spawn-core.${platform.name}.node`),
  );
  if (b) return b;
  throw new NativeError(
    'MSB_ERR_NATIVE_LOAD',
    `cannot load the msb-agentd native addon on ${where}: expected package ${packageName}; tried ${tried.join(', ')}`,
    { cause: new AggregateError(errors, 'load attempts') },
  );
}
