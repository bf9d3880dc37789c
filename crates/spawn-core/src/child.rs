//! The code that runs between clone and execve.
//!
//! Contract: the child shares the parent's memory (CLONE_VM | CLONE_VFORK, see `spawn`) and
//! Node is multi-threaded, so this code makes no allocation, takes no lock, formats nothing and
//! never panics. It only reads the pre-built `ChildPlan` and makes raw system calls, each
//! async-signal-safe per signal-safety(7): rt_sigaction, setsid, ioctl, dup2, close_range/fcntl,
//! chdir, prctl, capget/capset, setgroups/setgid/setuid, prlimit64, rt_sigprocmask, execve,
//! _exit. The set*id calls go through `syscall()` on purpose: glibc's wrappers broadcast the
//! change to every thread of the process they believe they are in, and here that would be the
//! parent's threads. A failing step stores one record `[stage][errno]` in the parent's memory
//! (`ChildPlan::report`) and exits 127: the parent reads it when the clone returns, which it does
//! only after the child exec'd or exited. (An error pipe would cost the parent a blocking read
//! that waits for exec to close the pipe: ~60 µs a spawn on our VMs.)

use libc::{c_char, c_int, c_void, gid_t, uid_t};

use crate::error::{encode_record, SpawnStage, RECORD_LEN};
use crate::spec::Rlimit;

/// CAP_SYS_ADMIN's bit in the first capability word.
const CAP_SYS_ADMIN: u32 = 21;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// One past the highest signal number on Linux (x86_64, aarch64).
const NSIG: c_int = 65;

/// The plan the child follows. Every pointer stays valid until the clone returns in the parent
/// (the parent is suspended until the child execs or exits).
pub struct ChildPlan {
    pub program: *const c_char,
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
    /// Null when the child keeps the parent's cwd.
    pub cwd: *const c_char,
    /// Descriptors that become 0, 1 and 2. Each is >= 3 (the parent guarantees it).
    pub stdio: [c_int; 3],
    /// The PTY slave to make the controlling terminal, or -1.
    pub ctty: c_int,
    pub restricted: bool,
    pub switch_user: bool,
    pub uid: uid_t,
    pub gid: gid_t,
    pub groups: *const gid_t,
    pub n_groups: usize,
    pub rlimits: *const Rlimit,
    pub n_rlimits: usize,
    /// Where a failing child stores its record; the parent's, left `None` on success.
    pub report: *mut Option<[u8; RECORD_LEN]>,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Entry point of the cloned child.
///
/// # Safety
/// `arg` must point to a `ChildPlan` whose pointers are valid, and the caller must be the
/// freshly cloned child with all signals blocked.
pub unsafe extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: the parent passes a pointer to a live ChildPlan and is suspended (CLONE_VFORK).
    let plan = unsafe { &*(arg as *const ChildPlan) };
    // SAFETY: every call below is a raw system call on data prepared before the clone.
    let (stage, errno) = unsafe { run(plan) };
    // SAFETY: `report` points to the parent's slot, alive while the parent is suspended.
    unsafe { report(plan.report, stage, errno) }
}

/// Stores the failure record in the parent's slot and exits; never returns.
///
/// # Safety
/// `slot` must be valid for writes (the parent's, see `ChildPlan::report`).
unsafe fn report(slot: *mut Option<[u8; RECORD_LEN]>, stage: SpawnStage, errno: c_int) -> c_int {
    // SAFETY: the parent is suspended until _exit below releases it, so nothing reads the slot
    // meanwhile; volatile so the store is not dropped before a call that never returns.
    // _exit(2) is async-signal-safe.
    unsafe {
        core::ptr::write_volatile(slot, Some(encode_record(stage, errno)));
        libc::_exit(127)
    }
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid.
    unsafe { *libc::__errno_location() }
}

