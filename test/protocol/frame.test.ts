import t from 'tap';
import { ProtocolError } from '../../ts/errors.js';
import {
  FLAG_SESSION_START,
  FLAG_SHUTDOWN,
  FLAG_TERMINAL,
  FRAME_HEADER_SIZE,
  KNOWN_FLAGS_MASK,
  LENGTH_PREFIX_SIZE,
  MAX_FRAME_SIZE,
  checkFrameLength,
  encodeFrame,
  encodeFrameHeader,
} from '../../ts/protocol/frame.js';
import { hex } from '../fixtures/protocol-helpers.js';

t.test('constants match the spec (PROTOCOL Appendix A)', async (t) => {
  t.equal(MAX_FRAME_SIZE, 4_194_304);
  t.equal(FRAME_HEADER_SIZE, 5);
  t.equal(LENGTH_PREFIX_SIZE, 4);
  t.equal(FLAG_TERMINAL, 0x01);
  t.equal(FLAG_SESSION_START, 0x02);
  t.equal(FLAG_SHUTDOWN, 0x04);
  t.equal(KNOWN_FLAGS_MASK, 0x07);
});

t.test('encodeFrame writes len (5 + body), id and flags big-endian, then the body', async (t) => {
  const frame = encodeFrame({ id: 0x01020304, flags: FLAG_TERMINAL, body: hex('a0 f6') });
  t.ok(frame.equals(hex('00000007 01020304 01 a0f6')));
  t.ok(encodeFrame({ id: 0xffffffff, flags: 0xff, body: new Uint8Array(0) }).equals(hex('00000005 ffffffff ff')));
});

t.test('encodeFrameHeader matches the first 9 bytes of encodeFrame', async (t) => {
  const body = Buffer.from('hello');
  const header = encodeFrameHeader(9, FLAG_SESSION_START, body.length);
  t.ok(Buffer.concat([header, body]).equals(encodeFrame({ id: 9, flags: FLAG_SESSION_START, body })));
});

t.test('the largest frame is accepted, one byte more is refused with nothing written', async (t) => {
  const largest = encodeFrameHeader(1, 0, MAX_FRAME_SIZE - FRAME_HEADER_SIZE);
  t.equal(largest.readUInt32BE(0), MAX_FRAME_SIZE);
  t.throws(() => encodeFrame({ id: 1, flags: 0, body: Buffer.alloc(MAX_FRAME_SIZE - FRAME_HEADER_SIZE + 1) }), {
    name: 'ProtocolError',
    code: 'MSB_ERR_FRAME_TOO_LARGE',
  });
});

t.test('ids and flags outside u32 / u8 are refused', async (t) => {
  for (const id of [-1, 2 ** 32, 1.5, Number.NaN]) {
    t.throws(() => encodeFrameHeader(id, 0, 0), { code: 'MSB_ERR_BAD_FRAME' }, `id ${id}`);
  }
  for (const flags of [-1, 256, 0.5]) {
    t.throws(() => encodeFrameHeader(0, flags, 0), { code: 'MSB_ERR_BAD_FRAME' }, `flags ${flags}`);
  }
});

t.test('checkFrameLength returns the whole frame size or throws a ProtocolError', async (t) => {
  t.equal(checkFrameLength(5), 9);
  t.equal(checkFrameLength(MAX_FRAME_SIZE), MAX_FRAME_SIZE + 4);
  const tooLarge = t.throws(() => checkFrameLength(MAX_FRAME_SIZE + 1));
  t.ok(tooLarge instanceof ProtocolError);
  t.equal((tooLarge as ProtocolError).code, 'MSB_ERR_FRAME_TOO_LARGE');
  t.throws(() => checkFrameLength(4), { code: 'MSB_ERR_BAD_FRAME' });
  t.throws(() => checkFrameLength(0), { code: 'MSB_ERR_BAD_FRAME' });
});
