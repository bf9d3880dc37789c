/**
 * The generation-7 message catalogue: every message type with its wire name, direction, generation
 * and flags, and every payload with its fields in wire order (PROTOCOL §3). This is the only file
 * where wire names (`core.exec.failed`, `errno_name`) are written; the rest of the code uses the
 * camelCase names below (`execFailed`, `errnoName`).
 *
 * Encoding rules per field follow upstream serde exactly: a field is required, defaulted, written as
 * null when None, or omitted when None/empty. The vectors in test/fixtures/golden check the bytes.
 */

import { EXEC_FAILURE_KINDS, ProtocolError, type ExecFailureKind } from '../errors.js';
import { FLAG_SESSION_START, FLAG_SHUTDOWN, FLAG_TERMINAL } from './frame.js';
import {
  bool,
  bytes,
  defaulted,
  empty,
  externallyTagged,
  i32,
  i64,
  ignored,
  internallyTagged,
  list,
  newtype,
  octets,
  omittable,
  oneOf,
  optional,
  required,
  struct,
  text,
  u16,
  u32,
  u64,
  u8,
  type Codec,
  type Field,
  type I64,
  type U64,
} from './schema.js';

export type { I64, U64 } from './schema.js';

/** The generation this implementation speaks and sends as `v`. */
export const PROTOCOL_GENERATION = 7;
/** `core.error` exists since generation 5; never send it to a peer whose `v` is lower. */
export const CORE_ERROR_MIN_GENERATION = 5;
/** Keys of the envelope map, in the order they are written. */
export const ENVELOPE_KEYS = { version: 'v', type: 't', payload: 'p' } as const;

// ---------------------------------------------------------------------------------------------
// Payload types

/** The payload of a message with no fields (`core.ping`, `core.tcp.eof`, ...). */
export type EmptyPayload = Record<string, never>;

export interface Ready {
  bootTimeNs: U64;
  initTimeNs: U64;
  readyTimeNs: U64;
  /** Omitted on the wire when empty; "" when the peer did not send it. */
  agentVersion: string;
}

export interface InitResolved {
  defaultUser: { uid: number; gid: number };
}

export interface Touched {
  activitySeq: U64;
}

export interface ClockSync {
  unixTimeNanos: U64;
}

export interface RelayClientDisconnected {
  idStart: number;
  idEndExclusive: number;
}

/** `core.error` kinds (wire strings). An unknown kind makes the whole payload invalid, as upstream. */
export type CoreErrorKind =
  | 'malformed_message'
  | 'unsupported_message_type'
  | 'unsupported_protocol_generation'
  | 'invalid_flags'
  | 'invalid_payload'
  | 'invalid_session';

export const CORE_ERROR_KINDS: readonly CoreErrorKind[] = [
  'malformed_message',
  'unsupported_message_type',
  'unsupported_protocol_generation',
  'invalid_flags',
  'invalid_payload',
  'invalid_session',
];

export interface CoreError {
  kind: CoreErrorKind;
  /** Human-readable; never parse it. */
  message: string;
  /** Wire type string of the frame that caused the error; omitted on the wire when null. */
  offendingType: string | null;
}

export interface ExecRlimit {
  /** Lower-case resource name (`nofile`, `nproc`, `as`, ...). */
  resource: string;
  soft: U64;
  hard: U64;
}

export interface ExecRequest {
  cmd: string;
  args: string[];
  env: string[];
  cwd: string | null;
  user: string | null;
  tty: boolean;
  rows: number;
  cols: number;
  rlimits: ExecRlimit[];
}

export interface ExecStarted {
  pid: number;
}

/** `core.exec.stdin`, `core.exec.stdout`, `core.exec.stderr`, `core.fs.data`, `core.tcp.data`. */
export interface DataPayload {
  /** Decoded data is a view into the frame; copy it if you keep it past the frame. */
  data: Buffer;
}

