// The connection start (PROTOCOL §6.1): the id-range prefix and core.ready are read and checked
// as upstream's clients check them; every way to fail has its exact error class and code.
import t from 'tap';
import { connect as netConnect, createServer } from 'node:net';
import { once } from 'node:events';
import { PassThrough, Duplex } from 'node:stream';

import { AgentClient } from '../../ts/client/index.js';
import { ProtocolError, TransportError } from '../../ts/errors.js';
import { encodeFrame, encodeMessage, encodeCbor } from '../../ts/protocol/index.js';
import { FAKE_READY, rangePrefix, readyFrame, startFakeAgent } from '../fixtures/client-fake-agent.js';

/** The error a promise rejects with, as { name, code } plus the error itself. */
async function rejection(p: Promise<unknown>): Promise<{ name: string; code: string; err: Error & { code: string } }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { code: string };
    return { name: err.name, code: err.code, err };
  }
  throw new Error('expected a rejection');
}

t.test('a good handshake: ready payload, negotiated version, id range', async (t) => {
  const agent = await startFakeAgent();
  t.teardown(() => agent.close());
  const client = await AgentClient.connect(agent.address);
  t.same(client.ready, FAKE_READY);
  t.equal(client.version, 7);
  t.same(client.idRange, { idStart: 1, idEndExclusive: 33_554_431 });
  t.equal(client.isClosed, false);
  await client.close();
  t.equal(client.isClosed, true);
});

t.test('an Address object works like its string', async (t) => {
  const agent = await startFakeAgent();
  t.teardown(() => agent.close());
  const client = await AgentClient.connect({ kind: 'unix', path: agent.path });
  t.equal(client.version, 7);
  await client.close();
});

t.test('the default address is the serve default ($XDG_RUNTIME_DIR/msb-agentd.sock)', async (t) => {
  const agent = await startFakeAgent();
  t.teardown(() => agent.close());
  // The fake agent's socket is <dir>/agent.sock; point XDG_RUNTIME_DIR at a dir whose
  // msb-agentd.sock does not exist to see which path is tried.
  const saved = process.env.XDG_RUNTIME_DIR;
  process.env.XDG_RUNTIME_DIR = '/nonexistent-msb-dir';
  t.teardown(() => {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
  });
  const r = await rejection(AgentClient.connect());
  t.equal(r.name, 'TransportError');
  t.equal(r.code, 'MSB_ERR_TRANSPORT_CLOSED');
  t.match(r.err.message, 'the agent is not reachable at unix:/nonexistent-msb-dir/msb-agentd.sock');
  t.equal((r.err.cause as NodeJS.ErrnoException).code, 'ENOENT');
});

t.test('negotiated = min(7, ready v)', async (t) => {
  for (const [v, expected] of [
    [5, 5],
    [7, 7],
    [9, 7],
  ] as const) {
    const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(1, 100), readyFrame(v)]) });
    const client = await AgentClient.connect(agent.address);
    t.equal(client.version, expected, `v=${v}`);
    await client.close();
    await agent.close();
  }
});

t.test('the handshake byte by byte', async (t) => {
  const agent = await startFakeAgent({ byteByByte: true });
  t.teardown(() => agent.close());
  const client = await AgentClient.connect(agent.address);
  t.same(client.ready, FAKE_READY);
  t.same(client.idRange, { idStart: 1, idEndExclusive: 33_554_431 });
  await client.close();
});

t.test('bytes after the ready frame are kept: a frame coalesced with the handshake is routed (and dropped: unknown id)', async (t) => {
  const stray = encodeMessage(1, { type: 'pong', payload: {} });
  const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(1, 100), readyFrame(), stray]) });
  t.teardown(() => agent.close());
  const client = await AgentClient.connect(agent.address);
  const peer = await agent.accept();
  // The stray pong was on id 1 before any request: dropped. The next ping uses id 1 and gets
  // only its own answer.
  const ping = client.ping();
  const req = await peer.next();
  t.equal(req.id, 1);
  peer.send(1, { type: 'pong', payload: {} });
  t.ok((await ping) >= 0);
  await client.close();
});

