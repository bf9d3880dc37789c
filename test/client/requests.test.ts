// ping, touch, shutdown and close: the exact frames the client sends, how replies, core.error,
// a lost connection and a fatal frame error settle the pending promises, and the routing rules
// (unknown ids dropped, version gating).
import t, { type Test } from 'tap';

import { AgentClient } from '../../ts/client/index.js';
import { encodeMessage } from '../../ts/protocol/index.js';
import { rangePrefix, readyFrame, startFakeAgent, type FakePeer } from '../fixtures/client-fake-agent.js';

async function setup(t: Test, greeting?: Buffer): Promise<{ client: AgentClient; peer: FakePeer }> {
  const agent = await startFakeAgent(greeting ? { greeting } : {});
  const client = await AgentClient.connect(agent.address);
  const peer = await agent.accept();
  t.teardown(async () => {
    await client.close();
    await agent.close();
  });
  return { client, peer };
}

async function rejection(p: Promise<unknown>): Promise<Error & { code: string; kind?: string; offendingType?: string | null }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code: string };
  }
  throw new Error('expected a rejection');
}

t.test('ping sends core.ping {} on the first id and resolves with the round trip on core.pong', async (t) => {
  const { client, peer } = await setup(t);
  const ping = client.ping();
  const req = await peer.next();
  t.same({ id: req.id, flags: req.flags, type: req.message.type, payload: req.message.payload, v: req.message.version }, {
    id: 1,
    flags: 0,
    type: 'ping',
    payload: {},
    v: 7,
  });
  t.ok(req.raw.equals(encodeMessage(1, { type: 'ping', payload: {} })), 'byte-exact');
  peer.send(1, { type: 'pong', payload: {} });
  const ms = await ping;
  t.type(ms, 'number');
  t.ok(ms >= 0 && ms < 10_000);
});

t.test('touch returns activity_seq: a number, or a bigint above 2^53', async (t) => {
  const { client, peer } = await setup(t);
  const small = client.touch();
  const r1 = await peer.next();
  t.same({ id: r1.id, flags: r1.flags, type: r1.message.type, payload: r1.message.payload }, { id: 1, flags: 0, type: 'touch', payload: {} });
  peer.send(1, { type: 'touched', payload: { activitySeq: 42 } });
  t.equal(await small, 42);
  const big = client.touch();
  const r2 = await peer.next();
  t.equal(r2.id, 2, 'the next id');
  peer.send(2, { type: 'touched', payload: { activitySeq: 2n ** 60n } });
  t.equal(await big, 2n ** 60n);
});

t.test('shutdown sends core.shutdown on id 0 with FLAG_SHUTDOWN and a null payload', async (t) => {
  const { client, peer } = await setup(t);
  client.shutdown();
  const f = await peer.next();
  t.same({ id: f.id, flags: f.flags, type: f.message.type, payload: f.message.payload }, { id: 0, flags: 4, type: 'shutdown', payload: null });
  t.ok(f.raw.equals(encodeMessage(0, { type: 'shutdown', payload: null })), 'byte-exact');
});

t.test('shutdown then close: the frame is flushed before the connection closes', async (t) => {
  const { client, peer } = await setup(t);
  client.shutdown();
  await client.close();
  await peer.closed;
  t.equal(peer.frames.length, 1);
  t.equal(peer.frames[0]!.message.type, 'shutdown');
  t.throws(() => client.shutdown(), { name: 'TransportError', code: 'MSB_ERR_TRANSPORT_CLOSED' });
});

t.test('core.error on a ping id → ProtocolError with kind, offendingType and the kind in the message', async (t) => {
  const { client, peer } = await setup(t);
  const ping = client.ping();
  const req = await peer.next();
  peer.send(req.id, { type: 'error', payload: { kind: 'invalid_payload', message: 'bad ping', offendingType: 'core.ping' } });
  const err = await rejection(ping);
  t.equal(err.name, 'ProtocolError');
  t.equal(err.code, 'MSB_ERR_BAD_CBOR');
  t.equal(err.kind, 'invalid_payload');
  t.equal(err.offendingType, 'core.ping');
  t.match(err.message, 'invalid_payload');
  t.match(err.message, 'bad ping');
  // The id is free again and the connection goes on.
  const again = client.ping();
  const next = await peer.next();
  t.equal(next.id, 2);
  peer.send(2, { type: 'pong', payload: {} });
  t.ok((await again) >= 0);
});

t.test('every core.error kind maps to a code', async (t) => {
  const { client, peer } = await setup(t);
  const expected = {
    malformed_message: 'MSB_ERR_BAD_CBOR',
    invalid_payload: 'MSB_ERR_BAD_CBOR',
    unsupported_message_type: 'MSB_ERR_UNKNOWN_MESSAGE',
    unsupported_protocol_generation: 'MSB_ERR_UNKNOWN_MESSAGE',
    invalid_flags: 'MSB_ERR_BAD_FRAME',
    invalid_session: 'MSB_ERR_BAD_FRAME',
  } as const;
  for (const [kind, code] of Object.entries(expected)) {
    const p = client.ping();
    const req = await peer.next();
    peer.send(req.id, { type: 'error', payload: { kind: kind as keyof typeof expected, message: 'x', offendingType: null } });
    const err = await rejection(p);
    t.same({ code: err.code, kind: err.kind, offendingType: err.offendingType }, { code, kind, offendingType: null }, kind);
  }
});

