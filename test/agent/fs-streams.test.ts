// Streaming reads and writes of the filesystem service (PROTOCOL §4.9.4–4.9.5, W2/W16 fixed):
// a 200 MiB round trip with a sha256 match, reads that respect the connection's flow control,
// offsets and lengths, the length check before writing, the bounded write queue, and handles
// closed in the middle of a stream.
import t from 'tap';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { rawConnect, type RawClient } from '../fixtures/raw-client.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';
import { fsCall, fsOk, openHandle, readChunks } from '../fixtures/fs-client.js';
import { eventually, pattern } from '../fixtures/harness.js';
import type { ReceivedMessage } from '../../ts/protocol/index.js';

const MiB = 1024 * 1024;
const CHUNK = 3 * MiB;
const { agent, path: sock, dir, clients } = await startAgentOnSocket(t, 'fsstreams');
const c = await rawConnect(sock);
const other = await rawConnect(sock);
clients.push(c, other);
let nextId = c.idStart;
const id = (): number => nextId++;
const p = (name: string): string => join(dir, name);
const fsBytes = (): bigint => agent.meter.snapshot().activity_counters.fs_bytes;

/** Writes `data` at `offset` through one Write stream; returns its response. */
async function writeStream(h: number, offset: number, data: Buffer, len: number | null = data.length) {
  const w = id();
  c.send(w, { type: 'fsRequest', payload: { op: { type: 'write', handle: h, offset, len } } });
  for (let off = 0; off < data.length; off += CHUNK) c.send(w, { type: 'fsData', payload: { data: data.subarray(off, off + CHUNK) } });
  c.send(w, { type: 'fsData', payload: { data: Buffer.alloc(0) } });
  const ms = await c.untilTerminal(w, 60000);
  t.equal(ms.length, 1, 'nothing before the terminal response');
  return ms[0]!.payload;
}

async function readAll(h: number, offset = 0, len: number | null = null): Promise<{ data: Buffer; ms: ReceivedMessage[] }> {
  const r = id();
  c.send(r, { type: 'fsRequest', payload: { op: { type: 'read', handle: h, offset, len } } });
  const ms = await c.untilTerminal(r, 60000);
  return { data: Buffer.concat(readChunks(ms)), ms };
}

t.test('200 MiB written and read back through the protocol, sha256 equal; pings stay prompt', async (t) => {
  const input = pattern(200 * MiB, 9);
  const want = createHash('sha256').update(input).digest('hex');
  const h = await openHandle(c, id(), p('big'), { read: true, write: true, create: true });
  const before = fsBytes();
  // 12 MiB per Write stream, each awaited: under the agent's 16 MiB per-stream queue bound.
  for (let off = 0; off < input.length; off += 12 * MiB) {
    t.same(await writeStream(h, off, input.subarray(off, off + 12 * MiB)), { ok: true, error: null, data: null });
  }
  t.equal(statSync(p('big')).size, input.length);
  t.equal(createHash('sha256').update(readFileSync(p('big'))).digest('hex'), want, 'the file on disk');
  t.equal(fsBytes() - before, BigInt(input.length), 'fs_bytes counts every written byte');

  const r = id();
  c.send(r, { type: 'fsRequest', payload: { op: { type: 'read', handle: h, offset: 0, len: null } } });
  const pings: number[] = [];
  let reading = true;
  const pinger = (async () => {
    let pid = other.idStart;
    while (reading) {
      const started = performance.now();
      other.send(pid, { type: 'ping', payload: {} });
      await other.next((m) => m.id === pid && m.type === 'pong');
      pings.push(performance.now() - started);
      pid++;
    }
  })();
  const hash = createHash('sha256');
  let got = 0;
  let chunks = 0;
  let maxChunk = 0;
  for (;;) {
    const m = await c.next((x) => x.id === r, 60000);
    if (m.type !== 'fsData') {
      t.same(m.payload, { ok: true, error: null, data: null });
      break;
    }
    const d = (m.payload as { data: Buffer }).data;
    t.ok(d.length > 0 || t.fail('no empty chunk'), undefined);
    hash.update(d);
    got += d.length;
    chunks++;
    maxChunk = Math.max(maxChunk, d.length);
  }
  reading = false;
  await pinger;
  t.equal(got, input.length);
  t.equal(hash.digest('hex'), want, 'read back byte-exact');
  t.ok(maxChunk <= CHUNK, `chunks of at most 3 MiB (largest ${maxChunk})`);
  t.ok(chunks >= Math.ceil(input.length / CHUNK), `${chunks} chunks`);
  t.ok(pings.length > 0, `${pings.length} pings answered during the read`);
  t.ok(Math.max(...pings) < 2000, `no ping waited on the read (max ${Math.max(...pings).toFixed(1)} ms)`);
});

