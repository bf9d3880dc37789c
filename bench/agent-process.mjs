// An msb-agentd for the agent benchmarks: `msb-agentd serve` in a process of its own on a private
// unix socket (the realistic set-up: the host's client and the agent never share a process), plus
// its memory and thread count from /proc/<pid>/status.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { AgentClient } from '../dist/client/index.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'msb-agentd.js');

/** VmRSS, VmHWM (MiB) and Threads of a live process. */
export function procStatus(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(text.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1]);
  return { rssMiB: +(field('VmRSS') / 1024).toFixed(1), hwmMiB: +(field('VmHWM') / 1024).toFixed(1), threads: field('Threads') };
}

/** Open descriptors of a live process. */
export function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Starts an agent and waits until it accepts a client. Node raises its soft RLIMIT_NOFILE to the
 * hard limit at start-up, which is what 1000 PTY sessions (four descriptors each) need; the hard
 * limit cannot be raised here (no CAP_SYS_RESOURCE).
 */
export async function startAgent({ extraArgs = [] } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'msb-bench-'));
  const address = `unix:${join(dir, 'agent.sock')}`;
  const child = spawn(process.execPath, [bin, 'serve', '--listen', address, '--log-level', 'error', ...extraArgs], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const deadline = performance.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the agent exited at start-up: ${stderr}`);
    try {
      const probe = await AgentClient.connect(address, { timeoutMs: 2000 });
      await probe.close();
      break;
    } catch (err) {
      if (performance.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the agent did not accept a client within 15 s: ${err.message}\n${stderr}`);
      }
      await sleep(50);
    }
  }
  return {
    pid: child.pid,
    address,
    connect: () => AgentClient.connect(address),
    status: () => procStatus(child.pid),
    /** SIGTERM (the agent ends its sessions), SIGKILL if it has not exited within `ms`. */
    async stop(ms = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), ms);
        await once(child, 'exit');
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
