/**
 * Error classes of msb-agentd. Each family has a literal `name`, a string `code` (an errno name
 * or `MSB_ERR_*`), the wrapped error as `cause`, and a brand so `isMsbError()` works across realms.
 */

const BRAND = Symbol.for('msb-agentd.error');

/** The protocol's `ExecFailureKind` vocabulary (wire strings). */
export type ExecFailureKind =
  | 'not_found'
  | 'permission_denied'
  | 'not_executable'
  | 'bad_cwd'
  | 'bad_args'
  | 'resource_limit'
  | 'user_setup_failed'
  | 'out_of_memory'
  | 'pty_setup_failed'
  | 'other';

export const EXEC_FAILURE_KINDS: readonly ExecFailureKind[] = [
  'not_found',
  'permission_denied',
  'not_executable',
  'bad_cwd',
  'bad_args',
  'resource_limit',
  'user_setup_failed',
  'out_of_memory',
  'pty_setup_failed',
  'other',
];

/**
 * Base class of every error msb-agentd throws or rejects with; branch on `code`.
 * @example
 * if (err instanceof MsbError && err.code === 'MSB_ERR_NATIVE_LOAD') console.error(err.message);
 */
export class MsbError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/**
 * True for any msb-agentd error, also one created in another realm or copy of the module.
 * @example
 * catch (err) { if (isMsbError(err)) log(err.code); }
 */
export function isMsbError(value: unknown): value is MsbError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

export interface SpawnErrorFields {
  kind: ExecFailureKind;
  stage: string;
  /** Positive errno as the kernel and the wire use it (2 for ENOENT), or null. */
  errno: number | null;
  errnoName: string | null;
  path: string | null;
  spawnargs: readonly string[];
  /** Human detail where there is no errno (for example "unknown user: alice"). */
  detail?: string | null;
}

/**
 * A process could not be started. `code` is the errno name (`'ENOENT'`) or `'MSB_ERR_SPAWN'`.
 * `errno` is positive, unlike Node's own system errors: read `errnoName`, never pass `errno` to
 * `util.getSystemErrorName()`.
 * @example
 * try { await spawnSession({ cmd: 'tool', cwd: '/srv/app' }); }
 * catch (err) { if (err instanceof SpawnError && err.kind === 'bad_cwd') console.error(err.path); }
 */
export class SpawnError extends MsbError {
  override readonly name = 'SpawnError';
  readonly kind: ExecFailureKind;
  readonly errno: number | null;
  readonly errnoName: string | null;
  readonly stage: string;
  readonly path: string | null;
  readonly spawnargs: readonly string[];
  constructor(program: string, fields: SpawnErrorFields, options?: { cause?: unknown }) {
    super(fields.errnoName ?? 'MSB_ERR_SPAWN', describeSpawnFailure(program, fields), options);
    this.kind = fields.kind;
    this.errno = fields.errno;
    this.errnoName = fields.errnoName;
    this.stage = fields.stage;
    this.path = fields.path;
    this.spawnargs = fields.spawnargs;
  }
}

function describeSpawnFailure(program: string, f: SpawnErrorFields): string {
  const where = f.path !== null && f.stage !== 'resolve' ? `${f.stage} ${f.path}` : f.stage;
  const why = f.errnoName !== null ? f.errnoName : f.kind;
  const detail = f.detail ? ` (${f.detail})` : '';
  return `spawn ${program}: ${where}: ${why}${detail}`;
}

/**
 * Framing or CBOR errors: MSB_ERR_FRAME_TOO_LARGE, MSB_ERR_BAD_FRAME, MSB_ERR_BAD_CBOR, MSB_ERR_UNKNOWN_MESSAGE.
 * @example
 * if (err instanceof ProtocolError && err.code === 'MSB_ERR_BAD_FRAME') handle(err);
 */
export class ProtocolError extends MsbError {
  override readonly name = 'ProtocolError';
}

/**
 * The connection to a peer went away (MSB_ERR_TRANSPORT_CLOSED), or a forwarded TCP connection
 * failed (MSB_ERR_TCP_FAILED).
 * @example
 * if (err instanceof TransportError && err.code === 'MSB_ERR_TRANSPORT_CLOSED') handle(err);
 */
export class TransportError extends MsbError {
  override readonly name = 'TransportError';
}

/**
 * A filesystem operation in the guest failed (MSB_ERR_FS). `message` is the agent's text, which
 * starts with the operation's prefix and usually ends with the OS error ("stat: No such file or
 * directory (os error 2)"); `operation` names the request (`'stat'`, `'openFile'`, …).
 * @example
 * if (err instanceof FsError && err.message.includes('(os error 2)')) console.error('missing');
 */
export class FsError extends MsbError {
  override readonly name = 'FsError';
  readonly operation: string;
  constructor(operation: string, message: string) {
    super('MSB_ERR_FS', message);
    this.operation = operation;
  }
}

/**
 * MSB_ERR_SESSION_NOT_FOUND, MSB_ERR_SESSION_EXISTS.
 * @example
 * if (err instanceof SessionError && err.code === 'MSB_ERR_SESSION_NOT_FOUND') handle(err);
 */
export class SessionError extends MsbError {
  override readonly name = 'SessionError';
}

/**
 * The native addon failed: MSB_ERR_NATIVE, MSB_ERR_NATIVE_LOAD, MSB_ERR_UNSUPPORTED_PLATFORM.
 * @example
 * if (err instanceof NativeError && err.code === 'MSB_ERR_NATIVE_LOAD') handle(err);
 */
export class NativeError extends MsbError {
  override readonly name = 'NativeError';
}

/** An option failed validation: a TypeError or RangeError with code MSB_ERR_INVALID_OPTION. */
export function invalidOption(kind: 'type' | 'range', message: string): TypeError | RangeError {
  const err = kind === 'type' ? new TypeError(message) : new RangeError(message);
  (err as TypeError & { code: string }).code = 'MSB_ERR_INVALID_OPTION';
  return err;
}
