//! Everything a child needs, prepared in the parent before the clone.
//!
//! After the clone the child may not allocate, lock or format (see `child`), so this module builds
//! argv and envp as C strings with their null-terminated pointer arrays, resolves the program on
//! the PATH the child will receive, looks the user up (passwd, group, supplementary groups) and
//! computes HOME. A `SpawnSpec` owns all of that memory until the spawn returns.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::{c_char, gid_t, uid_t};
use nix::unistd::{Gid, Group, Uid, User};

use crate::error::{FailureKind, SpawnFailure, SpawnStage};

/// PATH used when the child's environment has none (glibc's execvp default).
pub const DEFAULT_PATH: &str = "/bin:/usr/bin";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pty { rows: u16, cols: u16 },
    Pipes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdinMode {
    Pipe,
    Null,
}

/// What happens when output is still open `drain` after the leader was reaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterDrain {
    /// Keep reading until every output fd reports EOF (upstream behaviour).
    Wait,
    /// SIGKILL the process group, then finish.
    KillGroup,
    /// Stop reading and close our ends; descendants keep running.
    Detach,
}

/// Where HOME comes from when the environment has none (PROTOCOL §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomeDefault {
    /// The switched-to user's home; without a user, HOME is left alone (library).
    User,
    /// As `User`, and without a user, uid 0's home (agent).
    UserOrRoot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rlimit {
    /// RLIMIT_* number.
    pub resource: u8,
    pub soft: u64,
    pub hard: u64,
}

/// A spawn request as the caller states it.
#[derive(Clone, Debug)]
pub struct SpawnRequest {
    pub file: String,
    /// argv[1..]; argv[0] is `file` as given.
    pub args: Vec<String>,
    /// Final `K=V` list (TypeScript merged it).
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub mode: Mode,
    pub user: Option<String>,
    pub stdin: StdinMode,
    pub rlimits: Vec<Rlimit>,
    pub restricted: bool,
    pub home_default: HomeDefault,
    pub drain_ms: u32,
    pub after_drain: AfterDrain,
}

/// The user to switch to, resolved in the parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserPlan {
    pub uid: uid_t,
    pub gid: gid_t,
    /// Supplementary groups (getgrouplist); empty means setgroups(0, NULL).
    pub groups: Vec<gid_t>,
    pub home: Option<String>,
}

/// Everything the child touches, owned until the spawn returns.
pub struct SpawnSpec {
    pub program: CString,
    /// The resolved program as text, for error reports.
    pub program_display: String,
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const c_char>,
    pub cwd: Option<CString>,
    pub user: Option<UserPlan>,
    pub rlimits: Vec<Rlimit>,
    pub restricted: bool,
}

impl SpawnSpec {
    /// Null-terminated argv for execve.
    pub fn argv(&self) -> *const *const c_char {
        self.argv_ptrs.as_ptr()
    }

    /// Null-terminated envp for execve.
    pub fn envp(&self) -> *const *const c_char {
        self.envp_ptrs.as_ptr()
    }

    /// Prepares a request: checks strings, resolves the user, computes HOME, resolves the program.
    pub fn prepare(req: &SpawnRequest) -> Result<SpawnSpec, SpawnFailure> {
        let nul = |what: &str| {
            SpawnFailure::detail(
                SpawnStage::Resolve,
                FailureKind::BadArgs,
                format!("{what} contains a NUL byte"),
            )
        };
        if req.file.is_empty() {
            return Err(SpawnFailure::detail(SpawnStage::Resolve, FailureKind::BadArgs, "empty program name"));
        }
        let mut argv = Vec::with_capacity(req.args.len() + 1);
        argv.push(CString::new(req.file.as_str()).map_err(|_| nul("the program"))?);
        for a in &req.args {
            argv.push(CString::new(a.as_str()).map_err(|_| nul("an argument"))?);
        }
        let cwd = match &req.cwd {
            Some(c) => Some(CString::new(c.as_str()).map_err(|_| nul("cwd"))?),
            None => None,
        };
        let user = match req.user.as_deref().map(str::trim) {
            Some(spec) if !spec.is_empty() => Some(resolve_user(spec)?),
            _ => None,
        };

        let mut env: Vec<String> = req.env.clone();
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            let home = match &user {
                Some(u) => u.home.clone(),
                None if req.home_default == HomeDefault::UserOrRoot => root_home(),
                None => None,
            };
            if let Some(h) = home {
                env.push(format!("HOME={h}"));
            }
        }
        let mut envp = Vec::with_capacity(env.len());
        for e in &env {
            envp.push(CString::new(e.as_str()).map_err(|_| nul("an environment entry"))?);
        }

        let path_var = env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let resolved = resolve_program(&req.file, path_var, req.cwd.as_deref())
            .ok_or_else(|| SpawnFailure::os(SpawnStage::Resolve, nix::errno::Errno::ENOENT))?;
        let program = CString::new(resolved.as_bytes()).map_err(|_| nul("the program"))?;

        let mut argv_ptrs: Vec<*const c_char> = argv.iter().map(|c| c.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const c_char> = envp.iter().map(|c| c.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());

        Ok(SpawnSpec {
            program,
            program_display: resolved,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            cwd,
            user,
            rlimits: req.rlimits.clone(),
            restricted: req.restricted,
        })
    }
}

