//! An owning threadsafe-function wrapper, and the event sink that feeds a session's events
//! through it to JavaScript.
//!
//! Choices made explicit: the callback is not error-first; the function keeps the event loop
//! alive (a running child keeps Node running, as with child_process) until the exit event has
//! been queued and the function released; the queue is unbounded in count because the reader
//! bounds it in bytes per stream (`INFLIGHT_MAX`) and never blocks on it. An output chunk
//! becomes a Buffer over the reader's own allocation (no copy on the JS thread): its own, or a
//! view into its stream's slab, whose ArrayBuffer the JS side receives once (slab.rs).

use std::ffi::c_void;
use std::ptr;

use nix::errno::Errno;

use super::sys::*;
use super::value::{Env, JsResult};
use crate::handle::Handle;
use crate::reader::{Chunk, EventSink, StreamKind};
use crate::reaper::ExitStatus;

/// One event on its way to JavaScript.
pub(super) enum Event {
    Data { kind: StreamKind, chunk: Chunk, handle: Handle },
    StdinWritten(usize),
    StdinError(Errno),
    Exit(ExitStatus),
    /// A stream's slab was let go: the JS side drops its ArrayBuffer.
    SlabReleased { kind: StreamKind, handle: Handle },
    /// An accepted connection's descriptor, now owned by JavaScript (to adopt).
    Connection(i32),
    /// The listener stopped with this errno.
    ListenerError(Errno),
    /// A routed session sent this many frames and bytes.
    Routed { frames: u64, bytes: u64 },
    /// A writer's congestion is over.
    Drained,
}

/// A threadsafe function that is released exactly once.
pub struct Tsfn {
    raw: napi_threadsafe_function,
}

// SAFETY: Node-API documents napi_call_threadsafe_function and napi_release_threadsafe_function
// as callable from any thread; the handle is only an opaque pointer.
unsafe impl Send for Tsfn {}

impl Tsfn {
    /// Creates a threadsafe function around `callback`, with our `call_js` trampoline.
    pub fn new(env: Env, callback: napi_value) -> JsResult<Tsfn> {
        let name = env.create_string("msb-agentd:session")?;
        let mut raw = ptr::null_mut();
        // SAFETY: all values belong to `env`; no finalizer or context is needed.
        let status = unsafe {
            napi_create_threadsafe_function(
                env.0,
                callback,
                ptr::null_mut(),
                name,
                0,
                1,
                ptr::null_mut(),
                None,
                ptr::null_mut(),
                Some(call_js),
                &mut raw,
            )
        };
        if status != NAPI_OK {
            return Err(super::value::JsError::Native(format!("napi_create_threadsafe_function: {status}")));
        }
        Ok(Tsfn { raw })
    }

    /// Lets the event loop exit while this function exists (a listener that waits forever).
    pub fn unref(&self, env: Env) {
        // SAFETY: called on the JS thread with a live env, before release.
        unsafe { napi_unref_threadsafe_function(env.0, self.raw) };
    }

    pub(super) fn send(&self, event: Event) {
        let data = Box::into_raw(Box::new(event));
        // SAFETY: `raw` is live until released in Drop; ownership of `data` passes to call_js on
        // success.
        let status = unsafe { napi_call_threadsafe_function(self.raw, data.cast(), NAPI_TSFN_NONBLOCKING) };
        if status != NAPI_OK {
            // The environment is closing: nobody will receive it.
            // SAFETY: Node did not take `data`.
            drop(unsafe { Box::from_raw(data) });
        }
    }

    /// Releases without delivering anything (used when a spawn fails).
    pub fn abort(self) {
        // SAFETY: released once; Drop is skipped.
        unsafe { napi_release_threadsafe_function(self.raw, NAPI_TSFN_ABORT) };
        std::mem::forget(self);
    }
}

impl Drop for Tsfn {
    fn drop(&mut self) {
        // SAFETY: released exactly once; queued calls are still delivered before finalization.
        unsafe { napi_release_threadsafe_function(self.raw, NAPI_TSFN_RELEASE) };
    }
}

/// Feeds a session's events to its JavaScript callback.
pub struct TsfnSink {
    pub tsfn: Option<Tsfn>,
    pub handle: Handle,
}

impl EventSink for TsfnSink {
    fn data(&mut self, kind: StreamKind, chunk: Chunk) {
        if let Some(t) = &self.tsfn {
            t.send(Event::Data { kind, chunk, handle: self.handle.clone() });
        }
    }
    fn stdin_written(&mut self, bytes: usize) {
        if let Some(t) = &self.tsfn {
            t.send(Event::StdinWritten(bytes));
        }
    }
    fn stdin_error(&mut self, errno: Errno) {
        if let Some(t) = &self.tsfn {
            t.send(Event::StdinError(errno));
        }
    }
    fn slab_released(&mut self, kind: StreamKind) {
        if let Some(t) = &self.tsfn {
            t.send(Event::SlabReleased { kind, handle: self.handle.clone() });
        }
    }
    fn exit(&mut self, status: ExitStatus) {
        // Exit is the last event: release right after queueing it so the loop can end.
        if let Some(t) = self.tsfn.take() {
            t.send(Event::Exit(status));
        }
    }
    fn routed(&mut self, frames: u64, bytes: u64) {
        if let Some(t) = &self.tsfn {
            t.send(Event::Routed { frames, bytes });
        }
    }
    fn drained(&mut self) {
        if let Some(t) = &self.tsfn {
            t.send(Event::Drained);
        }
    }
}

