//! The Node-API module: registration and the exported functions.
//!
//! Every entry point runs inside `catch_unwind`: a panic becomes a thrown MSB_ERR_NATIVE error,
//! never an unwind across `extern "C"`. Spawn failures are returned as data, not thrown.

mod sys;
mod tsfn;
mod value;

use std::os::fd::AsRawFd;
use std::time::Duration;

use sys::*;
use tsfn::{Tsfn, TsfnSink};
use value::{Env, JsError, JsResult};

use crate::handle::Handle;
use crate::reader;
use crate::route::{FrameParts, Route, RouteSink};
use crate::spawn::{spawn, SpawnError};
use crate::spec::{AfterDrain, HomeDefault, Mode, Rlimit, SpawnRequest, SpawnSpec, StdinMode};

type Body = fn(Env, napi_callback_info) -> JsResult<napi_value>;

fn enter(env: napi_env, info: napi_callback_info, body: Body) -> napi_value {
    let env = Env(env);
    let result = std::panic::catch_unwind(|| body(env, info));
    let err = match result {
        Ok(Ok(v)) => return v,
        Ok(Err(e)) => e,
        Err(_) => JsError::Native("internal panic in spawn-core".into()),
    };
    env.throw(err);
    std::ptr::null_mut()
}

macro_rules! export {
    ($name:ident, $body:ident) => {
        unsafe extern "C" fn $name(env: napi_env, info: napi_callback_info) -> napi_value {
            enter(env, info, $body)
        }
    };
}

export!(js_spawn, spawn_body);
export!(js_write, write_body);
export!(js_close_stdin, close_stdin_body);
export!(js_resize, resize_body);
export!(js_signal, signal_body);
export!(js_pause, pause_body);
export!(js_resume, resume_body);
export!(js_terminate, terminate_body);
export!(js_close, close_body);
export!(js_stats, stats_body);
export!(js_enable_subreaper, enable_subreaper_body);
export!(js_set_clock, set_clock_body);
export!(js_open_device, open_device_body);
export!(js_adopt_fd, adopt_fd_body);
export!(js_vsock_listen, vsock_listen_body);
export!(js_strerror, strerror_body);
export!(js_adopt_writer, adopt_writer_body);
export!(js_send, send_body);

/// Node calls this when the addon is loaded (Node-API's module registration symbol).
///
/// # Safety
/// Called by Node with a live env and the exports object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    let env = Env(env);
    let result = std::panic::catch_unwind(|| -> JsResult<()> {
        let table: [(&std::ffi::CStr, napi_callback); 18] = [
            (c"spawn", js_spawn),
            (c"write", js_write),
            (c"closeStdin", js_close_stdin),
            (c"resize", js_resize),
            (c"signal", js_signal),
            (c"pause", js_pause),
            (c"resume", js_resume),
            (c"terminate", js_terminate),
            (c"close", js_close),
            (c"stats", js_stats),
            (c"enableSubreaper", js_enable_subreaper),
            (c"setClock", js_set_clock),
            (c"openDevice", js_open_device),
            (c"adoptFd", js_adopt_fd),
            (c"vsockListen", js_vsock_listen),
            (c"strerror", js_strerror),
            (c"adoptWriter", js_adopt_writer),
            (c"send", js_send),
        ];
        for (name, cb) in table {
            env.set(exports, name, env.function(name, cb)?)?;
        }
        Ok(())
    });
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => env.throw(e),
        Err(_) => env.throw(JsError::Native("internal panic while registering spawn-core".into())),
    }
    exports
}

