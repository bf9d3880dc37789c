//! The only owner of wait status: each child is waited for through its own pidfd.
//!
//! Library mode shares the process with Node's child_process, so we never call `waitpid(-1)`:
//! that would steal libuv's exits. The leader is first observed with `WNOWAIT`, so it stays a
//! zombie and its pid (and so its process group id) cannot be reused while output drains and
//! group signals may still be sent; it is reaped only when its session finishes.

use std::os::fd::RawFd;

use libc::c_int;
use nix::errno::Errno;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code when it exited normally.
    pub code: Option<i32>,
    /// Signal number when a signal ended it.
    pub signal: Option<i32>,
}

fn waitid(pidfd: RawFd, options: c_int) -> Result<Option<ExitStatus>, Errno> {
    loop {
        // SAFETY: siginfo_t is plain data that waitid fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is writable; P_PIDFD (Linux 5.4) takes the pidfd as the id.
        let rc = unsafe { libc::waitid(libc::P_PIDFD, pidfd as libc::id_t, &mut info, options) };
        match Errno::result(rc) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        // SAFETY: after a successful waitid the pid/status fields of `info` are initialised.
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if pid == 0 {
            // WNOHANG and the child has not changed state yet.
            return Ok(None);
        }
        return Ok(Some(match info.si_code {
            libc::CLD_EXITED => ExitStatus { code: Some(status), signal: None },
            _ => ExitStatus { code: None, signal: Some(status) },
        }));
    }
}

/// The exit status if the process has exited, leaving it a zombie (WNOWAIT).
pub fn peek_exit(pidfd: RawFd) -> Result<Option<ExitStatus>, Errno> {
    waitid(pidfd, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
}

/// Reaps an exited process. Call only after `peek_exit` returned a status.
pub fn reap(pidfd: RawFd) -> Result<Option<ExitStatus>, Errno> {
    waitid(pidfd, libc::WEXITED | libc::WNOHANG)
}
