// The client socket's read placement (ts/client/frame-aligned-reads.ts): reads are simulated as a
// socket would do them (at most what the offered buffer holds, at most what has arrived), and the
// emitted chunks must be exactly the stream, never written again, with every large frame in one
// chunk of its own (a view into a read slab, which the decoder takes as is) and small frames
// copied out of the slabs.
import t from 'tap';
import { once } from 'node:events';

import { AgentClient } from '../../ts/client/index.js';
import { FrameAlignedReads, SLAB_SIZE, VIEW_MIN } from '../../ts/client/frame-aligned-reads.js';
import { FrameDecoder } from '../../ts/protocol/decoder.js';
import { encodeMessage } from '../../ts/protocol/index.js';
import { startFakeAgent } from '../fixtures/client-fake-agent.js';
import { createRandom, rawFrame } from '../fixtures/protocol-helpers.js';

/**
 * Feeds `stream` through `reads` in socket-like reads of at most `arrive()` bytes each; returns
 * the emitted chunks and the buffers that reads were made into.
 */
function simulate(reads: FrameAlignedReads, stream: Buffer, arrive: () => number): { chunks: Buffer[]; targets: Buffer[] } {
  const chunks: Buffer[] = [];
  const targets: Buffer[] = [];
  let pos = 0;
  while (pos < stream.length) {
    const target = reads.nextBuffer();
    targets.push(target);
    const n = Math.min(target.length, stream.length - pos, Math.max(1, arrive()));
    stream.copy(target, 0, pos, pos + n);
    pos += n;
    reads.received(n, (c) => chunks.push(c));
  }
  reads.flush((c) => chunks.push(c));
  return { chunks, targets };
}

/** The chunks without the first `n` bytes of the stream (the handshake reads those itself). */
function dropPrefix(chunks: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) {
    const k = Math.min(n, c.length);
    n -= k;
    if (k < c.length) out.push(k === 0 ? c : c.subarray(k));
  }
  return out;
}

const random = createRandom(7);
/** Frames of every size class: tiny, around the view threshold, large, larger than a slab. */
const SIZES = [1, 100, VIEW_MIN - 10, VIEW_MIN - 9, VIEW_MIN + 1, 70_000, 250_000, 4, 0, SLAB_SIZE + 5];
const frames = Array.from({ length: 60 }, (_, i) => rawFrame(i + 1, 0, random.bytes(SIZES[i % SIZES.length]!)));
const prefix = Buffer.from([0, 0, 0, 1, 1, 255, 255, 255]);
const stream = Buffer.concat([prefix, ...frames]);

t.test('any read pattern: the exact stream, never overwritten, large frames whole, small ones copied', async (t) => {
  for (const [name, arrive] of [
    ['1 byte at a time', () => 1],
    ['random up to 208 KiB', () => random.int(208 * 1024)],
    ['everything at once', () => stream.length],
  ] as const) {
    const reads = new FrameAlignedReads(prefix.length);
    const { chunks, targets } = simulate(reads, stream, arrive);
    // Checked after the last read: a read into memory already handed on would show here.
    t.ok(Buffer.concat(chunks).equals(stream), `${name}: the chunks are the stream, byte for byte`);
    const largeWhole = frames.filter((f) => f.length >= VIEW_MIN && chunks.some((c) => c.equals(f)));
    t.equal(largeWhole.length, frames.filter((f) => f.length >= VIEW_MIN).length, `${name}: every large frame is one chunk`);
    const slabs = new Set(targets.map((b) => b.buffer));
    const copied = chunks.filter((c) => !largeWhole.some((f) => c.equals(f)));
    t.ok(copied.every((c) => !slabs.has(c.buffer)), `${name}: everything but large frames is copied out of the slabs`);
    t.ok(largeWhole.length > 0 && chunks.filter((c) => slabs.has(c.buffer)).length === largeWhole.length, `${name}: large frames are views into a slab`);
    const decoder = new FrameDecoder();
    const got: Buffer[] = [];
    let views = 0;
    for (const c of dropPrefix(chunks, prefix.length)) {
      decoder.push(c);
      for (let f = decoder.readFrame(); f !== null; f = decoder.readFrame()) {
        got.push(f.body);
        if (f.body.length + 9 >= VIEW_MIN && f.body.buffer === c.buffer) views++;
      }
    }
    decoder.end();
    t.equal(got.length, frames.length, `${name}: the decoder finds every frame`);
    t.equal(views, largeWhole.length, `${name}: large frames are decoded as views, not copies`);
  }
});