fn read_request(env: Env, o: napi_value) -> JsResult<SpawnRequest> {
    let o = env.object(o, "options")?;
    let file = env.string(env.prop(o, c"file")?, "file")?;
    let args = env.array(env.prop(o, c"args")?, "args", |v| env.string(v, "args[]"))?;
    // One string, each "K=V" entry followed by a NUL: one conversion instead of one per entry
    // (~1 µs each; an npm script's environment has 60-70).
    let environment = env_block(&env.string(env.prop(o, c"env")?, "env")?)?;
    let cwd = env.opt_string(o, c"cwd")?;
    let mode = match env.string(env.prop(o, c"mode")?, "mode")?.as_str() {
        "pty" => Mode::Pty {
            rows: env.uint(env.prop(o, c"rows")?, u16::MAX as u32, "rows")? as u16,
            cols: env.uint(env.prop(o, c"cols")?, u16::MAX as u32, "cols")? as u16,
        },
        "pipes" => Mode::Pipes,
        other => return Err(JsError::Type(format!("mode must be 'pty' or 'pipes', not '{other}'"))),
    };
    let user = env.opt_string(o, c"user")?;
    let stdin = match env.string(env.prop(o, c"stdin")?, "stdin")?.as_str() {
        "pipe" => StdinMode::Pipe,
        "null" => StdinMode::Null,
        other => return Err(JsError::Type(format!("stdin must be 'pipe' or 'null', not '{other}'"))),
    };
    let rlimits = env.array(env.prop(o, c"rlimits")?, "rlimits", |r| {
        let r = env.object(r, "rlimits[]")?;
        Ok(Rlimit {
            resource: env.uint(env.prop(r, c"resource")?, 15, "rlimits[].resource")? as u8,
            soft: env.bigint_u64(env.prop(r, c"soft")?, "rlimits[].soft")?,
            hard: env.bigint_u64(env.prop(r, c"hard")?, "rlimits[].hard")?,
        })
    })?;
    let restricted = env.boolean(env.prop(o, c"restricted")?, "restricted")?;
    let home_default = match env.string(env.prop(o, c"homeDefault")?, "homeDefault")?.as_str() {
        "user" => HomeDefault::User,
        "user-or-root" => HomeDefault::UserOrRoot,
        other => return Err(JsError::Type(format!("homeDefault must be 'user' or 'user-or-root', not '{other}'"))),
    };
    let drain_ms = env.uint(env.prop(o, c"drainMs")?, u32::MAX, "drainMs")?;
    let after_drain = match env.string(env.prop(o, c"afterDrain")?, "afterDrain")?.as_str() {
        "wait" => AfterDrain::Wait,
        "kill-group" => AfterDrain::KillGroup,
        "detach" => AfterDrain::Detach,
        other => return Err(JsError::Type(format!("afterDrain must be wait, kill-group or detach, not '{other}'"))),
    };
    Ok(SpawnRequest {
        file,
        args,
        env: environment,
        cwd,
        mode,
        user,
        stdin,
        rlimits,
        restricted,
        home_default,
        drain_ms,
        after_drain,
    })
}

fn failure_object(env: Env, err: &SpawnError) -> JsResult<napi_value> {
    let obj = env.create_object()?;
    let f = &err.failure;
    let opt_str = |s: Option<&str>| -> JsResult<napi_value> {
        match s {
            Some(s) => env.create_string(s),
            None => env.null(),
        }
    };
    env.set(obj, c"kind", env.create_string(f.kind().wire_name())?)?;
    env.set(obj, c"stage", env.create_string(&f.stage.name())?)?;
    env.set(obj, c"errno", match f.errno {
        Some(e) => env.create_i32(e as i32)?,
        None => env.null()?,
    })?;
    env.set(obj, c"errnoName", opt_str(f.errno_name().as_deref())?)?;
    env.set(obj, c"path", opt_str(err.path.as_deref())?)?;
    env.set(obj, c"detail", opt_str(f.detail.as_deref())?)?;
    Ok(obj)
}

