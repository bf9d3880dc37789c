// A Node implementation's pipe transfers in a process of its own, like the C reference's.
//
// Why: in one shared process the implementations tax each other. child_process forks the whole
// process for every spawn (and the bench forks to run the C reference), which write-protects
// every page it holds, so the next implementation's reused buffers take a copy-on-write fault per
// page (~18 k per GB measured); and one implementation's garbage is collected on the next one's
// time. Each worker keeps its state between rounds, as a long-running program would.
//
// Parent side: `startPipeWorker('spawnSession' | 'child_process')`. Worker side (this file run
// as a program): one line on stdin with a byte count starts one transfer; one JSON line on
// stdout answers it.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { childProcessRun, sessionRun } from './transfer.mjs';

const RUNS = { spawnSession: (n) => sessionRun(n, false), child_process: (n) => childProcessRun(n) };

export function startPipeWorker(kind) {
  const child = spawn(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), kind], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async run(n) {
      child.stdin.write(`${n}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error(`pipe worker (${kind}) ended`);
      return JSON.parse(value);
    },
    async stop() {
      child.stdin.end();
      if (child.exitCode === null) await once(child, 'exit');
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const run = RUNS[process.argv[2]];
  if (!run) throw new Error(`usage: pipe-worker.mjs ${Object.keys(RUNS).join('|')}`);
  for await (const line of createInterface({ input: process.stdin })) {
    // As in stats.mjs: no run pays for the garbage the previous one left.
    globalThis.gc?.();
    process.stdout.write(`${JSON.stringify(await run(Number(line)))}\n`);
  }
}
