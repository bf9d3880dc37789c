// Remote exec: the request frame, output delivery, every way an exec ends (exit code, signal with
// and without the signal field, spawn failure, core.error, disconnect), stdin errors, resize,
// kill, and the exit contract (exited only after the streams ended; never a made-up exit).
import t, { type Test } from 'tap';
import { once } from 'node:events';
import { Writable } from 'node:stream';

import { AgentClient, type ClientExec } from '../../ts/client/index.js';
import { SpawnError } from '../../ts/errors.js';
import { encodeMessage, type OutgoingMessage } from '../../ts/protocol/index.js';
import { startFakeAgent, type Captured, type FakePeer } from '../fixtures/client-fake-agent.js';

async function setup(t: Test): Promise<{ client: AgentClient; peer: FakePeer }> {
  const agent = await startFakeAgent();
  const client = await AgentClient.connect(agent.address);
  const peer = await agent.accept();
  t.teardown(async () => {
    await client.close();
    await agent.close();
  });
  return { client, peer };
}

/** Starts an exec through the fake agent: request → started{pid}. */
async function started(
  client: AgentClient,
  peer: FakePeer,
  opts: Parameters<AgentClient['exec']>[0] = { cmd: 'prog' },
  pid = 4242,
): Promise<{ exec: ClientExec; req: Captured }> {
  const p = client.exec(opts);
  const req = await peer.next();
  peer.send(req.id, { type: 'execStarted', payload: { pid } });
  return { exec: await p, req };
}

async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

function collect(stream: NodeJS.ReadableStream): { bytes: () => Buffer; ended: Promise<void> } {
  const parts: Buffer[] = [];
  stream.on('data', (c: Buffer) => parts.push(c));
  return { bytes: () => Buffer.concat(parts), ended: once(stream, 'end').then(() => {}) };
}

t.test('the request frame: defaults, flags SESSION_START, byte-exact', async (t) => {
  const { client, peer } = await setup(t);
  void client.exec({ cmd: 'ls' }).catch(() => {});
  const f = await peer.next();
  const payload = { cmd: 'ls', args: [], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] };
  t.same({ id: f.id, flags: f.flags, type: f.message.type, payload: f.message.payload }, { id: 1, flags: 2, type: 'execRequest', payload });
  t.ok(f.raw.equals(encodeMessage(1, { type: 'execRequest', payload })), 'byte-exact');
});

t.test('the request frame: every option', async (t) => {
  const { client, peer } = await setup(t);
  void client
    .exec({
      cmd: 'bash',
      args: ['-lc', 'echo hi'],
      env: ['A=1', 'B=2'],
      cwd: '/srv',
      user: 'alice:staff',
      tty: true,
      rows: 50,
      cols: 132,
      rlimits: [
        { resource: 'nofile', soft: 1024, hard: 4096 },
        { resource: 'as', soft: 2n ** 64n - 1n, hard: 2n ** 64n - 1n },
      ],
    })
    .catch(() => {});
  const f = await peer.next();
  const payload = {
    cmd: 'bash',
    args: ['-lc', 'echo hi'],
    env: ['A=1', 'B=2'],
    cwd: '/srv',
    user: 'alice:staff',
    tty: true,
    rows: 50,
    cols: 132,
    rlimits: [
      { resource: 'nofile', soft: 1024n, hard: 4096n },
      { resource: 'as', soft: 2n ** 64n - 1n, hard: 2n ** 64n - 1n },
    ],
  };
  t.ok(f.raw.equals(encodeMessage(1, { type: 'execRequest', payload })), 'byte-exact');
  t.same(f.message.payload, { ...payload, rlimits: [{ resource: 'nofile', soft: 1024, hard: 4096 }, payload.rlimits[1]] });
});

t.test('env as an object becomes K=V entries in order', async (t) => {
  const { client, peer } = await setup(t);
  void client.exec({ cmd: 'env', env: { X: '1', Y: 'a=b' } }).catch(() => {});
  const f = await peer.next();
  t.same((f.message.payload as { env: string[] }).env, ['X=1', 'Y=a=b']);
});

