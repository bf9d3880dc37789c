// PTY basics (LESSONS §11, regression 10).
//
// Upstream, EIO after the slave closed surfaced as an error (microsoft/node-pty#178,
// e2b-dev/infra#2769), an interactive exec got a 0×0 terminal whose resizes never arrived
// (docker/sbx-releases#63), and PTY output came back truncated (modal-labs/libmodal#245). Here EIO
// is EOF, `stty size` shows the requested size (24×80 by default), a resize reaches the child as
// SIGWINCH, the child has a controlling terminal, and short outputs arrive whole every time.
import t from 'tap';
import type { Readable } from 'node:stream';

import { spawnSession } from '../../ts/index.js';
import { collect } from '../fixtures/harness.js';

/** Resolves once the accumulated output matches `pattern`; rejects if the stream ends first. */
function waitForOutput(stream: Readable, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (pattern.test(text)) {
        stream.off('data', onData);
        stream.off('end', onEnd);
        resolve(text);
      }
    };
    const onEnd = (): void => reject(new Error(`stream ended before ${pattern}: ${JSON.stringify(text)}`));
    stream.on('data', onData);
    stream.once('end', onEnd);
  });
}

async function ttyOutput(cmd: string, args: string[], size: { rows?: number; cols?: number } = {}): Promise<string> {
  const s = await spawnSession({ cmd, args, tty: true, ...size });
  const r = await collect(s);
  if (r.exit.code !== 0) throw new Error(`${cmd} exited ${JSON.stringify(r.exit)}`);
  return r.stdout.toString('latin1');
}

t.test('a new PTY is 24x80 by default (docker/sbx-releases#63)', async (t) => {
  t.equal(await ttyOutput('stty', ['size']), '24 80\r\n');
});

t.test('a new PTY has the requested rows and cols', async (t) => {
  for (const [rows, cols] of [
    [40, 100],
    [1, 1],
    [50, 132],
    [500, 1000],
  ]) {
    t.equal(await ttyOutput('stty', ['size'], { rows, cols }), `${rows} ${cols}\r\n`, `${rows}x${cols}`);
  }
});

t.test('resize(50, 132) reaches the child as SIGWINCH and stty size shows it', async (t) => {
  // The shell prints its size, sets a WINCH trap that prints the size again and exits, then says
  // `ready`; the resize happens only after `ready` arrives.
  const script = "stty size; trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done";
  const s = await spawnSession({ cmd: 'sh', args: ['-c', script], tty: true });
  t.teardown(() => s.close());
  const done = collect(s);
  await waitForOutput(s.stdout, /ready\r\n/);
  s.resize(50, 132);
  const r = await done;
  t.strictSame(r.exit, { code: 0, signal: null, reason: 'exited' });
  t.equal(r.stdout.toString('latin1'), '24 80\r\nready\r\n50 132\r\n');
});

t.test('two resizes in a row: the child sees the last size', async (t) => {
  const script = "trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done";
  const s = await spawnSession({ cmd: 'sh', args: ['-c', script], tty: true, rows: 10, cols: 20 });
  t.teardown(() => s.close());
  const done = collect(s);
  await waitForOutput(s.stdout, /ready\r\n/);
  s.resize(30, 60);
  await waitForOutput(s.stdout, /30 60\r\n/);
  s.resize(31, 61);
  await waitForOutput(s.stdout, /31 61\r\n/);
  s.kill('SIGKILL');
  t.strictSame((await done).exit, { code: null, signal: 'SIGKILL', reason: 'killed' });
});

t.test('the child has a controlling terminal: tty prints /dev/pts/N', async (t) => {
  t.match(await ttyOutput('tty', []), /^\/dev\/pts\/\d+\r\n$/);
  // /dev/tty opens (it is the controlling terminal), and fds 0-2 are that same terminal.
  const out = await ttyOutput('sh', ['-c', 'echo ok > /dev/tty; tty; readlink /proc/self/fd/0 /proc/self/fd/1 /proc/self/fd/2']);
  const [ok, pts, ...fds] = out.split('\r\n');
  t.equal(ok, 'ok');
  t.match(pts, /^\/dev\/pts\/\d+$/);
  t.strictSame(fds, [pts, pts, pts, '']);
});

t.test('EIO on the master is EOF: no error event on stdout (microsoft/node-pty#178)', async (t) => {
  for (const script of ['printf hello', 'printf hello; exit 3', 'sleep 0.1 & printf hello']) {
    const s = await spawnSession({ cmd: 'sh', args: ['-c', script], tty: true });
    const errors: Error[] = [];
    s.stdout.on('error', (e) => errors.push(e));
    let ended = false;
    s.stdout.on('end', () => (ended = true));
    const r = await collect(s);
    t.equal(r.stdout.toString('latin1'), 'hello', `${script}: output`);
    t.equal(r.exit.code, script.includes('exit 3') ? 3 : 0, `${script}: code`);
    t.strictSame(errors, [], `${script}: no error event`);
    t.ok(ended, `${script}: stdout ended`);
    t.notOk(r.dataAfterExit, `${script}: nothing after exit`);
  }
});

t.test('stderr is null in tty mode; stdout carries both streams', async (t) => {
  const s = await spawnSession({ cmd: 'sh', args: ['-c', 'echo out; echo err >&2'], tty: true });
  t.equal(s.stderr, null);
  const r = await collect(s);
  t.equal(r.stdout.toString('latin1'), 'out\r\nerr\r\n');
});

t.test('resize in pipe mode throws TypeError (MSB_ERR_INVALID_OPTION), before and after exit', async (t) => {
  const s = await spawnSession({ cmd: 'sleep', args: ['60'] });
  t.teardown(() => s.close());
  t.throws(() => s.resize(50, 132), { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' });
  s.close();
  t.strictSame(await s.exited, { code: null, signal: 'SIGKILL', reason: 'killed' });
  t.throws(() => s.resize(50, 132), { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' });
});

t.test('resize with a size outside 1..65535 throws RangeError (MSB_ERR_INVALID_OPTION)', async (t) => {
  const s = await spawnSession({ cmd: 'sleep', args: ['60'], tty: true });
  t.teardown(() => s.close());
  for (const [rows, cols] of [[0, 80], [24, 0], [70000, 80], [24, 1.5]]) {
    t.throws(() => s.resize(rows!, cols!), { name: 'RangeError', code: 'MSB_ERR_INVALID_OPTION' });
  }
  s.close();
  await s.exited;
});

t.test('`printf x` in tty mode delivers exactly "x", 50 times in a row (modal-labs/libmodal#245)', async (t) => {
  const results: string[] = [];
  for (let i = 0; i < 50; i++) {
    const s = await spawnSession({ cmd: 'printf', args: ['x'], tty: true });
    const r = await collect(s);
    results.push(`${r.stdout.toString('latin1')}|${r.exit.code}|${r.exit.reason}|${r.dataAfterExit}`);
  }
  t.strictSame(results, Array(50).fill('x|0|exited|false'));
});
