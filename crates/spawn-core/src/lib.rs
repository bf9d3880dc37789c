//! spawn-core: the process mechanism of msb-agentd.
//!
//! It starts processes in a PTY or with pipes (as any user, with rlimits and an optional restricted
//! security profile), reads their output on one epoll thread for all sessions, writes their stdin
//! without blocking the caller, detects exit with pidfd and reports it only after the output is
//! drained. It knows nothing about the protocol beyond the frame layout its owner hands it for
//! routed output (route.rs): TypeScript owns policy.
//!
//! Modules: `spec` prepares everything the child needs before the clone; `child` is the code
//! between clone and execve; `spawn` orchestrates one spawn; `reader` is the event loop; `slab`
//! holds a bulk pipe's output; `outbox` queues what is written to a descriptor; `route` sends a
//! session's output as frames on a writer; `reaper` owns wait status; `sys` wraps parent-side
//! syscalls; `napi` (feature `node`) is the only Node-aware code.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod child;
pub mod error;
pub mod handle;
pub mod orphans;
pub mod outbox;
pub mod reader;
pub mod reaper;
pub mod route;
pub mod slab;
pub mod spawn;
pub mod spec;
pub mod sys;

#[cfg(feature = "node")]
mod napi;