t.test('a reading client that stops reading holds the agent to a bounded amount', async (t) => {
  const h = await openHandle(c, id(), p('big'), { read: true });
  const start = fsBytes();
  c.socket.pause();
  const r = id();
  c.send(r, { type: 'fsRequest', payload: { op: { type: 'read', handle: h, offset: 0, len: null } } });
  // Wait until the agent stops reading: fs_bytes holds still for half a second.
  let last = -1n;
  let stableSince = Date.now();
  await eventually(() => {
    const now = fsBytes();
    if (now !== last) {
      last = now;
      stableSince = Date.now();
    }
    return now > start && Date.now() - stableSince > 500;
  }, 20000);
  const sent = Number(fsBytes() - start);
  t.ok(sent < 32 * MiB, `the agent read ${(sent / MiB).toFixed(1)} MiB of 200 MiB ahead of a paused client`);
  t.equal(agent.meter.snapshot().active_fs_streams, 1, 'the stream is alive, waiting');
  // A handle close queued behind the paused stream ends it cleanly at its next chunk.
  const close = id();
  c.send(close, { type: 'fsRequest', payload: { op: { type: 'closeHandle', handle: h } } });
  c.socket.resume();
  const ms = await c.untilTerminal(r, 60000);
  const last2 = ms[ms.length - 1]!;
  t.same(last2.payload, { ok: false, error: `read: handle ${h} was closed`, data: null });
  t.equal(Buffer.concat(readChunks(ms)).length, sent, 'every byte read was delivered, then the stream ended');
  t.same((await c.untilTerminal(close))[0]!.payload, { ok: true, error: null, data: null });
  t.equal(agent.meter.snapshot().active_fs_streams, 0);
});

t.test('reads honour offset and len; len 0 and reads past EOF send no data', async (t) => {
  writeFileSync(p('small'), '0123456789');
  const h = await openHandle(c, id(), p('small'), { read: true });
  t.equal((await readAll(h, 3, 4)).data.toString(), '3456');
  t.equal((await readAll(h, 7, null)).data.toString(), '789');
  t.equal((await readAll(h, 8, 100)).data.toString(), '89', 'short of len at EOF is not an error');
  const zero = await readAll(h, 0, 0);
  t.same(zero.ms.map((m) => m.type), ['fsResponse']);
  const past = await readAll(h, 50, null);
  t.same(past.ms.map((m) => m.type), ['fsResponse']);
  t.same(past.ms[0]!.payload, { ok: true, error: null, data: null });
});