t.test('invalid options reject with MSB_ERR_INVALID_OPTION and send nothing', async (t) => {
  const { client, peer } = await setup(t);
  const cases: [unknown, string][] = [
    [{ cmd: '' }, 'TypeError'],
    [{ cmd: 'x', args: [1] }, 'TypeError'],
    [{ cmd: 'x', env: [3] }, 'TypeError'],
    [{ cmd: 'x', cwd: 5 }, 'TypeError'],
    [{ cmd: 'x', tty: 'yes' }, 'TypeError'],
    [{ cmd: 'x', rows: 0 }, 'RangeError'],
    [{ cmd: 'x', cols: 70000 }, 'RangeError'],
    [{ cmd: 'x', rlimits: [{ resource: 'nofile', soft: -1, hard: 1 }] }, 'RangeError'],
    [{ cmd: 'x', rlimits: [{ resource: 'nofile', soft: 2 ** 60, hard: 1 }] }, 'RangeError'],
  ];
  for (const [opts, name] of cases) {
    await t.rejects(client.exec(opts as { cmd: string }), { name, code: 'MSB_ERR_INVALID_OPTION' }, JSON.stringify(opts));
  }
  const ping = client.ping();
  const f = await peer.next();
  t.equal(f.message.type, 'ping', 'the first frame sent is the ping');
  peer.send(f.id, { type: 'pong', payload: {} });
  await ping;
});

t.test('started → pid; stdout and stderr bytes exactly; exit code; streams end first', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer, { cmd: 'prog' }, 31337);
  t.equal(exec.pid, 31337);
  const out = collect(exec.stdout);
  const err = collect(exec.stderr!);
  const binary = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0a]);
  peer.send(req.id, { type: 'execStdout', payload: { data: Buffer.from('hello ') } });
  peer.send(req.id, { type: 'execStderr', payload: { data: Buffer.from('oops\n') } });
  peer.send(req.id, { type: 'execStdout', payload: { data: binary } });
  peer.send(req.id, { type: 'execExited', payload: { code: 3, signal: null } });
  let endedFirst = false;
  void Promise.all([out.ended, err.ended]).then(() => (endedFirst = true));
  const info = await exec.exited;
  t.same(info, { code: 3, signal: null, reason: 'exited' });
  t.equal(endedFirst, true, 'both streams ended before exited resolved');
  t.ok(out.bytes().equals(Buffer.concat([Buffer.from('hello '), binary])));
  t.equal(err.bytes().toString(), 'oops\n');
});

t.test('code -1 with the signal field → the signal name', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer);
  exec.stdout.resume();
  exec.stderr!.resume();
  peer.send(req.id, { type: 'execExited', payload: { code: -1, signal: 9 } });
  t.same(await exec.exited, { code: null, signal: 'SIGKILL', reason: 'signaled' });
});

t.test('code -1 without the signal field (older agents) → signaled, signal unknown', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer);
  peer.send(req.id, { type: 'execExited', payload: { code: -1, signal: null } });
  t.same(await exec.exited, { code: null, signal: null, reason: 'signaled' });
});

t.test('a signal number Node has no name for → signal null', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer);
  peer.send(req.id, { type: 'execExited', payload: { code: -1, signal: 40 } });
  t.same(await exec.exited, { code: null, signal: null, reason: 'signaled' });
});

t.test('core.exec.failed → SpawnError with every field as sent', async (t) => {
  const { client, peer } = await setup(t);
  const p = client.exec({ cmd: 'nope', args: ['a', 'b'] });
  const req = await peer.next();
  const message = 'spawn "nope": resolve: No such file or directory (os error 2)';
  peer.send(req.id, { type: 'execFailed', payload: { kind: 'not_found', errno: 2, errnoName: 'ENOENT', message, stage: 'resolve' } });
  const err = await rejection(p);
  t.ok(err instanceof SpawnError);
  t.same(
    {
      name: err.name,
      code: err.code,
      kind: err.kind,
      errno: err.errno,
      errnoName: err.errnoName,
      stage: err.stage,
      path: err.path,
      spawnargs: err.spawnargs,
      message: err.message,
    },
    {
      name: 'SpawnError',
      code: 'ENOENT',
      kind: 'not_found',
      errno: 2,
      errnoName: 'ENOENT',
      stage: 'resolve',
      path: null,
      spawnargs: ['nope', 'a', 'b'],
      message,
    },
  );
  // The connection goes on.
  const ping = client.ping();
  const next = await peer.next();
  t.equal(next.id, req.id + 1);
  peer.send(next.id, { type: 'pong', payload: {} });
  await ping;
});

