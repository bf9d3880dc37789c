import t from 'tap';
import { ProtocolError } from '../../ts/errors.js';
import { decodeCbor } from '../../ts/protocol/cbor.js';
import { FrameDecoder } from '../../ts/protocol/decoder.js';
import {
  canReceiveCoreError,
  decodeEnvelope,
  decodeMessage,
  decodePayload,
  encodeMessage,
  encodePayload,
  toCoreError,
  type MessageRejection,
  type ReceivedMessage,
} from '../../ts/protocol/envelope.js';
import { MAX_FRAME_SIZE, type Frame } from '../../ts/protocol/frame.js';
import { lookupMessageType, type MessageName, type Payloads } from '../../ts/protocol/messages.js';
import { VECTORS, canonical, envelopeFrame, findVector, hex, rawFrame } from '../fixtures/protocol-helpers.js';

function toFrame(bytes: Buffer): Frame {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const frame = decoder.readFrame();
  decoder.end();
  if (frame === null) throw new Error('incomplete frame');
  return frame;
}

function decodeOk(bytes: Buffer): ReceivedMessage {
  const result = decodeMessage(toFrame(bytes));
  if (!result.ok) throw result.rejection.error;
  return result.message;
}

function decodeRejected(bytes: Buffer): MessageRejection {
  const result = decodeMessage(toFrame(bytes));
  if (result.ok) throw new Error(`accepted: ${result.message.type}`);
  return result.rejection;
}

/** The wire `t` of a message name (tests use names, like the rest of the code). */
function wire(name: MessageName): string {
  return lookupMessageType(name).wire;
}

t.test('every exact vector decodes and re-encodes byte-identically', async (t) => {
  const exact = VECTORS.filter((v) => v.exact);
  t.equal(exact.length, 27);
  for (const v of exact) {
    const message = decodeOk(v.bytes);
    t.equal(message.id, v.id, `${v.name} id`);
    t.equal(message.flags, v.flags, `${v.name} flags`);
    t.equal(message.version, 7, `${v.name} v`);
    t.equal(wire(message.type), v.type, `${v.name} type`);
    const again = encodeMessage(message.id, message, { version: message.version });
    t.ok(again.equals(v.bytes), `${v.name} bytes`);
    if (!again.equals(v.bytes)) t.comment(`want ${v.hex}\ngot  ${again.toString('hex')}`);
  }
});

