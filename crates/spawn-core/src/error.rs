//! Spawn failures: the stage that failed, its errno, and the protocol's failure kind.
//!
//! The child reports a failing step as one fixed record `[stage: u8][errno: i32 LE]` through a
//! CLOEXEC pipe (see `child`). `classify` turns `(stage, errno)` into the wire vocabulary; the stage
//! removes the ambiguity upstream has (a chdir ENOENT is `bad_cwd`, not `not_found`).

use nix::errno::Errno;

/// Size of the record the child writes on failure.
pub const RECORD_LEN: usize = 5;

/// One step of a spawn. Numeric values are the record's stage byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnStage {
    /// Looking the program up on PATH, or validating strings (parent).
    Resolve,
    /// Resolving the user spec (parent).
    User,
    /// Opening the PTY (parent).
    Openpty,
    /// Creating pipes (parent).
    Pipe,
    /// Creating the child.
    Fork,
    Setsid,
    /// ioctl(TIOCSCTTY): making the PTY the controlling terminal.
    Ctty,
    Dup2,
    Chdir,
    SecurityProfile,
    Setgroups,
    Setgid,
    Setuid,
    /// setrlimit of one resource (RLIMIT_* number).
    Setrlimit(u8),
    Execve,
    /// Resetting signal dispositions or the mask.
    Signals,
    /// Marking inherited descriptors close-on-exec.
    CloseFds,
}

const SETRLIMIT_BASE: u8 = 0x40;

impl SpawnStage {
    /// The stage byte of the failure record.
    pub const fn to_byte(self) -> u8 {
        match self {
            SpawnStage::Resolve => 1,
            SpawnStage::User => 2,
            SpawnStage::Openpty => 3,
            SpawnStage::Pipe => 4,
            SpawnStage::Fork => 5,
            SpawnStage::Setsid => 6,
            SpawnStage::Ctty => 7,
            SpawnStage::Dup2 => 8,
            SpawnStage::Chdir => 9,
            SpawnStage::SecurityProfile => 10,
            SpawnStage::Setgroups => 11,
            SpawnStage::Setgid => 12,
            SpawnStage::Setuid => 13,
            SpawnStage::Execve => 14,
            SpawnStage::Signals => 15,
            SpawnStage::CloseFds => 16,
            SpawnStage::Setrlimit(r) => SETRLIMIT_BASE + r,
        }
    }

    /// Inverse of `to_byte`; `None` for a byte no stage uses.
    pub fn from_byte(b: u8) -> Option<SpawnStage> {
        Some(match b {
            1 => SpawnStage::Resolve,
            2 => SpawnStage::User,
            3 => SpawnStage::Openpty,
            4 => SpawnStage::Pipe,
            5 => SpawnStage::Fork,
            6 => SpawnStage::Setsid,
            7 => SpawnStage::Ctty,
            8 => SpawnStage::Dup2,
            9 => SpawnStage::Chdir,
            10 => SpawnStage::SecurityProfile,
            11 => SpawnStage::Setgroups,
            12 => SpawnStage::Setgid,
            13 => SpawnStage::Setuid,
            14 => SpawnStage::Execve,
            15 => SpawnStage::Signals,
            16 => SpawnStage::CloseFds,
            b if (SETRLIMIT_BASE..SETRLIMIT_BASE + 16).contains(&b) => {
                SpawnStage::Setrlimit(b - SETRLIMIT_BASE)
            }
            _ => return None,
        })
    }

    /// The stage as TypeScript and users see it (`'chdir'`, `'setrlimit(RLIMIT_NOFILE)'`).
    pub fn name(self) -> String {
        match self {
            SpawnStage::Resolve => "resolve".into(),
            SpawnStage::User => "user".into(),
            SpawnStage::Openpty => "openpty".into(),
            SpawnStage::Pipe => "pipe".into(),
            SpawnStage::Fork => "fork".into(),
            SpawnStage::Setsid => "setsid".into(),
            SpawnStage::Ctty => "ctty".into(),
            SpawnStage::Dup2 => "dup2".into(),
            SpawnStage::Chdir => "chdir".into(),
            SpawnStage::SecurityProfile => "security_profile".into(),
            SpawnStage::Setgroups => "setgroups".into(),
            SpawnStage::Setgid => "setgid".into(),
            SpawnStage::Setuid => "setuid".into(),
            SpawnStage::Execve => "execve".into(),
            SpawnStage::Signals => "signals".into(),
            SpawnStage::CloseFds => "close_fds".into(),
            SpawnStage::Setrlimit(r) => format!("setrlimit({})", rlimit_name(r)),
        }
    }
}