export interface ExecStdinError {
  /** Positive errno, or null. */
  errno: number | null;
  errnoName: string | null;
  message: string;
}

export interface ExecExited {
  /** Exit status, or -1 for a death by signal (as upstream). */
  code: number;
  /** Signal number when the process was killed by one. Our additive field; omitted when null. */
  signal: number | null;
}

export interface ExecFailed {
  /** Unknown kinds from a peer decode as `other`. */
  kind: ExecFailureKind;
  /** Positive errno, or null. */
  errno: number | null;
  errnoName: string | null;
  message: string;
  stage: string | null;
}

export interface ExecResize {
  rows: number;
  cols: number;
}

export interface ExecSignal {
  signal: number;
}

export interface FsSetAttrs {
  mode: number | null;
  uid: number | null;
  gid: number | null;
  size: U64 | null;
  atime: I64 | null;
  mtime: I64 | null;
}

export interface FsOpenOptions {
  read: boolean;
  write: boolean;
  append: boolean;
  create: boolean;
  truncate: boolean;
  createNew: boolean;
  mode: number | null;
}

/** One filesystem operation; `type` names the variant. */
export type FsOp =
  | { type: 'realPath'; path: string }
  | { type: 'stat'; path: string; followSymlink: boolean }
  | { type: 'setStat'; path: string; followSymlink: boolean; attrs: FsSetAttrs }
  | { type: 'list'; path: string }
  | { type: 'readLink'; path: string }
  | { type: 'symlink'; target: string; linkPath: string }
  | { type: 'mkdir'; path: string; mode: number | null }
  | { type: 'remove'; path: string }
  | { type: 'removeDir'; path: string; recursive: boolean }
  | { type: 'copy'; src: string; dst: string }
  | { type: 'rename'; src: string; dst: string }
  | { type: 'openFile'; path: string; options: FsOpenOptions }
  | { type: 'openDir'; path: string }
  | { type: 'closeHandle'; handle: U64 }
  | { type: 'read'; handle: U64; offset: U64; len: U64 | null }
  | { type: 'write'; handle: U64; offset: U64; len: U64 | null }
  | { type: 'readDir'; handle: U64; limit: number | null }
  | { type: 'fstat'; handle: U64 }
  | { type: 'fsetstat'; handle: U64; attrs: FsSetAttrs };

export interface FsRequest {
  op: FsOp;
}

/** Unknown kinds from a peer decode as `other`. */
export type FsEntryKind = 'file' | 'dir' | 'symlink' | 'other';

export interface FsEntryInfo {
  path: string;
  kind: FsEntryKind;
  size: U64;
  /** Full st_mode, file-type bits included. */
  mode: number;
  modified: I64 | null;
  uid: number;
  gid: number;
  atime: I64 | null;
  mtime: I64 | null;
}

export type FsResponseData =
  | { type: 'stat'; entry: FsEntryInfo }
  | { type: 'list'; entries: FsEntryInfo[] }
  | { type: 'handle'; handle: U64 }
  | { type: 'path'; path: string };

export interface FsResponse {
  ok: boolean;
  error: string | null;
  data: FsResponseData | null;
}

export interface TcpConnect {
  host: string;
  port: number;
}

export interface TcpFailed {
  error: string;
}

export interface MountFlags {
  readOnly: boolean;
  noExec: boolean;
  noSuid: boolean;
  noDev: boolean;
}

export type BootstrapUpper =
  | { kind: 'device'; device: string; fstype: string }
  | { kind: 'tmpfs'; sizeMib: number | null };

export type BootstrapBlockRoot =
  | { kind: 'diskImage'; device: string; fstype: string | null }
  | { kind: 'ociErofs'; lower: string; upper: BootstrapUpper };

export interface DirMount {
  tag: string;
  guestPath: string;
  flags: MountFlags;
}

export interface FileMount {
  tag: string;
  filename: string;
  guestPath: string;
  flags: MountFlags;
}