t.test('exact vectors decode to the values their descriptions state', async (t) => {
  const payload = (name: string): unknown => decodeOk(findVector(name).bytes).payload;
  t.strictSame(payload('core.ready'), {
    bootTimeNs: 123456789,
    initTimeNs: 45678901,
    readyTimeNs: 5000000000,
    agentVersion: '0.6.14',
  });
  t.strictSame(payload('core.ready.no_agent_version'), { bootTimeNs: 1000, initTimeNs: 2000, readyTimeNs: 3000, agentVersion: '' });
  t.strictSame(payload('core.init.resolved'), { defaultUser: { uid: 1000, gid: 1000 } });
  t.strictSame(payload('core.init.ack'), {});
  t.strictSame(payload('core.exec.request.pipe'), {
    cmd: '/bin/sh',
    args: ['-c', 'echo hi; echo err >&2'],
    env: ['FOO=bar', 'PATH=/usr/bin:/bin'],
    cwd: null,
    user: null,
    tty: false,
    rows: 24,
    cols: 80,
    rlimits: [{ resource: 'nofile', soft: 1024, hard: 4096 }],
  });
  t.strictSame(payload('core.exec.request.tty'), {
    cmd: 'bash',
    args: ['-l'],
    env: ['TERM=xterm-256color'],
    cwd: '/workspace',
    user: 'alice:developers',
    tty: true,
    rows: 40,
    cols: 120,
    rlimits: [
      { resource: 'nproc', soft: 256, hard: 512 },
      { resource: 'as', soft: 8589934592, hard: 8589934592 },
    ],
  });
  t.strictSame(payload('core.exec.started'), { pid: 4242 });
  t.strictSame(payload('core.exec.stdin.eof'), { data: Buffer.alloc(0) });
  t.strictSame(payload('core.exec.stdout.binary'), {
    data: hex('00fffe1b5b33316d68691b5b306d0d0ac328'),
  });
  t.strictSame(payload('core.exec.stdin.error'), {
    errno: 32,
    errnoName: 'EPIPE',
    message: 'io error: Broken pipe (os error 32)',
  });
  t.strictSame(payload('core.exec.exited'), { code: 0, signal: null });
  t.strictSame(payload('core.exec.exited.signal'), { code: -1, signal: null });
  t.strictSame(payload('core.exec.failed'), {
    kind: 'not_found',
    errno: 2,
    errnoName: 'ENOENT',
    message: 'spawn "nope": No such file or directory (os error 2)',
    stage: 'execvp',
  });
  t.strictSame(payload('core.exec.failed.other'), {
    kind: 'other',
    errno: null,
    errnoName: null,
    message: 'exec session error: guest user not found: bob',
    stage: null,
  });
  t.strictSame(payload('core.exec.signal'), { signal: 15 });
  t.strictSame(payload('core.error.invalid_payload'), {
    kind: 'invalid_payload',
    message: 'decode payload for core.exec.request: Semantic(None, "missing field `cmd`")',
    offendingType: wire('execRequest'),
  });
  t.strictSame(payload('core.fs.request.stat'), { op: { type: 'stat', path: '/etc/hostname', followSymlink: true } });
  t.strictSame(payload('core.fs.response.stat'), {
    ok: true,
    error: null,
    data: {
      type: 'stat',
      entry: {
        path: '/etc/hostname',
        kind: 'file',
        size: 8,
        mode: 0o100644,
        modified: 1700000000,
        uid: 0,
        gid: 0,
        atime: 1700000100,
        mtime: 1700000000,
      },
    },
  });
  t.strictSame(payload('core.fs.request.open_file'), {
    op: {
      type: 'openFile',
      path: '/tmp/out.txt',
      options: { read: false, write: true, append: false, create: true, truncate: true, createNew: false, mode: 0o644 },
    },
  });
  t.strictSame(payload('core.fs.response.handle'), { ok: true, error: null, data: { type: 'handle', handle: 1 } });
  t.strictSame(payload('core.fs.request.write'), { op: { type: 'write', handle: 1, offset: 0, len: 5 } });
  t.strictSame(payload('core.fs.data'), { data: Buffer.from('hello') });
  t.strictSame(payload('core.fs.request.read'), { op: { type: 'read', handle: 1, offset: 0, len: null } });
  t.strictSame(payload('core.tcp.connect'), { host: '127.0.0.1', port: 8080 });
  t.strictSame(payload('core.shutdown'), null);
  t.strictSame(payload('core.relay.client.disconnected'), { idStart: 1, idEndExclusive: 33554431 });
  t.strictSame(payload('core.bootstrap.network'), {
    blockRoot: { kind: 'ociErofs', lower: '/dev/vda', upper: { kind: 'tmpfs', sizeMib: 512 } },
    dirMounts: [],
    fileMounts: [],
    diskMounts: [],
    tmpfsMounts: [{ path: '/tmp', sizeMib: 64, mode: 0o1777, flags: { readOnly: false, noExec: false, noSuid: true, noDev: true } }],
    hostname: 'worker-01',
    hostAlias: null,
    network: {
      interface: 'eth0',
      mac: [2, 0x5a, 0x7b, 0x13, 1, 2],
      mtu: 1500,
      ipv4: { address: [172, 16, 1, 2], prefixLen: 30, gateway: [172, 16, 1, 1], dns: [172, 16, 1, 1] },
      ipv6: null,
    },
    rlimits: [{ resource: 'nofile', soft: 65535, hard: 65535 }],
    user: '1000:1000',
    defaultCwd: null,
    defaultEnv: [{ key: 'LANG', value: 'C.UTF-8' }],
    securityProfile: 'restricted',
    handoffInit: null,
  });
});

t.test('every tolerance vector decodes to what its description says', async (t) => {
  const tolerance = VECTORS.filter((v) => !v.exact);
  t.strictSame(
    tolerance.map((v) => v.name),
    ['tolerance.tsclient.exec.request.minimal', 'tolerance.tsclient.exec.stdin.tag64', 'tolerance.ready.unknown_field'],
  );
  t.strictSame(decodeOk(findVector('tolerance.tsclient.exec.request.minimal').bytes), {
    id: 1,
    flags: 2,
    version: 5,
    type: 'execRequest',
    payload: { cmd: 'cat', args: [], env: [], cwd: null, user: null, tty: false, rows: 24, cols: 80, rlimits: [] },
  });
  t.strictSame(decodeOk(findVector('tolerance.tsclient.exec.stdin.tag64').bytes), {
    id: 1,
    flags: 0,
    version: 5,
    type: 'execStdin',
    payload: { data: Buffer.from('hi') },
  });
  t.strictSame(decodeOk(findVector('tolerance.ready.unknown_field').bytes), {
    id: 0,
    flags: 0,
    version: 7,
    type: 'ready',
    payload: { bootTimeNs: 1, initTimeNs: 2, readyTimeNs: 3, agentVersion: '' },
  });
});