/// The RLIMIT_* constant name of a resource number (same numbers on x86_64 and aarch64).
pub fn rlimit_name(resource: u8) -> &'static str {
    const NAMES: [&str; 16] = [
        "RLIMIT_CPU",
        "RLIMIT_FSIZE",
        "RLIMIT_DATA",
        "RLIMIT_STACK",
        "RLIMIT_CORE",
        "RLIMIT_RSS",
        "RLIMIT_NPROC",
        "RLIMIT_NOFILE",
        "RLIMIT_MEMLOCK",
        "RLIMIT_AS",
        "RLIMIT_LOCKS",
        "RLIMIT_SIGPENDING",
        "RLIMIT_MSGQUEUE",
        "RLIMIT_NICE",
        "RLIMIT_RTPRIO",
        "RLIMIT_RTTIME",
    ];
    NAMES.get(resource as usize).copied().unwrap_or("RLIMIT_UNKNOWN")
}

/// The protocol's `ExecFailureKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    NotFound,
    PermissionDenied,
    NotExecutable,
    BadCwd,
    BadArgs,
    ResourceLimit,
    UserSetupFailed,
    OutOfMemory,
    PtySetupFailed,
    Other,
}

impl FailureKind {
    pub const fn wire_name(self) -> &'static str {
        match self {
            FailureKind::NotFound => "not_found",
            FailureKind::PermissionDenied => "permission_denied",
            FailureKind::NotExecutable => "not_executable",
            FailureKind::BadCwd => "bad_cwd",
            FailureKind::BadArgs => "bad_args",
            FailureKind::ResourceLimit => "resource_limit",
            FailureKind::UserSetupFailed => "user_setup_failed",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::PtySetupFailed => "pty_setup_failed",
            FailureKind::Other => "other",
        }
    }
}

/// Why a spawn failed: the stage, its errno (if the failure had one), and a detail for failures
/// without an errno (an unknown user name, a NUL in an argument).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnFailure {
    pub stage: SpawnStage,
    pub errno: Option<Errno>,
    pub detail: Option<String>,
    /// Overrides the classification where the parent knows better (e.g. `bad_args` for NUL).
    pub kind_override: Option<FailureKind>,
}

impl SpawnFailure {
    pub fn os(stage: SpawnStage, errno: Errno) -> SpawnFailure {
        SpawnFailure { stage, errno: Some(errno), detail: None, kind_override: None }
    }

    pub fn detail(stage: SpawnStage, kind: FailureKind, detail: impl Into<String>) -> SpawnFailure {
        SpawnFailure { stage, errno: None, detail: Some(detail.into()), kind_override: Some(kind) }
    }

    pub fn kind(&self) -> FailureKind {
        self.kind_override.unwrap_or_else(|| classify(self.stage, self.errno))
    }

    /// The symbolic errno name (`"ENOENT"`), from nix's enum.
    pub fn errno_name(&self) -> Option<String> {
        self.errno.map(|e| format!("{e:?}"))
    }

    /// Decodes the child's failure record.
    pub fn from_record(record: &[u8; RECORD_LEN]) -> Option<SpawnFailure> {
        let stage = SpawnStage::from_byte(record[0])?;
        let errno = i32::from_le_bytes([record[1], record[2], record[3], record[4]]);
        Some(SpawnFailure::os(stage, Errno::from_i32(errno)))
    }
}

/// Encodes the failure record the child writes (pure; used by `child` on the stack).
pub const fn encode_record(stage: SpawnStage, errno: i32) -> [u8; RECORD_LEN] {
    let e = errno.to_le_bytes();
    [stage.to_byte(), e[0], e[1], e[2], e[3]]
}

/// Maps a failing stage and its errno to the protocol's failure kind.
pub fn classify(stage: SpawnStage, errno: Option<Errno>) -> FailureKind {
    use FailureKind as K;
    use SpawnStage as S;
    match stage {
        S::User | S::Setgroups | S::Setgid | S::Setuid => return K::UserSetupFailed,
        S::Openpty | S::Setsid | S::Ctty => return K::PtySetupFailed,
        S::Chdir => return K::BadCwd,
        S::Setrlimit(_) => {
            return match errno {
                Some(Errno::EPERM) | Some(Errno::EINVAL) | None => K::ResourceLimit,
                Some(e) => classify_errno(e),
            }
        }
        // ENOENT from execve after a successful resolve means the #! interpreter or the ELF
        // loader is missing: the file exists but cannot be executed.
        S::Execve if errno == Some(Errno::ENOENT) => return K::NotExecutable,
        _ => {}
    }
    match errno {
        Some(e) => classify_errno(e),
        None => K::Other,
    }
}

