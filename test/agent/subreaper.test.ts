// With --subreaper the agent adopts orphaned descendants and reaps them, without ever stealing a
// session leader's exit status (openclaw/openclaw#68691, OpenHands/OpenHands#14277: zombies piled
// up under a non-reaping PID 1; BitterSecurity/Decepticon#340: a global reaper raced the
// per-process wait and exit codes became 0). This file's process becomes a subreaper for good,
// which is why it is a file of its own.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Agent } from '../../ts/agent/agent.js';
import { rawConnect } from '../fixtures/raw-client.js';
import { eventually, zombieChildren } from '../fixtures/harness.js';

const dir = mkdtempSync(join(tmpdir(), 'msb-subreaper-test-'));
const path = join(dir, 'agent.sock');
const agent = new Agent({ graceMs: 500, heartbeatFile: null, subreaper: true });
await agent.listen({ kind: 'socket', address: { kind: 'unix', path } });
const client = await rawConnect(path);
t.teardown(async () => {
  client.close();
  await agent.close();
  rmSync(dir, { recursive: true, force: true });
});

function exec(id: number, script: string): void {
  client.send(id, {
    type: 'execRequest',
    payload: { cmd: 'sh', args: ['-c', script], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] },
  });
}

t.test('100 runs that orphan a sleeper leave no zombie one second after the last sleeper ends', async (t) => {
  const ids = Array.from({ length: 100 }, (_, i) => 1 + i);
  for (const id of ids) exec(id, 'sleep 0.1 & exit 0');
  for (const id of ids) {
    const ms = await client.untilTerminal(id);
    t.same(ms.at(-1)!.payload, { code: 0, signal: null }, `run ${id} exited 0`);
  }
  // The last sleeper ends about 0.1 s after its shell; one second after that, nothing is left.
  const clean = await eventually(() => zombieChildren().length === 0, 1100 + 100);
  t.ok(clean, `zombies left: ${zombieChildren().join(', ')}`);
});

t.test('exit codes stay exact while orphans are being reaped', async (t) => {
  const ids = Array.from({ length: 60 }, (_, i) => 200 + i);
  for (const id of ids) exec(id, `sleep 0.05 & exit ${id - 200}`);
  for (const id of ids) {
    const ms = await client.untilTerminal(id);
    t.same(ms.at(-1)!.payload, { code: id - 200, signal: null });
  }
});

t.test('an orphan is adopted by the agent and reaped once it ends', async (t) => {
  exec(300, 'sleep 0.5 & echo $!');
  const ms = await client.untilTerminal(300);
  const out = Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data));
  const orphan = Number(out.toString().trim());
  t.ok(orphan > 0, `the sleeper's pid is ${orphan}`);
  const { readFileSync, existsSync } = await import('node:fs');
  const stat = readFileSync(`/proc/${orphan}/stat`, 'utf8');
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  t.equal(ppid, process.pid, 'the orphan was re-parented to the agent (subreaper)');
  // It ends 0.5 s after starting; within a second after that it is reaped and gone from /proc.
  t.ok(await eventually(() => !existsSync(`/proc/${orphan}`), 1500), 'reaped, not left a zombie');
});