t.test('re-encoding a tolerance vector gives the canonical form', async (t) => {
  const message = decodeOk(findVector('tolerance.tsclient.exec.request.minimal').bytes);
  const canonicalBytes = encodeMessage(1, message, { version: 5 });
  t.strictSame(decodeOk(canonicalBytes), message);
  t.ok(canonicalBytes.subarray(9).equals(
    canonical({ v: 5, t: wire('execRequest'), p: encodePayload(message) }),
  ));
});

t.test('u64 beyond 2^53 round-trips as BigInt through a whole frame', async (t) => {
  for (const value of [2n ** 53n, 2n ** 64n - 1n]) {
    const message = decodeOk(encodeMessage(12, { type: 'touched', payload: { activitySeq: value } }));
    t.strictSame(message, { id: 12, flags: 1, version: 7, type: 'touched', payload: { activitySeq: value } });
  }
  const sync = decodeOk(encodeMessage(0, { type: 'clockSync', payload: { unixTimeNanos: 1700000000123456789n } }));
  t.strictSame(sync.payload, { unixTimeNanos: 1700000000123456789n });
});

t.test('encodeMessage sets the type flags and the requested version', async (t) => {
  const bytes = encodeMessage(9, { type: 'execSignal', payload: { signal: 15 } }, { version: 5 });
  t.strictSame(decodeOk(bytes), { id: 9, flags: 0, version: 5, type: 'execSignal', payload: { signal: 15 } });
  t.equal(toFrame(encodeMessage(1, { type: 'execRequest', payload: decodeOk(findVector('core.exec.request.pipe').bytes).payload as Payloads['execRequest'] })).flags, 2);
  t.equal(toFrame(encodeMessage(0, { type: 'shutdown', payload: null })).flags, 4);
  t.equal(toFrame(encodeMessage(3, { type: 'pong', payload: {} })).flags, 1);
  for (const version of [-1, 256, 1.5]) {
    t.throws(() => encodeMessage(1, { type: 'ping', payload: {} }, { version }), { name: 'ProtocolError', code: 'MSB_ERR_BAD_CBOR' });
  }
  t.throws(() => encodeMessage(-1, { type: 'ping', payload: {} }), { code: 'MSB_ERR_BAD_FRAME' });
  t.throws(() => encodeMessage(1, { type: 'execStdout', payload: { data: Buffer.alloc(MAX_FRAME_SIZE) } }), {
    code: 'MSB_ERR_FRAME_TOO_LARGE',
  });
  t.throws(() => encodeMessage(1, { type: 'execResize', payload: { rows: 70000, cols: 1 } }), {
    code: 'MSB_ERR_BAD_CBOR',
    message: /core\.exec\.resize\.rows/,
  });
});

