/** `msb-agentd serve`: run the agent on the chosen transports until shutdown or a signal. */

import { Agent } from '../agent/agent.js';
import { createLogger, type LogFormat, type LogLevel } from '../log/logger.js';
import { defaultAddress, formatAddress, parseAddress } from '../transport/address.js';
import { UsageError } from './usage-error.js';
import { native } from '../native/index.js';

export interface ServeFlags {
  listen?: string[];
  allowRemote?: boolean;
  serial?: string;
  stdio?: boolean;
  vsock?: string;
  user?: string;
  cwd?: string;
  securityProfile?: string;
  heartbeatFile?: string;
  afterExit?: string;
  drainMs?: string;
  graceMs?: string;
  subreaper?: boolean;
  ownClock?: boolean;
  ignoreShutdown?: boolean;
  logLevel?: string;
  logFormat?: string;
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!allowed.includes(v as T)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, not "${v}"`);
  return v as T;
}

function nonNegativeInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 2 ** 31 - 1) throw new UsageError(`${flag} must be a non-negative integer, not "${v}"`);
  return Number(v);
}

/** Runs until the agent stops; resolves with the process exit code. */
export async function serve(flags: ServeFlags): Promise<number> {
  const logLevel = oneOf<LogLevel>('--log-level', flags.logLevel, ['error', 'warn', 'info', 'debug'], 'info');
  const logFormat = oneOf<LogFormat>('--log-format', flags.logFormat, ['text', 'json'], 'text');
  const securityProfile = oneOf('--security-profile', flags.securityProfile, ['default', 'restricted'] as const, 'default');
  const afterExit = oneOf('--after-exit', flags.afterExit, ['detach', 'kill-group', 'wait'] as const, 'detach');
  const drainMs = nonNegativeInt('--drain-ms', flags.drainMs);
  const graceMs = nonNegativeInt('--grace-ms', flags.graceMs);
  const vsockPort = flags.vsock === undefined ? undefined : nonNegativeInt('--vsock', flags.vsock);
  const listens = (flags.listen ?? []).map((l) => {
    try {
      return parseAddress(l);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  const log = createLogger(logLevel, logFormat);
  try {
    // Load the addon now: an agent that cannot spawn must say so at start, not on the first exec.
    native();
  } catch (err) {
    log.error((err as Error).message);
    return 1;
  }

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const agent = new Agent({
    user: flags.user,
    cwd: flags.cwd,
    securityProfile,
    afterExit,
    drainMs,
    graceMs,
    heartbeatFile: flags.heartbeatFile,
    ignoreShutdown: flags.ignoreShutdown,
    subreaper: flags.subreaper,
    ownClock: flags.ownClock,
    logger: log,
    onShutdown: () => resolveDone(0),
  });

  const useDefault = listens.length === 0 && !flags.stdio && !flags.serial && !flags.vsock;
  try {
    if (useDefault) {
      const bound = await agent.listen({ kind: 'socket' });
      if (bound) {
        process.stderr.write(`msb-agentd ${formatAddress(bound)} — connect with: msb-agentd exec -- uname -a\n`);
      }
    }
    for (const address of listens) {
      const bound = await agent.listen({ kind: 'socket', address, allowRemote: flags.allowRemote });
      if (bound && formatAddress(bound) !== formatAddress(defaultAddress())) {
        process.stderr.write(`msb-agentd ${formatAddress(bound)} — connect with: msb-agentd exec --connect ${formatAddress(bound)} -- uname -a\n`);
      }
    }
    if (flags.serial) await agent.listen({ kind: 'serial', path: flags.serial });
    if (vsockPort !== undefined) await agent.listen({ kind: 'vsock', port: vsockPort });
    if (flags.stdio) {
      // stdio carries raw frames; a malformed frame ends the agent (no second peer to protect).
      const { stdioDuplex } = await import('../transport/stdio.js');
      await agent.listen({ kind: 'stream', stream: stdioDuplex(() => void agent.close().then(() => resolveDone(0))), label: 'stdio' });
    }
  } catch (err) {
    log.error((err as Error).message);
    await agent.close();
    return 1;
  }

  const stop = (signal: NodeJS.Signals): void => {
    log.info(`${signal} received: stopping`);
    void agent.close().then(() => resolveDone(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return done;
}
