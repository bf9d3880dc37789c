/**
 * The exec payloads as the client sees them: options → `core.exec.request` (with the
 * protocol's defaults), `core.exec.exited` → an exit, `core.exec.failed` → a SpawnError.
 */

import { invalidOption, type SpawnError } from '../errors.js';
import { fromExecFailed } from '../agent/exec-failed.js';
import type { ExecExited, ExecFailed, ExecRequest, ExecRlimit } from '../protocol/index.js';
import { toSignalName } from './signals.js';

/** What to run; the fields of `core.exec.request` with its defaults. */
export interface ClientExecOptions {
  /** The program; without a `/` the agent looks it up in the child's PATH. */
  cmd: string;
  args?: string[];
  /** `'K=V'` entries applied on top of the agent's environment, in order (an object is turned into them). */
  env?: string[] | Record<string, string>;
  /** Working directory; the agent's default when absent. */
  cwd?: string | null;
  /** `"uid"`, `"name"`, `"uid:gid"` or `"name:group"`; the agent's default user when absent. */
  user?: string | null;
  /** A PTY (stdout carries the terminal's output, stderr is null) instead of three pipes. */
  tty?: boolean;
  /** Initial terminal size, default 24 × 80. */
  rows?: number;
  cols?: number;
  /** Applied in the child before exec; `soft`/`hard` above 2^53 must be bigints. */
  rlimits?: { resource: string; soft: number | bigint; hard: number | bigint }[];
}

/**
 * How a remote process ended. A signal death has `code: null`; `signal` is its name, or null
 * when the agent did not say which (upstream agents report only `code: -1`) or Node has no name
 * for the number.
 */
export interface ClientExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: 'exited' | 'signaled';
}

/** @throws RangeError (code MSB_ERR_INVALID_OPTION) outside 1..65535. */
export function checkSize(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 65535) throw invalidOption('range', `${name} must be an integer in 1..65535`);
}

/**
 * The `core.exec.request` payload for `opts`, with the protocol's defaults.
 * @throws TypeError | RangeError (code MSB_ERR_INVALID_OPTION).
 */
export function toExecRequest(opts: ClientExecOptions): ExecRequest {
  if (typeof opts !== 'object' || opts === null) throw invalidOption('type', 'exec() needs an options object');
  if (typeof opts.cmd !== 'string' || opts.cmd === '') throw invalidOption('type', 'cmd must be a non-empty string');
  const args = opts.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw invalidOption('type', 'args must be an array of strings');
  }
  const env = toEnvList(opts.env);
  for (const key of ['cwd', 'user'] as const) {
    const v = opts[key];
    if (v !== undefined && v !== null && typeof v !== 'string') throw invalidOption('type', `${key} must be a string`);
  }
  if (opts.tty !== undefined && typeof opts.tty !== 'boolean') throw invalidOption('type', 'tty must be a boolean');
  const rows = opts.rows ?? 24;
  const cols = opts.cols ?? 80;
  checkSize('rows', rows);
  checkSize('cols', cols);
  return {
    cmd: opts.cmd,
    args: [...args],
    env,
    cwd: opts.cwd ?? null,
    user: opts.user ?? null,
    tty: opts.tty ?? false,
    rows,
    cols,
    rlimits: (opts.rlimits ?? []).map(toRlimit),
  };
}

function toEnvList(env: ClientExecOptions['env']): string[] {
  if (env === undefined) return [];
  if (Array.isArray(env)) {
    if (!env.every((e) => typeof e === 'string')) throw invalidOption('type', "env entries must be 'K=V' strings");
    return [...env];
  }
  if (typeof env !== 'object' || env === null) throw invalidOption('type', "env must be 'K=V' strings or an object");
  return Object.entries(env).map(([k, v]) => {
    if (typeof v !== 'string') throw invalidOption('type', `env ${k} must be a string`);
    return `${k}=${v}`;
  });
}

const U64_MAX = 2n ** 64n - 1n;

function toRlimit(r: { resource: string; soft: number | bigint; hard: number | bigint }): ExecRlimit {
  if (typeof r !== 'object' || r === null || typeof r.resource !== 'string') {
    throw invalidOption('type', 'each rlimit needs a resource name, soft and hard');
  }
  const limit = (name: 'soft' | 'hard'): bigint => {
    const v = r[name];
    const ok = typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v));
    if (!ok || BigInt(v) < 0n || BigInt(v) > U64_MAX) {
      throw invalidOption('range', `rlimit ${r.resource}.${name} must be an integer in 0..2^64-1`);
    }
    return BigInt(v);
  };
  return { resource: r.resource, soft: limit('soft'), hard: limit('hard') };
}

/** `core.exec.exited` as an exit: code −1 means a signal death (named when the agent sent `signal`). */
export function toExitInfo(e: ExecExited): ClientExitInfo {
  if (e.code !== -1) return { code: e.code, signal: null, reason: 'exited' };
  return { code: null, signal: e.signal === null ? null : toSignalName(e.signal), reason: 'signaled' };
}

/** The SpawnError for a `core.exec.failed` (the one mapping, shared with the agent's tests). */
export function toSpawnError(request: ExecRequest, f: ExecFailed): SpawnError {
  return fromExecFailed(request.cmd, [request.cmd, ...request.args], f);
}
