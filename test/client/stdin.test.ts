// stdin of a remote exec: writes become core.exec.stdin frames of at most 1 MiB (never near
// MAX_FRAME_SIZE), end() is one empty frame (EOF), an empty write sends nothing, and nothing is
// sent after the session ended.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';

import { AgentClient, type ClientExec } from '../../ts/client/index.js';
import { STDIN_CHUNK_SIZE } from '../../ts/client/client-streams.js';
import { MAX_FRAME_SIZE, encodeMessage } from '../../ts/protocol/index.js';
import { startFakeAgent, type Captured, type FakePeer } from '../fixtures/client-fake-agent.js';

async function setup(t: Test, tty = false): Promise<{ client: AgentClient; peer: FakePeer; exec: ClientExec; id: number }> {
  const agent = await startFakeAgent();
  const client = await AgentClient.connect(agent.address);
  const peer = await agent.accept();
  t.teardown(async () => {
    await client.close();
    await agent.close();
  });
  const p = client.exec({ cmd: 'cat', tty });
  const req = await peer.next();
  peer.send(req.id, { type: 'execStarted', payload: { pid: 1 } });
  return { client, peer, exec: await p, id: req.id };
}

async function take(peer: FakePeer, n: number): Promise<Captured[]> {
  const out: Captured[] = [];
  for (let i = 0; i < n; i++) out.push(await peer.next());
  return out;
}

const dataOf = (f: Captured): Buffer => (f.message.payload as { data: Buffer }).data;

t.test('a 3 MiB write is three frames of exactly 1 MiB; end() is one empty frame', async (t) => {
  const { peer, exec, id } = await setup(t);
  t.equal(STDIN_CHUNK_SIZE, 1024 * 1024);
  const input = randomBytes(3 * 1024 * 1024);
  let written = false;
  exec.stdin.write(input, () => (written = true));
  exec.stdin.end();
  const frames = await take(peer, 4);
  t.same(
    frames.map((f) => ({ id: f.id, flags: f.flags, type: f.message.type, size: dataOf(f).length })),
    [
      { id, flags: 0, type: 'execStdin', size: 1024 * 1024 },
      { id, flags: 0, type: 'execStdin', size: 1024 * 1024 },
      { id, flags: 0, type: 'execStdin', size: 1024 * 1024 },
      { id, flags: 0, type: 'execStdin', size: 0 },
    ],
  );
  for (const f of frames) t.ok(f.raw.length - 4 <= MAX_FRAME_SIZE, 'within MAX_FRAME_SIZE');
  t.ok(Buffer.concat(frames.map(dataOf)).equals(input), 'the bytes, in order');
  t.ok(frames[3]!.raw.equals(encodeMessage(id, { type: 'execStdin', payload: { data: Buffer.alloc(0) } })), 'EOF byte-exact');
  if (!exec.stdin.writableFinished) await new Promise((r) => exec.stdin.once('finish', r));
  t.equal(written, true, 'the write callback ran');
});

t.test('an uneven write: 1 MiB + 1 MiB + 5 bytes; a string write; an empty write sends nothing', async (t) => {
  const { peer, exec } = await setup(t);
  const input = randomBytes(2 * 1024 * 1024 + 5);
  exec.stdin.write(input);
  exec.stdin.write(Buffer.alloc(0));
  exec.stdin.write('hi ✓');
  exec.stdin.end();
  const frames = await take(peer, 5);
  t.same(frames.map((f) => dataOf(f).length), [1024 * 1024, 1024 * 1024, 5, Buffer.byteLength('hi ✓'), 0]);
  t.ok(Buffer.concat(frames.slice(0, 3).map(dataOf)).equals(input));
  t.equal(dataOf(frames[3]!).toString(), 'hi ✓');
});

t.test('end() on a tty session sends the same empty frame (the agent turns it into VEOF)', async (t) => {
  const { peer, exec, id } = await setup(t, true);
  exec.stdin.end('x');
  const frames = await take(peer, 2);
  t.same(frames.map((f) => [f.id, dataOf(f).toString()]), [
    [id, 'x'],
    [id, ''],
  ]);
});

t.test('after the exit nothing is sent on the id; a write fails instead', async (t) => {
  const { client, peer, exec, id } = await setup(t);
  peer.send(id, { type: 'execExited', payload: { code: 0, signal: null } });
  await exec.exited;
  const err = await new Promise<Error | null | undefined>((resolve) => exec.stdin.write('late', resolve));
  t.ok(err instanceof Error, 'the write callback gets an error');
  exec.stdin.end();
  const ping = client.ping();
  const f = await peer.next();
  t.equal(f.message.type, 'ping', 'neither the write nor an EOF went out');
  peer.send(f.id, { type: 'pong', payload: {} });
  await ping;
});

t.test('stdin writes wait for the transport: the callback of a write the agent has not read runs once it reads', async (t) => {
  const { peer, exec } = await setup(t);
  peer.socket.pause(); // the agent stops reading
  const big = randomBytes(16 * 1024 * 1024);
  let done = false;
  const written = new Promise<void>((resolve) =>
    exec.stdin.write(big, () => {
      done = true;
      resolve();
    }),
  );
  t.equal(done, false, 'not called synchronously');
  peer.socket.resume();
  await written;
  const frames = await take(peer, 16);
  t.ok(Buffer.concat(frames.map(dataOf)).equals(big));
});