t.test('core.exec.failed with every optional field null (a missing stage reads unknown)', async (t) => {
  const { client, peer } = await setup(t);
  const p = client.exec({ cmd: 'x', user: 'ghost' });
  const req = await peer.next();
  peer.send(req.id, {
    type: 'execFailed',
    payload: { kind: 'other', errno: null, errnoName: null, message: 'exec session error: guest user not found: ghost', stage: null },
  });
  const err = await rejection(p);
  t.same(
    { code: err.code, kind: err.kind, errno: err.errno, errnoName: err.errnoName, stage: err.stage, path: err.path, message: err.message },
    {
      code: 'MSB_ERR_SPAWN',
      kind: 'other',
      errno: null,
      errnoName: null,
      stage: 'unknown',
      path: null,
      message: 'exec session error: guest user not found: ghost',
    },
  );
});

t.test('core.error before started rejects exec(); after started it rejects exited', async (t) => {
  const { client, peer } = await setup(t);
  const p = client.exec({ cmd: 'x' });
  const req = await peer.next();
  peer.send(req.id, { type: 'error', payload: { kind: 'invalid_session', message: 'id in use', offendingType: 'core.exec.request' } });
  const before = await rejection(p);
  t.same(
    { name: before.name, code: before.code, kind: before.kind, offendingType: before.offendingType },
    { name: 'ProtocolError', code: 'MSB_ERR_BAD_FRAME', kind: 'invalid_session', offendingType: 'core.exec.request' },
  );

  const { exec, req: r2 } = await started(client, peer);
  const out = collect(exec.stdout);
  peer.send(r2.id, { type: 'execStdout', payload: { data: Buffer.from('partial') } });
  peer.send(r2.id, { type: 'error', payload: { kind: 'invalid_payload', message: 'bad stdin', offendingType: 'core.exec.stdin' } });
  const after = await rejection(exec.exited);
  t.same(
    { name: after.name, code: after.code, kind: after.kind },
    { name: 'ProtocolError', code: 'MSB_ERR_BAD_CBOR', kind: 'invalid_payload' },
  );
  t.match(after.message, 'invalid_payload');
  await out.ended;
  t.equal(out.bytes().toString(), 'partial', 'what arrived is delivered and the stream ends');
  t.equal(exec.kill(), false, 'the session is over');
});

t.test('disconnect before started rejects exec(); after started it rejects exited — no fake exit', async (t) => {
  const agent = await startFakeAgent();
  t.teardown(() => agent.close());
  {
    const client = await AgentClient.connect(agent.address);
    const peer = await agent.accept();
    const p = client.exec({ cmd: 'x' });
    await peer.next();
    peer.socket.destroy();
    const err = await rejection(p);
    t.same({ name: err.name, code: err.code }, { name: 'TransportError', code: 'MSB_ERR_TRANSPORT_CLOSED' });
  }
  {
    const client = await AgentClient.connect(agent.address);
    const peer = await agent.accept();
    const { exec, req } = await started(client, peer);
    const out = collect(exec.stdout);
    const stdinErrors: Error[] = [];
    exec.stdin.on('error', (e) => stdinErrors.push(e));
    peer.send(req.id, { type: 'execStdout', payload: { data: Buffer.from('so far') } });
    await once(exec.stdout, 'data');
    peer.socket.destroy();
    const err = await rejection(exec.exited);
    t.same({ name: err.name, code: err.code }, { name: 'TransportError', code: 'MSB_ERR_TRANSPORT_CLOSED' });
    await out.ended;
    t.equal(out.bytes().toString(), 'so far');
    t.equal(exec.stdin.destroyed, true);
    t.same(stdinErrors, [], 'stdin is closed quietly; exited carries the error');
  }
});

