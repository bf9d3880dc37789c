/** What every client command does first: pick the agent's address and connect to it. */

import { AgentClient } from '../client/index.js';
import { defaultAddress, parseAddress, type Address } from '../transport/address.js';
import { UsageError } from './usage-error.js';

/** `--connect` parsed, or the default address. @throws UsageError for a malformed address. */
export function agentAddress(connect: string | undefined): Address {
  try {
    return connect ? parseAddress(connect) : defaultAddress();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Connects, or prints why not and returns null (the caller exits with its own status). */
export async function connectOrReport(address: Address): Promise<AgentClient | null> {
  try {
    return await AgentClient.connect(address);
  } catch (err) {
    process.stderr.write(`msb-agentd: ${(err as Error).message}\n`);
    return null;
  }
}
