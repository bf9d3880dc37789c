import t from 'tap';
import { decodeCbor, encodeCbor } from '../../ts/protocol/cbor.js';
import type { OutgoingMessage } from '../../ts/protocol/envelope.js';
import { FLAG_SESSION_START, FLAG_SHUTDOWN, FLAG_TERMINAL } from '../../ts/protocol/frame.js';
import {
  CORE_ERROR_KINDS,
  CORE_ERROR_MIN_GENERATION,
  MESSAGE_TYPES,
  PROTOCOL_GENERATION,
  findWireType,
  lookupMessageType,
  selectPayloadCodec,
  type FsEntryInfo,
  type FsSetAttrs,
  type GuestBootstrap,
  type MessageName,
  type Payloads,
} from '../../ts/protocol/messages.js';
import { VECTORS, VECTOR_GENERATION, canonical, hex } from '../fixtures/protocol-helpers.js';

/** Decode a payload given as a JS value of its wire form, through real CBOR bytes. */
function decodeAs<K extends MessageName>(name: K, wire: unknown): Payloads[K] {
  return selectPayloadCodec(name).decode(decodeCbor(canonical(wire)), 'payload');
}

function decodeBytes<K extends MessageName>(name: K, bytes: Buffer): Payloads[K] {
  return selectPayloadCodec(name).decode(decodeCbor(bytes), 'payload');
}

function encodeAs<K extends MessageName>(name: K, payload: Payloads[K]): Buffer {
  return encodeCbor(selectPayloadCodec(name).encode(payload, 'payload'));
}

t.test('the table has the 32 generation-7 types with the flags of PROTOCOL §1.3', async (t) => {
  t.equal(PROTOCOL_GENERATION, 7);
  t.equal(VECTOR_GENERATION, PROTOCOL_GENERATION);
  t.equal(CORE_ERROR_MIN_GENERATION, 5);
  t.equal(MESSAGE_TYPES.length, 32);
  t.equal(new Set(MESSAGE_TYPES.map((m) => m.name)).size, 32);
  t.equal(new Set(MESSAGE_TYPES.map((m) => m.wire)).size, 32);
  const withFlag = (flag: number): string[] => MESSAGE_TYPES.filter((m) => m.flags & flag).map((m) => m.name);
  t.strictSame(withFlag(FLAG_TERMINAL), ['pong', 'touched', 'error', 'execExited', 'execFailed', 'fsResponse', 'tcpClosed', 'tcpFailed']);
  t.strictSame(withFlag(FLAG_SESSION_START), ['execRequest', 'fsRequest', 'tcpConnect']);
  t.strictSame(withFlag(FLAG_SHUTDOWN), ['shutdown']);
  for (const m of MESSAGE_TYPES) {
    t.equal(m.isTerminal, (m.flags & FLAG_TERMINAL) !== 0, m.name);
    t.equal(m.isSessionStart, (m.flags & FLAG_SESSION_START) !== 0, m.name);
    t.ok(Object.isFrozen(m));
    t.equal(lookupMessageType(m.name), m);
    t.equal(findWireType(m.wire), m);
  }
});

t.test('generations follow the history of PROTOCOL §3.1', async (t) => {
  const byGeneration = new Map<number, string[]>();
  for (const m of MESSAGE_TYPES) byGeneration.set(m.generation, [...(byGeneration.get(m.generation) ?? []), m.name]);
  t.strictSame(byGeneration.get(7), ['bootstrap']);
  t.strictSame(byGeneration.get(6), ['ping', 'pong', 'touch', 'touched']);
  t.strictSame(byGeneration.get(5), ['error']);
  t.strictSame(byGeneration.get(4), ['tcpConnect', 'tcpConnected', 'tcpData', 'tcpEof', 'tcpClose', 'tcpClosed', 'tcpFailed']);
  t.strictSame(byGeneration.get(2), ['fsRequest', 'fsResponse', 'fsData']);
  t.equal(byGeneration.get(1)?.length, 16);
  t.equal(byGeneration.has(3), false);
});

