// A slow consumer is contained (LESSONS §6, regression test 6).
//
// e2b-dev/infra#3292: one stale subscriber blocked everyone's output for about 15 minutes;
// microsoft/vscode#329843: output buffered for a listener that never attached grew until OOM.
// When a Readable's buffer is full the library stops reading that child's fd, so the kernel
// blocks that child alone: our memory stays flat, nothing is dropped, other sessions flow.
import t, { type Test } from 'tap';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';

import { spawnSession, type Session } from '../../ts/index.js';
import { collect, PROGRAMS } from '../fixtures/harness.js';

const MiB = 1024 * 1024;
const PATTERN_WRITER = join(PROGRAMS, 'c-pattern.sh');
const ZEROS = Buffer.alloc(MiB);

/** Deterministic, position-dependent bytes (AES-128-CTR keystream). */
function pattern(n: number, seed = 1): Buffer {
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16, 0));
  return Buffer.concat([c.update(Buffer.alloc(n)), c.final()]);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

const rss = (): number => process.memoryUsage().rss;

/** Counts the bytes of a stream of zeros; `nonZero` counts chunks that held anything else. */
function countZeros(s: Session): { bytes: number; nonZero: number } {
  const tally = { bytes: 0, nonZero: 0 };
  s.stdout.on('data', (c: Buffer) => {
    for (let off = 0; off < c.length; off += ZEROS.length) {
      const part = c.subarray(off, off + ZEROS.length);
      if (!part.equals(ZEROS.subarray(0, part.length))) tally.nonZero++;
    }
    tally.bytes += c.length;
  });
  return tally;
}

/**
 * Floods `size` zero bytes into a consumer that does not read for `pauseMs`: either it paused
 * after the first chunk, or it attaches no listener until then. Meanwhile `during()` runs.
 */
async function pausedFlood(
  t: Test,
  opts: { size: number; tty: boolean; pauseMs: number; consumer: 'paused' | 'not attached'; during: () => Promise<void> },
): Promise<void> {
  const before = rss();
  const cmd = opts.tty
    ? ['sh', '-c', `stty raw -echo && exec head -c ${opts.size} /dev/zero`]
    : ['head', '-c', String(opts.size), '/dev/zero'];
  const s = await spawnSession({ cmd: cmd[0]!, args: cmd.slice(1), tty: opts.tty });
  let exitedEarly = false;
  void s.exited.then(() => (exitedEarly = true));
  let tally = { bytes: 0, nonZero: 0 };
  if (opts.consumer === 'paused') {
    tally = countZeros(s);
    await once(s.stdout, 'data');
    s.stdout.pause();
  }
  const pausedAt = tally.bytes;

  // The pause is the scenario; sampling RSS during it is a measurement, not synchronisation.
  let peak = rss();
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
  const pause = new Promise((r) => setTimeout(r, opts.pauseMs));
  await opts.during();
  await pause;
  clearInterval(sampler);
  peak = Math.max(peak, rss());

  t.equal(tally.bytes, pausedAt, 'nothing was delivered while paused');
  t.equal(exitedEarly, false, 'the writer is blocked, not finished');
  t.ok(s.stdout.readableLength <= 4 * MiB, `buffered while paused: ${s.stdout.readableLength} bytes`);
  const growth = peak - before;
  t.ok(growth < 64 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB while paused (bound 64 MiB)`);

  // The flood had started: the stream holds output for the consumer.
  t.ok(s.stdout.readableLength > 0);
  if (opts.consumer === 'paused') s.stdout.resume();
  else tally = countZeros(s);
  const r = await collect(s);
  t.same(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.equal(tally.bytes, opts.size, 'every byte arrived after the resume');
  t.equal(tally.nonZero, 0, 'and every byte is a zero');
  t.equal(r.dataAfterExit, false);
  t.equal(r.streamsEndedFirst, true);
}

const dir = mkdtempSync(join(tmpdir(), 'msb-backpressure-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('pipes: 256 MiB into a consumer paused for 3 s keeps RSS growth < 64 MiB and arrives intact; another session completes meanwhile (e2b-dev/infra#3292)', async (t) => {
  const other = pattern(10 * MiB, 6);
  const file = join(dir, 'other-10m');
  writeFileSync(file, other);
  await pausedFlood(t, {
    size: 256 * MiB,
    tty: false,
    pauseMs: 3000,
    consumer: 'paused',
    during: async () => {
      const started = Date.now();
      const s = await spawnSession({ cmd: PATTERN_WRITER, args: [file] });
      const r = await collect(s);
      t.same(r.exit, { code: 0, signal: null, reason: 'exited' }, 'the second session finished while the first is paused');
      t.equal(sha256(r.stdout), sha256(other), '10 MiB byte-exact');
      t.ok(Date.now() - started < 3000, `within the pause (${Date.now() - started} ms)`);
    },
  });
});

t.test('tty: 16 MiB for a listener that attaches only after 1 s keeps RSS growth < 64 MiB and arrives intact (microsoft/vscode#329843)', async (t) => {
  await pausedFlood(t, {
    size: 16 * MiB,
    tty: true,
    pauseMs: 1000,
    consumer: 'not attached',
    during: async () => {
      const s = await spawnSession({ cmd: 'sh', args: ['-c', 'echo other'], tty: true });
      const r = await collect(s);
      t.equal(r.stdout.toString(), 'other\r\n', 'another PTY session completes meanwhile');
    },
  });
});
