/** `msb-agentd ping`: prints the round-trip time; exit 0, or 1 if the agent is unreachable. */

import { AgentClient } from '../client/index.js';
import { formatAddress, parseAddress, defaultAddress } from '../transport/address.js';
import { UsageError } from './usage-error.js';

export async function pingCommand(flags: { connect?: string }): Promise<number> {
  let address;
  try {
    address = flags.connect ? parseAddress(flags.connect) : defaultAddress();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let client: AgentClient;
  try {
    client = await AgentClient.connect(address);
  } catch (err) {
    process.stderr.write(`msb-agentd: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const ms = await client.ping();
    process.stdout.write(`pong from ${formatAddress(address)} in ${ms.toFixed(3)} ms (agent ${client.ready.agentVersion || 'unknown'}, protocol v${client.version})\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`msb-agentd: ping failed: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await client.close();
  }
}
