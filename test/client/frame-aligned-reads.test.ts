// The client socket's read placement (ts/client/frame-aligned-reads.ts): reads are simulated as a
// socket would do them (at most what the offered buffer holds, at most what has arrived), and the
// emitted chunks must be exactly the stream, owned, with every large frame in one chunk of its own
// so that the decoder takes it as a view.
import t from 'tap';
import { once } from 'node:events';

import { AgentClient } from '../../ts/client/index.js';
import { FrameAlignedReads, SCRATCH_SIZE } from '../../ts/client/frame-aligned-reads.js';
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
/** Frames of every size class: tiny, around the scratch size, large. */
const SIZES = [1, 100, SCRATCH_SIZE - 9, SCRATCH_SIZE - 8, SCRATCH_SIZE + 1, 70_000, 250_000, 4, 0];
const frames = Array.from({ length: 60 }, (_, i) => rawFrame(i + 1, 0, random.bytes(SIZES[i % SIZES.length]!)));
const prefix = Buffer.from([0, 0, 0, 1, 1, 255, 255, 255]);
const stream = Buffer.concat([prefix, ...frames]);

t.test('any read pattern: the exact stream, owned chunks, large frames whole', async (t) => {
  for (const [name, arrive] of [
    ['1 byte at a time', () => 1],
    ['random up to 208 KiB', () => random.int(208 * 1024)],
    ['everything at once', () => stream.length],
  ] as const) {
    const reads = new FrameAlignedReads(prefix.length);
    const { chunks, targets } = simulate(reads, stream, arrive);
    // Scribble over the scratch buffer: no emitted chunk may share its memory.
    const scratch = targets.find((b) => b.length === SCRATCH_SIZE && b.byteOffset === targets[0]!.byteOffset)!;
    scratch.fill(0xee);
    t.ok(Buffer.concat(chunks).equals(stream), `${name}: the chunks are the stream, byte for byte`);
    const largeWhole = frames.filter((f) => f.length > SCRATCH_SIZE && chunks.some((c) => c.equals(f)));
    t.equal(largeWhole.length, frames.filter((f) => f.length > SCRATCH_SIZE).length, `${name}: every large frame is one chunk`);
    const decoder = new FrameDecoder();
    const got: Buffer[] = [];
    let views = 0;
    for (const c of dropPrefix(chunks, prefix.length)) {
      decoder.push(c);
      for (let f = decoder.readFrame(); f !== null; f = decoder.readFrame()) {
        got.push(f.body);
        if (f.body.length + 9 > SCRATCH_SIZE && f.body.buffer === c.buffer) views++;
      }
    }
    decoder.end();
    t.equal(got.length, frames.length, `${name}: the decoder finds every frame`);
    t.equal(views, largeWhole.length, `${name}: large frames are decoded as views, not copies`);
  }
});

t.test('large frames are read in place: no read into the scratch buffer ends inside one', async (t) => {
  const big = rawFrame(9, 0, random.bytes(1_000_000));
  const reads = new FrameAlignedReads();
  const { chunks, targets } = simulate(reads, big, () => 65_536);
  t.same(chunks.map((c) => c.length), [big.length], 'one chunk, the frame');
  t.equal(targets[0]!.length, SCRATCH_SIZE, 'the first read goes to the scratch buffer');
  t.ok(targets.slice(1).every((b) => b.buffer === chunks[0]!.buffer), 'every later read lands in the frame itself');
  t.equal(targets.length, 1 + Math.ceil((big.length - SCRATCH_SIZE) / 65_536), 'no read more than needed');
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
  for (const cut of [2, 100, SCRATCH_SIZE + 500, 200_000]) {
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
