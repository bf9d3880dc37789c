// A bulk pipe's output arrives in slabs (crates/spawn-core/src/slab.rs): once a pipe has been
// seen full, its chunks are views into shared, zeroed 256 KiB ArrayBuffers instead of one
// allocation each. A PTY's output does too once one turn of the reader got 16 KiB or more. What a consumer can rely on: every chunk is exact and stays exact however long
// it is kept, a chunk's ArrayBuffer holds nothing but the same stream's output and zeros, and
// stdout and stderr never share one; a stream that goes quiet lets its slab go.
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

import { spawnSession } from '../../ts/index.js';
import { eventually, pattern, PROGRAMS } from '../fixtures/harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SLAB = 256 * KiB;
// cat writes 128 KiB at a time, so its first write fills a default 64 KiB pipe: the reader finds
// it full and switches that pipe to slabs at once.
const PATTERN_WRITER = join(PROGRAMS, 'c-pattern.sh');

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * What every slab should hold once the stream has ended: zeros, with each chunk's expected bytes
 * at its place. Returns the slabs, how many bytes came through them, and how many slabs differ.
 */
function checkSlabs(chunks: Buffer[], expected: Buffer): { slabs: Set<ArrayBufferLike>; slabBytes: number; differing: number } {
  const want = new Map<ArrayBufferLike, Buffer>();
  let pos = 0;
  let slabBytes = 0;
  for (const c of chunks) {
    if (c.buffer.byteLength === SLAB) {
      const w = want.get(c.buffer) ?? Buffer.alloc(SLAB);
      expected.copy(w, c.byteOffset, pos, pos + c.length);
      want.set(c.buffer, w);
      slabBytes += c.length;
    }
    pos += c.length;
  }
  let differing = 0;
  for (const [ab, w] of want) if (!Buffer.from(ab as ArrayBuffer).equals(w)) differing++;
  return { slabs: new Set(want.keys()), slabBytes, differing };
}

const dir = mkdtempSync(join(tmpdir(), 'msb-slabs-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('a bulk pipe arrives in shared zeroed slabs; kept chunks stay exact', async (t) => {
  const data = pattern(8 * MiB, 11);
  const file = join(dir, 'out-8m');
  writeFileSync(file, data);
  const s = await spawnSession({ cmd: PATTERN_WRITER, args: [file], stdin: 'ignore' });
  const chunks: Buffer[] = [];
  s.stdout.on('data', (c: Buffer) => chunks.push(c));
  s.stderr?.resume();
  t.same(await s.exited, { code: 0, signal: null, reason: 'exited' });
  t.equal(sha256(Buffer.concat(chunks)), sha256(data), '8 MiB byte-exact, in order');
  const { slabs, slabBytes, differing } = checkSlabs(chunks, data);
  t.ok(slabBytes >= 7 * MiB, `${(slabBytes / MiB).toFixed(2)} MiB came through slabs (at least 7 of 8)`);
  // A slab is left only when less than 64 KiB of it is free; the last one may be partly used.
  t.ok(slabBytes >= (slabs.size - 1) * (SLAB - 64 * KiB), `${chunks.length} chunks in ${slabs.size} slabs, none left more than 64 KiB short`);
  t.equal(differing, 0, 'every slab holds exactly its chunks (kept intact to the end) and zeros elsewhere');
});

t.test('a bulk PTY arrives in slabs; a PTY that prints a little gets buffers of exact size', async (t) => {
  const data = pattern(8 * MiB, 15);
  const file = join(dir, 'pty-8m');
  writeFileSync(file, data);
  const s = await spawnSession({ cmd: PATTERN_WRITER, args: [file], tty: true });
  const chunks: Buffer[] = [];
  s.stdout.on('data', (c: Buffer) => chunks.push(c));
  t.same(await s.exited, { code: 0, signal: null, reason: 'exited' });
  t.equal(sha256(Buffer.concat(chunks)), sha256(data), '8 MiB byte-exact through the PTY, in order');
  const { slabs, slabBytes, differing } = checkSlabs(chunks, data);
  t.ok(slabBytes >= 7 * MiB, `${(slabBytes / MiB).toFixed(2)} MiB came through ${slabs.size} slabs (at least 7 of 8)`);
  t.equal(differing, 0, 'every slab holds exactly its chunks and zeros elsewhere');

  const small = await spawnSession({ cmd: 'sh', args: ['-c', 'printf one; sleep 0.05; printf two'], tty: true });
  const got: Buffer[] = [];
  small.stdout.on('data', (c: Buffer) => got.push(c));
  t.same(await small.exited, { code: 0, signal: null, reason: 'exited' });
  t.equal(Buffer.concat(got).toString(), 'onetwo');
  t.same(
    got.map((c) => c.buffer.byteLength),
    got.map((c) => c.length),
    'each small chunk owns a buffer of exactly its size (no slab pinned for a trickle)',
  );
});

