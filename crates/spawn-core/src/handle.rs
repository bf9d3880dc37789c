//! A running session as its owner sees it: the control surface (write, close stdin, resize,
//! signal, pause/resume, terminate, close) and the state it shares with the reader thread.
//!
//! Signals are sent under the `ctl` lock and only while the leader is unreaped; the reader reaps
//! under the same lock. A zombie leader pins its pid and process group id, so a signal can never
//! reach a recycled pid.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::errno::Errno;

use crate::outbox::{write_direct, OutBuf, Outbox};
use crate::reader::{submit, Chunk, Command};
use crate::sys;

/// Bytes of one stream handed to the owner but not yet consumed, beyond which the reader stops
/// reading that stream (the kernel then blocks the child). One pipe read can overshoot it by up
/// to `reader::PIPE_READ_MAX`.
pub const INFLIGHT_MAX: usize = 1024 * 1024;
/// Bytes queued on a writer above which it is congested: the sessions routed to it stop being
/// read, and an owner's write learns it must hold back.
pub const WRITER_HIGH_WATER: usize = 4 * 1024 * 1024;
/// A congested writer is relieved once its queue is down to this.
pub const WRITER_LOW_WATER: usize = 1024 * 1024;

/// Output stream index: 0 is stdout (or the PTY), 1 is stderr.
pub type StreamIndex = usize;

pub(crate) struct Ctl {
    pub reaped: bool,
    /// The pidfd; closed when the leader is reaped.
    pub pidfd: Option<OwnedFd>,
    /// A PTY master kept for resize; None in pipe mode or after the session ended.
    pub pty: Option<OwnedFd>,
}