fn classify_errno(e: Errno) -> FailureKind {
    use FailureKind as K;
    match e {
        Errno::ENOENT => K::NotFound,
        Errno::ENOTDIR => K::BadCwd,
        Errno::EACCES | Errno::EPERM => K::PermissionDenied,
        Errno::ENOEXEC | Errno::EISDIR | Errno::ETXTBSY => K::NotExecutable,
        Errno::E2BIG | Errno::ELOOP | Errno::ENAMETOOLONG | Errno::EFAULT => K::BadArgs,
        Errno::EMFILE | Errno::ENFILE | Errno::EAGAIN => K::ResourceLimit,
        Errno::ENOMEM => K::OutOfMemory,
        _ => K::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let cases: &[(SpawnStage, Option<Errno>, FailureKind)] = &[
            (SpawnStage::Resolve, Some(Errno::ENOENT), FailureKind::NotFound),
            (SpawnStage::Chdir, Some(Errno::ENOENT), FailureKind::BadCwd),
            (SpawnStage::Chdir, Some(Errno::EACCES), FailureKind::BadCwd),
            (SpawnStage::Execve, Some(Errno::ENOENT), FailureKind::NotExecutable),
            (SpawnStage::Execve, Some(Errno::EACCES), FailureKind::PermissionDenied),
            (SpawnStage::Execve, Some(Errno::ENOEXEC), FailureKind::NotExecutable),
            (SpawnStage::Execve, Some(Errno::EISDIR), FailureKind::NotExecutable),
            (SpawnStage::Execve, Some(Errno::E2BIG), FailureKind::BadArgs),
            (SpawnStage::Execve, Some(Errno::ENOMEM), FailureKind::OutOfMemory),
            (SpawnStage::Execve, Some(Errno::EINVAL), FailureKind::Other),
            (SpawnStage::Fork, Some(Errno::EAGAIN), FailureKind::ResourceLimit),
            (SpawnStage::User, None, FailureKind::UserSetupFailed),
            (SpawnStage::Setuid, Some(Errno::EPERM), FailureKind::UserSetupFailed),
            (SpawnStage::Setgroups, Some(Errno::EPERM), FailureKind::UserSetupFailed),
            (SpawnStage::Openpty, Some(Errno::ENOSPC), FailureKind::PtySetupFailed),
            (SpawnStage::Ctty, Some(Errno::EPERM), FailureKind::PtySetupFailed),
            (SpawnStage::Setrlimit(7), Some(Errno::EPERM), FailureKind::ResourceLimit),
            (SpawnStage::Setrlimit(7), Some(Errno::EINVAL), FailureKind::ResourceLimit),
            (SpawnStage::SecurityProfile, Some(Errno::EPERM), FailureKind::PermissionDenied),
            (SpawnStage::Dup2, None, FailureKind::Other),
        ];
        for (stage, errno, kind) in cases {
            assert_eq!(classify(*stage, *errno), *kind, "{stage:?} {errno:?}");
        }
    }

    #[test]
    fn record_round_trips_every_stage() {
        let mut stages = vec![
            SpawnStage::Resolve,
            SpawnStage::User,
            SpawnStage::Openpty,
            SpawnStage::Pipe,
            SpawnStage::Fork,
            SpawnStage::Setsid,
            SpawnStage::Ctty,
            SpawnStage::Dup2,
            SpawnStage::Chdir,
            SpawnStage::SecurityProfile,
            SpawnStage::Setgroups,
            SpawnStage::Setgid,
            SpawnStage::Setuid,
            SpawnStage::Execve,
            SpawnStage::Signals,
            SpawnStage::CloseFds,
        ];
        stages.extend((0..16).map(SpawnStage::Setrlimit));
        for stage in stages {
            let rec = encode_record(stage, 13);
            let f = SpawnFailure::from_record(&rec).expect("every stage byte decodes");
            assert_eq!(f.stage, stage);
            assert_eq!(f.errno, Some(Errno::EACCES));
        }
        assert_eq!(SpawnFailure::from_record(&[0, 0, 0, 0, 0]), None);
        assert_eq!(SpawnStage::Setrlimit(7).name(), "setrlimit(RLIMIT_NOFILE)");
        assert_eq!(SpawnFailure::os(SpawnStage::Chdir, Errno::ENOENT).errno_name().as_deref(), Some("ENOENT"));
    }
}