t.test('large frames are read in place: every read lands in the slab the frame is handed on from', async (t) => {
  const big = rawFrame(9, 0, random.bytes(1_000_000));
  const reads = new FrameAlignedReads();
  const { chunks, targets } = simulate(reads, big, () => 65_536);
  t.same(chunks.map((c) => c.length), [big.length], 'one chunk, the frame');
  t.ok(targets.every((b) => b.buffer === chunks[0]!.buffer), 'every read lands in the slab of the frame');
  t.equal(targets.length, Math.ceil(big.length / 65_536), 'no read more than needed');
});

t.test('a frame that does not fit in the rest of a slab moves to the next one, once', async (t) => {
  const two = [rawFrame(1, 0, random.bytes(600_000)), rawFrame(2, 0, random.bytes(600_000))];
  const reads = new FrameAlignedReads();
  const { chunks, targets } = simulate(reads, Buffer.concat(two), () => 100_000);
  t.same(chunks.map((c) => c.length), two.map((f) => f.length), 'one chunk per frame');
  t.ok(chunks[0]!.equals(two[0]!) && chunks[1]!.equals(two[1]!), 'byte-exact');
  t.not(chunks[0]!.buffer, chunks[1]!.buffer, 'the second frame is in a new slab');
  t.equal(new Set(targets.map((b) => b.buffer)).size, 2, 'two slabs in all');
  t.ok(targets.every((b) => b.length >= 64 * 1024), 'every read is offered at least 64 KiB');
});

t.test('a length out of range switches alignment off and the decoder reports it', async (t) => {
  const bad = Buffer.concat([frames[1]!, Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]), frames[6]!]);
  const reads = new FrameAlignedReads();
  const { chunks } = simulate(reads, bad, () => 5);
  t.ok(Buffer.concat(chunks).equals(bad), 'bytes pass through unchanged');
  const decoder = new FrameDecoder();
  for (const c of chunks) decoder.push(c);
  t.equal(decoder.readFrame()?.id, 2, 'the frame before the bad length decodes');
  t.throws(() => decoder.readFrame(), { code: 'MSB_ERR_FRAME_TOO_LARGE' });
});

t.test('a stream cut inside a frame: flush hands over what arrived, and the decoder says so', async (t) => {
  for (const cut of [2, 100, VIEW_MIN + 500, 200_000]) {
    const truncated = Buffer.concat([frames[0]!, frames[6]!]).subarray(0, frames[0]!.length + cut);
    const reads = new FrameAlignedReads();
    const { chunks } = simulate(reads, truncated, () => 4096);
    t.ok(Buffer.concat(chunks).equals(truncated), `cut at ${cut}: every byte handed over`);
    const decoder = new FrameDecoder();
    for (const c of chunks) decoder.push(c);
    t.equal(decoder.readFrame()?.id, 1);
    t.equal(decoder.readFrame(), null);
    t.throws(() => decoder.end(), { code: 'MSB_ERR_BAD_FRAME', message: `stream ended inside a frame (${cut} bytes buffered)` });
  }
});

t.test('through AgentClient: large frames written in pieces arrive whole; a frame cut by the agent is not delivered', async (t) => {
  const agent = await startFakeAgent();
  t.teardown(() => agent.close());
  const client = await AgentClient.connect(agent.address);
  const peer = await agent.accept();
  const pending = client.exec({ cmd: 'prog' });
  const req = await peer.next();
  peer.send(req.id, { type: 'execStarted', payload: { pid: 7 } });
  const exec = await pending;
  const chunks: Buffer[] = [];
  exec.stdout.on('data', (c: Buffer) => chunks.push(c));
  const whole = [random.bytes(300_000), random.bytes(20), random.bytes(70_000)];
  const wire = Buffer.concat(whole.map((data) => encodeMessage(req.id, { type: 'execStdout', payload: { data } })));
  // Pieces that cut headers and bodies anywhere, each written after the previous was flushed.
  for (let pos = 0; pos < wire.length; ) {
    const n = 1 + random.int(90_000);
    const piece = wire.subarray(pos, pos + n);
    pos += piece.length;
    await new Promise<void>((resolve) => peer.socket.write(piece, () => resolve()));
  }
  while (chunks.length < whole.length) await once(exec.stdout, 'data');
  t.same(chunks.map((c) => c.length), whole.map((d) => d.length), 'one chunk per frame');
  t.ok(Buffer.concat(chunks).equals(Buffer.concat(whole)), 'byte-exact');
  // Half of one more frame, then the agent goes away.
  const cut = encodeMessage(req.id, { type: 'execStdout', payload: { data: random.bytes(100_000) } });
  peer.socket.end(cut.subarray(0, 50_000));
  const err = await exec.exited.then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.same({ name: err?.name, code: err?.code }, { name: 'TransportError', code: 'MSB_ERR_TRANSPORT_CLOSED' });
  t.equal(chunks.length, whole.length, 'nothing of the cut frame was delivered');
});