export interface DiskMount {
  id: string;
  guestPath: string;
  fstype: string | null;
  flags: MountFlags;
}

export interface TmpfsMount {
  path: string;
  sizeMib: number | null;
  mode: number | null;
  flags: MountFlags;
}

export interface IpConfig {
  /** Octets: 4 for IPv4, 16 for IPv6. */
  address: number[];
  prefixLen: number;
  gateway: number[];
  dns: number[] | null;
}

export interface BootstrapNetwork {
  interface: string;
  /** 6 octets. */
  mac: number[];
  mtu: number;
  ipv4: IpConfig | null;
  ipv6: IpConfig | null;
}

export interface EnvVar {
  key: string;
  value: string;
}

export interface HandoffInit {
  cmd: string;
  args: string[];
  cwd: string | null;
  env: EnvVar[];
}

export type SecurityProfile = 'default' | 'restricted';

/**
 * `core.bootstrap`. Every field but `securityProfile` is omitted on the wire when null (text and
 * struct fields) or empty (lists). An empty string is written as it is.
 */
export interface GuestBootstrap {
  blockRoot: BootstrapBlockRoot | null;
  dirMounts: DirMount[];
  fileMounts: FileMount[];
  diskMounts: DiskMount[];
  tmpfsMounts: TmpfsMount[];
  hostname: string | null;
  hostAlias: string | null;
  network: BootstrapNetwork | null;
  rlimits: ExecRlimit[];
  user: string | null;
  defaultCwd: string | null;
  defaultEnv: EnvVar[];
  securityProfile: SecurityProfile;
  handoffInit: HandoffInit | null;
}

/** Payload type of each message, by message name. */
export interface Payloads {
  bootstrap: GuestBootstrap;
  initResolved: InitResolved;
  initAck: EmptyPayload;
  ready: Ready;
  /** The payload of `core.shutdown` is never read; it is sent as CBOR null. */
  shutdown: null;
  relayClientDisconnected: RelayClientDisconnected;
  clockSync: ClockSync;
  ping: EmptyPayload;
  pong: EmptyPayload;
  touch: EmptyPayload;
  touched: Touched;
  error: CoreError;
  execRequest: ExecRequest;
  execStarted: ExecStarted;
  execStdin: DataPayload;
  execStdinError: ExecStdinError;
  execStdout: DataPayload;
  execStderr: DataPayload;
  execExited: ExecExited;
  execFailed: ExecFailed;
  execResize: ExecResize;
  execSignal: ExecSignal;
  fsRequest: FsRequest;
  fsResponse: FsResponse;
  fsData: DataPayload;
  tcpConnect: TcpConnect;
  tcpConnected: EmptyPayload;
  tcpData: DataPayload;
  tcpEof: EmptyPayload;
  tcpClose: EmptyPayload;
  tcpClosed: EmptyPayload;
  tcpFailed: TcpFailed;
}

/** A message type by its camelCase name (`execRequest` is `core.exec.request`). */
export type MessageName = keyof Payloads;

/** Who sends a type in upstream's use of it. */
export type Direction = 'host-to-guest' | 'guest-to-host' | 'both';

export interface MessageTypeInfo {
  readonly name: MessageName;
  /** The `t` string on the wire. */
  readonly wire: string;
  readonly direction: Direction;
  /** The generation that introduced the type. */
  readonly generation: number;
  /** The exact flags byte a sender sets for this type. */
  readonly flags: number;
  readonly isTerminal: boolean;
  readonly isSessionStart: boolean;
}

// ---------------------------------------------------------------------------------------------
// Payload codecs (wire field names and order, PROTOCOL §3.2)

const isEmptyList = (xs: readonly unknown[]): boolean => xs.length === 0;
const none = (): [] => [];

const rlimitCodec = struct<ExecRlimit>({
  resource: required('resource', text),
  soft: required('soft', u64),
  hard: required('hard', u64),
});