t.test('a terminal frame of the wrong type ends the request with MSB_ERR_BAD_FRAME; a non-terminal one is ignored', async (t) => {
  const { client, peer } = await setup(t);
  const ping = client.ping();
  const req = await peer.next();
  peer.send(req.id, { type: 'execStdout', payload: { data: Buffer.from('x') } });
  peer.send(req.id, { type: 'touched', payload: { activitySeq: 1 } });
  const err = await rejection(ping);
  t.equal(err.name, 'ProtocolError');
  t.equal(err.code, 'MSB_ERR_BAD_FRAME');
  t.match(err.message, 'core.touched');
});

t.test('frames for unknown ids and id 0 are dropped', async (t) => {
  const { client, peer } = await setup(t);
  peer.send(0, { type: 'error', payload: { kind: 'invalid_session', message: 'x', offendingType: null } });
  peer.send(77, { type: 'pong', payload: {} });
  peer.send(1, { type: 'pong', payload: {} }); // id 1 is not in use yet
  const ping = client.ping();
  const req = await peer.next();
  t.equal(req.id, 1);
  peer.send(1, { type: 'pong', payload: {} });
  t.ok((await ping) >= 0);
  t.equal(client.isClosed, false);
});

t.test('an undecodable frame on a pending id fails that request with the codec error; others go on', async (t) => {
  const { client, peer } = await setup(t);
  const a = client.ping();
  const b = client.ping();
  await peer.next();
  await peer.next();
  // A pong on id 1 with the wrong flags (0 instead of TERMINAL).
  const bad = encodeMessage(1, { type: 'pong', payload: {} });
  bad[8] = 0;
  peer.sendRaw(bad);
  peer.send(2, { type: 'pong', payload: {} });
  const err = await rejection(a);
  t.equal(err.name, 'ProtocolError');
  t.equal(err.code, 'MSB_ERR_BAD_FRAME');
  t.equal(err.kind, 'invalid_flags');
  t.ok((await b) >= 0);
});

t.test('a fatal frame error (length > MAX_FRAME_SIZE) closes the client; pending requests reject with it', async (t) => {
  const { client, peer } = await setup(t);
  const ping = client.ping();
  const exec = client.exec({ cmd: 'sleep', args: ['9'] });
  await peer.next();
  await peer.next();
  const len = Buffer.alloc(4);
  len.writeUInt32BE(4 * 1024 * 1024 + 5);
  peer.sendRaw(len);
  for (const p of [ping, exec]) {
    const err = await rejection(p);
    t.equal(err.name, 'ProtocolError');
    t.equal(err.code, 'MSB_ERR_FRAME_TOO_LARGE');
  }
  t.equal(client.isClosed, true);
  await peer.closed;
  const later = await rejection(client.ping());
  t.equal(later.code, 'MSB_ERR_FRAME_TOO_LARGE', 'later calls fail with the same error');
});

t.test('the agent disconnects: pending requests reject with TransportError MSB_ERR_TRANSPORT_CLOSED', async (t) => {
  const { client, peer } = await setup(t);
  const ping = client.ping();
  await peer.next();
  peer.socket.destroy();
  const err = await rejection(ping);
  t.equal(err.name, 'TransportError');
  t.equal(err.code, 'MSB_ERR_TRANSPORT_CLOSED');
  t.equal(client.isClosed, true);
  const later = await rejection(client.exec({ cmd: 'true' }));
  t.equal(later.code, 'MSB_ERR_TRANSPORT_CLOSED');
});

t.test('close() rejects pending requests and is idempotent', async (t) => {
  const { client, peer } = await setup(t);
  const ping = client.ping();
  await peer.next();
  const closing = client.close();
  const err = await rejection(ping);
  t.equal(err.name, 'TransportError');
  t.equal(err.code, 'MSB_ERR_TRANSPORT_CLOSED');
  await closing;
  await client.close();
  await peer.closed;
});

t.test('an agent of generation 5 gets no ping or touch: refused locally, nothing sent', async (t) => {
  const { client, peer } = await setup(t, Buffer.concat([rangePrefix(1, 100), readyFrame(5)]));
  t.equal(client.version, 5);
  for (const p of [client.ping(), client.touch()]) {
    const err = await rejection(p);
    t.equal(err.name, 'ProtocolError');
    t.equal(err.code, 'MSB_ERR_UNKNOWN_MESSAGE');
    t.match(err.message, 'generation 6');
  }
  // exec is generation 1: it goes out, on id 1 (the refused requests took no id).
  void client.exec({ cmd: 'true' }).catch(() => {});
  const f = await peer.next();
  t.equal(f.message.type, 'execRequest');
  t.equal(f.id, 1);
  t.equal(peer.frames.length, 1);
});