t.test('every vector type is in the table with the vector flags', async (t) => {
  for (const v of VECTORS) t.equal(findWireType(v.type)?.flags, v.flags, v.name);
});

t.test('unknown names and wire strings', async (t) => {
  t.equal(findWireType('core.exec.frobnicate'), undefined);
  t.throws(() => lookupMessageType('frobnicate' as MessageName), { name: 'ProtocolError', code: 'MSB_ERR_UNKNOWN_MESSAGE' });
});

t.test('missing keys take the defaults of PROTOCOL §2.4', async (t) => {
  t.strictSame(decodeAs('execRequest', { cmd: 'cat' }), {
    cmd: 'cat',
    args: [],
    env: [],
    cwd: null,
    user: null,
    tty: false,
    rows: 24,
    cols: 80,
    rlimits: [],
  });
  t.strictSame(decodeAs('ready', { boot_time_ns: 1, init_time_ns: 2, ready_time_ns: 3 }), {
    bootTimeNs: 1,
    initTimeNs: 2,
    readyTimeNs: 3,
    agentVersion: '',
  });
  t.strictSame(decodeAs('error', { kind: 'invalid_flags', message: 'm' }), { kind: 'invalid_flags', message: 'm', offendingType: null });
  t.strictSame(decodeAs('execStdinError', { message: 'm' }), { errno: null, errnoName: null, message: 'm' });
  t.strictSame(decodeAs('execFailed', { kind: 'bad_cwd', message: 'm' }), {
    kind: 'bad_cwd',
    errno: null,
    errnoName: null,
    message: 'm',
    stage: null,
  });
  t.strictSame(decodeAs('fsResponse', { ok: true }), { ok: true, error: null, data: null });
  t.strictSame(decodeAs('execExited', { code: 3 }), { code: 3, signal: null });
  t.strictSame(decodeAs('fsRequest', { op: { OpenFile: { path: '/x', options: { read: true, write: false, append: false, create: false, truncate: false, create_new: false } } } }), {
    op: {
      type: 'openFile',
      path: '/x',
      options: { read: true, write: false, append: false, create: false, truncate: false, createNew: false, mode: null },
    },
  });
  t.strictSame(decodeAs('fsRequest', { op: { Read: { handle: 1, offset: 0 } } }), {
    op: { type: 'read', handle: 1, offset: 0, len: null },
  });
  t.strictSame(decodeAs('fsRequest', { op: { SetStat: { path: '/x', follow_symlink: false, attrs: {} } } }), {
    op: {
      type: 'setStat',
      path: '/x',
      followSymlink: false,
      attrs: { mode: null, uid: null, gid: null, size: null, atime: null, mtime: null },
    },
  });
});

t.test('an empty bootstrap map takes every default', async (t) => {
  const want: GuestBootstrap = {
    blockRoot: null,
    dirMounts: [],
    fileMounts: [],
    diskMounts: [],
    tmpfsMounts: [],
    hostname: null,
    hostAlias: null,
    network: null,
    rlimits: [],
    user: null,
    defaultCwd: null,
    defaultEnv: [],
    securityProfile: 'default',
    handoffInit: null,
  };
  t.strictSame(decodeBytes('bootstrap', hex('a0')), want);
  t.ok(encodeAs('bootstrap', want).equals(canonical({ security_profile: 'default' })), 'only security_profile is written');
  t.strictSame(
    decodeAs('bootstrap', { dir_mounts: [{ tag: 't', guest_path: '/g' }, { tag: 'u', guest_path: '/h', flags: { nodev: true } }] })
      .dirMounts,
    [
      { tag: 't', guestPath: '/g', flags: { readOnly: false, noExec: false, noSuid: false, noDev: false } },
      { tag: 'u', guestPath: '/h', flags: { readOnly: false, noExec: false, noSuid: false, noDev: true } },
    ],
    'mount flags default to all false',
  );
});

