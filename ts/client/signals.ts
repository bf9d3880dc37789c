/**
 * Signal names ⇄ Linux signal numbers for the client, from `os.constants.signals`. The client
 * keeps its own copy (rather than the native façade's) so that `msb-agentd/client` never touches
 * the addon: a host on another platform can drive a Linux guest over TCP.
 */

import { constants } from 'node:os';

import { invalidOption } from '../errors.js';

/**
 * The number of a signal given by name (`'SIGTERM'` → 15), or the number itself.
 * @throws TypeError (code MSB_ERR_INVALID_OPTION) for an unknown name or a number outside 0..64.
 */
export function toSignalNumber(signal: NodeJS.Signals | number): number {
  if (typeof signal === 'number') {
    if (!Number.isInteger(signal) || signal < 0 || signal > 64) {
      throw invalidOption('type', `signal must be a name or an integer 0..64, got ${String(signal)}`);
    }
    return signal;
  }
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  if (n === undefined) throw invalidOption('type', `unknown signal: ${String(signal)}`);
  return n;
}

/** The name of a signal number (`9` → `'SIGKILL'`), or null for a number Node has no name for. */
export function toSignalName(signo: number): NodeJS.Signals | null {
  for (const [name, n] of Object.entries(constants.signals)) {
    if (n === signo) return name as NodeJS.Signals;
  }
  return null;
}
