//! Adopted orphans, for the agent's `--subreaper` mode only (never in library mode, where
//! `child_process` may share the process and a stray wait would steal its exits).
//!
//! As a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER) the agent inherits every orphaned
//! descendant, which becomes our zombie when it dies. We cannot `waitpid(-1)`: that would also
//! collect our own session leaders, whose status belongs to their pidfd. So the reader thread
//! scans /proc for our zombie children that are not live leaders and reaps each by pid. A spawn
//! holds the registry lock from before the clone until its leader is tracked, so a scan can never
//! take a fresh leader for an orphan.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use nix::errno::Errno;

use crate::handle::lock;
use crate::sys;

/// Live session leaders; None while subreaper mode is off.
static LEADERS: Mutex<Option<HashSet<libc::pid_t>>> = Mutex::new(None);

/// Becomes a child subreaper and starts tracking leaders. Idempotent.
pub fn enable() -> Result<(), Errno> {
    sys::set_child_subreaper()?;
    let mut leaders = lock(&LEADERS);
    if leaders.is_none() {
        *leaders = Some(HashSet::new());
    }
    Ok(())
}

pub fn enabled() -> bool {
    lock(&LEADERS).is_some()
}

/// Held across a spawn and its registration.
pub struct SpawnGuard(MutexGuard<'static, Option<HashSet<libc::pid_t>>>);

pub fn guard() -> SpawnGuard {
    SpawnGuard(lock(&LEADERS))
}

impl SpawnGuard {
    pub fn track(&mut self, pid: libc::pid_t) {
        if let Some(set) = self.0.as_mut() {
            set.insert(pid);
        }
    }
}

/// The leader was reaped through its pidfd.
pub fn untrack(pid: libc::pid_t) {
    if let Some(set) = lock(&LEADERS).as_mut() {
        set.remove(&pid);
    }
}

/// Reaps every zombie child that is not a live leader. Returns how many were reaped.
pub fn reap() -> usize {
    let leaders = lock(&LEADERS);
    let Some(set) = leaders.as_ref() else { return 0 };
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    let mut reaped = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<libc::pid_t>().ok()) else { continue };
        if set.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the command name (which may contain spaces): state, ppid, ...
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let mut fields = rest.split_whitespace();
        let (Some(state), Some(ppid)) = (fields.next(), fields.next()) else { continue };
        if state == "Z" && ppid.parse::<libc::pid_t>().ok() == Some(me) && sys::waitpid_nohang(pid) {
            reaped += 1;
        }
    }
    reaped
}
