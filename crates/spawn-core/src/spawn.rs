//! One spawn: open the PTY or pipes, clone the child, read its failure record.
//!
//! The child is created with `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)`, as posix_spawn does:
//! no page tables are copied, so spawn cost stays flat however large the Node heap grows (a plain
//! fork of a 4 GiB heap costs tens of milliseconds). CLONE_VFORK suspends this thread until the
//! child execs or exits, so the failure record a child stores in our memory (`child`) can be read
//! at once. CLONE_PIDFD hands us a pidfd atomically, before anyone else could reap the child. All
//! signals are blocked around the clone: a handler running in the child would run on the
//! parent's memory.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libc::c_int;
use nix::errno::Errno;

use crate::child::{child_main, ChildPlan};
use crate::error::{FailureKind, SpawnFailure, SpawnStage, RECORD_LEN};
use crate::spec::{Mode, SpawnSpec, StdinMode};
use crate::sys;

/// Stack for the cloned child until it execs. The child's frames are small (no allocation,
/// a few syscalls); 64 KiB leaves a wide margin.
const CHILD_STACK_SIZE: usize = 64 * 1024;

/// The parent's ends of a running child's stdio, all non-blocking and close-on-exec.
pub enum ChildIo {
    Pty { master: OwnedFd },
    Pipes { stdin: Option<OwnedFd>, stdout: OwnedFd, stderr: OwnedFd },
}

/// A started child: its pid, its pidfd and our ends of its stdio.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
    pub io: ChildIo,
}

/// A failed spawn with the path it concerned (the program, or the cwd for chdir).
#[derive(Debug)]
pub struct SpawnError {
    pub failure: SpawnFailure,
    pub path: Option<String>,
}

