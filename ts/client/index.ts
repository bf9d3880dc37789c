/**
 * The client side of the protocol: connect to an agent, run processes in it. Re-exports only.
 */

export { AgentClient, DEFAULT_HANDSHAKE_TIMEOUT_MS } from './agent-client.js';
export type { ConnectOptions, FromStreamOptions } from './agent-client.js';
export { ClientExec } from './client-exec.js';
export { TcpStream } from './tcp-stream.js';
export type { ClientExecOptions, ClientExitInfo } from './exec-payloads.js';
export type { AgentErrorReply } from './client-errors.js';
