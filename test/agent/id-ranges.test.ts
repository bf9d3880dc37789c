// Correlation-id ranges of the relay handshake (PROTOCOL §6.1-6.2, §6.6): the slot formulas, the
// owner of an id, the lowest-free allocator with its 128-client limit, the handshake prefix bytes,
// and the same rules seen end to end through a unix socket (a 129th client is closed without a
// handshake; a freed slot is reused lowest first; ids at the edges of a range are fenced).
import t from 'tap';
import { connect } from 'node:net';
import { once } from 'node:events';

import {
  ID_STEP,
  MAX_CLIENTS,
  SlotAllocator,
  encodeHandshakePrefix,
  inRange,
  rangeOfSlot,
  slotOfId,
} from '../../ts/agent/id-ranges.js';
import { rawConnect } from '../fixtures/raw-client.js';
import { eventually } from '../fixtures/harness.js';
import { startAgentOnSocket } from '../fixtures/agent-on-socket.js';

t.test('constants: 128 clients, STEP = floor((2^32 - 1) / 128)', async (t) => {
  t.equal(MAX_CLIENTS, 128);
  t.equal(ID_STEP, 33_554_431);
  t.equal(ID_STEP, 0x01ff_ffff);
});

t.test('slot formulas match the PROTOCOL §6.2 table', async (t) => {
  t.strictSame(rangeOfSlot(0), { slot: 0, idStart: 1, idEndExclusive: 33_554_431 });
  t.strictSame(rangeOfSlot(1), { slot: 1, idStart: 33_554_432, idEndExclusive: 67_108_862 });
  t.strictSame(rangeOfSlot(2), { slot: 2, idStart: 67_108_863, idEndExclusive: 100_663_293 });
  t.strictSame(rangeOfSlot(127), { slot: 127, idStart: 4_261_412_738, idEndExclusive: 4_294_967_168 });
  let problems = 0;
  for (let s = 0; s < MAX_CLIENTS; s++) {
    const r = rangeOfSlot(s);
    const ok =
      r.idStart === s * ID_STEP + 1 &&
      r.idEndExclusive === (s + 1) * ID_STEP &&
      r.idEndExclusive <= 0xffff_ffff &&
      (s === 0 || r.idStart === rangeOfSlot(s - 1).idEndExclusive + 1);
    if (!ok) problems++;
  }
  t.equal(problems, 0, 'ranges are disjoint, ordered, and each leaves out exactly the multiple of STEP');
});

t.test('slotOfId: edges of every range, id 0, multiples of STEP and ids past the last range', async (t) => {
  const cases: [number, number | null][] = [
    [0, null],
    [1, 0],
    [ID_STEP - 1, 0],
    [ID_STEP, null],
    [ID_STEP + 1, 1],
    [2 * ID_STEP - 1, 1],
    [2 * ID_STEP, null],
    [2 * ID_STEP + 1, 2],
    [127 * ID_STEP, null],
    [127 * ID_STEP + 1, 127],
    [4_294_967_167, 127],
    [4_294_967_168, null],
    [4_294_967_169, null],
    [0xffff_ffff, null],
  ];
  for (const [id, slot] of cases) t.equal(slotOfId(id), slot, `slotOfId(${id})`);
});

t.test('slotOfId agrees with inRange and with the relay formula min(id / STEP, 127) inside every range', async (t) => {
  let problems = 0;
  for (let s = 0; s < MAX_CLIENTS; s++) {
    const r = rangeOfSlot(s);
    for (const id of [r.idStart, r.idStart + 1, r.idStart + 12345, r.idEndExclusive - 1]) {
      const relay = Math.min(Math.floor(id / ID_STEP), 127);
      if (slotOfId(id) !== s || relay !== s || !inRange(r, id)) problems++;
    }
    if (inRange(r, r.idStart - 1) || inRange(r, r.idEndExclusive)) problems++;
  }
  t.equal(problems, 0);
});

t.test('the allocator hands out the lowest free slot and refuses the 129th', async (t) => {
  const a = new SlotAllocator();
  const taken = Array.from({ length: MAX_CLIENTS }, () => a.take()?.slot);
  t.strictSame(taken, Array.from({ length: MAX_CLIENTS }, (_, i) => i), 'slots 0..127 in order');
  t.equal(a.inUse, 128);
  t.equal(a.take(), null, 'no 129th slot');
  a.release(77);
  a.release(5);
  a.release(40);
  t.equal(a.inUse, 125);
  t.strictSame(a.take(), rangeOfSlot(5), 'lowest free first');
  t.equal(a.take()?.slot, 40);
  t.equal(a.take()?.slot, 77);
  t.equal(a.take(), null);
  a.release(200);
  t.equal(a.inUse, 128, 'releasing a slot that was never taken changes nothing');
});

