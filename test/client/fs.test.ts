// The client's filesystem helpers and `msb-agentd cp`, end to end through a real agent: bytes
// exact both ways, typed FsErrors, a paused reader pausing the agent, windows that keep an
// upload under the agent's bound, handles closed afterwards, and cp in both directions.
import t from 'tap';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { AgentClient } from '../../ts/client/index.js';
import { FsError } from '../../ts/errors.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';
import { eventually, pattern } from '../fixtures/harness.js';

const MiB = 1024 * 1024;
const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ts', 'cli', 'run.ts');
const { agent, path: sock, dir } = await startAgentOnSocket(t, 'client-fs');
const client = await AgentClient.connect(`unix:${sock}`);
t.teardown(() => client.close());
const p = (name: string): string => join(dir, name);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function rejection(promise: Promise<unknown>): Promise<FsError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof FsError) return err;
    throw err;
  }
  throw new Error('expected an FsError');
}

t.test('writeFile and readFile: bytes, strings, an async iterable; mode honoured', async (t) => {
  t.equal(await client.writeFile(p('a.txt'), 'hello guest', { mode: 0o600 }), 11);
  t.equal(readFileSync(p('a.txt'), 'utf8'), 'hello guest');
  t.equal(statSync(p('a.txt')).mode & 0o777, 0o600 & ~process.umask());
  t.equal((await client.readFile(p('a.txt'))).toString(), 'hello guest');
  const big = pattern(20 * MiB + 17, 4);
  t.equal(await client.writeFile(p('big'), Readable.from([big.subarray(0, 5), big.subarray(5)])), big.length);
  t.equal(sha(readFileSync(p('big'))), sha(big));
  t.equal(sha(await client.readFile(p('big'))), sha(big));
  t.equal(await client.writeFile(p('empty'), Buffer.alloc(0)), 0);
  t.equal(statSync(p('empty')).size, 0, 'created, nothing written');
  t.equal(await client.writeFile(p('a.txt'), 'x'), 1);
  t.equal(readFileSync(p('a.txt'), 'utf8'), 'x', 'an existing file is truncated');
  t.equal(agent.fsHandles.size, 0, 'every handle was closed');
});

t.test('a 64 MiB upload from a stream stays inside the agent bound (windows acknowledged)', async (t) => {
  const data = pattern(64 * MiB, 8);
  const seen: number[] = [];
  async function* slices(): AsyncGenerator<Buffer> {
    for (let off = 0; off < data.length; off += 4 * MiB) yield data.subarray(off, off + 4 * MiB);
  }
  t.equal(await client.writeFile(p('up'), slices(), { onProgress: (n) => seen.push(n) }), data.length);
  t.equal(sha(readFileSync(p('up'))), sha(data));
  t.equal(seen[seen.length - 1], data.length, 'progress reaches the total');
  t.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]!), 'progress only grows');
});

t.test('stat, list, mkdir, rename, remove', async (t) => {
  await client.mkdir(p('d/e/f'), { mode: 0o750 });
  t.equal(statSync(p('d/e/f')).mode & 0o7777, 0o750);
  writeFileSync(p('d/e/file'), '12345');
  const st = await client.stat(p('d/e/file'));
  t.same([st.kind, st.size, st.mode, st.uid], ['file', 5, statSync(p('d/e/file')).mode, statSync(p('d/e/file')).uid]);
  t.same((await client.list(p('d/e'))).map((e) => [e.path, e.kind]).sort(), [
    [p('d/e/f'), 'dir'],
    [p('d/e/file'), 'file'],
  ]);
  await client.rename(p('d/e/file'), p('d/moved'));
  t.ok(existsSync(p('d/moved')));
  await client.remove(p('d/moved'));
  t.notOk(existsSync(p('d/moved')));
  const notEmpty = await rejection(client.remove(p('d')));
  t.equal(notEmpty.message, 'remove_dir: Directory not empty (os error 39)');
  t.equal(notEmpty.operation, 'removeDir');
  await client.remove(p('d'), { recursive: true });
  t.notOk(existsSync(p('d')));
});