unsafe extern "C" fn call_js(env: napi_env, callback: napi_value, _context: *mut c_void, data: *mut c_void) {
    // SAFETY: `data` is the Box<Event> leaked by `send`, delivered exactly once.
    let mut event = unsafe { Box::from_raw(data as *mut Event) };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if env.is_null() || callback.is_null() {
            // Teardown: free the payload and return.
            return;
        }
        let env = Env(env);
        let credit = match &*event {
            Event::Data { kind, chunk, handle } => Some((handle.clone(), kind.index(), chunk.len())),
            _ => None,
        };
        let args = match &mut *event {
            // Output, the hot event, is (stream code, Buffer) or, from a slab, (stream code, the
            // slab's ArrayBuffer or undefined, offset, length): no object and no property names
            // to build per chunk. The JS side turns it into a NativeEvent.
            // The array always has four slots; `argc` says how many are passed.
            Event::Data { kind, chunk, handle } => {
                let code = stream_code(*kind);
                let held = &handle.0.js_slab[kind.index()];
                env.create_i32(code).and_then(|c| match std::mem::replace(chunk, Chunk::Owned(Vec::new())) {
                    Chunk::Owned(v) => Ok(([c, env.buffer_from_vec(v)?, c, c], 2)),
                    Chunk::Slab(s) => match env.slab_chunk(s, held)? {
                        (slab, Some((off, len))) => Ok(([c, slab, off, len], 4)),
                        (copy, None) => Ok(([c, copy, c, c], 2)),
                    },
                })
            }
            // (stream code, null): the JS side lets go of the stream's slab.
            Event::SlabReleased { kind, handle } => {
                handle.0.js_slab[kind.index()].store(0, std::sync::atomic::Ordering::Relaxed);
                env.create_i32(stream_code(*kind)).and_then(|c| Ok(([c, env.null()?, c, c], 2)))
            }
            other => build(env, other).and_then(|obj| Ok(([obj, env.undefined()?, obj, obj], 2))),
        };
        if let Ok((args, argc)) = args {
            let mut result = ptr::null_mut();
            if let Ok(undefined) = env.undefined() {
                // SAFETY: all values belong to `env` and `argc` ≤ args.len(). A throwing callback
                // leaves an exception pending, which Node reports once we return.
                let status = unsafe { napi_call_function(env.0, undefined, callback, argc, args.as_ptr(), &mut result) };
                if status != NAPI_OK {
                    // The JS side may not have taken a slab passed with this chunk: pass it again.
                    if let Event::Data { kind, handle, .. } = &*event {
                        handle.0.js_slab[kind.index()].store(0, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }
        if let Some((handle, idx, len)) = credit {
            handle.credit(idx, len);
        }
    }));
}

/// The stream's number in the JS calling convention (ts/native/binding.ts, NativeStreamCode).
fn stream_code(kind: StreamKind) -> i32 {
    match kind {
        StreamKind::Stdout => 0,
        StreamKind::Stderr => 1,
        StreamKind::Pty => 2,
    }
}

fn build(env: Env, event: &mut Event) -> JsResult<napi_value> {
    let obj = env.create_object()?;
    match event {
        // Delivered as arguments by call_js.
        Event::Data { .. } | Event::SlabReleased { .. } => {}
        Event::StdinWritten(bytes) => {
            env.set(obj, c"type", env.create_string("stdin-written")?)?;
            env.set(obj, c"bytes", env.create_f64(*bytes as f64)?)?;
        }
        Event::StdinError(errno) => {
            env.set(obj, c"type", env.create_string("stdin-error")?)?;
            env.set(obj, c"errno", env.create_i32(*errno as i32)?)?;
            env.set(obj, c"errnoName", env.create_string(&format!("{errno:?}"))?)?;
        }
        Event::Connection(fd) => {
            env.set(obj, c"type", env.create_string("connection")?)?;
            env.set(obj, c"fd", env.create_i32(*fd)?)?;
        }
        Event::ListenerError(errno) => {
            env.set(obj, c"type", env.create_string("listener-error")?)?;
            env.set(obj, c"errno", env.create_i32(*errno as i32)?)?;
            env.set(obj, c"errnoName", env.create_string(&format!("{errno:?}"))?)?;
        }
        Event::Routed { frames, bytes } => {
            env.set(obj, c"type", env.create_string("routed")?)?;
            env.set(obj, c"frames", env.create_f64(*frames as f64)?)?;
            env.set(obj, c"bytes", env.create_f64(*bytes as f64)?)?;
        }
        Event::Drained => {
            env.set(obj, c"type", env.create_string("drain")?)?;
        }
        Event::Exit(status) => {
            env.set(obj, c"type", env.create_string("exit")?)?;
            let code = match status.code {
                Some(c) => env.create_i32(c)?,
                None => env.null()?,
            };
            let signal = match status.signal {
                Some(s) => env.create_i32(s)?,
                None => env.null()?,
            };
            env.set(obj, c"code", code)?;
            env.set(obj, c"signal", signal)?;
        }
    }
    Ok(obj)
}