t.test('id ranges without a usable id → ProtocolError MSB_ERR_BAD_FRAME', async (t) => {
  for (const [start, end] of [
    [5, 5],
    [9, 3],
    [0, 1],
    [0, 0],
    [0xffff_ffff, 0xffff_ffff],
  ] as const) {
    const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(start, end), readyFrame()]) });
    const r = await rejection(AgentClient.connect(agent.address));
    t.equal(r.name, 'ProtocolError', `[${start}, ${end})`);
    t.equal(r.code, 'MSB_ERR_BAD_FRAME', `[${start}, ${end})`);
    t.ok(r.err instanceof ProtocolError);
    await agent.close();
  }
});

t.test('ranges with usable ids are accepted ([0, 2) has id 1)', async (t) => {
  const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(0, 2), readyFrame()]) });
  t.teardown(() => agent.close());
  const client = await AgentClient.connect(agent.address);
  t.same(client.idRange, { idStart: 0, idEndExclusive: 2 });
  await client.close();
});

t.test('a first frame that is not core.ready → ProtocolError MSB_ERR_BAD_FRAME', async (t) => {
  const pong = encodeMessage(0, { type: 'pong', payload: {} });
  const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(1, 100), pong, readyFrame()]) });
  t.teardown(() => agent.close());
  const r = await rejection(AgentClient.connect(agent.address));
  t.equal(r.name, 'ProtocolError');
  t.equal(r.code, 'MSB_ERR_BAD_FRAME');
  t.match(r.err.message, 'core.pong');
});

t.test('a ready frame that does not decode → the codec error (bad payload, unknown type, bad flags)', async (t) => {
  const envelope = (type: string, p: Buffer) => encodeCbor({ v: 7, t: type, p });
  const cases: [string, Buffer, string][] = [
    // core.ready without its required fields
    ['bad payload', encodeFrame({ id: 0, flags: 0, body: envelope('core.ready', Buffer.from([0xa0])) }), 'MSB_ERR_BAD_CBOR'],
    ['unknown type', encodeFrame({ id: 0, flags: 0, body: envelope('core.frobnicate', Buffer.from([0xa0])) }), 'MSB_ERR_UNKNOWN_MESSAGE'],
    ['wrong flags', encodeFrame({ id: 0, flags: 1, body: readyFrame().subarray(9) }), 'MSB_ERR_BAD_FRAME'],
    ['not CBOR', encodeFrame({ id: 0, flags: 0, body: Buffer.from([0xff, 0xff]) }), 'MSB_ERR_BAD_CBOR'],
  ];
  for (const [name, frame, code] of cases) {
    const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(1, 100), frame]) });
    const r = await rejection(AgentClient.connect(agent.address));
    t.equal(r.name, 'ProtocolError', name);
    t.equal(r.code, code, name);
    await agent.close();
  }
});

t.test('a frame length above MAX_FRAME_SIZE → ProtocolError MSB_ERR_FRAME_TOO_LARGE', async (t) => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(4 * 1024 * 1024 + 1);
  const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(1, 100), len]) });
  t.teardown(() => agent.close());
  const r = await rejection(AgentClient.connect(agent.address));
  t.equal(r.name, 'ProtocolError');
  t.equal(r.code, 'MSB_ERR_FRAME_TOO_LARGE');
});

t.test('no handshake within timeoutMs → TransportError MSB_ERR_TRANSPORT_CLOSED, connection closed', async (t) => {
  const agent = await startFakeAgent({ greeting: rangePrefix(1, 100) });
  t.teardown(() => agent.close());
  const started = Date.now();
  const connecting = AgentClient.connect(agent.address, { timeoutMs: 150 });
  const peer = await agent.accept();
  const r = await rejection(connecting);
  t.equal(r.name, 'TransportError');
  t.equal(r.code, 'MSB_ERR_TRANSPORT_CLOSED');
  t.match(r.err.message, 'within 150 ms');
  t.ok(Date.now() - started >= 140, 'not before the deadline');
  await peer.closed; // the client dropped the connection
});

