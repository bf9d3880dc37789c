// run(): spawn, feed input, collect capped output, await the exit (DESIGN §3; LESSONS §5, §7).
//
// nodejs/node-v0.x-archive#1511: past maxBuffer the child ignored the kill and the buffer grew to
// OOM. FerroxLabs/wayland#1071: a cap discarded everything instead of the middle.
// daytonaio/daytona#3770: stdin left open made tools wait forever. run() keeps the first and last
// halves of each stream whatever the child does, and closes stdin after `input` (or at once).
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { run, SpawnError } from '../ts/index.js';
import { PROGRAMS, pattern } from './fixtures/harness.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const PATTERN_WRITER = join(PROGRAMS, 'c-pattern.sh');

/** Single-quotes `s` for sh. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const dir = mkdtempSync(join(tmpdir(), 'msb-run-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const TEN = pattern(10 * MiB, 9);
const TEN_FILE = join(dir, 'ten-mib');
writeFileSync(TEN_FILE, TEN);
const HEAD_TAIL = Buffer.concat([TEN.subarray(0, 512 * KiB), TEN.subarray(TEN.length - 512 * KiB)]);

for (const [name, script] of [
  ['a child that writes 10 MiB', `exec ${q(PATTERN_WRITER)} ${q(TEN_FILE)}`],
  ["a child that ignores SIGTERM (trap '' TERM) and writes 10 MiB", `trap '' TERM; exec ${q(PATTERN_WRITER)} ${q(TEN_FILE)}`],
] as const) {
  t.test(`maxBuffer 1 MiB on ${name} keeps exactly the first and last 512 KiB (nodejs/node-v0.x-archive#1511)`, async (t) => {
    const rssBefore = process.memoryUsage().rss;
    const r = await run({ cmd: 'sh', args: ['-c', script], maxBuffer: 1 * MiB, encoding: 'buffer' });
    const growth = process.memoryUsage().rss - rssBefore;
    t.same(
      { code: r.code, signal: r.signal, reason: r.reason, truncated: r.truncated, droppedBytes: r.droppedBytes },
      { code: 0, signal: null, reason: 'exited', truncated: true, droppedBytes: 9 * MiB },
    );
    t.ok(Buffer.isBuffer(r.stdout));
    t.equal(r.stdout.length, 1 * MiB);
    t.ok(r.stdout.equals(HEAD_TAIL), 'first 512 KiB + last 512 KiB of the pattern');
    t.ok(Buffer.isBuffer(r.stderr));
    t.equal(r.stderr.length, 0);
    t.ok(growth < 64 * MiB, `RSS grew by ${(growth / MiB).toFixed(1)} MiB (bound 64 MiB)`);
  });
}

t.test('the cap applies per stream and droppedBytes adds both', async (t) => {
  // 3 MiB of the pattern to stdout and 2 MiB to stderr under a 1 MiB cap.
  const three = join(dir, 'three-mib');
  const two = join(dir, 'two-mib');
  writeFileSync(three, TEN.subarray(0, 3 * MiB));
  writeFileSync(two, TEN.subarray(0, 2 * MiB));
  const r = await run({
    cmd: 'sh',
    args: ['-c', `cat ${q(three)}; cat ${q(two)} >&2`],
    maxBuffer: 1 * MiB,
    encoding: 'buffer',
  });
  const headTail = (b: Buffer): Buffer => Buffer.concat([b.subarray(0, 512 * KiB), b.subarray(b.length - 512 * KiB)]);
  t.ok(r.stdout.equals(headTail(TEN.subarray(0, 3 * MiB))));
  t.ok(r.stderr.equals(headTail(TEN.subarray(0, 2 * MiB))));
  t.equal(r.droppedBytes, 2 * MiB + 1 * MiB);
  t.equal(r.truncated, true);
  t.equal(r.code, 0);
});

t.test('an odd maxBuffer keeps ceil/floor halves and counts the dropped bytes exactly', async (t) => {
  const small = join(dir, 'small');
  const data = TEN.subarray(0, 4000);
  writeFileSync(small, data);
  const r = await run({ cmd: PATTERN_WRITER, args: [small], maxBuffer: 1001, encoding: 'buffer' });
  t.ok(r.stdout.equals(Buffer.concat([data.subarray(0, 501), data.subarray(4000 - 500)])));
  t.equal(r.droppedBytes, 2999);
  t.equal(r.truncated, true);
});

t.test('output under the cap is whole and not truncated', async (t) => {
  const r = await run({ cmd: PATTERN_WRITER, args: [TEN_FILE], encoding: 'buffer' });
  t.ok(r.stdout.equals(TEN));
  t.equal(r.truncated, false);
  t.equal(r.droppedBytes, 0);
});

t.test('input is fed to stdin, then stdin is closed', async (t) => {
  t.test('a Buffer of 1 MiB comes back byte-exact from cat', async (t) => {
    const input = pattern(1 * MiB, 10);
    const r = await run({ cmd: 'cat', input, encoding: 'buffer' });
    t.equal(r.code, 0);
    t.ok(r.stdout.equals(input));
  });
  t.test('a string (utf8)', async (t) => {
    const r = await run({ cmd: 'cat', input: 'héllo wörld\n' });
    t.same(r, { stdout: 'héllo wörld\n', stderr: '', code: 0, signal: null, reason: 'exited', truncated: false, droppedBytes: 0 });
  });
  t.test('a Uint8Array', async (t) => {
    const r = await run({ cmd: 'cat', input: new Uint8Array([0, 1, 2, 255]), encoding: 'buffer' });
    t.ok(r.stdout.equals(Buffer.from([0, 1, 2, 255])));
  });
  t.test('in a PTY, EOF is VEOF and the echo is part of the output', async (t) => {
    const r = await run({ cmd: 'cat', input: 'hi\n', tty: true });
    t.same(r, { stdout: 'hi\r\nhi\r\n', stderr: '', code: 0, signal: null, reason: 'exited', truncated: false, droppedBytes: 0 });
  });
});

t.test('input a child never reads is not an error: the run resolves with the exit (sindresorhus/execa#74)', async (t) => {
  const r = await run({ cmd: 'true', input: pattern(1 * MiB, 11) });
  t.same(r, { stdout: '', stderr: '', code: 0, signal: null, reason: 'exited', truncated: false, droppedBytes: 0 });
});

t.test('without input stdin gets EOF at once: cat returns empty output (daytonaio/daytona#3770)', async (t) => {
  const started = Date.now();
  const r = await run({ cmd: 'cat' });
  const elapsed = Date.now() - started;
  t.same(r, { stdout: '', stderr: '', code: 0, signal: null, reason: 'exited', truncated: false, droppedBytes: 0 });
  t.ok(elapsed < 5000, `returned after ${elapsed} ms`);
});

t.test('utf8 is the default: stdout and stderr are strings, the exit is exact', async (t) => {
  const r = await run({ cmd: 'sh', args: ['-c', "printf 'héllo wörld'; printf 'ërr\\n' >&2; exit 3"] });
  t.same(r, { stdout: 'héllo wörld', stderr: 'ërr\n', code: 3, signal: null, reason: 'exited', truncated: false, droppedBytes: 0 });
  t.equal(typeof r.stdout, 'string');
  t.equal(typeof r.stderr, 'string');
});

t.test("encoding 'buffer' gives Buffers for both streams", async (t) => {
  const r = await run({ cmd: 'sh', args: ['-c', 'printf out; printf err >&2'], encoding: 'buffer' });
  t.ok(Buffer.isBuffer(r.stdout) && r.stdout.equals(Buffer.from('out')));
  t.ok(Buffer.isBuffer(r.stderr) && r.stderr.equals(Buffer.from('err')));
});

t.test('in a PTY both streams arrive on stdout and stderr is empty', async (t) => {
  const r = await run({ cmd: 'sh', args: ['-c', 'echo out; echo err >&2'], tty: true });
  t.same(r, { stdout: 'out\r\nerr\r\n', stderr: '', code: 0, signal: null, reason: 'exited', truncated: false, droppedBytes: 0 });
});

t.test('a signal death is reported as the signal, never as code 0 (earendil-works/pi#8992)', async (t) => {
  const r = await run({ cmd: 'sh', args: ['-c', 'printf before; kill -9 $$'] });
  t.same(r, { stdout: 'before', stderr: '', code: null, signal: 'SIGKILL', reason: 'signaled', truncated: false, droppedBytes: 0 });
});

t.test('timeoutMs ends the run with reason timeout', async (t) => {
  const started = Date.now();
  const r = await run({ cmd: 'sleep', args: ['30'], timeoutMs: 200 });
  t.same(r, { stdout: '', stderr: '', code: null, signal: 'SIGTERM', reason: 'timeout', truncated: false, droppedBytes: 0 });
  t.ok(Date.now() - started < 5000);
});

t.test('a spawn failure rejects with SpawnError, never a fake exit', async (t) => {
  await t.rejects(run({ cmd: 'msb-test-no-such-program' }), SpawnError);
  await t.rejects(run({ cmd: 'msb-test-no-such-program' }), { kind: 'not_found', code: 'ENOENT', errnoName: 'ENOENT' });
});

t.test('maxBuffer must be an integer >= 2', async (t) => {
  for (const maxBuffer of [1, 0, -1, 1.5, Number.NaN]) {
    await t.rejects(run({ cmd: 'true', maxBuffer }), { name: 'RangeError', code: 'MSB_ERR_INVALID_OPTION' }, `maxBuffer ${maxBuffer}`);
  }
});