const dataCodec = struct<DataPayload>({ data: required('data', bytes) });

const setAttrsCodec = struct<FsSetAttrs>({
  mode: optional('mode', u32),
  uid: optional('uid', u32),
  gid: optional('gid', u32),
  size: optional('size', u64),
  atime: optional('atime', i64),
  mtime: optional('mtime', i64),
});

const openOptionsCodec = struct<FsOpenOptions>({
  read: required('read', bool),
  write: required('write', bool),
  append: required('append', bool),
  create: required('create', bool),
  truncate: required('truncate', bool),
  createNew: required('create_new', bool),
  mode: optional('mode', u32),
});

const pathField = required('path', text);
const handleField = required('handle', u64);

const fsOpCodec = externallyTagged<FsOp>([
  { name: 'realPath', wire: 'RealPath', codec: struct({ path: pathField }) },
  { name: 'stat', wire: 'Stat', codec: struct({ path: pathField, followSymlink: required('follow_symlink', bool) }) },
  {
    name: 'setStat',
    wire: 'SetStat',
    codec: struct({
      path: pathField,
      followSymlink: required('follow_symlink', bool),
      attrs: required('attrs', setAttrsCodec),
    }),
  },
  { name: 'list', wire: 'List', codec: struct({ path: pathField }) },
  { name: 'readLink', wire: 'ReadLink', codec: struct({ path: pathField }) },
  {
    name: 'symlink',
    wire: 'Symlink',
    codec: struct({ target: required('target', text), linkPath: required('link_path', text) }),
  },
  { name: 'mkdir', wire: 'Mkdir', codec: struct({ path: pathField, mode: optional('mode', u32) }) },
  { name: 'remove', wire: 'Remove', codec: struct({ path: pathField }) },
  { name: 'removeDir', wire: 'RemoveDir', codec: struct({ path: pathField, recursive: required('recursive', bool) }) },
  { name: 'copy', wire: 'Copy', codec: struct({ src: required('src', text), dst: required('dst', text) }) },
  { name: 'rename', wire: 'Rename', codec: struct({ src: required('src', text), dst: required('dst', text) }) },
  { name: 'openFile', wire: 'OpenFile', codec: struct({ path: pathField, options: required('options', openOptionsCodec) }) },
  { name: 'openDir', wire: 'OpenDir', codec: struct({ path: pathField }) },
  { name: 'closeHandle', wire: 'CloseHandle', codec: struct({ handle: handleField }) },
  {
    name: 'read',
    wire: 'Read',
    codec: struct({ handle: handleField, offset: required('offset', u64), len: optional('len', u64) }),
  },
  {
    name: 'write',
    wire: 'Write',
    codec: struct({ handle: handleField, offset: required('offset', u64), len: optional('len', u64) }),
  },
  { name: 'readDir', wire: 'ReadDir', codec: struct({ handle: handleField, limit: optional('limit', u32) }) },
  { name: 'fstat', wire: 'FStat', codec: struct({ handle: handleField }) },
  { name: 'fsetstat', wire: 'FSetStat', codec: struct({ handle: handleField, attrs: required('attrs', setAttrsCodec) }) },
]);

const entryInfoCodec = struct<FsEntryInfo>({
  path: required('path', text),
  kind: required('kind', oneOf<FsEntryKind>(['file', 'dir', 'symlink', 'other'], 'other')),
  size: required('size', u64),
  mode: required('mode', u32),
  modified: optional('modified', i64),
  uid: required('uid', u32),
  gid: required('gid', u32),
  atime: optional('atime', i64),
  mtime: optional('mtime', i64),
});

const fsResponseDataCodec = externallyTagged<FsResponseData>([
  { name: 'stat', wire: 'Stat', codec: newtype('entry', entryInfoCodec) },
  { name: 'list', wire: 'List', codec: newtype('entries', list(entryInfoCodec)) },
  { name: 'handle', wire: 'Handle', codec: newtype('handle', u64) },
  { name: 'path', wire: 'Path', codec: newtype('path', text) },
]);

