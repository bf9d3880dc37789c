import t from 'tap';
import { CborFloat, decodeCbor, encodeCbor, type CborValue } from '../../ts/protocol/cbor.js';
import { MAX_DEPTH, parseCbor } from '../../ts/protocol/cbor-parse.js';
import { canonical, createRandom, hex } from '../fixtures/protocol-helpers.js';

function encHex(value: CborValue): string {
  return encodeCbor(value).toString('hex');
}

t.test('integers get the shortest head at every boundary (PROTOCOL §2.3 rule 1)', async (t) => {
  const cases: [number | bigint, string][] = [
    [0, '00'],
    [23, '17'],
    [24, '1818'],
    [255, '18ff'],
    [256, '190100'],
    [65535, '19ffff'],
    [65536, '1a00010000'],
    [4294967295, '1affffffff'],
    [4294967296, '1b0000000100000000'],
    [5000000000, '1b000000012a05f200'],
    [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    [2n ** 64n - 1n, '1bffffffffffffffff'],
    [5n, '05'],
    [-1, '20'],
    [-24, '37'],
    [-25, '3818'],
    [-256, '38ff'],
    [-257, '390100'],
    [-4294967296, '3affffffff'],
    [-4294967297, '3b0000000100000000'],
    [-(2n ** 63n), '3b7fffffffffffffff'],
    [-(2n ** 64n) + 1n, '3bfffffffffffffffe'],
  ];
  for (const [value, want] of cases) t.equal(encHex(value), want, String(value));
  t.equal(encHex(-0), '00', '-0 is the integer 0');
});

t.test('strings, byte strings, arrays and maps use shortest definite heads', async (t) => {
  t.equal(encHex(''), '60');
  t.equal(encHex('x'.repeat(24)), '7818' + '78'.repeat(24));
  t.equal(encHex('é'), '62c3a9');
  t.equal(encHex(Buffer.from([1, 2])), '420102');
  t.equal(encHex(Uint8Array.from([1, 2])), '420102', 'a bare Uint8Array gets no tag 64');
  t.equal(encHex(new Uint8Array(new ArrayBuffer(8), 2, 3)), '43000000', 'views keep their offset');
  t.equal(encHex([]), '80');
  t.equal(encHex({}), 'a0');
  t.equal(encHex({ b: 1, a: [true, false, null] }), 'a2616201616183f5f4f6', 'insertion order');
  const big = Object.fromEntries(Array.from({ length: 24 }, (_, i) => [`k${i}`, i]));
  t.equal(encHex(big).slice(0, 4), 'b818', '24 entries: one-byte map head, not b9 0018');
});

t.test('undefined object properties are left out', async (t) => {
  t.equal(encHex({ a: 1, b: undefined }), 'a1616101');
});

t.test('a __proto__ key is an ordinary key both ways', async (t) => {
  const value = JSON.parse('{"__proto__": 1, "a": 2}') as CborValue;
  const bytes = encodeCbor(value);
  t.ok(bytes.equals(canonical(value)));
  const back = decodeCbor(bytes) as Record<string, unknown>;
  t.strictSame(Object.keys(back), ['__proto__', 'a']);
  t.equal(back['__proto__'], 1);
  t.equal(Object.getPrototypeOf(back), Object.prototype);
  t.equal(({} as Record<string, unknown>)['a'], undefined, 'Object.prototype untouched');
});

t.test('lone surrogates are written as U+FFFD, never as invalid UTF-8', async (t) => {
  t.equal(encHex('a\ud83d'), '6461efbfbd');
  t.equal(encHex('\ude00b'), '64efbfbd62');
  t.equal(encHex('😀'), '64f09f9880', 'pairs are kept');
});

t.test('values the protocol cannot carry are refused with MSB_ERR_BAD_CBOR', async (t) => {
  const bad: unknown[] = [
    1.5,
    Number.NaN,
    Infinity,
    2 ** 53,
    -(2 ** 53),
    2n ** 64n,
    -(2n ** 64n),
    [undefined],
    undefined,
    new Date(0),
    new Map(),
    Symbol('x'),
    () => 1,
    { nested: [1, { deeper: 0.1 }] },
  ];
  for (const value of bad) {
    t.throws(() => encodeCbor(value as CborValue), { name: 'ProtocolError', code: 'MSB_ERR_BAD_CBOR' }, String(value));
  }
  t.throws(() => encodeCbor({ nested: [1, { deeper: 0.1 }] }), { message: /\$\.nested\[1\]\.deeper/ });
});

t.test('u64 beyond 2^53 round-trips as BigInt, safe integers as numbers', async (t) => {
  for (const value of [2n ** 53n, 2n ** 64n - 1n, 18446744073709551615n, -(2n ** 63n)]) {
    t.equal(decodeCbor(encodeCbor(value)), value);
  }
  t.equal(decodeCbor(encodeCbor(2n ** 53n - 1n)), Number.MAX_SAFE_INTEGER);
  t.equal(decodeCbor(encodeCbor(-(2n ** 53n) + 1n)), -Number.MAX_SAFE_INTEGER);
  t.equal(decodeCbor(hex('3b 001fffffffffffff')), -(2n ** 53n), '-(2^53) is not safe: bigint');
});

t.test('encodeCbor matches an independent canonical writer on random values (seeded)', async (t) => {
  const random = createRandom(0xcb0);
  const lengths = [0, 1, 22, 23, 24, 25, 31, 32, 255, 256, 300];
  const chars = ['a', 'é', '€', '😀', '\u0000', '\u07ff', '\u0800', '\uffff'];
  const randomText = (): string => {
    const n = lengths[random.int(lengths.length)]!;
    let s = '';
    while (s.length < n) s += chars[random.int(chars.length)];
    return s;
  };
  const randomInt = (): number | bigint => {
    const bases = [0, 1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1];
    const n = bases[random.int(bases.length)]! + random.int(3) - 1;
    const signed = random.next() < 0.3 ? -n : n;
    return Number.isSafeInteger(signed) ? signed : BigInt(signed);
  };
  const randomValue = (depth: number): CborValue => {
    const r = random.next();
    if (depth > 2 || r < 0.3) return randomInt();
    if (r < 0.45) return randomText();
    if (r < 0.55) return random.bytes(lengths[random.int(lengths.length)]!);
    if (r < 0.6) return [null, true, false][random.int(3)]!;
    if (r < 0.8) return Array.from({ length: random.int(30) }, () => randomValue(depth + 1));
    const out: Record<string, CborValue> = {};
    for (let i = random.int(30); i > 0; i--) out[`k${i}${randomText().slice(0, 3)}`] = randomValue(depth + 1);
    return out;
  };
  let mismatches = 0;
  for (let i = 0; i < 1000; i++) {
    const value = randomValue(0);
    if (!encodeCbor(value).equals(canonical(value))) mismatches++;
  }
  t.equal(mismatches, 0);
});

t.test('decoding accepts the tolerances of PROTOCOL §2.4', async (t) => {
  t.equal(decodeCbor(hex('1b 0000000000000005')), 5, 'non-shortest 1b head');
  t.equal(decodeCbor(hex('19 0005')), 5);
  t.strictSame(decodeCbor(hex('b9 0001 6161 01')), { a: 1 }, '16-bit map head');
  t.strictSame(decodeCbor(hex('bf 6161 01 6162 9f 01 02 ff ff')), { a: 1, b: [1, 2] }, 'indefinite map and array');
  t.equal(decodeCbor(hex('7f 62 6869 61 21 ff')), 'hi!', 'indefinite text');
  t.strictSame(decodeCbor(hex('5f 41 01 42 0203 ff')), Buffer.from([1, 2, 3]), 'indefinite bytes');
  t.strictSame(decodeCbor(hex('5f ff')), Buffer.alloc(0));
  t.strictSame(decodeCbor(hex('d840 42 0102')), Buffer.from([1, 2]), 'tag 64');
  t.strictSame(decodeCbor(hex('d9d9f7 a1 6161 01')), { a: 1 }, 'self-describe tag');
  t.strictSame(decodeCbor(hex('c1 1a 5f5e1000')), 1600000000, 'tag 1 is ignored, not a Date');
  t.strictSame(decodeCbor(hex('a1 d8 20 6161 db 0000000000001234 01')), { a: 1 }, 'tags on keys and values');
  t.equal(decodeCbor(hex('f7')), undefined);
  t.equal(decodeCbor(hex('f6')), null);
  t.strictSame(decodeCbor(hex('a0 ff ff 00')), {}, 'trailing bytes');
  t.strictSame(parseCbor(hex('01 02')), { value: 1, end: 1 });
  t.equal(decodeCbor(hex('63 efbbbf')), '\ufeff', 'a leading BOM is kept');
});

t.test('floats decode as CborFloat, never as integers', async (t) => {
  const cases: [string, number][] = [
    ['f9 4e00', 24],
    ['f9 3c00', 1],
    ['f9 0001', 2 ** -24],
    ['f9 7c00', Infinity],
    ['f9 fc00', -Infinity],
    ['fa 47c35000', 100000],
    ['fb 41f2a05f20000000', 5000000000],
  ];
  for (const [bytes, value] of cases) {
    const got = decodeCbor(hex(bytes));
    t.ok(got instanceof CborFloat, bytes);
    t.equal((got as CborFloat).value, value, bytes);
  }
  t.ok(Number.isNaN((decodeCbor(hex('f9 7e00')) as CborFloat).value));
});

t.test('malformed input is a ProtocolError MSB_ERR_BAD_CBOR', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /end of input/],
    ['18', /past the end/],
    ['62 61', /past the end/],
    ['82 01', /more items/],
    ['82 61 61', /end of input/],
    ['9b ffffffffffffffff 00', /more items/],
    ['bb 0000000100000000 00', /more items/],
    ['5b ffffffffffffffff', /past the end/],
    ['1c', /reserved/],
    ['5f 61 61 ff', /wrong type/],
    ['7f 5f ff ff', /wrong type/],
    ['7f 61', /past the end|not terminated/],
    ['9f 01', /not terminated/],
    ['ff', /unexpected break/],
    ['3f', /indefinite length is not allowed/],
    ['df 00', /indefinite length is not allowed/],
    ['f8 20', /unsupported simple value/],
    ['e0', /unsupported simple value/],
    ['fc', /unsupported simple value/],
    ['62 c328', /not valid UTF-8/],
    ['7f 61 c3 61 a9 ff', /not valid UTF-8/],
    ['a1 01 02', /not a text string/],
    ['a2 6161 01 6161 02', /duplicate map key "a"/],
    ['a1 6161', /end of input/],
  ];
  for (const [bytes, message] of bad) {
    t.throws(() => decodeCbor(hex(bytes)), { name: 'ProtocolError', code: 'MSB_ERR_BAD_CBOR', message }, bytes);
  }
});