/// Runs every step; returns only on failure, with the failing stage and its errno.
///
/// # Safety
/// See `child_main`.
unsafe fn run(plan: &ChildPlan) -> (SpawnStage, c_int) {
    macro_rules! check {
        ($stage:expr, $call:expr) => {
            if $call < 0 {
                return ($stage, errno());
            }
        };
    }
    // SAFETY: raw system calls on descriptors and pointers owned by the plan, valid until exec.
    unsafe {
        // Node ignores SIGPIPE and installs handlers; the program must start with defaults.
        let mut dfl: libc::sigaction = core::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..NSIG {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // EINVAL for the signals glibc reserves is expected and harmless.
                libc::sigaction(sig, &dfl, core::ptr::null_mut());
            }
        }

        check!(SpawnStage::Setsid, libc::setsid());
        if plan.ctty >= 0 {
            check!(SpawnStage::Ctty, libc::ioctl(plan.ctty, libc::TIOCSCTTY, 0));
        }
        let mut target = 0;
        while target < 3 {
            let src = *plan.stdio.as_ptr().add(target as usize);
            check!(SpawnStage::Dup2, libc::dup2(src, target));
            target += 1;
        }
        // Only 0, 1 and 2 survive exec.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) < 0 {
            return (SpawnStage::CloseFds, errno());
        }
        if !plan.cwd.is_null() {
            check!(SpawnStage::Chdir, libc::chdir(plan.cwd));
        }
        if plan.restricted {
            if let Err(e) = restrict() {
                return (SpawnStage::SecurityProfile, e);
            }
        }
        if plan.switch_user {
            check!(SpawnStage::Setgroups, libc::syscall(libc::SYS_setgroups, plan.n_groups, plan.groups));
            check!(SpawnStage::Setgid, libc::syscall(libc::SYS_setgid, plan.gid));
            check!(SpawnStage::Setuid, libc::syscall(libc::SYS_setuid, plan.uid));
        }
        let mut i = 0;
        while i < plan.n_rlimits {
            let r = &*plan.rlimits.add(i);
            let lim = libc::rlimit64 { rlim_cur: r.soft, rlim_max: r.hard };
            let rc = libc::syscall(
                libc::SYS_prlimit64,
                0,
                r.resource as c_int,
                &lim as *const libc::rlimit64,
                core::ptr::null_mut::<libc::rlimit64>(),
            );
            check!(SpawnStage::Setrlimit(r.resource), rc);
            i += 1;
        }
        let mut empty: libc::sigset_t = core::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check!(SpawnStage::Signals, libc::sigprocmask(libc::SIG_SETMASK, &empty, core::ptr::null_mut()));
        libc::execve(plan.program, plan.argv, plan.envp);
        (SpawnStage::Execve, errno())
    }
}

/// The restricted security profile (PROTOCOL §5.7): no_new_privs, no ambient capabilities,
/// CAP_SYS_ADMIN removed from the effective, permitted, inheritable and bounding sets.
///
/// # Safety
/// Raw system calls only; see the module contract.
unsafe fn restrict() -> Result<(), c_int> {
    // SAFETY: prctl/capget/capset with stack-allocated arguments of the documented layout.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            return Err(errno());
        }
        if libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0
            && errno() != libc::EINVAL
        {
            return Err(errno());
        }
        let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let mut data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
        if libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) < 0 {
            return Err(errno());
        }
        let bit = 1u32 << CAP_SYS_ADMIN;
        let held = (data[0].effective | data[0].permitted | data[0].inheritable) & bit != 0;
        if held {
            data[0].effective &= !bit;
            data[0].permitted &= !bit;
            data[0].inheritable &= !bit;
            if libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) < 0 {
                return Err(errno());
            }
        }
        if libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_ADMIN as libc::c_ulong, 0, 0, 0) < 0 {
            let e = errno();
            // EINVAL: no bounding set. EPERM: we lack CAP_SETPCAP, harmless if we never held it.
            if !(e == libc::EINVAL || (e == libc::EPERM && !held)) {
                return Err(e);
            }
        }
        Ok(())
    }
}