t.test('unknown keys are ignored at every level, undefined counts as None', async (t) => {
  t.strictSame(decodeAs('ping', { future: 1 }), {});
  t.strictSame(decodeAs('execResize', { rows: 1, cols: 2, extra: { deep: [1] } }), { rows: 1, cols: 2 });
  t.strictSame(decodeBytes('execRequest', hex('a2 63636d64 63636174 63637764 f7')).cwd, null, 'f7 for an Option');
  t.strictSame(decodeAs('fsRequest', { op: { Stat: { path: '/', follow_symlink: true, mode: 1 } }, x: 0 }).op, {
    type: 'stat',
    path: '/',
    followSymlink: true,
  });
});

t.test('byte fields accept a byte string or an array of small ints', async (t) => {
  t.strictSame(decodeAs('execStdin', { data: Buffer.from('hi') }).data, Buffer.from('hi'));
  t.strictSame(decodeAs('execStdin', { data: [104, 105] }).data, Buffer.from('hi'));
  t.strictSame(decodeBytes('fsData', hex('a1 6464617461 d840 42 6869')).data, Buffer.from('hi'), 'tag 64');
});

t.test('unknown exec failure and entry kinds decode as other (PROTOCOL §7 W24)', async (t) => {
  t.equal(decodeAs('execFailed', { kind: 'cosmic_ray', message: 'm' }).kind, 'other');
  const entry = { path: '/p', kind: 'socket', size: 0, mode: 0o140755, uid: 0, gid: 0 };
  const response = decodeAs('fsResponse', { ok: true, data: { Stat: entry } });
  t.strictSame(response.data, {
    type: 'stat',
    entry: { path: '/p', kind: 'other', size: 0, mode: 0o140755, modified: null, uid: 0, gid: 0, atime: null, mtime: null },
  });
});

t.test('payloads upstream rejects are rejected (PROTOCOL §2.4, §8.3)', async (t) => {
  const cases: [MessageName, Buffer, RegExp][] = [
    ['execResize', hex('a2 64726f7773 f94e00 64636f6c73 1850'), /payload\.rows: expected u16, got float 24/],
    ['execResize', canonical({ rows: 70000, cols: 80 }), /payload\.rows: expected u16.*out of range/],
    ['ready', hex('a3 6c626f6f745f74696d655f6e73 fb41f2a05f20000000 6c696e69745f74696d655f6e73 00 6d72656164795f74696d655f6e73 00'), /float/],
    ['execStdin', canonical({ data: 'hi' }), /payload\.data: expected a byte string, got a text string/],
    ['execStdin', canonical({ data: [1, 256] }), /payload\.data\[1\]: expected u8/],
    ['execStdin', canonical({}), /missing field data/],
    ['execResize', canonical([24, 80]), /expected a map, got an array/],
    ['execRequest', canonical({ cmd: 'x', tty: null }), /payload\.tty: expected a bool, got null/],
    ['execRequest', canonical({ cmd: 'x', args: 'a b' }), /payload\.args: expected an array/],
    ['execRequest', hex('a1 63636d64 f7'), /payload\.cmd: expected a text string, got undefined/],
    ['fsRequest', canonical({ op: { stat: { path: '/', follow_symlink: true } } }), /unknown variant "stat"/],
    ['fsRequest', canonical({ op: { Stat: { path: '/' } } }), /missing field follow_symlink/],
    ['fsRequest', canonical({ op: { Stat: { path: '/', follow_symlink: true }, List: { path: '/' } } }), /exactly one entry, got 2/],
    ['fsRequest', canonical({ op: {} }), /exactly one entry, got 0/],
    ['fsRequest', canonical({ op: 'Stat' }), /expected a one-entry map/],
    [
      'fsRequest',
      canonical({ op: { OpenFile: { path: '/x', options: { read: true, write: true, append: false, create: true, truncate: false } } } }),
      /missing field create_new/,
    ],
    ['error', canonical({ kind: 'brand_new_kind', message: 'm' }), /unknown variant "brand_new_kind"/],
    ['bootstrap', canonical({ network: { interface: 'eth0', mac: [1, 2, 3, 4, 5, 6], mtu: 1500, ipv4: { address: '10.0.0.2', prefix_len: 24, gateway: [10, 0, 0, 1] } } }), /address: expected an array/],
    ['bootstrap', canonical({ network: { interface: 'eth0', mac: [1, 2, 3], mtu: 1500 } }), /mac: expected 6 octets, got 3/],
    ['bootstrap', canonical({ security_profile: 'paranoid' }), /unknown variant "paranoid"/],
    ['bootstrap', canonical({ block_root: { kind: 'nfs' } }), /kind: unknown variant "nfs"/],
    ['bootstrap', canonical({ block_root: { device: '/dev/vda' } }), /missing field kind/],
    ['bootstrap', canonical({ block_root: 'disk' }), /block_root: expected a map/],
    ['execSignal', canonical({ signal: 2 ** 31 }), /expected i32/],
    ['execStarted', canonical({ pid: -1 }), /expected u32/],
    ['clockSync', canonical({ unix_time_nanos: -1 }), /expected u64/],
    ['ping', hex('f6'), /expected a map, got null/],
    ['ping', hex('40'), /expected a map, got a byte string/],
  ];
  for (const [name, bytes, message] of cases) {
    t.throws(() => decodeBytes(name, bytes), { name: 'ProtocolError', code: 'MSB_ERR_BAD_CBOR', message }, `${name} ${message}`);
  }
});

