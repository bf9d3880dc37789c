/**
 * `toExecFailed`: the one mapping from a SpawnError to the wire's `core.exec.failed`, and
 * `fromExecFailed` for the way back. `errno` passes through unchanged (positive). Only the kinds
 * the protocol lists are emitted; anything else becomes `other`, since older peers reject the
 * whole payload otherwise.
 */

import { EXEC_FAILURE_KINDS, SpawnError, type ExecFailureKind } from '../errors.js';
import type { ExecFailed } from '../protocol/index.js';
import { describeErrno } from '../native/index.js';


export function toExecFailed(err: SpawnError): ExecFailed {
  const kind: ExecFailureKind = (EXEC_FAILURE_KINDS as readonly string[]).includes(err.kind) ? err.kind : 'other';
  const program = err.spawnargs[0] ?? '';
  const message =
    err.errno !== null
      ? `spawn ${JSON.stringify(program)}: ${err.stage}${err.path ? ` ${err.path}` : ''}: ${describeErrno(err.errno)} (os error ${err.errno})`
      : `exec session error: ${err.message}`;
  return { kind, errno: err.errno, errnoName: err.errnoName, message, stage: err.stage };
}

/**
 * The SpawnError a client raises for a `core.exec.failed` it received: every wire field as it
 * came (a missing stage reads `'unknown'`), `path` null (the wire does not carry it), and the
 * agent's own message.
 */
export function fromExecFailed(program: string, spawnargs: readonly string[], f: ExecFailed): SpawnError {
  const err = new SpawnError(program, {
    kind: (EXEC_FAILURE_KINDS as readonly string[]).includes(f.kind) ? f.kind : 'other',
    stage: f.stage ?? 'unknown',
    errno: f.errno,
    errnoName: f.errnoName,
    path: null,
    spawnargs,
    detail: f.errno === null ? f.message : null,
  });
  err.message = f.message;
  return err;
}