t.test('writes at an offset, appends, and length checks before and after', async (t) => {
  writeFileSync(p('w'), 'abcdefghij');
  const h = await openHandle(c, id(), p('w'), { write: true });
  t.same(await writeStream(h, 2, Buffer.from('XY')), { ok: true, error: null, data: null });
  t.equal(readFileSync(p('w'), 'utf8'), 'abXYefghij');
  t.same(await writeStream(h, 20, Buffer.from('Z'), null), { ok: true, error: null, data: null }, 'len null: no check');
  t.equal(readFileSync(p('w')).subarray(10).toString('hex'), '00'.repeat(10) + '5a');
  const ap = await openHandle(c, id(), p('w'), { append: true });
  t.same(await writeStream(ap, 0, Buffer.from('++')), { ok: true, error: null, data: null });
  t.ok(readFileSync(p('w'), 'utf8').endsWith('Z++'), 'append ignores the offset');

  writeFileSync(p('w2'), '');
  const h2 = await openHandle(c, id(), p('w2'), { write: true });
  const w = id();
  c.send(w, { type: 'fsRequest', payload: { op: { type: 'write', handle: h2, offset: 0, len: 10 } } });
  c.send(w, { type: 'fsData', payload: { data: Buffer.from('12345678') } });
  c.send(w, { type: 'fsData', payload: { data: Buffer.from('9abcd') } });
  c.send(w, { type: 'fsData', payload: { data: Buffer.from('late') } });
  c.send(w, { type: 'fsData', payload: { data: Buffer.alloc(0) } });
  const ms = await c.untilTerminal(w);
  t.same(ms.map((m) => m.payload), [{ ok: false, error: 'write length mismatch: expected 10, got at least 13 bytes (the chunk was not written)', data: null }]);
  c.send(id(), { type: 'ping', payload: {} });
  const pong = await c.next((m) => m.type === 'pong');
  t.notOk(c.received.some((m) => m.id === w), 'chunks after the terminal response are dropped silently');
  t.ok(pong);
  t.equal(readFileSync(p('w2'), 'utf8'), '12345678', 'chunks before it were written before the answer; the overflowing one never');

  t.same(await writeStream(h2, 0, Buffer.from('short'), 10), {
    ok: false,
    error: 'write length mismatch: expected 10, wrote 5',
    data: null,
  });
});

t.test('a stalled file (a FIFO nobody reads) fails its own write stream at the queue bound, and blocks nobody', async (t) => {
  const fifo = p('fifo');
  execFileSync('mkfifo', [fifo]);
  // O_RDWR on a FIFO does not wait for a reader; writes block once its 64 KiB buffer is full.
  // Append mode: a FIFO cannot pwrite at an offset.
  const h = await openHandle(c, id(), fifo, { read: true, append: true });
  const w = id();
  c.send(w, { type: 'fsRequest', payload: { op: { type: 'write', handle: h, offset: 0, len: null } } });
  const mb = Buffer.alloc(MiB, 0x61);
  for (let i = 0; i < 20; i++) c.send(w, { type: 'fsData', payload: { data: mb } });
  const r = await c.untilTerminal(w);
  t.match((r[0]!.payload as { error: string }).error, /^write: \d+ bytes are already waiting for the disk; at most 16777216 may be in flight per stream$/);
  // Meanwhile other operations on other handles and plain requests go on.
  writeFileSync(p('side'), 'side');
  t.equal((await fsCall(c, id(), { type: 'stat', path: p('side'), followSymlink: true })).ok, true);
  const s = await openHandle(c, id(), p('side'), { read: true });
  t.equal((await readAll(s)).data.toString(), 'side');
  // Unblock the thread stuck in write(2): read the FIFO dry.
  const fd = openSync(fifo, 'r');
  const sink = Buffer.alloc(MiB);
  const closing = fsCall(c, id(), { type: 'closeHandle', handle: h });
  let drained = 0;
  while (drained < 16 * MiB) {
    const n = readSync(fd, sink, 0, sink.length, null);
    if (n === 0) break;
    drained += n;
    if (drained >= 64 * 1024 && (await Promise.race([closing.then(() => true), new Promise((res) => setImmediate(() => res(false)))]))) break;
  }
  closeSync(fd);
  t.same(await closing, { ok: true, error: null, data: null }, 'the handle closes once its queue has run');
});
