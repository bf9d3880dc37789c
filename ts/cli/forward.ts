/**
 * `msb-agentd forward LOCAL_PORT:GUEST_HOST:GUEST_PORT`: a local listener (127.0.0.1) whose
 * connections are carried through the agent to GUEST_HOST:GUEST_PORT as seen from the guest.
 * Runs until SIGINT/SIGTERM; exit 1 when the agent is unreachable.
 */

import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';

import { UsageError } from './usage-error.js';
import { agentAddress, connectOrReport } from './connect.js';

export function parseForwardSpec(spec: string): { localPort: number; host: string; port: number } {
  const m = /^(\d{1,5}):(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(spec);
  const localPort = m ? Number(m[1]) : NaN;
  const port = m ? Number(m[3]) : NaN;
  if (!m || localPort > 65535 || port < 1 || port > 65535) {
    throw new UsageError(`"${spec}" is not LOCAL_PORT:GUEST_HOST:GUEST_PORT`);
  }
  return { localPort, host: m[2]!.replace(/^\[|\]$/g, ''), port };
}

export async function forwardCommand(spec: string, flags: { connect?: string }): Promise<number> {
  const target = parseForwardSpec(spec);
  const address = agentAddress(flags.connect);
  const client = await connectOrReport(address);
  if (!client) return 1;
  // Half-open both ways: each side's EOF travels on its own (PROTOCOL §4.10).
  const server = createServer({ allowHalfOpen: true }, (local: Socket) => {
    local.pause();
    client.connectTcp(target.host, target.port).then(
      (remote) => {
        local.pipe(remote);
        remote.pipe(local);
        local.on('error', () => remote.destroy());
        remote.on('error', (err) => {
          process.stderr.write(`msb-agentd: ${err.message}\n`);
          local.destroy();
        });
        local.resume();
      },
      (err: Error) => {
        process.stderr.write(`msb-agentd: ${err.message}\n`);
        local.destroy();
      },
    );
  });
  server.listen(target.localPort, '127.0.0.1');
  await once(server, 'listening');
  const bound = (server.address() as { port: number }).port;
  process.stderr.write(`forwarding 127.0.0.1:${bound} -> ${target.host}:${target.port} (in the guest)\n`);
  const stop = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    void client.closed.then(() => resolve());
  });
  await stop;
  server.close();
  await client.close();
  return 0;
}