t.test('the shutdown payload is never read, and is written as null', async (t) => {
  t.equal(decodeBytes('shutdown', hex('f6')), null);
  t.equal(selectPayloadCodec('shutdown').decode(undefined, 'payload'), null);
  t.ok(encodeAs('shutdown', null).equals(hex('f6')));
});

const ENTRY: FsEntryInfo = {
  path: '/etc/hostname',
  kind: 'file',
  size: 8,
  mode: 0o100644,
  modified: 1700000000,
  uid: 0,
  gid: 0,
  atime: -5,
  mtime: 2n ** 62n,
};
const ATTRS: FsSetAttrs = { mode: 0o644, uid: null, gid: 7, size: 2n ** 60n, atime: null, mtime: -(2n ** 63n) };

/** One sample per type and per FsOp / FsResponseData / block-root variant. */
const SAMPLES: OutgoingMessage[] = [
  {
    type: 'bootstrap',
    payload: {
      blockRoot: { kind: 'diskImage', device: '/dev/vda', fstype: 'ext4' },
      dirMounts: [{ tag: 'src', guestPath: '/src', flags: { readOnly: true, noExec: false, noSuid: true, noDev: false } }],
      fileMounts: [{ tag: 'f', filename: 'a.txt', guestPath: '/a.txt', flags: { readOnly: false, noExec: true, noSuid: false, noDev: true } }],
      diskMounts: [{ id: 'd1', guestPath: '/data', fstype: null, flags: { readOnly: false, noExec: false, noSuid: false, noDev: false } }],
      tmpfsMounts: [{ path: '/tmp', sizeMib: null, mode: 0o1777, flags: { readOnly: false, noExec: false, noSuid: true, noDev: true } }],
      hostname: 'box',
      hostAlias: 'alias',
      network: {
        interface: 'eth0',
        mac: [2, 0, 0, 0, 0, 1],
        mtu: 1500,
        ipv4: { address: [10, 0, 0, 2], prefixLen: 24, gateway: [10, 0, 0, 1], dns: null },
        ipv6: { address: [0xfd, ...Array<number>(14).fill(0), 2], prefixLen: 64, gateway: [0xfd, ...Array<number>(14).fill(0), 1], dns: [0xfd, ...Array<number>(15).fill(0)] },
      },
      rlimits: [{ resource: 'nofile', soft: 1024, hard: 2n ** 64n - 1n }],
      user: '1000:1000',
      defaultCwd: '/work',
      defaultEnv: [{ key: 'LANG', value: 'C.UTF-8' }],
      securityProfile: 'restricted',
      handoffInit: { cmd: '/sbin/init', args: ['--x'], cwd: '/', env: [{ key: 'A', value: 'b' }] },
    },
  },
  {
    type: 'bootstrap',
    payload: {
      blockRoot: { kind: 'ociErofs', lower: '/dev/vdb', upper: { kind: 'device', device: '/dev/vdc', fstype: 'ext4' } },
      dirMounts: [],
      fileMounts: [],
      diskMounts: [],
      tmpfsMounts: [],
      hostname: null,
      hostAlias: null,
      network: null,
      rlimits: [],
      user: null,
      defaultCwd: null,
      defaultEnv: [],
      securityProfile: 'default',
      handoffInit: { cmd: 'init', args: [], cwd: null, env: [] },
    },
  },
  { type: 'initResolved', payload: { defaultUser: { uid: 1000, gid: 100 } } },
  { type: 'initAck', payload: {} },
  { type: 'ready', payload: { bootTimeNs: 1, initTimeNs: 2n ** 53n + 1n, readyTimeNs: 2n ** 64n - 1n, agentVersion: '1.0.0' } },
  { type: 'shutdown', payload: null },
  { type: 'relayClientDisconnected', payload: { idStart: 33554432, idEndExclusive: 67108862 } },
  { type: 'clockSync', payload: { unixTimeNanos: 1700000000123456789n } },
  { type: 'ping', payload: {} },
  { type: 'pong', payload: {} },
  { type: 'touch', payload: {} },
  { type: 'touched', payload: { activitySeq: 42 } },
  { type: 'error', payload: { kind: 'invalid_session', message: 'id 9 is live', offendingType: null } },
  {
    type: 'execRequest',
    payload: { cmd: 'sh', args: ['-c', 'x'], env: ['A=1'], cwd: '/', user: 'root', tty: true, rows: 65535, cols: 0, rlimits: [] },
  },
  { type: 'execStarted', payload: { pid: 4294967295 } },
  { type: 'execStdin', payload: { data: Buffer.from([0, 255]) } },
  { type: 'execStdinError', payload: { errno: 105, errnoName: 'ENOBUFS', message: 'not reading' } },
  { type: 'execStdout', payload: { data: Buffer.alloc(70000, 7) } },
  { type: 'execStderr', payload: { data: Buffer.alloc(0) } },
  { type: 'execExited', payload: { code: -1, signal: 9 } },
  { type: 'execFailed', payload: { kind: 'user_setup_failed', errno: null, errnoName: null, message: 'no user', stage: 'user' } },
  { type: 'execResize', payload: { rows: 50, cols: 200 } },
  { type: 'execSignal', payload: { signal: -2147483648 } },
  { type: 'fsRequest', payload: { op: { type: 'realPath', path: 'a/../b' } } },
  { type: 'fsRequest', payload: { op: { type: 'stat', path: '/', followSymlink: false } } },
  { type: 'fsRequest', payload: { op: { type: 'setStat', path: '/x', followSymlink: true, attrs: ATTRS } } },
  { type: 'fsRequest', payload: { op: { type: 'list', path: '/' } } },
  { type: 'fsRequest', payload: { op: { type: 'readLink', path: '/l' } } },
  { type: 'fsRequest', payload: { op: { type: 'symlink', target: '/t', linkPath: '/l' } } },
  { type: 'fsRequest', payload: { op: { type: 'mkdir', path: '/d', mode: null } } },
  { type: 'fsRequest', payload: { op: { type: 'remove', path: '/f' } } },
  { type: 'fsRequest', payload: { op: { type: 'removeDir', path: '/d', recursive: true } } },
  { type: 'fsRequest', payload: { op: { type: 'copy', src: '/a', dst: '/b' } } },
  { type: 'fsRequest', payload: { op: { type: 'rename', src: '/a', dst: '/b' } } },
  {
    type: 'fsRequest',
    payload: {
      op: {
        type: 'openFile',
        path: '/f',
        options: { read: true, write: true, append: true, create: true, truncate: true, createNew: true, mode: 0o600 },
      },
    },
  },
  { type: 'fsRequest', payload: { op: { type: 'openDir', path: '/' } } },
  { type: 'fsRequest', payload: { op: { type: 'closeHandle', handle: 2n ** 63n } } },
  { type: 'fsRequest', payload: { op: { type: 'read', handle: 1, offset: 2 ** 40, len: null } } },
  { type: 'fsRequest', payload: { op: { type: 'write', handle: 1, offset: 0, len: 5 } } },
  { type: 'fsRequest', payload: { op: { type: 'readDir', handle: 3, limit: 128 } } },
  { type: 'fsRequest', payload: { op: { type: 'fstat', handle: 3 } } },
  { type: 'fsRequest', payload: { op: { type: 'fsetstat', handle: 3, attrs: ATTRS } } },
  { type: 'fsResponse', payload: { ok: true, error: null, data: { type: 'stat', entry: ENTRY } } },
  { type: 'fsResponse', payload: { ok: true, error: null, data: { type: 'list', entries: [ENTRY, { ...ENTRY, kind: 'dir' }] } } },
  { type: 'fsResponse', payload: { ok: true, error: null, data: { type: 'handle', handle: 1 } } },
  { type: 'fsResponse', payload: { ok: true, error: null, data: { type: 'path', path: '/real' } } },
  { type: 'fsResponse', payload: { ok: false, error: 'open: denied', data: null } },
  { type: 'fsData', payload: { data: Buffer.from('hello') } },
  { type: 'tcpConnect', payload: { host: 'localhost', port: 65535 } },
  { type: 'tcpConnected', payload: {} },
  { type: 'tcpData', payload: { data: Buffer.from([1]) } },
  { type: 'tcpEof', payload: {} },
  { type: 'tcpClose', payload: {} },
  { type: 'tcpClosed', payload: {} },
  { type: 'tcpFailed', payload: { error: 'connect refused' } },
];

