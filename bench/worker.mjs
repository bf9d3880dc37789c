// A Node implementation's throughput runs in a process of its own, like the C references'.
//
// Why: in one shared process the implementations tax each other. child_process and node-pty fork
// the whole process for every spawn (and the bench forks to run the C references), which
// write-protects every page it holds, so the next implementation's reused buffers take a
// copy-on-write fault per page (~18 k per GB measured); and one implementation's garbage is
// collected on the next one's time. Each worker keeps its state between rounds, as a
// long-running program would.
//
// Parent side: `startWorker(kind, options)`, kind one of KINDS. Worker side (this file run as a
// program with the kind as its argument): one line on stdin with a byte count starts one
// transfer; one JSON line on stdout answers it.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { loadPeer, peersDir } from './peers.mjs';
import { childProcessRun, nodePtyRun, sessionRun } from './transfer.mjs';

const KINDS = {
  'spawnSession pipes': () => (n) => sessionRun(n, false),
  'spawnSession tty': () => (n) => sessionRun(n, true),
  child_process: () => (n) => childProcessRun(n),
  'node-pty': () => ptyRunner('node-pty'),
  '@lydell/node-pty': () => ptyRunner('@lydell/node-pty'),
  // bench/c/pty-in-node.c, built by index.mjs: the C loop on this worker's own thread.
  'C loop in Node': () => {
    const addon = createRequire(import.meta.url)(join(peersDir, 'pty-in-node.node'));
    return (n) => {
      const [bytes, ns] = addon.run(n);
      return { bytes, ms: ns / 1e6 };
    };
  },
};

function ptyRunner(name) {
  const pty = loadPeer(name);
  if (!pty) process.exit(3);
  return (n) => nodePtyRun(pty, n);
}

/**
 * Starts a worker of `kind`. `env` adds environment variables (e.g. MSB_AGENTD_NATIVE_PATH for
 * another build of the addon); `script` runs another checkout's worker.mjs (with its dist/).
 */
export function startWorker(kind, { env = {}, script = fileURLToPath(import.meta.url) } = {}) {
  const child = spawn(process.execPath, ['--expose-gc', script, kind], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async run(n) {
      child.stdin.write(`${n}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error(`bench worker (${kind}) ended`);
      return JSON.parse(value);
    },
    async stop() {
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const make = KINDS[process.argv[2]];
  if (!make) throw new Error(`usage: worker.mjs <${Object.keys(KINDS).join('|')}>`);
  const run = make();
  for await (const line of createInterface({ input: process.stdin })) {
    // As in stats.mjs: no run pays for the garbage the previous one left.
    globalThis.gc?.();
    process.stdout.write(`${JSON.stringify(await run(Number(line)))}\n`);
  }
}
