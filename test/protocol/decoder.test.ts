import t from 'tap';
import { ProtocolError } from '../../ts/errors.js';
import { FrameDecoder } from '../../ts/protocol/decoder.js';
import { MAX_FRAME_SIZE, encodeFrame, type Frame } from '../../ts/protocol/frame.js';
import { VECTORS, createRandom, hex, rawFrame } from '../fixtures/protocol-helpers.js';

/** Frames as comparable plain values. */
function summarize(frames: Frame[]): { id: number; flags: number; body: string }[] {
  return frames.map((f) => ({ id: f.id, flags: f.flags, body: f.body.toString('hex') }));
}

function readAll(decoder: FrameDecoder): Frame[] {
  const out: Frame[] = [];
  for (let f = decoder.readFrame(); f !== null; f = decoder.readFrame()) out.push(f);
  return out;
}

/** Push `chunks` one by one, reading after each, as a socket 'data' handler would. */
function feed(chunks: Uint8Array[]): Frame[] {
  const decoder = new FrameDecoder();
  const out: Frame[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    out.push(...readAll(decoder));
  }
  decoder.end();
  return out;
}

/** The error `fn` throws (the same object, for identity checks), or null. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return null;
}

function split(bytes: Buffer, sizes: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = Math.max(1, sizes());
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

const stream = Buffer.concat(VECTORS.map((v) => v.bytes));
const expected = VECTORS.map((v) => ({ id: v.id, flags: v.flags, body: v.bytes.subarray(9).toString('hex') }));

t.test('every vector decodes to its id, flags and body', async (t) => {
  for (const v of VECTORS) {
    t.strictSame(summarize(feed([v.bytes])), [{ id: v.id, flags: v.flags, body: v.bytes.subarray(9).toString('hex') }], v.name);
  }
});

t.test('coalesced: all vectors in one chunk give all frames in order', async (t) => {
  t.strictSame(summarize(feed([stream])), expected);
});

t.test('one byte at a time gives the same frames', async (t) => {
  t.strictSame(summarize(feed(split(stream, () => 1))), expected);
});

t.test('random splits give the same frames (seeded)', async (t) => {
  const random = createRandom(0x5eed);
  for (let round = 0; round < 200; round++) {
    const maxChunk = 1 + random.int(120);
    t.strictSame(summarize(feed(split(stream, () => 1 + random.int(maxChunk)))), expected, `round ${round}`);
  }
});

t.test('pushing several chunks before reading gives the same frames', async (t) => {
  const decoder = new FrameDecoder();
  for (const chunk of split(stream, () => 7)) decoder.push(chunk);
  t.strictSame(summarize(readAll(decoder)), expected);
  t.equal(decoder.bufferedBytes, 0);
});

t.test('leftover bytes after a frame stay buffered for the next one', async (t) => {
  const [a, b] = [VECTORS[0]!.bytes, VECTORS[1]!.bytes];
  const decoder = new FrameDecoder();
  decoder.push(Buffer.concat([a, b.subarray(0, 6)]));
  t.equal(decoder.readFrame()?.body.toString('hex'), a.subarray(9).toString('hex'));
  t.equal(decoder.readFrame(), null);
  t.equal(decoder.bufferedBytes, 6);
  decoder.push(b.subarray(6));
  t.equal(decoder.readFrame()?.body.toString('hex'), b.subarray(9).toString('hex'));
  t.equal(decoder.bufferedBytes, 0);
  decoder.end();
});

t.test('a frame inside one chunk is a view of it; empty chunks are ignored', async (t) => {
  const chunk = encodeFrame({ id: 3, flags: 0, body: hex('a0') });
  const decoder = new FrameDecoder();
  decoder.push(new Uint8Array(0));
  decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
  const frame = decoder.readFrame();
  t.equal(frame?.body.buffer, chunk.buffer);
  t.strictSame(summarize([frame!]), [{ id: 3, flags: 0, body: 'a0' }]);
});

t.test('a body of length 0 (len = 5) is a valid frame', async (t) => {
  t.strictSame(summarize(feed([hex('00000005 00000001 00')])), [{ id: 1, flags: 0, body: '' }]);
});

t.test('the largest frame decodes, also when fed in small chunks (no quadratic copying)', async (t) => {
  const body = createRandom(1).bytes(MAX_FRAME_SIZE - 5);
  const frame = encodeFrame({ id: 77, flags: 1, body });
  const whole = feed([frame]);
  t.equal(whole.length, 1);
  t.ok(whole[0]!.body.equals(body));
  const chunked = feed(split(frame, () => 1000));
  t.equal(chunked.length, 1);
  t.ok(chunked[0]!.body.equals(body));
});

t.test('a 1 MiB frame fed one byte at a time decodes exactly', async (t) => {
  const body = createRandom(2).bytes(1024 * 1024);
  const frame = encodeFrame({ id: 5, flags: 0, body });
  const decoder = new FrameDecoder();
  let got: Frame | null = null;
  for (let i = 0; i < frame.length; i++) {
    decoder.push(frame.subarray(i, i + 1));
    got = decoder.readFrame() ?? got;
  }
  t.ok(got?.body.equals(body));
  t.equal(decoder.bufferedBytes, 0);
});

t.test('an oversized length is fatal (MSB_ERR_FRAME_TOO_LARGE), after the frames before it', async (t) => {
  const good = VECTORS[0]!.bytes;
  const bad = hex('00400001 00000001 00');
  const decoder = new FrameDecoder();
  decoder.push(Buffer.concat([good, bad]));
  t.equal(decoder.readFrame()?.id, VECTORS[0]!.id);
  const err = thrown(() => decoder.readFrame());
  t.ok(err instanceof ProtocolError);
  t.equal((err as ProtocolError).code, 'MSB_ERR_FRAME_TOO_LARGE');
  t.equal(decoder.failure, err);
  t.equal(thrown(() => decoder.readFrame()), err, 'stays failed');
  t.equal(thrown(() => decoder.push(good)), err, 'refuses more input');
  t.equal(thrown(() => decoder.end()), err);
});

t.test('an undersized length is fatal (MSB_ERR_BAD_FRAME), whatever the split', async (t) => {
  for (const len of [0, 1, 4]) {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(len);
    for (const chunks of [[bytes], split(bytes, () => 1)]) {
      const decoder = new FrameDecoder();
      let caught: unknown = null;
      try {
        for (const c of chunks) {
          decoder.push(c);
          decoder.readFrame();
        }
      } catch (err) {
        caught = err;
      }
      t.ok(caught instanceof ProtocolError, `len ${len}`);
      t.equal((caught as ProtocolError).code, 'MSB_ERR_BAD_FRAME');
    }
  }
});

t.test('a length split across chunks is checked as soon as it is complete', async (t) => {
  const decoder = new FrameDecoder();
  decoder.push(hex('ff ff'));
  t.equal(decoder.readFrame(), null);
  decoder.push(hex('ff'));
  t.equal(decoder.readFrame(), null);
  t.equal(decoder.bufferedBytes, 3);
  decoder.push(hex('ff'));
  t.throws(() => decoder.readFrame(), { code: 'MSB_ERR_FRAME_TOO_LARGE' });
  t.equal(decoder.failure?.code, 'MSB_ERR_FRAME_TOO_LARGE');
});

t.test('EOF inside a frame is an error, EOF between frames is not', async (t) => {
  const bytes = VECTORS[2]!.bytes;
  for (const cut of [1, 4, 9, bytes.length - 1]) {
    const decoder = new FrameDecoder();
    decoder.push(bytes.subarray(0, cut));
    t.equal(decoder.readFrame(), null);
    t.equal(decoder.bufferedBytes, cut);
    t.throws(() => decoder.end(), { name: 'ProtocolError', code: 'MSB_ERR_BAD_FRAME' }, `cut at ${cut}`);
  }
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  t.ok(decoder.readFrame());
  decoder.end();
  t.equal(decoder.failure, null);
});

t.test('the decoder never holds more than MAX_FRAME_SIZE + 4 bytes without a frame', async (t) => {
  const decoder = new FrameDecoder();
  decoder.push(rawFrame(1, 0, Buffer.alloc(MAX_FRAME_SIZE - 5)).subarray(0, MAX_FRAME_SIZE + 3));
  t.equal(decoder.readFrame(), null);
  t.equal(decoder.bufferedBytes, MAX_FRAME_SIZE + 3);
  // The last byte of that frame, then the 4-byte length (9) of a next frame that never arrives.
  decoder.push(Buffer.from([0, 0, 0, 0, 9]));
  t.equal(decoder.readFrame()?.id, 1);
  t.equal(decoder.bufferedBytes, 4);
  t.equal(decoder.readFrame(), null);
  t.throws(() => decoder.end(), { code: 'MSB_ERR_BAD_FRAME' });
});

t.test('many tiny chunks queued before reading are consumed in order', async (t) => {
  const frames = Array.from({ length: 300 }, (_, i) => encodeFrame({ id: i, flags: 0, body: hex('a0') }));
  const decoder = new FrameDecoder();
  for (const b of split(Buffer.concat(frames), () => 1)) decoder.push(b);
  t.strictSame(
    readAll(decoder).map((f) => f.id),
    frames.map((_, i) => i),
  );
});