t.test('a PTY that goes quiet after a burst hands out all of it while the process runs on', async (t) => {
  // A bulk PTY's reads are held for up to a few ms to be handed out together; a burst that ends
  // must not wait for more output (or for the exit) to arrive.
  const data = pattern(4 * MiB, 16);
  const file = join(dir, 'pty-burst-4m');
  writeFileSync(file, data);
  const s = await spawnSession({ cmd: 'sh', args: ['-c', '"$0" "$1"; printf "\\n"; exec sleep 60', PATTERN_WRITER, file], tty: true });
  let exited = false;
  void s.exited.then(() => (exited = true));
  t.teardown(async () => {
    s.close();
    await s.exited;
  });
  const chunks: Buffer[] = [];
  let bytes = 0;
  s.stdout.on('data', (c: Buffer) => {
    chunks.push(c);
    bytes += c.length;
  });
  // Conditions, not timers: poll until the burst and the newline after it have arrived.
  await eventually(() => bytes >= 4 * MiB + 1, 15_000);
  const got = Buffer.concat(chunks);
  t.equal(got.length, 4 * MiB + 1, 'the burst and the byte after it arrived');
  t.equal(sha256(got.subarray(0, 4 * MiB)), sha256(data), 'byte-exact');
  t.equal(got.at(-1), 0x0a, 'then the newline (raw mode: no carriage return added)');
  t.equal(exited, false, 'the process is still running');
});

t.test('stdout and stderr fill slabs of their own', async (t) => {
  const out = pattern(4 * MiB, 12);
  const err = pattern(4 * MiB, 13);
  writeFileSync(join(dir, 'out-4m'), out);
  writeFileSync(join(dir, 'err-4m'), err);
  const s = await spawnSession({
    cmd: 'sh',
    args: ['-c', `"$0" "$1" >&2 & "$0" "$2"; wait`, PATTERN_WRITER, join(dir, 'err-4m'), join(dir, 'out-4m')],
    stdin: 'ignore',
  });
  const got = { out: [] as Buffer[], err: [] as Buffer[] };
  s.stdout.on('data', (c: Buffer) => got.out.push(c));
  s.stderr!.on('data', (c: Buffer) => got.err.push(c));
  t.same(await s.exited, { code: 0, signal: null, reason: 'exited' });
  t.equal(sha256(Buffer.concat(got.out)), sha256(out), 'stdout byte-exact');
  t.equal(sha256(Buffer.concat(got.err)), sha256(err), 'stderr byte-exact');
  const o = checkSlabs(got.out, out);
  const e = checkSlabs(got.err, err);
  t.ok(o.slabBytes >= 3 * MiB && e.slabBytes >= 3 * MiB, `slab bytes: stdout ${o.slabBytes}, stderr ${e.slabBytes}`);
  t.equal(o.differing + e.differing, 0, 'each slab holds exactly its own stream’s chunks and zeros');
  t.equal([...o.slabs].filter((ab) => e.slabs.has(ab)).length, 0, 'no slab is shared between the streams');
});

t.test('a stream that goes quiet after a burst lets its slab go while the process runs on', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const file = join(dir, 'burst-4m');
  writeFileSync(file, pattern(4 * MiB, 14));
  const s = await spawnSession({ cmd: 'sh', args: ['-c', '"$0" "$1"; exec sleep 60', PATTERN_WRITER, file], stdin: 'ignore' });
  let exited = false;
  void s.exited.then(() => (exited = true));
  t.teardown(async () => {
    s.close();
    await s.exited;
  });
  let bytes = 0;
  let last: WeakRef<ArrayBufferLike> | undefined;
  s.stdout.on('data', (c: Buffer) => {
    bytes += c.length;
    last = new WeakRef(c.buffer);
  });
  // Conditions, not timers: poll until the burst has arrived, then until its last slab is gone.
  await eventually(() => bytes >= 4 * MiB, 15_000);
  t.equal(bytes, 4 * MiB, 'the burst arrived');
  t.equal(last?.deref()?.byteLength, SLAB, 'its last chunk is a view into a slab');
  const collected = await eventually(() => {
    gc();
    return last?.deref() === undefined;
  }, 15_000);
  t.ok(collected, 'the slab was collected while the process still runs (the JS side let it go)');
  t.equal(exited, false, 'the process is still running');
});
