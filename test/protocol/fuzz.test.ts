/**
 * Seeded fuzzing of the decoder and message layers. Bad input from a peer must never crash the
 * agent: the frame decoder may only throw ProtocolError (a fatal, connection-level error), and
 * decodeMessage must never throw at all. Anything decodeMessage accepts must also be re-sendable:
 * encodeMessage takes it without complaint and decoding that gives the same message back.
 */

import { isDeepStrictEqual } from 'node:util';
import t, { type Test } from 'tap';
import { ProtocolError } from '../../ts/errors.js';
import { FrameDecoder } from '../../ts/protocol/decoder.js';
import { decodeEnvelope, decodeMessage, encodeMessage, type MessageResult } from '../../ts/protocol/envelope.js';
import type { Frame } from '../../ts/protocol/frame.js';
import { MESSAGE_TYPES } from '../../ts/protocol/messages.js';
import { VECTORS, canonical, createMutator, createRandom, envelopeFrame, rawFrame } from '../fixtures/protocol-helpers.js';

const random = createRandom(0xf022);
const { randomByte, mutate } = createMutator(random);

/** Bytes that often start or fill CBOR items of interest. */


function frameOf(body: Buffer, id = random.int(2 ** 32), flags = random.int(8)): Frame {
  return { id, flags, body };
}

interface Tally {
  accepted: number;
  rejected: Map<string, number>;
}

/** decodeMessage must not throw; accepted messages must survive encode → decode unchanged. */
function check(t: Test, frame: Frame, tally: Tally): void {
  let result: MessageResult;
  try {
    result = decodeMessage(frame);
  } catch (err) {
    t.fail(`decodeMessage threw ${String(err)} for ${frame.body.toString('hex')}`);
    return;
  }
  if (!result.ok) {
    const { kind, error } = result.rejection;
    tally.rejected.set(kind, (tally.rejected.get(kind) ?? 0) + 1);
    if (!(error instanceof ProtocolError)) t.fail(`rejection without a ProtocolError for ${frame.body.toString('hex')}`);
    return;
  }
  tally.accepted += 1;
  const { message } = result;
  let again: Buffer;
  try {
    again = encodeMessage(message.id, message, { version: message.version });
  } catch (err) {
    t.fail(`accepted ${message.type} but cannot re-encode it (${String(err)}): ${frame.body.toString('hex')}`);
    return;
  }
  const decoder = new FrameDecoder();
  decoder.push(again);
  const reread = decodeMessage(decoder.readFrame()!);
  if (!reread.ok) {
    t.fail(`re-encoded ${message.type} is rejected: ${reread.rejection.error.message}`);
    return;
  }
  // The flags may differ in reserved bits only; everything else must be identical.
  if (!isDeepStrictEqual({ ...reread.message, flags: 0 }, { ...message, flags: 0 })) {
    t.fail(`${message.type} changed in a round trip: ${frame.body.toString('hex')}`);
  }
}

function newTally(): Tally {
  return { accepted: 0, rejected: new Map() };
}

t.test('random bodies never make decodeMessage throw', async (t) => {
  const tally = newTally();
  for (let i = 0; i < 3000; i++) {
    const body = Buffer.from(Array.from({ length: random.int(48) }, randomByte));
    check(t, frameOf(body), tally);
  }
  t.ok(tally.rejected.get('malformed_message')! > 0);
});

t.test('mutated vector bodies never make decodeMessage throw', async (t) => {
  const tally = newTally();
  for (let i = 0; i < 6000; i++) {
    const v = VECTORS[random.int(VECTORS.length)]!;
    const body = i % 4 === 0 ? v.bytes.subarray(9) : mutate(v.bytes.subarray(9));
    check(t, frameOf(body, v.id, random.next() < 0.8 ? v.flags : random.int(256)), tally);
  }
  t.ok(tally.accepted > 1000, `accepted ${tally.accepted}`);
  for (const kind of ['malformed_message', 'invalid_flags', 'invalid_payload']) {
    t.ok((tally.rejected.get(kind) ?? 0) > 0, `saw ${kind}`);
  }
});