t.test('the agent closes during the handshake → TransportError MSB_ERR_TRANSPORT_CLOSED', async (t) => {
  const agent = await startFakeAgent({ greeting: Buffer.concat([rangePrefix(1, 100), readyFrame().subarray(0, 20)]) });
  t.teardown(() => agent.close());
  const connecting = AgentClient.connect(agent.address);
  const peer = await agent.accept();
  peer.socket.end();
  const r = await rejection(connecting);
  t.equal(r.name, 'TransportError');
  t.equal(r.code, 'MSB_ERR_TRANSPORT_CLOSED');
});

t.test('nothing listening → TransportError with the errno cause', async (t) => {
  const r = await rejection(AgentClient.connect('unix:/nonexistent-msb-dir/agent.sock'));
  t.ok(r.err instanceof TransportError);
  t.equal(r.code, 'MSB_ERR_TRANSPORT_CLOSED');
  t.match(r.err.message, 'the agent is not reachable at unix:/nonexistent-msb-dir/agent.sock');
  t.equal((r.err.cause as NodeJS.ErrnoException).code, 'ENOENT');

  // A closed TCP port: bind one, note it, close it.
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const tcp = await rejection(AgentClient.connect(`tcp:127.0.0.1:${port}`));
  t.equal(tcp.code, 'MSB_ERR_TRANSPORT_CLOSED');
  t.match(tcp.err.message, `the agent is not reachable at tcp:127.0.0.1:${port}`);
  t.equal((tcp.err.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
});

t.test('connect over TCP', async (t) => {
  const server = createServer((s) => s.write(Buffer.concat([rangePrefix(33_554_432, 67_108_862), readyFrame()])));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const client = await AgentClient.connect(`tcp:127.0.0.1:${port}`);
  t.same(client.idRange, { idStart: 33_554_432, idEndExclusive: 67_108_862 });
  await client.close();
});

t.test('bad arguments are TypeError/RangeError MSB_ERR_INVALID_OPTION', async (t) => {
  const bad = await rejection(AgentClient.connect('http://x'));
  t.equal(bad.name, 'TypeError');
  t.equal(bad.code, 'MSB_ERR_INVALID_OPTION');
  const timeout = await rejection(AgentClient.connect('unix:/x', { timeoutMs: 0 }));
  t.equal(timeout.name, 'RangeError');
  t.equal(timeout.code, 'MSB_ERR_INVALID_OPTION');
  const opts = await rejection(AgentClient.fromStream(new PassThrough(), {} as { handshake: boolean }));
  t.equal(opts.code, 'MSB_ERR_INVALID_OPTION');
});

t.test('fromStream without the prefix (single-peer): core.ready first, ids 1..2^32-1', async (t) => {
  const toClient = new PassThrough();
  const fromClient = new PassThrough();
  const stream = Duplex.from({ readable: toClient, writable: fromClient });
  toClient.write(readyFrame());
  const client = await AgentClient.fromStream(stream, { handshake: false });
  t.same(client.ready, FAKE_READY);
  t.same(client.idRange, { idStart: 1, idEndExclusive: 2 ** 32 });
  await client.close();
});

t.test('fromStream with the prefix over a socket the caller opened', async (t) => {
  const agent = await startFakeAgent();
  t.teardown(() => agent.close());
  const socket = netConnect(agent.path);
  const client = await AgentClient.fromStream(socket, { handshake: true });
  t.same(client.idRange, { idStart: 1, idEndExclusive: 33_554_431 });
  await client.close();
  t.equal(socket.destroyed, true, 'the client owns the stream and closes it');
});

t.test('fromStream without the prefix rejects a stream that starts with one', async (t) => {
  const toClient = new PassThrough();
  const stream = Duplex.from({ readable: toClient, writable: new PassThrough() });
  // [1][100] read as a frame header: len = 1 < 5 → a desynchronised stream.
  toClient.write(Buffer.concat([rangePrefix(1, 100), readyFrame()]));
  const r = await rejection(AgentClient.fromStream(stream, { handshake: false }));
  t.equal(r.name, 'ProtocolError');
  t.equal(r.code, 'MSB_ERR_BAD_FRAME');
});
