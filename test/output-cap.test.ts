// CappedBuffer keeps the head and the tail (LESSONS §7, regression test 7).
//
// FerroxLabs/wayland#1071 discarded all output under an 8 MiB cap instead of the middle;
// UKGovernmentBEIS/inspect_ai#4778 cut output with no flag; daintreehq/daintree#7567 asked for an
// exact "N bytes dropped". Every case below is compared, byte for byte, with a direct model:
// the first ceil(max/2) and the last floor(max/2) bytes of the whole stream, and the exact count
// of the bytes in between.
import t from 'tap';

import { CappedBuffer } from '../ts/output-cap.js';

/** What a cap of `max` must keep of `stream`. */
function model(stream: Buffer, max: number): { kept: Buffer; dropped: number } {
  if (stream.length <= max) return { kept: stream, dropped: 0 };
  const head = Math.ceil(max / 2);
  const tail = Math.floor(max / 2);
  return {
    kept: Buffer.concat([stream.subarray(0, head), stream.subarray(stream.length - tail)]),
    dropped: stream.length - max,
  };
}

/** Distinct, position-dependent bytes, so a misplaced byte cannot look right. */
function bytes(n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, (_, i) => (i * 131 + (i >> 8) * 7 + 1) & 0xff));
}

/** A small deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Splits `stream` at the given chunk sizes (cycled); empty chunks allowed. */
function split(stream: Buffer, sizes: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  let off = 0;
  while (off < stream.length) {
    const n = sizes();
    // Fresh copies: the cap must not depend on the caller's buffer identity.
    chunks.push(Buffer.from(stream.subarray(off, off + n)));
    off += n;
  }
  return chunks;
}

function capOf(max: number, chunks: Buffer[]): CappedBuffer {
  const cap = new CappedBuffer(max);
  for (const c of chunks) cap.push(c);
  return cap;
}

t.test('hand-checked cases', async (t) => {
  const abc = Buffer.from('abcdefghij');
  t.test('max 7 keeps 4 + 3 of 10 bytes, one chunk', async (t) => {
    const cap = capOf(7, [abc]);
    t.equal(cap.toBuffer().toString(), 'abcdhij');
    t.equal(cap.droppedBytes, 3);
    t.equal(cap.truncated, true);
  });
  t.test('max 7, chunks straddling both boundaries', async (t) => {
    const cap = capOf(7, ['ab', 'cdefg', 'hi', 'j'].map((s) => Buffer.from(s)));
    t.equal(cap.toBuffer().toString(), 'abcdhij');
    t.equal(cap.droppedBytes, 3);
    t.equal(cap.truncated, true);
  });
  t.test('max 2 keeps the first and the last byte', async (t) => {
    const cap = capOf(2, [Buffer.from('abc'), Buffer.from('de')]);
    t.equal(cap.toBuffer().toString(), 'ae');
    t.equal(cap.droppedBytes, 3);
  });
  t.test('exactly max bytes is not truncated', async (t) => {
    const cap = capOf(10, [Buffer.from('abcde'), Buffer.from('fghij')]);
    t.equal(cap.toBuffer().toString(), 'abcdefghij');
    t.equal(cap.droppedBytes, 0);
    t.equal(cap.truncated, false);
  });
  t.test('one byte over max drops exactly one byte from the middle', async (t) => {
    const cap = capOf(9, [abc]);
    t.equal(cap.toBuffer().toString(), 'abcdeghij');
    t.equal(cap.droppedBytes, 1);
    t.equal(cap.truncated, true);
  });
  t.test('nothing pushed, and empty chunks', async (t) => {
    t.equal(capOf(5, []).toBuffer().length, 0);
    const cap = capOf(5, [Buffer.alloc(0), Buffer.from('ab'), Buffer.alloc(0)]);
    t.equal(cap.toBuffer().toString(), 'ab');
    t.equal(cap.droppedBytes, 0);
    t.equal(cap.truncated, false);
  });
  t.test('toBuffer() can be called mid-stream and pushing continues correctly', async (t) => {
    const cap = new CappedBuffer(4);
    cap.push(Buffer.from('abc'));
    t.equal(cap.toBuffer().toString(), 'abc');
    cap.push(Buffer.from('defg'));
    t.equal(cap.toBuffer().toString(), 'abfg');
    t.equal(cap.toBuffer().toString(), 'abfg');
    t.equal(cap.droppedBytes, 3);
  });
});

t.test('matches the model for odd and even caps, every length class and many chunkings', async (t) => {
  const maxes = [2, 3, 4, 5, 7, 8, 64, 1001, 4097];
  const failures: string[] = [];
  let cases = 0;
  for (const max of maxes) {
    const lengths = [0, 1, max - 1, max, max + 1, max + 2, 2 * max, 3 * max + 7, 10_000];
    for (const len of lengths) {
      const stream = bytes(len);
      const chunkings: [string, () => number][] = [
        ['one chunk', () => Math.max(len, 1)],
        ['byte by byte', () => 1],
        ['chunks of max', () => max],
        ['chunks of max-1', () => Math.max(max - 1, 1)],
        ['chunks of max+1', () => max + 1],
        ['chunks of half', () => Math.max(Math.ceil(max / 2), 1)],
      ];
      for (let seed = 1; seed <= 8; seed++) {
        const next = rng(seed * 7919 + max * 31 + len);
        // Random sizes from 0 (an empty chunk) to 2 * max.
        chunkings.push([`random seed ${seed}`, () => next() % (2 * max + 1)]);
      }
      for (const [name, sizes] of chunkings) {
        const chunks = split(stream, sizes);
        const cap = capOf(max, chunks);
        const want = model(stream, max);
        cases++;
        const got = cap.toBuffer();
        if (!got.equals(want.kept) || cap.droppedBytes !== want.dropped || cap.truncated !== want.dropped > 0) {
          failures.push(
            `max ${max}, length ${len}, ${name}: kept ${got.length} bytes (equal: ${got.equals(want.kept)}), ` +
              `dropped ${cap.droppedBytes} (want ${want.dropped}), truncated ${cap.truncated}`,
          );
        }
      }
    }
  }
  t.ok(cases > 1000, `${cases} cases`);
  t.same(failures, []);
});

t.test('a large stream in 64 KiB chunks keeps exactly the first and last halves', async (t) => {
  const KiB = 1024;
  const max = 1024 * KiB + 1;
  const stream = Buffer.concat(Array.from({ length: 160 }, (_, i) => Buffer.alloc(64 * KiB, i)));
  const cap = capOf(max, split(stream, () => 64 * KiB));
  const want = model(stream, max);
  t.equal(cap.toBuffer().length, max);
  t.ok(cap.toBuffer().equals(want.kept));
  t.equal(cap.droppedBytes, stream.length - max);
  t.equal(cap.truncated, true);
});