t.test('mutated payloads inside valid envelopes never make decodeMessage throw', async (t) => {
  const tally = newTally();
  for (let i = 0; i < 8000; i++) {
    const v = VECTORS[random.int(VECTORS.length)]!;
    const decoded = decodeEnvelope({ id: v.id, flags: v.flags, body: v.bytes.subarray(9) });
    if (!decoded.ok) throw decoded.rejection.error;
    const payload = mutate(decoded.envelope.payload);
    check(t, { id: v.id, flags: v.flags, body: envelopeFrame(v.id, v.flags, 7, v.type, payload).subarray(9) }, tally);
  }
  t.ok(tally.accepted > 500, `accepted ${tally.accepted}`);
  t.ok((tally.rejected.get('invalid_payload') ?? 0) > 1000);
});

t.test('random CBOR payloads of every type never make decodeMessage throw', async (t) => {
  const keys = ['cmd', 'args', 'data', 'rows', 'cols', 'op', 'Stat', 'path', 'kind', 'message', 'errno', 'ok', 'x'];
  const randomValue = (depth: number): unknown => {
    const r = random.next();
    if (depth > 3 || r < 0.25) return [0, 1, 24, 70000, 2 ** 40, -1, -(2 ** 33)][random.int(7)];
    if (r < 0.4) return ['', 'a', 'core.ping', 'Stat', 'not_found'][random.int(5)];
    if (r < 0.5) return random.bytes(random.int(6));
    if (r < 0.6) return [null, true, false][random.int(3)];
    if (r < 0.75) return Array.from({ length: random.int(4) }, () => randomValue(depth + 1));
    const out: Record<string, unknown> = {};
    for (let n = random.int(4); n > 0; n--) out[keys[random.int(keys.length)]!] = randomValue(depth + 1);
    return out;
  };
  const tally = newTally();
  for (let i = 0; i < 4000; i++) {
    const info = MESSAGE_TYPES[random.int(MESSAGE_TYPES.length)]!;
    check(t, frameOf(envelopeFrame(1, info.flags, 7, info.wire, canonical(randomValue(0))).subarray(9), 1, info.flags), tally);
  }
  t.ok(tally.accepted > 100, `accepted ${tally.accepted}`);
});

t.test('random and truncated byte streams make the frame decoder throw only ProtocolError', async (t) => {
  let fatal = 0;
  let frames = 0;
  const tally = newTally();
  for (let i = 0; i < 2000; i++) {
    const parts: Buffer[] = [];
    for (let n = 1 + random.int(4); n > 0; n--) {
      const r = random.next();
      if (r < 0.4) parts.push(VECTORS[random.int(VECTORS.length)]!.bytes);
      else if (r < 0.7) parts.push(mutate(VECTORS[random.int(VECTORS.length)]!.bytes));
      else if (r < 0.85) parts.push(rawFrame(random.int(10), random.int(256), random.bytes(random.int(40))));
      else parts.push(random.bytes(random.int(16)));
    }
    const stream = Buffer.concat(parts).subarray(0, random.next() < 0.3 ? undefined : random.int(200));
    const decoder = new FrameDecoder();
    try {
      for (let at = 0; at < stream.length; ) {
        const n = 1 + random.int(32);
        decoder.push(stream.subarray(at, at + n));
        at += n;
        for (let f = decoder.readFrame(); f !== null; f = decoder.readFrame()) {
          frames += 1;
          check(t, f, tally);
        }
      }
      decoder.end();
    } catch (err) {
      if (!(err instanceof ProtocolError)) {
        t.fail(`frame decoder threw ${String(err)} for ${stream.toString('hex')}`);
        continue;
      }
      if (!['MSB_ERR_FRAME_TOO_LARGE', 'MSB_ERR_BAD_FRAME'].includes(err.code)) t.fail(`unexpected code ${err.code}`);
      fatal += 1;
    }
  }
  t.ok(fatal > 100, `fatal ${fatal}`);
  t.ok(frames > 1000, `frames ${frames}`);
});

t.test('after all the fuzzing, every vector still decodes and re-encodes exactly', async (t) => {
  for (const v of VECTORS.filter((x) => x.exact)) {
    const decoder = new FrameDecoder();
    decoder.push(v.bytes);
    const result = decodeMessage(decoder.readFrame()!);
    t.ok(result.ok && encodeMessage(v.id, result.message).equals(v.bytes), v.name);
  }
});