fn spawn_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let [opts, callback] = env.args::<2>(info)?;
    let req = read_request(env, opts)?;
    if env.type_of(callback)? != NAPI_FUNCTION {
        return Err(JsError::Type("onEvent must be a function".into()));
    }
    let spec = match SpawnSpec::prepare(&req) {
        Ok(spec) => spec,
        Err(failure) => {
            let path = match failure.stage {
                crate::error::SpawnStage::Resolve => Some(req.file.clone()),
                _ => None,
            };
            return failure_object(env, &SpawnError { failure, path });
        }
    };
    let route = read_route(env, env.prop(opts, c"route")?)?;
    let tsfn = Tsfn::new(env, callback)?;
    // In subreaper mode the orphan scan must not take this child for an orphan before it is
    // tracked: hold the registry from before the clone until registration.
    let mut guard = crate::orphans::guard();
    let spawned = match spawn(&spec, req.mode, req.stdin) {
        Ok(s) => s,
        Err(e) => {
            tsfn.abort();
            return failure_object(env, &e);
        }
    };
    let pid = spawned.pid;
    let drain = Duration::from_millis(req.drain_ms as u64);
    let gate = route.as_ref().map(|r| r.writer.clone());
    let handle = reader::register(spawned, drain, req.after_drain, gate, move |handle| {
        let sink = Box::new(TsfnSink { tsfn: Some(tsfn), handle: handle.clone() });
        match route {
            Some(route) => Box::new(RouteSink::new(route, handle, sink)),
            None => sink,
        }
    })
    .map_err(|e| JsError::Native(format!("starting the reader thread failed: {e:?}")))?;
    guard.track(pid);
    drop(guard);
    let obj = env.create_object()?;
    env.set(obj, c"pid", env.create_i32(pid)?)?;
    env.set(obj, c"handle", env.create_external(handle)?)?;
    Ok(obj)
}

/// Splits the env block: "K=V" entries, each followed by a NUL.
fn env_block(block: &str) -> JsResult<Vec<String>> {
    let Some(body) = block.strip_suffix('\0') else {
        return if block.is_empty() { Ok(Vec::new()) } else { Err(JsError::Type("env must end with a NUL".into())) };
    };
    Ok(body.split('\0').map(str::to_owned).collect())
}

/// `options.route`: null, or `{ writer, id, stdout, stderr }` with each stream's frame parts
/// `{ flags, envelope, payload }` (route.rs).
fn read_route(env: Env, v: napi_value) -> JsResult<Option<Route>> {
    if env.is_nullish(v)? {
        return Ok(None);
    }
    let o = env.object(v, "route")?;
    let parts = |name: &std::ffi::CStr, what: &str| -> JsResult<FrameParts> {
        let p = env.object(env.prop(o, name)?, what)?;
        Ok(FrameParts {
            flags: env.uint(env.prop(p, c"flags")?, u8::MAX as u32, "route flags")? as u8,
            envelope: env.buffer(env.prop(p, c"envelope")?, "route envelope")?.to_vec(),
            payload: env.buffer(env.prop(p, c"payload")?, "route payload")?.to_vec(),
        })
    };
    let writer = env.external::<Handle>(env.prop(o, c"writer")?, "route.writer")?;
    if writer.0.direct_fd < 0 {
        return Err(JsError::Type("route.writer must be a writer's handle".into()));
    }
    Ok(Some(Route {
        writer: writer.clone(),
        id: env.uint(env.prop(o, c"id")?, u32::MAX, "route.id")?,
        stdout: parts(c"stdout", "route.stdout")?,
        stderr: parts(c"stderr", "route.stderr")?,
    }))
}

fn handle_arg<const N: usize>(env: Env, info: napi_callback_info) -> JsResult<(&'static Handle, [napi_value; N])> {
    let args = env.args::<N>(info)?;
    let h = env.external::<Handle>(args[0], "handle")?;
    Ok((h, args))
}

fn write_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, [_, data]) = handle_arg::<2>(env, info)?;
    let bytes = env.buffer(data, "data")?;
    env.create_bool(h.write(bytes.to_vec()))
}

fn close_stdin_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, _) = handle_arg::<1>(env, info)?;
    h.close_stdin();
    env.undefined()
}

fn resize_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, [_, rows, cols]) = handle_arg::<3>(env, info)?;
    let rows = env.uint(rows, u16::MAX as u32, "rows")? as u16;
    let cols = env.uint(cols, u16::MAX as u32, "cols")? as u16;
    match h.resize(rows, cols) {
        Ok(done) => env.create_bool(done),
        Err(e) => Err(JsError::Native(format!("resize failed: {e:?}"))),
    }
}