const mountFlagsCodec = struct<MountFlags>({
  readOnly: defaulted('readonly', bool, () => false),
  noExec: defaulted('noexec', bool, () => false),
  noSuid: defaulted('nosuid', bool, () => false),
  noDev: defaulted('nodev', bool, () => false),
});
const noFlags = (): MountFlags => ({ readOnly: false, noExec: false, noSuid: false, noDev: false });
const flagsField = defaulted('flags', mountFlagsCodec, noFlags);

const upperCodec = internallyTagged<BootstrapUpper>('kind', [
  { name: 'device', wire: 'device', codec: struct({ device: required('device', text), fstype: required('fstype', text) }) },
  { name: 'tmpfs', wire: 'tmpfs', codec: struct({ sizeMib: omittable('size_mib', u32) }) },
]);

const blockRootCodec = internallyTagged<BootstrapBlockRoot>('kind', [
  {
    name: 'diskImage',
    wire: 'disk-image',
    codec: struct({ device: required('device', text), fstype: omittable('fstype', text) }),
  },
  {
    name: 'ociErofs',
    wire: 'oci-erofs',
    codec: struct({ lower: required('lower', text), upper: required('upper', upperCodec) }),
  },
]);

function ipConfigCodec(octetCount: number): Codec<IpConfig> {
  return struct<IpConfig>({
    address: required('address', octets(octetCount)),
    prefixLen: required('prefix_len', u8),
    gateway: required('gateway', octets(octetCount)),
    dns: omittable('dns', octets(octetCount)),
  });
}

const networkCodec = struct<BootstrapNetwork>({
  interface: required('interface', text),
  mac: required('mac', octets(6)),
  mtu: required('mtu', u16),
  ipv4: omittable('ipv4', ipConfigCodec(4)),
  ipv6: omittable('ipv6', ipConfigCodec(16)),
});

const envVarCodec = struct<EnvVar>({ key: required('key', text), value: required('value', text) });

const handoffCodec = struct<HandoffInit>({
  cmd: required('cmd', text),
  args: defaulted('args', list(text), none, isEmptyList),
  cwd: omittable('cwd', text),
  env: defaulted('env', list(envVarCodec), none, isEmptyList),
});

function bootstrapList<T>(wire: string, codec: Codec<T>): Field<T[]> {
  return defaulted(wire, list(codec), none, isEmptyList);
}

const bootstrapCodec = struct<GuestBootstrap>({
  blockRoot: omittable('block_root', blockRootCodec),
  dirMounts: bootstrapList(
    'dir_mounts',
    struct<DirMount>({ tag: required('tag', text), guestPath: required('guest_path', text), flags: flagsField }),
  ),
  fileMounts: bootstrapList(
    'file_mounts',
    struct<FileMount>({
      tag: required('tag', text),
      filename: required('filename', text),
      guestPath: required('guest_path', text),
      flags: flagsField,
    }),
  ),
  diskMounts: bootstrapList(
    'disk_mounts',
    struct<DiskMount>({
      id: required('id', text),
      guestPath: required('guest_path', text),
      fstype: omittable('fstype', text),
      flags: flagsField,
    }),
  ),
  tmpfsMounts: bootstrapList(
    'tmpfs_mounts',
    struct<TmpfsMount>({
      path: required('path', text),
      sizeMib: omittable('size_mib', u32),
      mode: omittable('mode', u32),
      flags: flagsField,
    }),
  ),
  hostname: omittable('hostname', text),
  hostAlias: omittable('host_alias', text),
  network: omittable('network', networkCodec),
  rlimits: bootstrapList('rlimits', rlimitCodec),
  user: omittable('user', text),
  defaultCwd: omittable('default_cwd', text),
  defaultEnv: bootstrapList('default_env', envVarCodec),
  securityProfile: defaulted('security_profile', oneOf<SecurityProfile>(['default', 'restricted']), () => 'default'),
  handoffInit: omittable('handoff_init', handoffCodec),
});