t.test('envelope errors are malformed_message, with what could be read', async (t) => {
  const ping = wire('ping');
  const cases: [string, Buffer, Partial<MessageRejection>, RegExp][] = [
    ['not CBOR', rawFrame(4, 0, hex('ff')), { version: null, offendingType: null }, /unexpected break/],
    ['empty body', rawFrame(4, 0, Buffer.alloc(0)), { version: null, offendingType: null }, /end of input/],
    ['truncated', rawFrame(4, 0, canonical({ v: 7, t: ping, p: hex('a0') }).subarray(0, 10)), {}, /./],
    ['an array', rawFrame(4, 0, canonical([7, ping, hex('a0')])), { version: null }, /not a map/],
    ['missing v', rawFrame(4, 0, canonical({ t: ping, p: hex('a0') })), { version: null, offendingType: ping }, /missing field v/],
    ['v = 256', envelopeFrame(4, 0, 256, ping, hex('a0')), { version: null, offendingType: ping }, /v must be an integer 0\.\.255/],
    ['v = -1', envelopeFrame(4, 0, -1, ping, hex('a0')), { version: null }, /v must be/],
    ['v float', rawFrame(4, 0, hex('a3 6176 f94700 6174 69636f72652e70696e67 6170 41a0')), { version: null, offendingType: ping }, /v must be/],
    ['missing t', rawFrame(4, 0, canonical({ v: 7, p: hex('a0') })), { version: 7, offendingType: null }, /missing field t/],
    ['t not text', envelopeFrame(4, 0, 7, 5, hex('a0')), { version: 7, offendingType: null }, /t must be a text string/],
    ['missing p', rawFrame(4, 0, canonical({ v: 7, t: ping })), { version: 7, offendingType: ping }, /missing field p/],
    ['p as text', rawFrame(4, 0, canonical({ v: 7, t: ping, p: 'a0' })), { version: 7, offendingType: ping }, /p: expected a byte string/],
    ['p as a map', rawFrame(4, 0, canonical({ v: 7, t: ping, p: {} })), { offendingType: ping }, /p: expected a byte string/],
    ['duplicate key', rawFrame(4, 0, hex('a4 6176 07 6174 69636f72652e70696e67 6170 41a0 6176 07')), {}, /duplicate map key "v"/],
  ];
  for (const [label, bytes, fields, message] of cases) {
    const rejection = decodeRejected(bytes);
    t.equal(rejection.kind, 'malformed_message', label);
    t.equal(rejection.id, 4, label);
    t.ok(rejection.error instanceof ProtocolError, label);
    t.equal(rejection.error.code, 'MSB_ERR_BAD_CBOR', label);
    t.match(rejection.error.message, message, label);
    t.match(rejection, fields, label);
  }
});

t.test('an unknown t is unsupported_message_type, with the t as offending type', async (t) => {
  const rejection = decodeRejected(envelopeFrame(8, 2, 7, 'core.exec.frobnicate', hex('a0')));
  t.match(rejection, { kind: 'unsupported_message_type', id: 8, flags: 2, version: 7, offendingType: 'core.exec.frobnicate' });
  t.equal(rejection.error.code, 'MSB_ERR_UNKNOWN_MESSAGE');
  t.equal(rejection.error.message, 'unsupported message type: core.exec.frobnicate');
});

t.test('wrong defined flag bits are invalid_flags; reserved bits are ignored', async (t) => {
  const ping = wire('ping');
  const rejection = decodeRejected(envelopeFrame(6, 1, 7, ping, hex('a0')));
  t.match(rejection, { kind: 'invalid_flags', id: 6, flags: 1, version: 7, offendingType: ping });
  t.equal(rejection.error.code, 'MSB_ERR_BAD_FRAME');
  t.equal(rejection.error.message, `invalid flags for ${ping}: got 1, expected 0`);
  t.equal(decodeRejected(envelopeFrame(6, 0, 7, wire('execRequest'), canonical({ cmd: 'x' }))).kind, 'invalid_flags');
  t.equal(decodeRejected(envelopeFrame(0, 0, 7, wire('shutdown'), hex('f6'))).kind, 'invalid_flags');
  const reserved = decodeOk(envelopeFrame(6, 0x80 | 0x08, 7, ping, hex('a0')));
  t.strictSame(reserved, { id: 6, flags: 0x88, version: 7, type: 'ping', payload: {} });
  t.equal(decodeOk(envelopeFrame(6, 0xfa, 7, wire('execRequest'), canonical({ cmd: 'x' }))).type, 'execRequest');
});

t.test('a payload that does not decode is invalid_payload', async (t) => {
  const resize = wire('execResize');
  const rejection = decodeRejected(envelopeFrame(2, 0, 5, resize, canonical({ rows: 70000, cols: 80 })));
  t.match(rejection, { kind: 'invalid_payload', id: 2, flags: 0, version: 5, offendingType: resize });
  t.equal(rejection.error.code, 'MSB_ERR_BAD_CBOR');
  t.match(rejection.error.message, new RegExp(`^decode payload for ${resize.replace(/\./g, '\\.')}: payload\\.rows: expected u16`));
  t.ok(rejection.error.cause instanceof ProtocolError);
  t.equal(decodeRejected(envelopeFrame(2, 0, 7, wire('ping'), Buffer.alloc(0))).kind, 'invalid_payload', 'empty p');
  t.equal(decodeRejected(envelopeFrame(2, 0, 7, wire('ping'), hex('ff'))).kind, 'invalid_payload', 'p not CBOR');
});

