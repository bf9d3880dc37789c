// Flow control, agent → client: an exec output stream whose consumer stops reading makes the
// client stop reading the socket, so the agent's writes back up (its socket buffer fills) and the
// client's buffered bytes stay bounded; when the consumer reads again, everything arrives intact.
//
// "Stalled" has no event of its own, so the tests wait for quiescence in event-loop turns: the
// fake agent and the client share this process, and every turn runs a poll phase in which any
// readable or writable socket makes progress. Fifty turns in a row with no byte moving on either
// side means nothing can move: that is the state under test. No wall-clock sleeps.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';

import { AgentClient, type ClientExec } from '../../ts/client/index.js';
import { OUTPUT_HIGH_WATER_MARK } from '../../ts/client/client-streams.js';
import { connectBulkSocket } from '../../ts/client/bulk-socket.js';
import { SLAB_SIZE } from '../../ts/client/frame-aligned-reads.js';
import { startFakeAgent, type FakePeer } from '../fixtures/client-fake-agent.js';

const FRAME_DATA = 64 * 1024;
const TOTAL = 64 * 1024 * 1024;
/** What the client may hold: stdout's buffer, one socket chunk pushed past it, the socket's own buffer, a partial frame. */
const CLIENT_BOUND = 2 * 1024 * 1024;

/** How the client's socket is made: a plain net socket, or the one AgentClient.connect() uses. */
type SocketKind = 'net.connect' | 'bulk socket';
/**
 * The most one socket read hands over: net's 64 KiB allocation, or for the bulk socket the rest of
 * its read slab (one slab at most), or one whole frame larger than that (its header is under 64 bytes).
 */
const SOCKET_CHUNK: Record<SocketKind, number> = { 'net.connect': 64 * 1024, 'bulk socket': Math.max(FRAME_DATA + 64, SLAB_SIZE) };

async function setup(t: Test, kind: SocketKind = 'net.connect'): Promise<{ client: AgentClient; peer: FakePeer; socket: Socket; exec: ClientExec; id: number }> {
  const agent = await startFakeAgent();
  const socket = kind === 'net.connect' ? netConnect(agent.path) : connectBulkSocket({ kind: 'unix', path: agent.path });
  const client = await AgentClient.fromStream(socket, { handshake: true });
  const peer = await agent.accept();
  t.teardown(async () => {
    await client.close();
    await agent.close();
  });
  const p = client.exec({ cmd: 'flood' });
  const req = await peer.next();
  peer.send(req.id, { type: 'execStarted', payload: { pid: 9 } });
  return { client, peer, socket, exec: await p, id: req.id };
}

function chunkOf(i: number): Buffer {
  return Buffer.alloc(FRAME_DATA, i & 0xff);
}

function expectedDigest(): string {
  const h = createHash('sha256');
  for (let i = 0; i < TOTAL / FRAME_DATA; i++) h.update(chunkOf(i));
  return h.digest('hex');
}

/** The agent writes TOTAL bytes of stdout, waiting for 'drain' whenever write() says so, then exits. */
function pump(peer: FakePeer, id: number): { handed: () => number; done: Promise<void>; isDone: () => boolean } {
  let handed = 0;
  let isDone = false;
  const done = (async () => {
    for (let i = 0; i < TOTAL / FRAME_DATA; i++) {
      const ok = peer.send(id, { type: 'execStdout', payload: { data: chunkOf(i) } });
      handed += FRAME_DATA;
      if (!ok) await once(peer.socket, 'drain');
    }
    peer.send(id, { type: 'execExited', payload: { code: 0, signal: null } });
    isDone = true;
  })();
  return { handed: () => handed, done, isDone: () => isDone };
}

/** Waits until `probe()` has not changed for 50 consecutive event-loop turns. */
async function quiescent(probe: () => string): Promise<void> {
  let last = probe();
  let stable = 0;
  for (let turn = 0; turn < 1_000_000; turn++) {
    await new Promise((r) => setImmediate(r));
    const now = probe();
    stable = now === last ? stable + 1 : 0;
    last = now;
    if (stable >= 50) return;
  }
  throw new Error('never quiescent');
}