t.test('every message type has a sample', async (t) => {
  t.strictSame(new Set(SAMPLES.map((s) => s.type)), new Set(MESSAGE_TYPES.map((m) => m.name)));
});

t.test('every sample payload round-trips through CBOR', async (t) => {
  for (const sample of SAMPLES) {
    const bytes = encodeAs(sample.type, sample.payload);
    t.ok(bytes.equals(canonical(decodeCbor(bytes))), `${sample.type}: canonical bytes`);
    t.strictSame(decodeBytes(sample.type, bytes), sample.payload, sample.type);
  }
});

t.test('null-versus-omitted follows each field (PROTOCOL §2.2, §3.2)', async (t) => {
  const wire = (name: MessageName, payload: unknown): unknown =>
    decodeCbor(encodeAs(name, payload as Payloads[typeof name]));
  t.strictSame(wire('execExited', { code: 0, signal: null }), { code: 0 }, 'signal omitted when null');
  t.strictSame(wire('execExited', { code: -1, signal: 9 }), { code: -1, signal: 9 });
  t.strictSame(wire('error', { kind: 'invalid_payload', message: 'm', offendingType: null }), { kind: 'invalid_payload', message: 'm' });
  t.strictSame(wire('ready', { bootTimeNs: 1, initTimeNs: 2, readyTimeNs: 3, agentVersion: '' }), {
    boot_time_ns: 1,
    init_time_ns: 2,
    ready_time_ns: 3,
  });
  t.strictSame(wire('execStdinError', { errno: null, errnoName: null, message: 'm' }), { errno: null, errno_name: null, message: 'm' });
  t.strictSame(wire('fsRequest', { op: { type: 'setStat', path: '/', followSymlink: true, attrs: ATTRS } }), {
    op: {
      SetStat: {
        path: '/',
        follow_symlink: true,
        attrs: { mode: 0o644, uid: null, gid: 7, size: 2n ** 60n, atime: null, mtime: -(2n ** 63n) },
      },
    },
  });
  const bootstrap = SAMPLES[1]!.payload as GuestBootstrap;
  t.strictSame(wire('bootstrap', bootstrap), {
    block_root: { kind: 'oci-erofs', lower: '/dev/vdb', upper: { kind: 'device', device: '/dev/vdc', fstype: 'ext4' } },
    security_profile: 'default',
    handoff_init: { cmd: 'init' },
  });
  t.strictSame(wire('bootstrap', { ...bootstrap, hostname: '', blockRoot: { kind: 'ociErofs', lower: '/l', upper: { kind: 'tmpfs', sizeMib: null } } }), {
    block_root: { kind: 'oci-erofs', lower: '/l', upper: { kind: 'tmpfs' } },
    hostname: '',
    security_profile: 'default',
    handoff_init: { cmd: 'init' },
  }, 'an empty hostname is written (Option semantics), a null one is not');
});