const PAYLOAD_CODECS: { readonly [K in MessageName]: Codec<Payloads[K]> } = {
  bootstrap: bootstrapCodec,
  initResolved: struct<InitResolved>({
    defaultUser: required('default_user', struct({ uid: required('uid', u32), gid: required('gid', u32) })),
  }),
  initAck: empty,
  ready: struct<Ready>({
    bootTimeNs: required('boot_time_ns', u64),
    initTimeNs: required('init_time_ns', u64),
    readyTimeNs: required('ready_time_ns', u64),
    agentVersion: defaulted('agent_version', text, () => '', (s) => s === ''),
  }),
  shutdown: ignored,
  relayClientDisconnected: struct<RelayClientDisconnected>({
    idStart: required('id_start', u32),
    idEndExclusive: required('id_end_exclusive', u32),
  }),
  clockSync: struct<ClockSync>({ unixTimeNanos: required('unix_time_nanos', u64) }),
  ping: empty,
  pong: empty,
  touch: empty,
  touched: struct<Touched>({ activitySeq: required('activity_seq', u64) }),
  error: struct<CoreError>({
    kind: required('kind', oneOf(CORE_ERROR_KINDS)),
    message: required('message', text),
    offendingType: omittable('offending_type', text),
  }),
  execRequest: struct<ExecRequest>({
    cmd: required('cmd', text),
    args: defaulted('args', list(text), none),
    env: defaulted('env', list(text), none),
    cwd: optional('cwd', text),
    user: optional('user', text),
    tty: defaulted('tty', bool, () => false),
    rows: defaulted('rows', u16, () => 24),
    cols: defaulted('cols', u16, () => 80),
    rlimits: defaulted('rlimits', list(rlimitCodec), none),
  }),
  execStarted: struct<ExecStarted>({ pid: required('pid', u32) }),
  execStdin: dataCodec,
  execStdinError: struct<ExecStdinError>({
    errno: optional('errno', i32),
    errnoName: optional('errno_name', text),
    message: required('message', text),
  }),
  execStdout: dataCodec,
  execStderr: dataCodec,
  execExited: struct<ExecExited>({ code: required('code', i32), signal: omittable('signal', i32) }),
  execFailed: struct<ExecFailed>({
    kind: required('kind', oneOf(EXEC_FAILURE_KINDS, 'other')),
    errno: optional('errno', i32),
    errnoName: optional('errno_name', text),
    message: required('message', text),
    stage: optional('stage', text),
  }),
  execResize: struct<ExecResize>({ rows: required('rows', u16), cols: required('cols', u16) }),
  execSignal: struct<ExecSignal>({ signal: required('signal', i32) }),
  fsRequest: struct<FsRequest>({ op: required('op', fsOpCodec) }),
  fsResponse: struct<FsResponse>({
    ok: required('ok', bool),
    error: optional('error', text),
    data: optional('data', fsResponseDataCodec),
  }),
  fsData: dataCodec,
  tcpConnect: struct<TcpConnect>({ host: required('host', text), port: required('port', u16) }),
  tcpConnected: empty,
  tcpData: dataCodec,
  tcpEof: empty,
  tcpClose: empty,
  tcpClosed: empty,
  tcpFailed: struct<TcpFailed>({ error: required('error', text) }),
};

// ---------------------------------------------------------------------------------------------
// The type table (PROTOCOL §3.1)

const H2G: Direction = 'host-to-guest';
const G2H: Direction = 'guest-to-host';
const BOTH: Direction = 'both';
const T = FLAG_TERMINAL;
const S = FLAG_SESSION_START;

