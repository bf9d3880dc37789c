/** `run()`: spawn, feed input, collect capped output, await the exit. */

import type { Readable } from 'node:stream';

import { CappedBuffer } from './output-cap.js';
import { spawnSession, type ExitReason } from './spawn-session.js';
import type { SpawnSessionOptions } from './spawn-options.js';
import { invalidOption } from './errors.js';

export interface RunOptions extends SpawnSessionOptions {
  /** Written to stdin, then stdin is closed. Without it stdin is closed at once (EOF). */
  input?: string | Buffer | Uint8Array;
  /** Bytes kept per stream (default 64 MiB): the first and last halves. */
  maxBuffer?: number;
  /** 'utf8' (default) gives strings; 'buffer' gives Buffers. */
  encoding?: 'utf8' | 'buffer';
}

export interface RunResult<T extends string | Buffer = string> {
  stdout: T;
  /** Empty in tty mode (the PTY carries both streams). */
  stderr: T;
  code: number | null;
  signal: NodeJS.Signals | null;
  reason: ExitReason;
  /** True when either stream exceeded maxBuffer. */
  truncated: boolean;
  /** Bytes dropped from the middle of stdout and stderr together. */
  droppedBytes: number;
}

export const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;

function collect(stream: Readable | null, cap: CappedBuffer): void {
  stream?.on('data', (chunk: Buffer) => cap.push(chunk));
}

/**
 * Runs a command to completion and returns its output and exit.
 * Rejects with `SpawnError` if it cannot start.
 * @throws TypeError | RangeError (code MSB_ERR_INVALID_OPTION) for invalid options.
 * @example
 * const { stdout, code } = await run({ cmd: 'uname', args: ['-a'] });
 */
export async function run(options: RunOptions & { encoding: 'buffer' }): Promise<RunResult<Buffer>>;
export async function run(options: RunOptions): Promise<RunResult<string>>;
export async function run(options: RunOptions): Promise<RunResult<string | Buffer>> {
  const maxBuffer = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  if (!Number.isSafeInteger(maxBuffer) || maxBuffer < 2) {
    throw invalidOption('range', 'maxBuffer must be an integer >= 2');
  }
  const { input, maxBuffer: _m, encoding = 'utf8', ...spawnOptions } = options;
  const session = await spawnSession(spawnOptions);
  const out = new CappedBuffer(maxBuffer);
  const err = new CappedBuffer(maxBuffer);
  collect(session.stdout, out);
  collect(session.stderr, err);
  if (input !== undefined) session.stdin.end(Buffer.from(input as Uint8Array));
  else session.stdin.end();
  const exit = await session.exited;
  const decode = (b: Buffer): string | Buffer => (encoding === 'buffer' ? b : b.toString('utf8'));
  return {
    stdout: decode(out.toBuffer()),
    stderr: decode(err.toBuffer()),
    code: exit.code,
    signal: exit.signal,
    reason: exit.reason,
    truncated: out.truncated || err.truncated,
    droppedBytes: out.droppedBytes + err.droppedBytes,
  };
}
