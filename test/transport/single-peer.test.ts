// Single-peer transports carry raw frames with no handshake prefix, core.ready first (DESIGN §4):
// a serial line (a PTY pair standing in for the device), an adopted socket descriptor (the path
// vsock connections take, tested with a socketpair since there is no vsock loopback here), and
// stdio. Each runs an exec end to end.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

import { Agent } from '../../ts/agent/agent.js';
import { rawOver, type RawClient } from '../fixtures/raw-client.js';
import { PROGRAMS } from '../fixtures/harness.js';

const CHILD = join(PROGRAMS, '..', 'agent-child.ts');

async function echoExec(t: Test, c: RawClient, id: number): Promise<void> {
  c.send(id, {
    type: 'execRequest',
    payload: { cmd: 'sh', args: ['-c', 'echo over-the-line; exit 5'], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] },
  });
  const ms = await c.untilTerminal(id);
  t.equal(ms[0]!.type, 'execStarted');
  const out = Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data));
  t.equal(out.toString(), 'over-the-line\n');
  t.same(ms.at(-1)!.payload, { code: 5, signal: null });
}

t.test('serial device (a PTY pair): core.ready first, then an exec end to end', async (t) => {
  const relay = spawn('python3', [join(PROGRAMS, 'pty-relay.py')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: relay.stdout! });
  const [device] = (await once(lines, 'line')) as [string];
  lines.close();
  t.match(device, /^\/dev\/pts\/\d+$/);
  const agent = new Agent({ graceMs: 500, heartbeatFile: null });
  await agent.listen({ kind: 'serial', path: device });
  const line = Duplex.from({ readable: relay.stdout!, writable: relay.stdin! });
  const c = await rawOver(line, false);
  t.equal(c.ready.id, 0);
  await echoExec(t, c, 7);
  c.send(8, { type: 'ping', payload: {} });
  t.equal((await c.next((m) => m.id === 8)).type, 'pong');
  relay.stdin!.end();
  await once(relay, 'exit');
  await agent.close();
});

t.test('a serial line that hangs up is reopened, and a running session carries on', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'msb-serial-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const link = join(dir, 'ttyAGENT');
  const relay = spawn('python3', [join(PROGRAMS, 'pty-relay.py'), link], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: relay.stdout! });
  const [device] = (await once(lines, 'line')) as [string];
  lines.close();
  t.equal(device, link);
  const agent = new Agent({ graceMs: 500, heartbeatFile: null });
  t.teardown(() => agent.close());
  await agent.listen({ kind: 'serial', path: link });
  const c = await rawOver(Duplex.from({ readable: relay.stdout!, writable: relay.stdin! }), false);
  c.send(9, {
    type: 'execRequest',
    payload: { cmd: 'sh', args: ['-c', 'read x; echo "got $x"'], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] },
  });
  await c.next((m) => m.id === 9 && m.type === 'execStarted');
  // Hang the line up; the relay opens a new pair behind the same path.
  relay.kill('SIGUSR1');
  const reopened = createInterface({ input: relay.stderr! });
  for await (const l of reopened) if (l === 'REOPENED') break;
  // The agent notices the hang-up and reopens within its retry delay; ping until it answers.
  let pong = false;
  for (let id = 100; id < 150 && !pong; id++) {
    c.send(id, { type: 'ping', payload: {} });
    pong = await c.next((m) => m.id === id, 200).then(() => true, () => false);
  }
  t.ok(pong, 'the agent answers on the reopened line');
  c.send(9, { type: 'execStdin', payload: { data: Buffer.from('again\n') } });
  const ms = await c.untilTerminal(9);
  const out = Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data));
  t.equal(out.toString(), 'got again\n', 'the session started before the hang-up finished after it');
  t.same(ms.at(-1)!.payload, { code: 0, signal: null });
  relay.stdin!.end();
  await once(relay, 'exit');
});

t.test('an adopted descriptor (socketpair, the vsock connection path) serves one peer', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, 'fd', '3'], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  const sock = child.stdio[3] as Socket;
  const c = await rawOver(sock, false);
  t.equal(c.ready.type, 'ready');
  await echoExec(t, c, 1);
  // Bulk output, routed to the descriptor's native writer: exact, and in protocol order.
  c.send(2, {
    type: 'execRequest',
    payload: { cmd: 'sh', args: ['-c', 'head -c 5000000 /dev/zero | tr "\\0" z; echo tail >&2'], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] },
  });
  const ms = await c.untilTerminal(2);
  t.equal(ms[0]!.type, 'execStarted');
  t.equal(ms.at(-1)!.type, 'execExited');
  const bulk = Buffer.concat(ms.filter((m) => m.type === 'execStdout').map((m) => (m.payload as { data: Buffer }).data));
  t.ok(bulk.equals(Buffer.alloc(5_000_000, 'z')), `5 MB of stdout, byte-exact (got ${bulk.length})`);
  t.equal(Buffer.concat(ms.filter((m) => m.type === 'execStderr').map((m) => (m.payload as { data: Buffer }).data)).toString(), 'tail\n');
  c.close();
  const [code] = await once(child, 'exit');
  t.equal(code, 0, 'the agent process ends by itself once its only peer is gone');
});

t.test('stdio: raw frames on stdin/stdout; closing stdin stops the agent', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, 'stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const c = await rawOver(Duplex.from({ readable: child.stdout!, writable: child.stdin! }), false);
  await echoExec(t, c, 3);
  child.stdin!.end();
  const [code] = await once(child, 'exit');
  t.equal(code, 0);
});

t.test('a malformed frame on stdio ends the agent', async (t) => {
  const child = spawn(process.execPath, ['--import=tsx', CHILD, 'stdio'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const c = await rawOver(Duplex.from({ readable: child.stdout!, writable: child.stdin! }), false);
  c.sendRaw(Buffer.from([0, 0, 0, 1, 0]));
  const [code] = await once(child, 'exit');
  t.equal(code, 0, 'it stops cleanly after ending its sessions');
});