const TABLE: readonly (readonly [MessageName, string, Direction, number, number])[] = [
  // name, wire, direction, generation, flags
  ['bootstrap', 'core.bootstrap', H2G, 7, 0],
  ['initResolved', 'core.init.resolved', G2H, 1, 0],
  ['initAck', 'core.init.ack', H2G, 1, 0],
  ['ready', 'core.ready', G2H, 1, 0],
  ['shutdown', 'core.shutdown', H2G, 1, FLAG_SHUTDOWN],
  ['relayClientDisconnected', 'core.relay.client.disconnected', H2G, 1, 0],
  ['clockSync', 'core.clock.sync', H2G, 1, 0],
  ['ping', 'core.ping', H2G, 6, 0],
  ['pong', 'core.pong', G2H, 6, T],
  ['touch', 'core.touch', H2G, 6, 0],
  ['touched', 'core.touched', G2H, 6, T],
  // Upstream agentd sends core.error and ignores incoming ones; a host may send it too.
  ['error', 'core.error', BOTH, 5, T],
  ['execRequest', 'core.exec.request', H2G, 1, S],
  ['execStarted', 'core.exec.started', G2H, 1, 0],
  ['execStdin', 'core.exec.stdin', H2G, 1, 0],
  ['execStdinError', 'core.exec.stdin.error', G2H, 1, 0],
  ['execStdout', 'core.exec.stdout', G2H, 1, 0],
  ['execStderr', 'core.exec.stderr', G2H, 1, 0],
  ['execExited', 'core.exec.exited', G2H, 1, T],
  ['execFailed', 'core.exec.failed', G2H, 1, T],
  ['execResize', 'core.exec.resize', H2G, 1, 0],
  ['execSignal', 'core.exec.signal', H2G, 1, 0],
  ['fsRequest', 'core.fs.request', H2G, 2, S],
  ['fsResponse', 'core.fs.response', G2H, 2, T],
  ['fsData', 'core.fs.data', BOTH, 2, 0],
  ['tcpConnect', 'core.tcp.connect', H2G, 4, S],
  ['tcpConnected', 'core.tcp.connected', G2H, 4, 0],
  ['tcpData', 'core.tcp.data', BOTH, 4, 0],
  ['tcpEof', 'core.tcp.eof', BOTH, 4, 0],
  ['tcpClose', 'core.tcp.close', H2G, 4, 0],
  ['tcpClosed', 'core.tcp.closed', G2H, 4, T],
  ['tcpFailed', 'core.tcp.failed', G2H, 4, T],
];

/** Every generation-7 message type, in the order of PROTOCOL §3.1. */
export const MESSAGE_TYPES: readonly MessageTypeInfo[] = TABLE.map(([name, wire, direction, generation, flags]) =>
  Object.freeze({
    name,
    wire,
    direction,
    generation,
    flags,
    isTerminal: (flags & FLAG_TERMINAL) !== 0,
    isSessionStart: (flags & FLAG_SESSION_START) !== 0,
  }),
);

const BY_NAME = new Map(MESSAGE_TYPES.map((info) => [info.name, info]));
const BY_WIRE = new Map(MESSAGE_TYPES.map((info) => [info.wire, info]));

/**
 * The table entry of a message type, by name.
 *
 * @throws ProtocolError `MSB_ERR_UNKNOWN_MESSAGE` for a name that is not a MessageName.
 */
export function lookupMessageType(name: MessageName): MessageTypeInfo {
  const info = BY_NAME.get(name);
  if (info === undefined) throw new ProtocolError('MSB_ERR_UNKNOWN_MESSAGE', `unknown message name: ${String(name)}`);
  return info;
}

/** The table entry for a wire `t` string, or undefined for a type this generation does not know. */
export function findWireType(wire: string): MessageTypeInfo | undefined {
  return BY_WIRE.get(wire);
}

/** The payload codec of a message type. Internal to the protocol layer. */
export function selectPayloadCodec<K extends MessageName>(name: K): Codec<Payloads[K]> {
  return PAYLOAD_CODECS[name];
}