pub(crate) struct Shared {
    pub id: u64,
    pub pid: libc::pid_t,
    pub inflight: [AtomicUsize; 2],
    pub paused: [AtomicBool; 2],
    /// Address of the slab whose ArrayBuffer the JS side holds for each stream; touched only on
    /// the JS thread (napi/tsfn.rs).
    #[cfg_attr(not(feature = "node"), allow(dead_code))]
    pub js_slab: [AtomicUsize; 2],
    pub ctl: Mutex<Ctl>,
    /// What waits to be written: the child's stdin, or a writer's descriptor.
    pub stdin: Mutex<Outbox>,
    /// A writer's descriptor, for writes made at once by whoever queues onto an empty queue.
    /// Used only under the `stdin` lock while the queue is not dead: the reader marks the queue
    /// dead under that lock before it closes the descriptor. -1 for anything but a writer.
    pub direct_fd: RawFd,
    /// A writer whose queue passed `WRITER_HIGH_WATER` and is not yet down to the low water.
    pub congested: AtomicBool,
    /// A routed session: the writer its output goes to; it is not read while that is congested.
    pub gate: Option<Arc<Shared>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks is caught at the FFI edge; the data stays consistent
    // (plain flags and queues), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn allowed(&self, idx: StreamIndex) -> bool {
        !self.paused[idx].load(Ordering::Acquire)
            && self.inflight[idx].load(Ordering::Acquire) < INFLIGHT_MAX
            && !self.gate.as_ref().is_some_and(|w| w.congested.load(Ordering::Acquire))
    }

    /// Sends `signo` to the process group (or the leader alone) unless the leader was reaped.
    /// Returns whether the process was still there to be signalled.
    pub fn signal(&self, signo: libc::c_int, group: bool) -> Result<bool, Errno> {
        let ctl = lock(&self.ctl);
        let Some(pidfd) = ctl.pidfd.as_ref().filter(|_| !ctl.reaped) else { return Ok(false) };
        if group {
            match sys::kill(-self.pid, signo) {
                // The child died before setsid: the group does not exist, the leader does.
                Err(Errno::ESRCH) => {}
                other => return other.map(|_| true),
            }
        }
        match sys::pidfd_send_signal(pidfd.as_raw_fd(), signo) {
            Ok(()) | Err(Errno::ESRCH) => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// The owner's handle on a session. Dropping it does not stop the process; `close` does.
#[derive(Clone)]
pub struct Handle(pub(crate) Arc<Shared>);

impl Handle {
    pub fn pid(&self) -> libc::pid_t {
        self.0.pid
    }

    /// Queues bytes for the child's stdin. False when stdin is closed or failed.
    pub fn write(&self, data: Vec<u8>) -> bool {
        if data.is_empty() {
            return true;
        }
        let mut q = lock(&self.0.stdin);
        if q.dead || q.eof_requested {
            return false;
        }
        let was_empty = q.is_empty();
        q.push(OutBuf::Bytes(data), 0);
        drop(q);
        if was_empty {
            submit(Command::Poke(self.0.id));
        }
        true
    }

    /// A writer: sends `head` then `data` (at once if nothing is queued, copying only what the
    /// descriptor does not take). None once the writer is closed or failed; else whether it is
    /// congested, in which case the owner hears `drained` when it is relieved.
    pub fn send(&self, head: &[u8], data: &[u8]) -> Option<bool> {
        self.enqueue(true, |fd, _| {
            let written = fd.map_or(0, |fd| write_direct(fd, [head, data]));
            let len = head.len() + data.len();
            (written < len).then(|| {
                let mut rest = Vec::with_capacity(len - written);
                rest.extend_from_slice(&head[written.min(head.len())..]);
                rest.extend_from_slice(&data[written.saturating_sub(head.len())..]);
                (OutBuf::Sent(rest), 0)
            })
        })
    }

    /// A writer: sends a natively built frame (routed output, route.rs), as `send`. While frames
    /// wait, a chunk that continues the last one of the same `tag` joins it (`head_for` builds the
    /// head for a chunk length), so a backed-up peer gets fewer, larger frames.
    /// Returns None once the writer is closed, else (congested, merged into a waiting frame).
    pub(crate) fn send_frame(&self, chunk: Chunk, tag: u64, head_for: impl Fn(usize) -> Vec<u8>) -> Option<(bool, bool)> {
        let mut merged = false;
        let congested = self.enqueue(false, |fd, q| {
            if let (None, Chunk::Slab(next)) = (fd, &chunk) {
                merged = q.merge_into_back(tag, next, &head_for);
                if merged {
                    return None;
                }
            }
            let buf = OutBuf::Frame { head: head_for(chunk.len()), chunk, tag };
            let written = fd.map_or(0, |fd| write_direct(fd, buf.parts()));
            (written < buf.len()).then_some((buf, written))
        })?;
        Some((congested, merged))
    }

    /// Under the queue lock: `write` gets the descriptor when the queue is empty (it may write
    /// straight away), and the queue, and returns what is left to queue with the bytes of it
    /// already written. Then the congestion state is updated; the reader is poked to flush what
    /// was left.
    fn enqueue(&self, owner: bool, write: impl FnOnce(Option<RawFd>, &mut Outbox) -> Option<(OutBuf, usize)>) -> Option<bool> {
        let s = &self.0;
        let mut q = lock(&s.stdin);
        if q.dead || s.direct_fd < 0 {
            return None;
        }
        let was_empty = q.is_empty();
        if let Some((rest, written)) = write(was_empty.then_some(s.direct_fd), &mut q) {
            q.push(rest, written);
        }
        if q.queued() > WRITER_HIGH_WATER {
            s.congested.store(true, Ordering::Release);
        }
        let congested = s.congested.load(Ordering::Acquire);
        if congested && owner {
            q.drain_wanted = true;
        }
        let poke = was_empty && !q.is_empty();
        drop(q);
        if poke {
            submit(Command::Poke(s.id));
        }
        Some(congested)
    }

    /// EOF after the queued bytes: pipes close, a PTY gets its VEOF character.
    pub fn close_stdin(&self) {
        let mut q = lock(&self.0.stdin);
        if q.eof_requested {
            return;
        }
        q.eof_requested = true;
        drop(q);
        submit(Command::Poke(self.0.id));
    }

    /// Sets the PTY window size. Ok(false) once the session has ended; ENOTTY in pipe mode.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<bool, Errno> {
        let ctl = lock(&self.0.ctl);
        if ctl.reaped {
            return Ok(false);
        }
        match ctl.pty.as_ref() {
            Some(fd) => sys::set_winsize(fd.as_raw_fd(), sys::WinSize::new(rows, cols)).map(|_| true),
            None => Err(Errno::ENOTTY),
        }
    }

    /// Sends exactly `signo` (no escalation). Ok(false) if the leader was already reaped.
    pub fn signal(&self, signo: libc::c_int, group: bool) -> Result<bool, Errno> {
        self.0.signal(signo, group)
    }

    pub fn pause(&self, idx: StreamIndex) {
        self.0.paused[idx].store(true, Ordering::Release);
    }

    pub fn resume(&self, idx: StreamIndex) {
        if self.0.paused[idx].swap(false, Ordering::AcqRel) {
            submit(Command::Poke(self.0.id));
        }
    }

    /// The owner consumed `bytes` of a stream; reading resumes when it falls under the bound.
    pub fn credit(&self, idx: StreamIndex, bytes: usize) {
        let before = self.0.inflight[idx].fetch_sub(bytes, Ordering::AcqRel);
        if before >= INFLIGHT_MAX && before - bytes < INFLIGHT_MAX {
            submit(Command::Poke(self.0.id));
        }
    }

    /// Signals the group with `signo` now and with SIGKILL after `grace` unless everything is
    /// gone; the exit is reported only after the SIGKILL when output was still held open.
    pub fn terminate(&self, signo: libc::c_int, grace: Duration) {
        submit(Command::Terminate { id: self.0.id, signo, grace });
    }

    /// SIGKILLs the group if it still runs, drops pending output and stdin, and releases every
    /// descriptor as soon as the leader is reaped (at once if it already exited). Idempotent.
    pub fn close(&self) {
        submit(Command::Close(self.0.id));
    }
}