fn signal_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, [_, signo, group]) = handle_arg::<3>(env, info)?;
    let signo = env.uint(signo, 64, "signal")? as i32;
    let group = env.boolean(group, "group")?;
    match h.signal(signo, group) {
        Ok(sent) => env.create_bool(sent),
        Err(e) => Err(JsError::Native(format!("kill failed: {e:?}"))),
    }
}

fn stream_index(env: Env, v: napi_value) -> JsResult<usize> {
    Ok(env.uint(v, 1, "stream")? as usize)
}

fn pause_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, [_, stream]) = handle_arg::<2>(env, info)?;
    h.pause(stream_index(env, stream)?);
    env.undefined()
}

fn resume_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, [_, stream]) = handle_arg::<2>(env, info)?;
    h.resume(stream_index(env, stream)?);
    env.undefined()
}

fn terminate_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, [_, signo, grace]) = handle_arg::<3>(env, info)?;
    let signo = env.uint(signo, 64, "signal")? as i32;
    let grace = env.uint(grace, u32::MAX, "graceMs")?;
    h.terminate(signo, Duration::from_millis(grace as u64));
    env.undefined()
}

fn close_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, _) = handle_arg::<1>(env, info)?;
    h.close();
    env.undefined()
}

fn stats_body(env: Env, _info: napi_callback_info) -> JsResult<napi_value> {
    let (sessions, reader) = reader::stats();
    let obj = env.create_object()?;
    env.set(obj, c"sessions", env.create_f64(sessions as f64)?)?;
    env.set(obj, c"readerRunning", env.create_bool(reader)?)?;
    Ok(obj)
}

fn enable_subreaper_body(env: Env, _info: napi_callback_info) -> JsResult<napi_value> {
    crate::orphans::enable().map_err(|e| JsError::Native(format!("prctl(PR_SET_CHILD_SUBREAPER) failed: {e:?}")))?;
    env.undefined()
}

fn set_clock_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let [ns] = env.args::<1>(info)?;
    let ns = env.bigint_u64(ns, "unixTimeNanos")?;
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = (ns % 1_000_000_000) as i64;
    crate::sys::set_realtime(secs, nanos).map_err(|e| JsError::Native(format!("clock_settime failed: {e:?}")))?;
    env.undefined()
}

/// Registers `fd` as a byte stream whose events go to `callback`; returns `{ handle }`.
fn stream_object(env: Env, fd: std::os::fd::OwnedFd, callback: napi_value) -> JsResult<napi_value> {
    handle_object(env, callback, "stream", |tsfn| {
        reader::register_stream(fd, move |handle| Box::new(TsfnSink { tsfn: Some(tsfn), handle }))
    })
}

/// Registers a session (with `register`, given the threadsafe function of `callback`) and
/// returns `{ handle }`.
fn handle_object(
    env: Env,
    callback: napi_value,
    what: &str,
    register: impl FnOnce(Tsfn) -> Result<Handle, nix::errno::Errno>,
) -> JsResult<napi_value> {
    if env.type_of(callback)? != NAPI_FUNCTION {
        return Err(JsError::Type("onEvent must be a function".into()));
    }
    let tsfn = Tsfn::new(env, callback)?;
    let handle = register(tsfn).map_err(|e| JsError::Native(format!("registering the {what} failed: {e:?}")))?;
    let obj = env.create_object()?;
    env.set(obj, c"handle", env.create_external(handle)?)?;
    Ok(obj)
}

fn open_device_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let [path, callback] = env.args::<2>(info)?;
    let path = env.string(path, "path")?;
    let cpath = std::ffi::CString::new(path.as_str()).map_err(|_| JsError::Type("path contains a NUL byte".into()))?;
    let fd = crate::sys::open_device(&cpath).map_err(|e| JsError::Native(format!("open {path}: {e:?}")))?;
    stream_object(env, fd, callback)
}

