// Builds the C reference programs of bench/c/ with the system `cc` into bench/.peers/ (index.mjs
// for the bench, ab.mjs for the PTY A/B, handoff.mjs), and runs one of them.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { peersDir } from './peers.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), 'c');
const PROGRAMS = { 'pty-reader': ['-lutil'], 'pty-handoff': ['-lutil', '-lpthread'], 'pipe-reader': [], relay: [] };

/** Compiles the named programs; returns { name: path }. */
export function compilePrograms(names = Object.keys(PROGRAMS)) {
  mkdirSync(peersDir, { recursive: true });
  const out = {};
  for (const name of names) {
    const bin = join(peersDir, name);
    execFileSync('cc', ['-O2', '-o', bin, join(here, `${name}.c`), ...PROGRAMS[name]], { stdio: 'inherit' });
    out[name] = bin;
  }
  return out;
}

/**
 * The PTY loop as an addon, to run it on a Node thread. It needs Node's headers (node_api.h),
 * which Node's own installation carries; without them this returns undefined.
 */
export function compilePtyInNode() {
  const include = join(dirname(process.execPath), '..', 'include', 'node');
  if (!existsSync(join(include, 'node_api.h'))) return undefined;
  const addon = join(peersDir, 'pty-in-node.node');
  execFileSync('cc', ['-O2', '-shared', '-fPIC', '-I', include, '-o', addon, join(here, 'pty-in-node.c'), '-lutil'], { stdio: 'inherit' });
  return addon;
}

/** A C reference run; the pipe reader also reports its own and its child's CPU time. */
export function cRun(bin, n, extra = []) {
  const out = execFileSync(bin, [String(n), ...extra], { encoding: 'utf8' });
  const [bytes, ns, selfNs, childNs] = out.trim().split(/\s+/).map(Number);
  return { bytes, ms: ns / 1e6, ...(selfNs === undefined ? {} : { cpuMs: selfNs / 1e6, childCpuMs: childNs / 1e6 }) };
}
