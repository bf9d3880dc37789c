/**
 * Turns a `core.exec.request` into native spawn options with the agent's rules (PROTOCOL §5.1,
 * DESIGN §4): the agent's environment, then the request's entries in order (last wins; an entry
 * without `=` or with a NUL byte is `bad_args`), `/.msb/scripts` prefixed to the final PATH when
 * that directory exists, HOME from the user's (or root's) passwd entry unless the request sets it,
 * the agent's default user, cwd and security profile, and unknown rlimit names skipped.
 */

import { existsSync } from 'node:fs';

import { SpawnError } from '../errors.js';
import type { ExecRequest } from '../protocol/index.js';
import { rlimitResource } from '../rlimits.js';
import { normalizeOptions, type AfterExit, type NormalizedOptions } from '../spawn-options.js';

export const SCRIPTS_DIR = '/.msb/scripts';

/** What the agent's command line sets for every exec. */
export interface ExecDefaults {
  user: string | null;
  cwd: string | null;
  securityProfile: 'default' | 'restricted';
  afterExit: AfterExit;
  drainMs: number;
  graceMs: number;
  /** The PATH prefix directory, used only if it exists. */
  scriptsDir: string;
  /**
   * The agent's environment, taken once at start: enumerating `process.env` costs tens of µs on
   * every exec, and a daemon's environment does not change. Absent: `process.env` each time.
   */
  baseEnv?: readonly (readonly [string, string])[];
}

/** `process.env` as entries, for ExecDefaults.baseEnv. */
export function environmentEntries(env: NodeJS.ProcessEnv = process.env): [string, string][] {
  return Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined);
}

function badArgs(req: ExecRequest, detail: string): SpawnError {
  return new SpawnError(req.cmd, {
    kind: 'bad_args',
    stage: 'resolve',
    errno: null,
    errnoName: null,
    path: null,
    spawnargs: [req.cmd, ...req.args],
    detail,
  });
}

function withScripts(path: string, scriptsDir: string): string {
  return path.split(':').includes(scriptsDir) ? path : `${scriptsDir}:${path}`;
}

/** The agent's environment without HOME, as `K=V` strings, kept per ExecDefaults. */
const baseEntriesCache = new WeakMap<readonly (readonly [string, string])[], string[]>();

function baseEntries(base: readonly (readonly [string, string])[]): string[] {
  let entries = baseEntriesCache.get(base);
  if (entries === undefined) {
    entries = base.filter(([k]) => k !== 'HOME').map(([k, v]) => `${k}=${v}`);
    baseEntriesCache.set(base, entries);
  }
  return entries;
}

/**
 * The child's environment as `K=V` strings with distinct keys, or the bad entry. The common
 * request (no entries) reuses the agent's prepared list instead of rebuilding it: this runs on
 * every exec's critical path.
 */
function execEnvironment(req: ExecRequest, defaults: ExecDefaults, agentEnv?: NodeJS.ProcessEnv): string[] | string {
  const base = agentEnv !== undefined ? environmentEntries(agentEnv) : (defaults.baseEnv ?? environmentEntries());
  const scripts = existsSync(defaults.scriptsDir);
  if (req.env.length === 0 && !scripts) return baseEntries(base);
  const env = new Map<string, string>(base);
  let requestSetsHome = false;
  for (const entry of req.env) {
    const eq = entry.indexOf('=');
    if (eq <= 0) return entry;
    const key = entry.slice(0, eq);
    if (key === 'HOME') requestSetsHome = true;
    env.set(key, entry.slice(eq + 1));
  }
  // HOME follows the user (or root without one) unless the request set it (PROTOCOL §5.1).
  if (!requestSetsHome) env.delete('HOME');
  if (scripts) {
    env.set('PATH', withScripts(env.get('PATH') ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', defaults.scriptsDir));
  }
  return Array.from(env, ([k, v]) => `${k}=${v}`);
}

/** The normalized spawn of a request, or the SpawnError to answer with `core.exec.failed`. */
export function prepareExec(req: ExecRequest, defaults: ExecDefaults, agentEnv?: NodeJS.ProcessEnv): NormalizedOptions | SpawnError {
  const env = execEnvironment(req, defaults, agentEnv);
  if (typeof env === 'string') return badArgs(req, `env entry ${JSON.stringify(env)} is not KEY=VALUE`);
  const user = req.user?.trim() ? req.user : (defaults.user ?? undefined);
  const rlimits = req.rlimits
    .filter((r) => rlimitResource(r.resource) !== undefined)
    .map((r) => ({ resource: r.resource, soft: BigInt(r.soft), hard: BigInt(r.hard) }));
  try {
    return normalizeOptions(
      {
        cmd: req.cmd,
        args: req.args,
        env,
        inheritEnv: false,
        cwd: req.cwd ?? defaults.cwd ?? undefined,
        user,
        tty: req.tty,
        rows: req.rows,
        cols: req.cols,
        rlimits,
        securityProfile: defaults.securityProfile,
        drainMs: defaults.drainMs,
        killGraceMs: defaults.graceMs,
        afterExit: defaults.afterExit,
      },
      'user-or-root',
      true,
    );
  } catch (err) {
    if ((err as { code?: unknown }).code === 'MSB_ERR_INVALID_OPTION') return badArgs(req, (err as Error).message);
    throw err;
  }
}
