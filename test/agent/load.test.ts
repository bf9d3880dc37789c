// Load: 100 concurrent exec sessions over two clients (50 each), every one with its own output size
// and its own exit code. Every byte and every code must be exact (LESSONS §1, §4 and regression
// test 4): binary output is checked against an independent checksum, nothing crosses between
// sessions or clients, and no output follows an exit.
//
// Even sessions write N random bytes and, through tee, let sha256sum in the child hash exactly what
// was written (stderr carries the digest). Odd sessions write an AES-128-CTR keystream from openssl
// that the test recomputes byte for byte.
import t from 'tap';
import { createCipheriv, createHash } from 'node:crypto';

import { rawConnect, type RawClient } from '../fixtures/raw-client.js';
import { OutputSink, execRequest, exitOf } from '../fixtures/agent-sink.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';

const SESSIONS = 100;
/** Signals whose default action terminates without a core dump. */
const SIGNALS = [1, 2, 9, 10, 12, 13, 14, 15, 26, 27, 29, 30];

const { agent, path, dir, clients } = await startAgentOnSocket(t, 'load');

interface Plan {
  k: number;
  client: RawClient;
  sink: OutputSink;
  id: number;
  size: number;
  code: number;
  kind: 'random' | 'keystream';
  key: string;
  iv: string;
}

function keystream(key: string, iv: string, size: number): Buffer {
  return createCipheriv('aes-128-ctr', Buffer.from(key, 'hex'), Buffer.from(iv, 'hex')).update(Buffer.alloc(size));
}

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

t.test('100 concurrent sessions on two clients: every byte and every exit code exact', async (t) => {
  const a = await rawConnect(path);
  const b = await rawConnect(path);
  clients.push(a, b);
  const sinks = new Map([
    [a, new OutputSink(a, { hash: true })],
    [b, new OutputSink(b, { hash: true })],
  ]);
  const plans: Plan[] = [];
  for (let k = 0; k < SESSIONS; k++) {
    const client = k % 2 === 0 ? a : b;
    const id = client.idStart + 10 + Math.floor(k / 2);
    plans.push({
      k,
      client,
      sink: sinks.get(client)!,
      id,
      size: 1 + k * 10_007 + (k % 7) * 313, // 1 byte .. ~1 MiB, all distinct
      code: (k * 37 + 11) % 256 === 0 ? 1 : (k * 37 + 11) % 256, // 100 distinct codes
      kind: Math.floor(k / 2) % 2 === 0 ? 'random' : 'keystream',
      key: createHash('md5').update(`key-${k}`).digest('hex'),
      iv: createHash('md5').update(`iv-${k}`).digest('hex'),
    });
  }
  t.equal(new Set(plans.map((p) => p.size)).size, SESSIONS, 'sizes are distinct');
  t.equal(new Set(plans.map((p) => p.code)).size, SESSIONS, 'exit codes are distinct');

  const start = Date.now();
  for (const p of plans) {
    const script =
      p.kind === 'random'
        ? `{ head -c ${p.size} /dev/urandom | tee /dev/fd/3 | sha256sum >&2; } 3>&1; exit ${p.code}`
        : `openssl enc -aes-128-ctr -K ${p.key} -iv ${p.iv} -nosalt -in /dev/zero 2>/dev/null | head -c ${p.size}; exit ${p.code}`;
    p.client.send(p.id, execRequest('sh', ['-c', script]));
  }
  // Alongside: children that die by a signal report code -1 and that exact signal, never 0.
  const signalled = SIGNALS.map(async (sig, i) => {
    const c = i % 2 === 0 ? a : b;
    const id = c.idStart + 1000 + i;
    c.send(id, execRequest('sh', ['-c', `head -c ${1000 * (i + 1)} /dev/zero; kill -${sig} $$; sleep 30`]));
    await c.next((m) => m.id === id && m.type === 'execStarted', 30_000);
    const end = await c.next((m) => m.id === id && (m.flags & 1) !== 0, 60_000);
    return { sig, exit: exitOf(end), bytes: sinks.get(c)!.of(id).stdout.bytes };
  });
  const results = await Promise.all(
    plans.map(async (p) => {
      const started = await p.client.next((m) => m.id === p.id && m.type === 'execStarted', 30_000);
      const end = await p.client.next((m) => m.id === p.id && (m.flags & 1) !== 0, 60_000);
      const out = p.sink.of(p.id);
      return {
        p,
        pid: (started.payload as { pid: number }).pid,
        exit: exitOf(end),
        stdoutBytes: out.stdout.bytes,
        stdout: out.stdout.digest(),
        stderrBytes: out.stderr.bytes,
        stderr: out.stderr.digest(),
      };
    }),
  );
  const elapsed = Date.now() - start;
  const killed = await Promise.all(signalled);

  const wrong: string[] = [];
  for (const r of results) {
    const { p } = r;
    const name = `session ${p.k} (${p.kind}, ${p.size} bytes, exit ${p.code})`;
    if (JSON.stringify(r.exit) !== JSON.stringify({ code: p.code, signal: null })) wrong.push(`${name}: exit ${JSON.stringify(r.exit)}`);
    if (r.stdoutBytes !== p.size) wrong.push(`${name}: ${r.stdoutBytes} stdout bytes`);
    if (p.kind === 'random') {
      if (r.stderr !== sha256(`${r.stdout}  -\n`)) wrong.push(`${name}: stdout does not hash to what the child's sha256sum saw`);
    } else {
      if (r.stdout !== sha256(keystream(p.key, p.iv, p.size))) wrong.push(`${name}: stdout differs from the keystream`);
      if (r.stderrBytes !== 0) wrong.push(`${name}: ${r.stderrBytes} unexpected stderr bytes`);
    }
  }
  t.strictSame(wrong, [], 'every session exact');
  t.strictSame(
    killed,
    SIGNALS.map((sig, i) => ({ sig, exit: { code: -1, signal: sig }, bytes: 1000 * (i + 1) })),
    'every signal death reports code -1 with its signal, after all of its output',
  );
  t.equal(new Set(results.map((r) => r.pid)).size, SESSIONS, 'a distinct process per session');
  t.ok(elapsed < 60_000, `all 100 finished in ${elapsed} ms`);

  // Nothing arrives on any id after its terminal frame, and nothing else is left over.
  const ping = [a, b].map(async (c) => {
    c.send(c.idStart, { type: 'ping', payload: {} });
    return (await c.next((m) => m.id === c.idStart)).type;
  });
  t.strictSame(await Promise.all(ping), ['pong', 'pong']);
  t.strictSame(
    results.filter((r) => r.p.sink.of(r.p.id).stdout.bytes !== r.stdoutBytes || r.p.sink.of(r.p.id).stderr.bytes !== r.stderrBytes).map((r) => r.p.k),
    [],
    'no output after any exit',
  );
  t.strictSame([...a.received, ...b.received], [], 'no stray frames on either client');
  t.equal(agent.meter.snapshot().active_exec_sessions, 0, 'no session left active');
});