t.test('client.close() while an exec runs: exited rejects, nobody watching exited does not crash', async (t) => {
  const { client, peer } = await setup(t);
  const { exec } = await started(client, peer);
  const unwatched = await started(client, peer);
  void unwatched;
  await client.close();
  const err = await rejection(exec.exited);
  t.same({ name: err.name, code: err.code }, { name: 'TransportError', code: 'MSB_ERR_TRANSPORT_CLOSED' });
  await peer.closed;
});

t.test('core.exec.stdin.error → an error event on stdin with the errno name; the session goes on', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer);
  const errored = once(exec.stdin, 'error');
  peer.send(req.id, { type: 'execStdinError', payload: { errno: 32, errnoName: 'EPIPE', message: 'io error: Broken pipe (os error 32)' } });
  const [e] = (await errored) as [Error & { code: string; errno: number; syscall: string }];
  t.same(
    { message: e.message, code: e.code, errno: e.errno, syscall: e.syscall },
    { message: 'io error: Broken pipe (os error 32)', code: 'EPIPE', errno: 32, syscall: 'write' },
  );
  peer.send(req.id, { type: 'execExited', payload: { code: 0, signal: null } });
  t.same(await exec.exited, { code: 0, signal: null, reason: 'exited' });
});

t.test('a stdin error without errno_name has code EIO; with no listener of ours nothing crashes', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer);
  const seen: Error[] = [];
  exec.stdin.on('error', (e) => seen.push(e));
  peer.send(req.id, { type: 'execStdinError', payload: { errno: 99, errnoName: null, message: 'queue full' } });
  const second = await started(client, peer); // only the default listener on this one
  peer.send(second.req.id, { type: 'execStdinError', payload: { errno: null, errnoName: 'ENOBUFS', message: 'not reading' } });
  // (events.once would reject on the 'error' event; wait for 'close' alone.)
  await new Promise((resolve) => second.exec.stdin.once('close', resolve));
  t.equal((seen[0] as Error & { code: string }).code, 'EIO');
  t.equal((seen[0] as Error & { errno: number }).errno, 99);
  t.equal(second.exec.stdin.destroyed, true);
});

t.test('resize and kill: exact frames; checks; nothing after the exit', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer, { cmd: 'vim', tty: true });
  t.equal(exec.stderr, null, 'tty mode has no stderr');
  exec.resize(40, 120);
  t.equal(exec.kill(), true);
  exec.kill('SIGKILL');
  exec.kill(2);
  const frames = [await peer.next(), await peer.next(), await peer.next(), await peer.next()];
  const expected: OutgoingMessage[] = [
    { type: 'execResize', payload: { rows: 40, cols: 120 } },
    { type: 'execSignal', payload: { signal: 15 } },
    { type: 'execSignal', payload: { signal: 9 } },
    { type: 'execSignal', payload: { signal: 2 } },
  ];
  t.same(
    frames.map((f) => ({ id: f.id, flags: f.flags, type: f.message.type, payload: f.message.payload })),
    expected.map((m) => ({ id: req.id, flags: 0, type: m.type, payload: m.payload })),
  );
  frames.forEach((f, i) => t.ok(f.raw.equals(encodeMessage(req.id, expected[i]!)), `frame ${i} byte-exact`));
  t.throws(() => exec.resize(0, 80), { name: 'RangeError', code: 'MSB_ERR_INVALID_OPTION' });
  t.throws(() => exec.kill('SIGNOPE' as NodeJS.Signals), { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' });

  peer.send(req.id, { type: 'execStdout', payload: { data: Buffer.from('tty output') } });
  const out = collect(exec.stdout);
  peer.send(req.id, { type: 'execExited', payload: { code: 0, signal: null } });
  await exec.exited;
  t.equal(out.bytes().toString(), 'tty output');
  t.equal(exec.kill(), false);
  exec.resize(10, 10);
  exec.stdin.write('late');
  const ping = client.ping();
  const next = await peer.next();
  t.equal(next.message.type, 'ping', 'nothing was sent on the ended id');
  peer.send(next.id, { type: 'pong', payload: {} });
  await ping;
});

