/**
 * msb-agentd: an in-sandbox process agent and a `spawnSession()` library.
 *
 * `errno` on SpawnError is positive (2 for ENOENT), as the kernel and the wire use it; read
 * `errnoName` rather than passing it to `util.getSystemErrorName()`.
 */

export { spawnSession, Session } from './spawn-session.js';
export type { ExitInfo, ExitReason } from './spawn-session.js';
export type { SpawnSessionOptions, AfterExit } from './spawn-options.js';
export { run } from './run.js';
export { Agent } from './agent/agent.js';
export { AgentClient, ClientExec } from './client/index.js';
export type { ClientExecOptions, ClientExitInfo, ConnectOptions, FromStreamOptions } from './client/index.js';
export type { AgentOptions, ListenTarget } from './agent/agent.js';
export { encodeFrame, FrameDecoder, encodeMessage, decodeMessage } from './protocol/index.js';
export { parseAddress, defaultAddress, formatAddress } from './transport/address.js';
export type { Address } from './transport/address.js';
export type { RunOptions, RunResult } from './run.js';
export {
  MsbError,
  SpawnError,
  ProtocolError,
  TransportError,
  SessionError,
  NativeError,
  FsError,
  isMsbError,
} from './errors.js';
export type { ExecFailureKind } from './errors.js';
