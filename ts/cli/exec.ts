/**
 * `msb-agentd exec`: a real client. With `-t` the local terminal goes raw, SIGWINCH becomes a
 * resize, and the terminal is restored on every way out. `-i` forwards stdin (implied by `-t`);
 * without either the remote stdin gets EOF at once. Exit status: the remote code, 128+N for a
 * signal; spawn failures 127 (not_found), 126 (permission_denied, not_executable), 125 (other);
 * 255 when the agent is unreachable or the protocol breaks.
 */

import { constants } from 'node:os';

import { SpawnError } from '../errors.js';
import { UsageError } from './usage-error.js';
import { agentAddress, connectOrReport } from './connect.js';

export interface ExecFlags {
  connect?: string;
  interactive?: boolean;
  tty?: boolean;
  user?: string;
  workdir?: string;
  env?: string[];
}

/** The exit status for a spawn failure kind. */
export function spawnFailureStatus(kind: string): number {
  if (kind === 'not_found') return 127;
  if (kind === 'permission_denied' || kind === 'not_executable') return 126;
  return 125;
}

export async function execCommand(cmd: string, args: string[], flags: ExecFlags): Promise<number> {
  const address = agentAddress(flags.connect);
  for (const e of flags.env ?? []) {
    if (e.indexOf('=') <= 0) throw new UsageError(`-e ${e}: expected K=V`);
  }
  const tty = flags.tty ?? false;
  const interactive = tty || (flags.interactive ?? false);
  const client = await connectOrReport(address);
  if (!client) return 255;
  const stdin = process.stdin;
  const rawTerminal = tty && stdin.isTTY === true;
  const restore = (): void => {
    if (rawTerminal) stdin.setRawMode(false);
  };
  try {
    const size = tty && process.stdout.isTTY ? { rows: process.stdout.rows, cols: process.stdout.columns } : {};
    let session;
    try {
      session = await client.exec({ cmd, args, env: flags.env ?? [], cwd: flags.workdir, user: flags.user, tty, ...size });
    } catch (err) {
      if (err instanceof SpawnError) {
        process.stderr.write(
          `msb-agentd: cannot run ${cmd}: ${err.kind} (${err.errnoName ?? 'no errno'}) at ${err.stage}\n`,
        );
        return spawnFailureStatus(err.kind);
      }
      throw err;
    }
    session.stdout.pipe(process.stdout);
    session.stderr?.pipe(process.stderr);
    const onResize = (): void => session.resize(process.stdout.rows, process.stdout.columns);
    if (interactive) {
      if (rawTerminal) stdin.setRawMode(true);
      stdin.pipe(session.stdin);
      if (tty && process.stdout.isTTY) process.stdout.on('resize', onResize);
    } else {
      session.stdin.end();
    }
    const exit = await session.exited;
    process.stdout.off('resize', onResize);
    stdin.unpipe(session.stdin);
    stdin.pause();
    if (exit.signal) return 128 + (constants.signals[exit.signal] ?? 0);
    return exit.code ?? 255;
  } catch (err) {
    process.stderr.write(`msb-agentd: ${(err as Error).message}\n`);
    return 255;
  } finally {
    restore();
    await client.close();
  }
}
