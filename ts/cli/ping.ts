/** `msb-agentd ping`: prints the round-trip time; exit 0, or 1 if the agent is unreachable. */

import { formatAddress } from '../transport/address.js';
import { agentAddress, connectOrReport } from './connect.js';

export async function pingCommand(flags: { connect?: string }): Promise<number> {
  const address = agentAddress(flags.connect);
  const client = await connectOrReport(address);
  if (!client) return 1;
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