t.test('handshake prefix bytes: [id_start u32 BE][id_end_exclusive u32 BE]', async (t) => {
  t.equal(encodeHandshakePrefix(rangeOfSlot(0)).toString('hex'), '00000001' + '01ffffff');
  t.equal(encodeHandshakePrefix(rangeOfSlot(1)).toString('hex'), '02000000' + '03fffffe');
  t.equal(encodeHandshakePrefix(rangeOfSlot(2)).toString('hex'), '03ffffff' + '05fffffd');
  t.equal(encodeHandshakePrefix(rangeOfSlot(127)).toString('hex'), 'fdffff82' + 'ffffff80');
  // The Rust client misreads a prefix as the legacy form when 5 <= second <= 4 MiB and
  // (first == 0 or first >= second) (PROTOCOL §6.1). No slot may produce that.
  let legacyLooking = 0;
  for (let s = 0; s < MAX_CLIENTS; s++) {
    const p = encodeHandshakePrefix(rangeOfSlot(s));
    const first = p.readUInt32BE(0);
    const second = p.readUInt32BE(4);
    if (second >= 5 && second <= 4_194_304 && (first === 0 || first >= second)) legacyLooking++;
    if (!(first < second) || second - Math.max(1, first) <= 0) legacyLooking++;
  }
  t.equal(legacyLooking, 0, 'every prefix passes the TypeScript and Rust client checks');
});

t.test('end to end over a unix socket', async (t) => {
  const { agent, path, dir, clients } = await startAgentOnSocket(t, 'ids', { graceMs: 200 });

  t.test('128 clients get slots 0..127 in order; the 129th is closed with no handshake byte', async (t) => {
    for (let s = 0; s < MAX_CLIENTS; s++) clients.push(await rawConnect(path));
    t.strictSame(
      clients.map((c) => [c.idStart, c.idEnd]),
      Array.from({ length: MAX_CLIENTS }, (_, s) => [rangeOfSlot(s).idStart, rangeOfSlot(s).idEndExclusive]),
    );
    const extra = connect(path);
    let bytes = 0;
    extra.on('data', (b: Buffer) => (bytes += b.length));
    extra.on('error', () => {});
    await once(extra, 'close');
    t.equal(bytes, 0, 'not a single byte before the close');
    t.equal(agent.connectionCount, 128);
    const last = clients[127]!;
    last.send(last.idEnd - 1, { type: 'ping', payload: {} });
    t.equal((await last.next((m) => m.id === last.idEnd - 1)).type, 'pong', 'slot 127 is served at its last id');
  });

  t.test('freed slots are reused lowest first, with the same range', async (t) => {
    clients[9]!.close();
    clients[3]!.close();
    t.ok(await eventually(() => agent.connectionCount === 126, 5000), 'the agent saw both disconnects');
    const a = await rawConnect(path);
    const b = await rawConnect(path);
    t.strictSame([a.idStart, a.idEnd], [rangeOfSlot(3).idStart, rangeOfSlot(3).idEndExclusive]);
    t.strictSame([b.idStart, b.idEnd], [rangeOfSlot(9).idStart, rangeOfSlot(9).idEndExclusive]);
    clients[3] = a;
    clients[9] = b;
  });

  t.test('ids just outside a range are fenced with core.error(invalid_session)', async (t) => {
    const c = clients[1]!;
    for (const id of [c.idStart - 1, c.idEnd, 1, 0xffff_ffff]) {
      c.send(id, { type: 'ping', payload: {} });
      const m = await c.next((x) => x.id === id);
      t.equal(m.type, 'error', `id ${id}`);
      t.match(m.payload, { kind: 'invalid_session', offendingType: 'core.ping' });
    }
    for (const id of [c.idStart, c.idEnd - 1]) {
      c.send(id, { type: 'ping', payload: {} });
      t.equal((await c.next((x) => x.id === id)).type, 'pong', `id ${id} is inside`);
    }
    // Id 0 is for control frames, answered on this connection (PROTOCOL §6.6).
    c.send(0, { type: 'ping', payload: {} });
    t.equal((await c.next((x) => x.id === 0)).type, 'pong', 'id 0 ping answered');
  });
});