fn adopt_fd_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    use std::os::fd::FromRawFd;
    let [fd, callback] = env.args::<2>(info)?;
    let fd = env.uint(fd, i32::MAX as u32, "fd")? as i32;
    // SAFETY: fcntl(F_GETFD) only checks that the descriptor is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(JsError::Type(format!("fd {fd} is not open")));
    }
    // SAFETY: the caller hands us ownership of an open descriptor (documented in binding.ts).
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    stream_object(env, owned, callback)
}

/// A writer over a duplicate of `fd` (the caller keeps its own descriptor and its reads). With
/// `sendBuffer` (bytes), a unix stream socket is first given a kernel send buffer of at least that
/// size; the object's `sendBuffer` is the size it has then, or null when it was left alone.
fn adopt_writer_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let [fd, callback, send_buffer] = env.args::<3>(info)?;
    let fd = env.uint(fd, i32::MAX as u32, "fd")? as i32;
    let send_buffer = match env.is_nullish(send_buffer)? {
        true => None,
        false => Some(env.uint(send_buffer, i32::MAX as u32, "sendBuffer")? as usize),
    };
    let own = crate::sys::dup_cloexec(fd).map_err(|e| JsError::Type(format!("fd {fd} cannot be duplicated: {e:?}")))?;
    let granted = send_buffer.and_then(|bytes| crate::sys::grow_unix_send_buffer(own.as_raw_fd(), bytes));
    let obj = handle_object(env, callback, "writer", |tsfn| {
        reader::register_writer(own, move |handle| Box::new(TsfnSink { tsfn: Some(tsfn), handle }))
    })?;
    let granted = match granted {
        Some(n) => env.create_f64(n as f64)?,
        None => env.null()?,
    };
    env.set(obj, c"sendBuffer", granted)?;
    Ok(obj)
}

/// A writer's send of one buffer, or two written as one: 0 sent or queued, 1 queued and
/// congested (`drain` follows), -1 closed.
fn send_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let (h, [_, head, data]) = handle_arg::<3>(env, info)?;
    if h.0.direct_fd < 0 {
        return Err(JsError::Type("send needs a writer's handle".into()));
    }
    let head = env.buffer(head, "data")?;
    let data = if env.is_nullish(data)? { &[][..] } else { env.buffer(data, "data")? };
    env.create_i32(match h.send(head, data) {
        None => -1,
        Some(false) => 0,
        Some(true) => 1,
    })
}

fn vsock_listen_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let [port, callback] = env.args::<2>(info)?;
    let port = env.uint(port, u32::MAX, "port")?;
    if env.type_of(callback)? != NAPI_FUNCTION {
        return Err(JsError::Type("onEvent must be a function".into()));
    }
    let listener = crate::sys::vsock_listen(port).map_err(|e| JsError::Native(format!("vsock listen on port {port}: {e:?}")))?;
    let tsfn = Tsfn::new(env, callback)?;
    tsfn.unref(env);
    // Accepting blocks, so it gets a thread of its own (never the libuv pool); it lives as long
    // as the process, like the listener.
    std::thread::Builder::new()
        .name("msb-vsock".into())
        .spawn(move || {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| loop {
                match crate::sys::accept(listener.as_raw_fd()) {
                    Ok(conn) => tsfn.send(tsfn::Event::Connection(conn.into_raw_fd())),
                    Err(e) => {
                        tsfn.send(tsfn::Event::ListenerError(e));
                        return;
                    }
                }
            }));
        })
        .map_err(|e| JsError::Native(format!("starting the vsock accept thread: {e}")))?;
    env.undefined()
}

/// The C library's description of a positive errno ("Exec format error"), from nix's table.
fn strerror_body(env: Env, info: napi_callback_info) -> JsResult<napi_value> {
    let [errno] = env.args::<1>(info)?;
    let errno = env.uint(errno, 4095, "errno")? as i32;
    env.create_string(&crate::sys::strerror(errno))
}