t.test(`nesting deeper than ${MAX_DEPTH} is refused without a stack overflow`, async (t) => {
  const ok = Buffer.concat([Buffer.alloc(MAX_DEPTH, 0x81), hex('00')]);
  let value = decodeCbor(ok);
  for (let i = 0; i < MAX_DEPTH; i++) value = (value as unknown[])[0];
  t.equal(value, 0);
  const deep = Buffer.concat([Buffer.alloc(MAX_DEPTH + 1, 0x81), hex('00')]);
  t.throws(() => decodeCbor(deep), { code: 'MSB_ERR_BAD_CBOR', message: /nesting/ });
  t.throws(() => decodeCbor(Buffer.alloc(100_000, 0xc6)), { code: 'MSB_ERR_BAD_CBOR', message: /nesting/ }, 'tags');
  t.throws(() => decodeCbor(Buffer.alloc(100_000, 0x9f)), { code: 'MSB_ERR_BAD_CBOR' }, 'indefinite arrays');
});

t.test('byte strings are views into the input, and a plain Uint8Array input works', async (t) => {
  const input = hex('43 010203');
  const out = decodeCbor(input) as Buffer;
  t.equal(out.buffer, input.buffer);
  t.strictSame(decodeCbor(new Uint8Array([0x43, 1, 2, 3])), Buffer.from([1, 2, 3]));
});
