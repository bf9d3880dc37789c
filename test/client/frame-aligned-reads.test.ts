// The client socket's read placement (ts/client/frame-aligned-reads.ts): reads are simulated as a
// socket would do them (at most what the offered buffer holds, at most what has arrived), and the
// emitted chunks must be exactly the stream, owned, with every large frame in one chunk of its own
// so that the decoder takes it as a view.
import t from 'tap';

import { FrameAlignedReads, SCRATCH_SIZE } from '../../ts/client/frame-aligned-reads.js';
import { FrameDecoder } from '../../ts/protocol/decoder.js';
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