t.test('failures are FsErrors with the agent text', async (t) => {
  const missing = await rejection(client.readFile(p('nope')));
  t.same([missing.code, missing.operation, missing.message], ['MSB_ERR_FS', 'openFile', 'open: No such file or directory (os error 2)']);
  const st = await rejection(client.stat(p('nope')));
  t.equal(st.message, 'stat: No such file or directory (os error 2)');
  const into = await rejection(client.writeFile(p('nodir/x'), 'x'));
  t.equal(into.message, 'open: No such file or directory (os error 2)');
  t.throws(() => client.createReadStream(''), { code: 'MSB_ERR_INVALID_OPTION' });
});

t.test('a paused reader pauses the agent; destroying it closes the handle', async (t) => {
  const before = agent.meter.snapshot().activity_counters.fs_bytes;
  const stream = client.createReadStream(p('up'));
  let got = 0;
  stream.on('data', (c: Buffer) => {
    got += c.length;
    if (got >= 2 * MiB) stream.pause();
  });
  let last = -1n;
  let since = Date.now();
  await eventually(() => {
    const now = agent.meter.snapshot().activity_counters.fs_bytes;
    if (now !== last) [last, since] = [now, Date.now()];
    return got > 0 && Date.now() - since > 500;
  }, 20000);
  const readByAgent = Number(last - before);
  t.ok(readByAgent < 32 * MiB, `the agent read ${(readByAgent / MiB).toFixed(1)} of 64 MiB for a paused reader`);
  stream.destroy();
  t.ok(await eventually(() => agent.fsHandles.size === 0 && agent.meter.snapshot().active_fs_streams === 0, 10000), 'handle closed, stream ended');
  t.equal((await client.readFile(p('a.txt'))).toString(), 'x', 'the connection is fine afterwards');
});

/** Runs the CLI without blocking this process (the agent lives in it). */
async function cli(args: string[]): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  const child = spawn(process.execPath, ['--import=tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() };
}

const cp = (...args: string[]) => cli(['cp', '--connect', `unix:${sock}`, ...args]);

t.test('msb-agentd cp: host to guest and back, into directories, modes, stdout, errors', async (t) => {
  const local = join(dir, 'local');
  mkdirSync(local);
  const guest = join(dir, 'guest');
  mkdirSync(guest);
  const data = pattern(5 * MiB + 3, 5);
  writeFileSync(join(local, 'payload.bin'), data);
  chmodSync(join(local, 'payload.bin'), 0o640);
  let r = await cp(join(local, 'payload.bin'), `guest:${guest}`);
  t.same([r.status, r.stderr], [0, '']);
  t.equal(sha(readFileSync(join(guest, 'payload.bin'))), sha(data), 'copied into the guest directory under its name');
  t.equal(statSync(join(guest, 'payload.bin')).mode & 0o777, 0o640 & ~process.umask());
  r = await cp(`guest:${join(guest, 'payload.bin')}`, join(local, 'back.bin'));
  t.same([r.status, r.stderr], [0, '']);
  t.equal(sha(readFileSync(join(local, 'back.bin'))), sha(data));
  r = await cp('--progress', `guest:${join(guest, 'payload.bin')}`, '-');
  t.equal(r.status, 0);
  t.equal(sha(r.stdout), sha(data), 'to stdout');
  t.match(r.stderr, /payload\.bin \[#{24}\] 5\.0 MiB \/ 5\.0 MiB 100%/, 'the progress bar ends at 100%');
  r = await cp(`guest:${join(guest, 'missing')}`, join(local, 'x'));
  t.same([r.status, r.stderr], [1, 'msb-agentd cp: stat: No such file or directory (os error 2)\n']);
  t.notOk(existsSync(join(local, 'x')));
  r = await cp(`guest:${guest}`, local);
  t.equal(r.status, 1);
  t.match(r.stderr, /is a directory/);
  r = await cp(join(local, 'payload.bin'), join(local, 'other'));
  t.equal(r.status, 2, 'two local paths is a usage error');
  t.match(r.stderr, /exactly one of SRC and DST must be a guest path/);
  const unreachable = await cli(['cp', '--connect', `unix:${join(dir, 'none.sock')}`, join(local, 'payload.bin'), 'guest:/tmp/x']);
  t.equal(unreachable.status, 255);
});