/// Resolves `file` as execvp would, but in the parent: a name with `/` is used as given;
/// otherwise each PATH entry is tried in order. Regular files with an execute bit win; a
/// non-executable regular file is returned only if nothing better exists (execve then reports
/// EACCES, as execvp would). `None` means not found.
pub fn resolve_program(file: &str, path_var: &str, cwd: Option<&str>) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if file.contains('/') {
        return Some(file.to_string());
    }
    let mut fallback = None;
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = format!("{dir}/{file}");
        let on_disk = match cwd {
            Some(c) if !dir.starts_with('/') => Path::new(c).join(&candidate),
            _ => Path::new(&candidate).to_path_buf(),
        };
        let Ok(meta) = std::fs::metadata(&on_disk) else { continue };
        if !meta.is_file() {
            continue;
        }
        if meta.permissions().mode() & 0o111 != 0 {
            return Some(candidate);
        }
        if fallback.is_none() {
            fallback = Some(candidate);
        }
    }
    fallback
}

/// Parses and resolves a user spec (PROTOCOL §5.2): `user[:group]`, numeric or named.
pub fn resolve_user(spec: &str) -> Result<UserPlan, SpawnFailure> {
    let fail = |msg: String| SpawnFailure::detail(SpawnStage::User, FailureKind::UserSetupFailed, msg);
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u.trim(), Some(g.trim())),
        None => (spec.trim(), None),
    };
    if user_part.is_empty() {
        return Err(fail("user spec has empty user".into()));
    }
    if group_part == Some("") {
        return Err(fail("user spec has empty group".into()));
    }
    let entry = match user_part.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid))
            .map_err(|e| fail(format!("user lookup failed: {e}")))?
            .map(Ok)
            .unwrap_or(Err(uid)),
        Err(_) => Ok(User::from_name(user_part)
            .map_err(|e| fail(format!("user lookup failed: {e}")))?
            .ok_or_else(|| fail(format!("guest user not found: {user_part}")))?),
    };
    let explicit_gid = match group_part {
        None => None,
        Some(g) => Some(match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => Group::from_name(g)
                .map_err(|e| fail(format!("group lookup failed: {e}")))?
                .ok_or_else(|| fail(format!("guest group not found: {g}")))?
                .gid
                .as_raw(),
        }),
    };
    match entry {
        Ok(user) => {
            let gid = explicit_gid.unwrap_or(user.gid.as_raw());
            let cname = CString::new(user.name.as_bytes()).map_err(|_| fail("user name contains NUL".into()))?;
            let groups = nix::unistd::getgrouplist(&cname, Gid::from_raw(gid))
                .map_err(|e| fail(format!("getgrouplist failed: {e}")))?
                .into_iter()
                .map(Gid::as_raw)
                .collect();
            let home = Some(user.dir.as_os_str())
                .filter(|d| !d.is_empty())
                .map(|d| String::from_utf8_lossy(d.as_bytes()).into_owned());
            Ok(UserPlan { uid: user.uid.as_raw(), gid, groups, home })
        }
        Err(uid) => Ok(UserPlan {
            uid,
            gid: explicit_gid.unwrap_or_else(|| Gid::current().as_raw()),
            groups: Vec::new(),
            home: None,
        }),
    }
}

/// uid 0's home directory, if the passwd entry exists and names one.
fn root_home() -> Option<String> {
    let user = User::from_uid(Uid::from_raw(0)).ok()??;
    let dir = user.dir.as_os_str();
    (!dir.is_empty()).then(|| String::from_utf8_lossy(dir.as_bytes()).into_owned())
}

/// Borrow of a C string pointer, or null.
pub fn ptr_or_null(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_resolution_follows_the_given_path() {
        assert_eq!(resolve_program("sh", "/nonexistent:/bin", None).as_deref(), Some("/bin/sh"));
        assert_eq!(resolve_program("./x", "/bin", None).as_deref(), Some("./x"));
        assert_eq!(resolve_program("no-such-program-xyz", "/bin:/usr/bin", None), None);
        // A directory on PATH is skipped, as execvp skips it.
        assert_eq!(resolve_program("bin", "/", None), None);
    }

    #[test]
    fn user_spec_grammar() {
        let root = resolve_user("0").expect("uid 0 exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        let trimmed = resolve_user(" 0 : 0 ").expect("trimmed spec");
        assert_eq!((trimmed.uid, trimmed.gid), (0, 0));
        let unknown_uid = resolve_user("4000000:5").expect("numeric uid without passwd entry");
        assert_eq!((unknown_uid.uid, unknown_uid.gid, unknown_uid.home), (4000000, 5, None));
        for (spec, msg) in [
            (":0", "user spec has empty user"),
            ("0:", "user spec has empty group"),
            ("no-such-user-xyz", "guest user not found: no-such-user-xyz"),
            ("0:no-such-group-xyz", "guest group not found: no-such-group-xyz"),
        ] {
            let err = resolve_user(spec).expect_err(spec);
            assert_eq!(err.detail.as_deref(), Some(msg));
            assert_eq!(err.kind(), FailureKind::UserSetupFailed);
            assert_eq!(err.stage, SpawnStage::User);
        }
    }
}
