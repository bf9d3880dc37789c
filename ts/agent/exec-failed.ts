/**
 * `toExecFailed`: the one mapping from a SpawnError to the wire's `core.exec.failed`, and
 * `fromExecFailed` for the way back. `errno` passes through unchanged (positive). Only the kinds
 * the protocol lists are emitted; anything else becomes `other`, since older peers reject the
 * whole payload otherwise.
 */

import { getSystemErrorMap } from 'node:util';

import { EXEC_FAILURE_KINDS, SpawnError, type ExecFailureKind } from '../errors.js';
import type { ExecFailed } from '../protocol/index.js';

/** strerror-like text for a positive errno, from libuv's table. */
export function describeErrno(errno: number): string {
  const entry = getSystemErrorMap().get(-errno);
  if (!entry) return `error ${errno}`;
  const text = entry[1];
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function toExecFailed(err: SpawnError): ExecFailed {
  const kind: ExecFailureKind = (EXEC_FAILURE_KINDS as readonly string[]).includes(err.kind) ? err.kind : 'other';
  const program = err.spawnargs[0] ?? '';
  const message =
    err.errno !== null
      ? `spawn ${JSON.stringify(program)}: ${err.stage}${err.path ? ` ${err.path}` : ''}: ${describeErrno(err.errno)} (os error ${err.errno})`
      : `exec session error: ${err.message}`;
  return { kind, errno: err.errno, errnoName: err.errnoName, message, stage: err.stage };
}

/** The SpawnError a client raises for a `core.exec.failed` it received. */
export function fromExecFailed(program: string, spawnargs: readonly string[], f: ExecFailed): SpawnError {
  return new SpawnError(program, {
    kind: (EXEC_FAILURE_KINDS as readonly string[]).includes(f.kind) ? f.kind : 'other',
    stage: f.stage ?? 'unknown',
    errno: f.errno,
    errnoName: f.errnoName,
    path: null,
    spawnargs,
    detail: f.errno === null ? f.message : null,
  });
}