t.test('envelope tolerances: any v 0..255, any key order, extra keys, tags, trailing bytes, p as an int array', async (t) => {
  const ping = wire('ping');
  for (const v of [0, 1, 5, 7, 255]) t.equal(decodeOk(envelopeFrame(1, 0, v, ping, hex('a0'))).version, v);
  t.equal(decodeOk(rawFrame(1, 0, hex('a3 6176 1b0000000000000007 6174 69636f72652e70696e67 6170 41a0'))).version, 7);
  t.equal(decodeOk(rawFrame(1, 0, canonical({ p: hex('a0'), t: ping, v: 7 }))).type, 'ping');
  t.equal(decodeOk(rawFrame(1, 0, Buffer.concat([canonical({ v: 7, t: ping, p: hex('a0'), extra: [1] }), hex('ffff00')]))).type, 'ping');
  t.equal(decodeOk(rawFrame(1, 0, Buffer.concat([hex('d9d9f7'), canonical({ v: 7, t: ping, p: hex('a0') })]))).type, 'ping');
  t.equal(decodeOk(rawFrame(1, 0, canonical({ v: 7, t: ping, p: [0xa0] }))).type, 'ping');
  t.equal(decodeOk(rawFrame(1, 0, hex('bf 6176 07 6174 69636f72652e70696e67 6170 5f 41a0 ff ff'))).type, 'ping');
  t.strictSame(decodeOk(envelopeFrame(1, 0, 7, wire('execStdin'), hex('a1 6464617461 42 6869 ff'))).payload, {
    data: Buffer.from('hi'),
  }, 'trailing bytes in p');
});

t.test('the shutdown payload is not read: hosts send null, anything is accepted', async (t) => {
  for (const p of [hex('f6'), hex('a0'), Buffer.alloc(0), hex('ffff')]) {
    t.strictSame(decodeOk(envelopeFrame(0, 4, 7, wire('shutdown'), p)), { id: 0, flags: 4, version: 7, type: 'shutdown', payload: null });
  }
});

t.test('decodeEnvelope and decodePayload can be used apart', async (t) => {
  const v = findVector('core.exec.stdout.binary');
  const result = decodeEnvelope(toFrame(v.bytes));
  if (!result.ok) throw result.rejection.error;
  const { envelope } = result;
  t.match(envelope, { id: 1, flags: 0, version: 7, type: 'execStdout' });
  t.ok(envelope.payload.equals(encodePayload({ type: 'execStdout', payload: { data: hex('00fffe1b5b33316d68691b5b306d0d0ac328') } })));
  const payload = decodePayload(envelope);
  t.ok(payload.ok);
  t.equal(payload.ok && (payload.payload as Payloads['execStdout']).data.length, 18);
});

t.test('toCoreError answers a rejection with the matching kind, message and offending type', async (t) => {
  const rejection = decodeRejected(envelopeFrame(21, 0, 7, 'core.exec.frobnicate', hex('a0')));
  const reply = toCoreError(rejection);
  t.strictSame(reply, {
    type: 'error',
    payload: { kind: 'unsupported_message_type', message: 'unsupported message type: core.exec.frobnicate', offendingType: 'core.exec.frobnicate' },
  });
  const bytes = encodeMessage(rejection.id, reply);
  t.strictSame(decodeOk(bytes), { id: 21, flags: 1, version: 7, ...reply });
  const noType = toCoreError(decodeRejected(rawFrame(22, 0, hex('00'))));
  t.equal(noType.payload.offendingType, null);
  t.strictSame(payloadKeys(encodeMessage(22, noType)), ['kind', 'message'], 'offending_type omitted when null');
});

/** The keys of the payload map inside an encoded frame, in wire order. */
function payloadKeys(frameBytes: Buffer): string[] {
  const result = decodeEnvelope(toFrame(frameBytes));
  if (!result.ok) throw result.rejection.error;
  return Object.keys(decodeCbor(result.envelope.payload) as object);
}

t.test('canReceiveCoreError: generation 5 and later', async (t) => {
  t.equal(canReceiveCoreError(null), false);
  t.equal(canReceiveCoreError(1), false);
  t.equal(canReceiveCoreError(4), false);
  t.equal(canReceiveCoreError(5), true);
  t.equal(canReceiveCoreError(7), true);
  t.equal(canReceiveCoreError(255), true);
});