for (const kind of ['net.connect', 'bulk socket'] as const)
t.test(`${kind}: a paused stdout stops the client reading; the agent backs up; bounded; then all bytes arrive`, async (t) => {
  const { peer, socket, exec, id } = await setup(t, kind);
  exec.stdout.pause(); // a consumer that stopped reading
  exec.stderr!.resume();
  const agentSide = pump(peer, id);
  await quiescent(() => `${agentSide.handed()} ${peer.socket.writableLength} ${socket.bytesRead}`);

  t.equal(agentSide.isDone(), false, 'the agent could not write everything');
  t.ok(peer.socket.writableLength > 0, `the agent's socket write buffer filled (${peer.socket.writableLength} bytes queued)`);
  t.equal(socket.isPaused(), true, 'the client stopped reading its socket');
  t.ok(
    exec.stdout.readableLength >= OUTPUT_HIGH_WATER_MARK && exec.stdout.readableLength <= OUTPUT_HIGH_WATER_MARK + SOCKET_CHUNK[kind] + FRAME_DATA,
    `stdout holds its high-water mark and at most a socket chunk more (${exec.stdout.readableLength})`,
  );
  t.ok(socket.bytesRead <= CLIENT_BOUND, `the client took ${socket.bytesRead} bytes of ${TOTAL} from the kernel`);
  t.ok(socket.readableLength <= 128 * 1024, `socket buffer ${socket.readableLength}`);

  const hash = createHash('sha256');
  let maxBuffered = 0;
  exec.stdout.on('data', (c: Buffer) => {
    hash.update(c);
    maxBuffered = Math.max(maxBuffered, exec.stdout.readableLength);
  });
  exec.stdout.resume();
  t.same(await exec.exited, { code: 0, signal: null, reason: 'exited' });
  await agentSide.done;
  t.equal(hash.digest('hex'), expectedDigest(), 'every byte, in order');
  t.ok(maxBuffered <= OUTPUT_HIGH_WATER_MARK + SOCKET_CHUNK[kind] + FRAME_DATA, `while flowing, buffered at most ${maxBuffered}`);
});

for (const kind of ['net.connect', 'bulk socket'] as const)
t.test(`${kind}: a consumer reading slowly keeps the client bounded all along`, async (t) => {
  const { peer, socket, exec, id } = await setup(t, kind);
  exec.stderr!.resume();
  const agentSide = pump(peer, id);
  const hash = createHash('sha256');
  let consumed = 0;
  let worst = 0;
  // Read one frame's worth, then let everything settle, again and again.
  exec.stdout.pause();
  while (!exec.stdout.readableEnded) {
    await quiescent(() => `${agentSide.handed()} ${socket.bytesRead} ${exec.stdout.readableLength} ${exec.stdout.readableEnded}`);
    worst = Math.max(worst, socket.bytesRead - consumed);
    const c = exec.stdout.read(Math.min(4 * FRAME_DATA, exec.stdout.readableLength)) as Buffer | null;
    if (c === null) {
      exec.stdout.read(0); // an ended stream with an empty buffer emits 'end' from here
      continue;
    }
    hash.update(c);
    consumed += c.length;
  }
  t.same(await exec.exited, { code: 0, signal: null, reason: 'exited' });
  t.equal(consumed, TOTAL);
  t.equal(hash.digest('hex'), expectedDigest());
  t.ok(worst <= CLIENT_BOUND, `at most ${worst} bytes read from the socket and not yet consumed`);
});

t.test('destroying a paused stdout releases the connection: the rest is dropped, exited and other requests go on', async (t) => {
  const { client, peer, socket, exec, id } = await setup(t);
  exec.stdout.pause();
  exec.stderr!.resume();
  const agentSide = pump(peer, id);
  await quiescent(() => `${agentSide.handed()} ${peer.socket.writableLength} ${socket.bytesRead}`);
  t.equal(socket.isPaused(), true);
  exec.stdout.destroy();
  t.same(await exec.exited, { code: 0, signal: null, reason: 'exited' });
  await agentSide.done;
  const ping = client.ping();
  const f = await peer.next();
  peer.send(f.id, { type: 'pong', payload: {} });
  t.ok((await ping) >= 0, 'the connection still works');
});

t.test('the stall holds back other sessions on the connection, and they resume with it', async (t) => {
  const { client, peer, socket, exec, id } = await setup(t);
  exec.stdout.pause();
  exec.stderr!.resume();
  const agentSide = pump(peer, id);
  await quiescent(() => `${agentSide.handed()} ${peer.socket.writableLength} ${socket.bytesRead}`);
  let pongs = 0;
  const ping = client.ping().then((ms) => {
    pongs++;
    return ms;
  });
  const f = await peer.next();
  peer.send(f.id, { type: 'pong', payload: {} }); // queued behind the flood on the agent's side
  await quiescent(() => `${agentSide.handed()} ${socket.bytesRead} ${pongs}`);
  t.equal(pongs, 0, 'the pong waits behind the unread output');
  exec.stdout.resume();
  t.ok((await ping) >= 0);
  await exec.exited;
});