t.test('encoding refuses what upstream would reject', async (t) => {
  const cases: [MessageName, unknown, RegExp][] = [
    ['execResize', { rows: 70000, cols: 80 }, /payload\.rows: must be u16/],
    ['execResize', { rows: 24.5, cols: 80 }, /payload\.rows: must be u16/],
    ['execResize', { rows: '24', cols: 80 }, /payload\.rows: must be u16/],
    ['execSignal', { signal: 2 ** 31 }, /must be i32/],
    ['execStarted', { pid: 2n ** 32n }, /must be u32/],
    ['touched', { activitySeq: -1 }, /must be u64/],
    ['touched', { activitySeq: 2n ** 64n }, /must be u64/],
    ['touched', { activitySeq: 2 ** 60 }, /not a safe integer/],
    ['error', { kind: 'nope', message: 'm', offendingType: null }, /payload\.kind: must be one of/],
    ['execFailed', { kind: 'bogus', errno: null, errnoName: null, message: 'm', stage: null }, /must be one of/],
    ['execRequest', { args: [] }, /missing field cmd/],
    ['execRequest', { cmd: 1 }, /payload\.cmd: must be a string/],
    ['execRequest', { cmd: 'x', args: 'a' }, /payload\.args: must be an array/],
    ['execRequest', { cmd: 'x', tty: 'yes' }, /payload\.tty: must be a bool/],
    ['execStdin', { data: 'text' }, /payload\.data: must be a Uint8Array/],
    ['fsRequest', { op: { type: 'chmod', path: '/' } }, /unknown variant "chmod"/],
    ['bootstrap', { securityProfile: 'default', blockRoot: { kind: 'nfs' } }, /unknown variant "nfs"/],
    ['bootstrap', { securityProfile: 'default', network: { interface: 'e', mac: [1], mtu: 1, ipv4: null, ipv6: null } }, /expected 6 octets/],
    ['initResolved', null, /must be an object/],
  ];
  for (const [name, payload, message] of cases) {
    t.throws(() => encodeAs(name, payload as Payloads[typeof name]), { name: 'ProtocolError', code: 'MSB_ERR_BAD_CBOR', message }, `${name} ${message}`);
  }
});

t.test('defaulted fields may be left out when encoding', async (t) => {
  const bytes = encodeAs('execRequest', { cmd: 'cat' } as Payloads['execRequest']);
  t.strictSame(decodeBytes('execRequest', bytes), decodeAs('execRequest', { cmd: 'cat' }));
});

t.test('the core.error kinds are the six of PROTOCOL §3.2', async (t) => {
  t.strictSame(CORE_ERROR_KINDS, [
    'malformed_message',
    'unsupported_message_type',
    'unsupported_protocol_generation',
    'invalid_flags',
    'invalid_payload',
    'invalid_session',
  ]);
});