t.test('resize on a pipe session is a TypeError', async (t) => {
  const { client, peer } = await setup(t);
  const { exec } = await started(client, peer);
  t.throws(() => exec.resize(24, 80), { name: 'TypeError', code: 'MSB_ERR_INVALID_OPTION' });
});

t.test('stderr on a tty session is shown on stdout, not lost', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer, { cmd: 'sh', tty: true });
  const out = collect(exec.stdout);
  peer.send(req.id, { type: 'execStderr', payload: { data: Buffer.from('e') } });
  peer.send(req.id, { type: 'execExited', payload: { code: 0, signal: null } });
  await exec.exited;
  t.equal(out.bytes().toString(), 'e');
});

t.test('exit contract: started, output and exited in one write; a consumer attached after await exec() sees every byte first', async (t) => {
  const { client, peer } = await setup(t);
  const p = client.exec({ cmd: 'echo' });
  const req = await peer.next();
  peer.sendRaw(
    Buffer.concat([
      encodeMessage(req.id, { type: 'execStarted', payload: { pid: 7 } }),
      encodeMessage(req.id, { type: 'execStdout', payload: { data: Buffer.from('one ') } }),
      encodeMessage(req.id, { type: 'execStderr', payload: { data: Buffer.from('two ') } }),
      encodeMessage(req.id, { type: 'execStdout', payload: { data: Buffer.from('three') } }),
      encodeMessage(req.id, { type: 'execExited', payload: { code: 0, signal: null } }),
    ]),
  );
  const exec = await p;
  const out: string[] = [];
  const err: string[] = [];
  exec.stdout.on('data', (c: Buffer) => out.push(c.toString()));
  exec.stderr!.on('data', (c: Buffer) => err.push(c.toString()));
  const info = await exec.exited;
  t.same(info, { code: 0, signal: null, reason: 'exited' });
  t.equal(out.join(''), 'one three');
  t.equal(err.join(''), 'two ');
  t.equal(exec.stdout.readableEnded, true);
});

t.test('exit contract: a consumer that is behind is waited for', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer);
  exec.stderr!.resume();
  // A sink that holds every write until the test releases it: stdout's pipe stays paused behind it.
  const held: (() => void)[] = [];
  const got: Buffer[] = [];
  let wake: (() => void) | null = null;
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _e, cb) {
      got.push(chunk);
      held.push(cb);
      wake?.();
    },
  });
  exec.stdout.on('end', () => wake?.());
  exec.stdout.pipe(sink);
  for (let i = 0; i < 4; i++) peer.send(req.id, { type: 'execStdout', payload: { data: Buffer.from(`chunk${i};`) } });
  peer.send(req.id, { type: 'execExited', payload: { code: 5, signal: null } });
  let resolved = false;
  void exec.exited.then(() => (resolved = true));
  let released = 0;
  for (;;) {
    if (held.length === 0 && exec.stdout.readableEnded) break;
    if (held.length === 0) await new Promise<void>((r) => (wake = r));
    wake = null;
    const cb = held.shift();
    if (cb === undefined) continue;
    t.equal(resolved, false, `not resolved while write ${released} is held`);
    released++;
    cb();
  }
  t.same(await exec.exited, { code: 5, signal: null, reason: 'exited' });
  t.equal(Buffer.concat(got).toString(), 'chunk0;chunk1;chunk2;chunk3;');
  t.ok(released >= 1);
});

t.test('exit contract: output nobody reads does not hold exited, and stays readable', async (t) => {
  const { client, peer } = await setup(t);
  const { exec, req } = await started(client, peer);
  peer.send(req.id, { type: 'execStdout', payload: { data: Buffer.from('kept') } });
  peer.send(req.id, { type: 'execExited', payload: { code: 0, signal: null } });
  t.same(await exec.exited, { code: 0, signal: null, reason: 'exited' });
  const chunks: Buffer[] = [];
  for await (const c of exec.stdout) chunks.push(c as Buffer);
  t.equal(Buffer.concat(chunks).toString(), 'kept');
});