/// Starts `spec` in `mode`. On failure no process and no descriptor is left behind.
pub fn spawn(spec: &SpawnSpec, mode: Mode, stdin: StdinMode) -> Result<Spawned, SpawnError> {
    let plain = |failure: SpawnFailure| SpawnError { failure, path: None };
    let os = |stage, e| plain(SpawnFailure::os(stage, e));

    // Parent ends and child ends. The child ends are closed when this function returns.
    let (parent_io, child_ends, ctty): (ChildIo, [OwnedFd; 3], Option<c_int>) = match mode {
        Mode::Pty { rows, cols } => {
            let (master, slave) = sys::open_pty().map_err(|e| os(SpawnStage::Openpty, e))?;
            sys::set_winsize(master.as_raw_fd(), sys::WinSize::new(rows, cols))
                .map_err(|e| os(SpawnStage::Openpty, e))?;
            sys::set_nonblocking(master.as_raw_fd()).map_err(|e| os(SpawnStage::Openpty, e))?;
            let slave = sys::above_stdio(slave).map_err(|e| os(SpawnStage::Openpty, e))?;
            let s1 = sys::dup_cloexec(slave.as_raw_fd()).map_err(|e| os(SpawnStage::Openpty, e))?;
            let s2 = sys::dup_cloexec(slave.as_raw_fd()).map_err(|e| os(SpawnStage::Openpty, e))?;
            let ctty = slave.as_raw_fd();
            (ChildIo::Pty { master }, [slave, s1, s2], Some(ctty))
        }
        Mode::Pipes => {
            let pipe = || -> Result<(OwnedFd, OwnedFd), SpawnError> {
                let (r, w) = sys::pipe_cloexec().map_err(|e| os(SpawnStage::Pipe, e))?;
                Ok((
                    sys::above_stdio(r).map_err(|e| os(SpawnStage::Pipe, e))?,
                    sys::above_stdio(w).map_err(|e| os(SpawnStage::Pipe, e))?,
                ))
            };
            let (stdin_parent, stdin_child) = match stdin {
                StdinMode::Pipe => {
                    let (r, w) = pipe()?;
                    (Some(w), r)
                }
                StdinMode::Null => {
                    let null = sys::open_dev_null().map_err(|e| os(SpawnStage::Pipe, e))?;
                    (None, sys::above_stdio(null).map_err(|e| os(SpawnStage::Pipe, e))?)
                }
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            for fd in [&out_r, &err_r].into_iter().chain(stdin_parent.as_ref()) {
                sys::set_nonblocking(fd.as_raw_fd()).map_err(|e| os(SpawnStage::Pipe, e))?;
            }
            (
                ChildIo::Pipes { stdin: stdin_parent, stdout: out_r, stderr: err_r },
                [stdin_child, out_w, err_w],
                None,
            )
        }
    };

    let mut report: Option<[u8; RECORD_LEN]> = None;
    let (uid, gid, groups) = match &spec.user {
        Some(u) => (u.uid, u.gid, u.groups.as_slice()),
        None => (0, 0, &[][..]),
    };
    let plan = ChildPlan {
        program: spec.program.as_ptr(),
        argv: spec.argv(),
        envp: spec.envp(),
        cwd: crate::spec::ptr_or_null(&spec.cwd),
        stdio: [child_ends[0].as_raw_fd(), child_ends[1].as_raw_fd(), child_ends[2].as_raw_fd()],
        ctty: ctty.unwrap_or(-1),
        restricted: spec.restricted,
        switch_user: spec.user.is_some(),
        uid,
        gid,
        groups: groups.as_ptr(),
        n_groups: groups.len(),
        rlimits: spec.rlimits.as_ptr(),
        n_rlimits: spec.rlimits.len(),
        report: &mut report,
    };

    let (pid, pidfd) = clone_child(&plan).map_err(|e| os(SpawnStage::Fork, e))?;
    // The child has exec'd or exited (CLONE_VFORK): drop its ends so EOF can be seen.
    drop(child_ends);
    // SAFETY: the child wrote the slot, if at all, before it exited (the clone has returned).
    match unsafe { std::ptr::read_volatile(&report) } {
        None => Ok(Spawned { pid, pidfd, io: parent_io }),
        Some(record) => {
            // The child wrote its record and called _exit(127): collect it now.
            let _ = sys::waitpid_exact(pid);
            let failure = SpawnFailure::from_record(&record).unwrap_or_else(|| {
                SpawnFailure::detail(SpawnStage::Fork, FailureKind::Other, "unknown stage in the child's error record")
            });
            let path = match failure.stage {
                SpawnStage::Chdir => spec.cwd.as_ref().map(|c| c.to_string_lossy().into_owned()),
                SpawnStage::Execve => Some(spec.program_display.clone()),
                _ => None,
            };
            Err(SpawnError { failure, path })
        }
    }
}

/// clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD) running `child_main(plan)` on a private stack.
fn clone_child(plan: &ChildPlan) -> Result<(libc::pid_t, OwnedFd), Errno> {
    let mut stack = vec![0u8; CHILD_STACK_SIZE];
    // The stack grows down on x86_64 and aarch64; both need 16-byte alignment.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK_SIZE) & !15;
    let mut pidfd: c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;

    // SAFETY: sigset_t is plain data; sigfillset/pthread_sigmask fill and apply it.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid for the calls.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // SAFETY: `child_main` only reads `plan` (alive: this thread is suspended until the child
    // execs or exits) and uses `stack`, which outlives the call for the same reason. The
    // variadic argument is the parent_tid slot where CLONE_PIDFD stores the pidfd.
    let pid = unsafe {
        libc::clone(
            trampoline,
            top as *mut libc::c_void,
            flags,
            plan as *const ChildPlan as *mut libc::c_void,
            &mut pidfd as *mut c_int,
        )
    };
    let clone_errno = Errno::last();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    drop(stack);
    if pid < 0 {
        return Err(clone_errno);
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor that we now own.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

extern "C" fn trampoline(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the ChildPlan passed by clone_child, and this is the fresh child.
    unsafe { child_main(arg) }
}
