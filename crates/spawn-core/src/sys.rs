//! Parent-side system calls: thin wrappers that return `Result<_, Errno>` and owned fds.
//!
//! The child never uses this module (see `child`); everything here may allocate.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::c_int;
use nix::errno::Errno;

fn cvt(ret: c_int) -> Result<c_int, Errno> {
    Errno::result(ret)
}

fn owned(fd: c_int) -> OwnedFd {
    // SAFETY: callers pass a descriptor that a successful syscall just returned to us.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// pipe2(O_CLOEXEC): (read end, write end).
pub fn pipe_cloexec() -> Result<(OwnedFd, OwnedFd), Errno> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((owned(fds[0]), owned(fds[1])))
}

/// Opens /dev/null read-only, close-on-exec.
pub fn open_dev_null() -> Result<OwnedFd, Errno> {
    // SAFETY: the path is a valid NUL-terminated string.
    let fd = cvt(unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) })?;
    Ok(owned(fd))
}

/// A new PTY pair, both ends close-on-exec and not our controlling terminal: (master, slave).
pub fn open_pty() -> Result<(OwnedFd, OwnedFd), Errno> {
    // SAFETY: posix_openpt takes flags only.
    let master = owned(cvt(unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) })?);
    // SAFETY: `master` is an open PTY master.
    cvt(unsafe { libc::unlockpt(master.as_raw_fd()) })?;
    // TIOCGPTPEER (Linux 4.13) opens the slave without a path lookup.
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: ioctl on an open master with an int argument.
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) };
    if slave >= 0 {
        return Ok((master, owned(slave)));
    }
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `name` is a writable buffer of the given length.
    let rc = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
    if rc != 0 {
        return Err(Errno::from_i32(rc));
    }
    // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
    let slave = cvt(unsafe { libc::open(name.as_ptr(), flags) })?;
    Ok((master, owned(slave)))
}

/// The terminal window size, as TIOCSWINSZ takes it.
#[derive(Clone, Copy)]
pub struct WinSize(pub libc::winsize);

impl WinSize {
    pub fn new(rows: u16, cols: u16) -> WinSize {
        WinSize(libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 })
    }
}

/// ioctl(TIOCSWINSZ): the kernel sends SIGWINCH to the terminal's foreground group.
pub fn set_winsize(fd: RawFd, size: WinSize) -> Result<(), Errno> {
    // SAFETY: `size.0` is a valid winsize for the duration of the call.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size.0 as *const libc::winsize) }).map(drop)
}

/// The terminal's VEOF character and whether it is in canonical mode.
pub fn terminal_eof(fd: RawFd) -> Result<(u8, bool), Errno> {
    // SAFETY: termios is plain data; tcgetattr fills it.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is writable.
    cvt(unsafe { libc::tcgetattr(fd, &mut t) })?;
    Ok((t.c_cc[libc::VEOF], t.c_lflag & libc::ICANON != 0))
}

/// Returns `fd` itself if it is >= 3, else a close-on-exec duplicate at 3 or above, so the
/// child's dup2 onto 0..2 never clobbers another source descriptor.
pub fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor.
    let dup = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    Ok(owned(dup))
}

/// A close-on-exec duplicate.
pub fn dup_cloexec(fd: RawFd) -> Result<OwnedFd, Errno> {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor.
    Ok(owned(cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?))
}

pub fn set_nonblocking(fd: RawFd) -> Result<(), Errno> {
    // SAFETY: fcntl flag calls on an open descriptor.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// fcntl(F_SETPIPE_SZ): asks the kernel for a pipe capacity of at least `bytes`; returns the
/// capacity granted. Unprivileged callers are capped at /proc/sys/fs/pipe-max-size (EPERM above
/// it) and by the per-user pipe quota (pipe(7)).
pub fn set_pipe_size(fd: RawFd, bytes: usize) -> Result<usize, Errno> {
    let want = c_int::try_from(bytes).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fcntl with an int argument on an open descriptor.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, want) }).map(|n| n as usize)
}

fn socket_int_option(fd: RawFd, name: c_int) -> Result<c_int, Errno> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes (one int) to `value` and updates `len`.
    cvt(unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, name, (&mut value as *mut c_int).cast(), &mut len) })?;
    Ok(value)
}

/// For a unix stream socket, asks for a kernel send buffer of at least `bytes` and returns the size
/// it now has (the kernel doubles what it grants, for its bookkeeping); None for any other
/// descriptor, which is left alone (TCP tunes its own buffers, and setting SO_SNDBUF would switch
/// that off). SO_SNDBUF is capped at net.core.wmem_max, 212 992 on many systems; a process with
/// CAP_NET_ADMIN (an agent running as root in its VM) then gets the size with SO_SNDBUFFORCE, as
/// systemd does for its own sockets. Either refusal leaves the buffer as it was.
pub fn grow_unix_send_buffer(fd: RawFd, bytes: usize) -> Option<usize> {
    let is_unix_stream = socket_int_option(fd, libc::SO_DOMAIN).ok()? == libc::AF_UNIX
        && socket_int_option(fd, libc::SO_TYPE).ok()? == libc::SOCK_STREAM;
    if !is_unix_stream {
        return None;
    }
    let want = c_int::try_from(bytes).unwrap_or(c_int::MAX / 2);
    for option in [libc::SO_SNDBUF, libc::SO_SNDBUFFORCE] {
        if socket_int_option(fd, libc::SO_SNDBUF).ok()? >= want.saturating_mul(2) {
            break;
        }
        let len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: setsockopt reads one int from `want`.
        unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, option, (&want as *const c_int).cast(), len) };
    }
    socket_int_option(fd, libc::SO_SNDBUF).ok().map(|n| n.max(0) as usize)
}

/// ioctl(FIONREAD): bytes ready to be read without blocking.
pub fn readable_bytes(fd: RawFd) -> Result<usize, Errno> {
    let mut n: c_int = 0;
    // SAFETY: FIONREAD writes one int to the pointer.
    cvt(unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut c_int) })?;
    Ok(n.max(0) as usize)
}

/// read(2) into `buf`, retrying EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(n) {
            Ok(n) => return Ok(n as usize),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// read(2) of up to `len` bytes to `dst`, retrying EINTR. For memory that JavaScript can also
/// reach (a slab behind an ArrayBuffer), so no Rust reference to it is made.
///
/// # Safety
/// `dst` must be valid for writes of `len` bytes.
pub unsafe fn read_raw(fd: RawFd, dst: *mut u8, len: usize) -> Result<usize, Errno> {
    loop {
        // SAFETY: the caller guarantees `dst` is writable for `len` bytes.
        let n = unsafe { libc::read(fd, dst.cast(), len) };
        match Errno::result(n) {
            Ok(n) => return Ok(n as usize),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// read(2) of up to `max` bytes into `buf`'s spare capacity (nothing is zeroed first), retrying
/// EINTR. Returns the bytes appended; 0 is EOF.
pub fn read_append(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> Result<usize, Errno> {
    buf.reserve_exact(max);
    loop {
        let spare = buf.spare_capacity_mut();
        // SAFETY: `spare` is writable for at least `max` bytes (reserved above).
        let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), max) };
        match Errno::result(n) {
            Ok(n) => {
                let n = n as usize;
                // SAFETY: read(2) initialized the first `n` bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
                return Ok(n);
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// write(2) from `buf`, retrying EINTR.
pub fn write(fd: RawFd, buf: &[u8]) -> Result<usize, Errno> {
    loop {
        // SAFETY: `buf` is readable for its length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match Errno::result(n) {
            Ok(n) => return Ok(n as usize),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// writev(2) of `iov`, retrying EINTR.
pub fn writev(fd: RawFd, iov: &[libc::iovec]) -> Result<usize, Errno> {
    loop {
        // SAFETY: every iovec describes a readable slice that outlives the call.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as c_int) };
        match Errno::result(n) {
            Ok(n) => return Ok(n as usize),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// kill(2). `pid` < 0 addresses a process group.
pub fn kill(pid: libc::pid_t, signo: c_int) -> Result<(), Errno> {
    // SAFETY: kill takes plain integers.
    cvt(unsafe { libc::kill(pid, signo) }).map(drop)
}

/// waitpid(pid, 0) for one specific child, retrying EINTR. Never waits for "any" child.
pub fn waitpid_exact(pid: libc::pid_t) -> Result<c_int, Errno> {
    assert!(pid > 0, "waitpid_exact takes a real pid, never -1 or a group");
    let mut status = 0;
    loop {
        // SAFETY: `status` is writable.
        match cvt(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Ok(_) => return Ok(status),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// An epoll instance (close-on-exec).
pub struct Epoll(OwnedFd);

impl Epoll {
    pub fn new() -> Result<Epoll, Errno> {
        // SAFETY: epoll_create1 takes flags only.
        Ok(Epoll(owned(cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?)))
    }

    fn ctl(&self, op: c_int, fd: RawFd, events: u32, token: u64) -> Result<(), Errno> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is valid for the call; the kernel copies it.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) }).map(drop)
    }

    pub fn add(&self, fd: RawFd, events: u32, token: u64) -> Result<(), Errno> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events, token)
    }

    pub fn delete(&self, fd: RawFd) -> Result<(), Errno> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits for events; `None` waits forever. EINTR returns zero events.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout: Option<Duration>) -> Result<usize, Errno> {
        let ms = match timeout {
            None => -1,
            // Round up so a deadline is never woken for early and spun on.
            Some(d) => d.as_micros().div_ceil(1000).min(c_int::MAX as u128) as c_int,
        };
        // SAFETY: `events` is writable for its length.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), events.len() as c_int, ms) };
        match Errno::result(n) {
            Ok(n) => Ok(n as usize),
            Err(Errno::EINTR) => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// An eventfd used to wake the reader thread.
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> Result<EventFd, Errno> {
        // SAFETY: eventfd takes plain integers.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        Ok(EventFd(owned(fd)))
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    pub fn notify(&self) {
        // A full counter (EAGAIN) still means "readable", which is all a wake needs.
        let _ = write(self.0.as_raw_fd(), &1u64.to_ne_bytes());
    }

    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = read(self.0.as_raw_fd(), &mut buf);
    }
}

/// A one-shot timer (timerfd, CLOCK_MONOTONIC: the clock of `Instant`) the reader thread arms
/// for its next deadline, so that its `epoll_wait` needs no timeout: a timed sleep arms and
/// cancels a kernel timer on every turn, which on a VM traps to the hypervisor each time.
pub struct TimerFd(OwnedFd);

impl TimerFd {
    pub fn new() -> Result<TimerFd, Errno> {
        // SAFETY: timerfd_create takes plain integers.
        let fd = cvt(unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) })?;
        Ok(TimerFd(owned(fd)))
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Fires once, `after` from now (at least 1 ns later: an all-zero time would disarm it).
    pub fn arm(&self, after: Duration) -> Result<(), Errno> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
            it_value: libc::timespec {
                tv_sec: after.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        cvt(unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) }).map(drop)
    }

    /// Clears a firing, so the fd is no longer readable.
    pub fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = read(self.0.as_raw_fd(), &mut buf);
    }
}

/// Signals a process through its pidfd (pidfd_send_signal, Linux 5.1): it can never reach a
/// recycled pid.
pub fn pidfd_send_signal(pidfd: RawFd, signo: c_int) -> Result<(), Errno> {
    // SAFETY: the syscall takes an fd, a signal number, a null siginfo and zero flags.
    let rc = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd, signo, std::ptr::null::<libc::siginfo_t>(), 0u32)
    };
    Errno::result(rc).map(drop)
}

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to us.
pub fn set_child_subreaper() -> Result<(), Errno> {
    // SAFETY: prctl with integer arguments.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) }).map(drop)
}

/// waitpid(pid, WNOHANG) for one specific pid; true if it was reaped.
pub fn waitpid_nohang(pid: libc::pid_t) -> bool {
    assert!(pid > 0, "waitpid_nohang takes a real pid, never -1 or a group");
    let mut status = 0;
    // SAFETY: `status` is writable.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rc == pid
}

/// clock_settime(CLOCK_REALTIME).
pub fn set_realtime(secs: i64, nanos: i64) -> Result<(), Errno> {
    let ts = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: nanos as libc::c_long };
    // SAFETY: `ts` is valid for the call.
    cvt(unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) }).map(drop)
}

/// Opens a character device for reading and writing (non-blocking, close-on-exec, never our
/// controlling terminal). A terminal is put in raw mode so frames pass unchanged.
pub fn open_device(path: &std::ffi::CStr) -> Result<OwnedFd, Errno> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated.
    let fd = owned(cvt(unsafe { libc::open(path.as_ptr(), flags) })?);
    // SAFETY: isatty on an open descriptor.
    if unsafe { libc::isatty(fd.as_raw_fd()) } == 1 {
        // SAFETY: termios is plain data that tcgetattr fills.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is writable and valid for each call.
        unsafe {
            cvt(libc::tcgetattr(fd.as_raw_fd(), &mut t))?;
            libc::cfmakeraw(&mut t);
            cvt(libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t))?;
        }
    }
    Ok(fd)
}

/// A listening AF_VSOCK stream socket on `port` for any CID (vsock(7)).
pub fn vsock_listen(port: u32) -> Result<OwnedFd, Errno> {
    // SAFETY: socket takes plain integers.
    let fd = owned(cvt(unsafe { libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?);
    // SAFETY: sockaddr_vm is plain data.
    let mut addr: libc::sockaddr_vm = unsafe { std::mem::zeroed() };
    addr.svm_family = libc::AF_VSOCK as libc::sa_family_t;
    addr.svm_port = port;
    addr.svm_cid = libc::VMADDR_CID_ANY;
    let len = std::mem::size_of::<libc::sockaddr_vm>() as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_vm of `len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), &addr as *const libc::sockaddr_vm as *const libc::sockaddr, len) })?;
    // SAFETY: listen on a bound socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 16) })?;
    Ok(fd)
}

/// accept4(2) on a blocking listener, retrying EINTR.
pub fn accept(fd: RawFd) -> Result<OwnedFd, Errno> {
    loop {
        // SAFETY: null address pointers are allowed.
        let rc = unsafe { libc::accept4(fd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
        match Errno::result(rc) {
            Ok(c) => return Ok(owned(c)),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// strerror_r(3) (the XSI form): the C library's text for an errno.
pub fn strerror(errno: c_int) -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: `buf` is writable for its length; on success it holds a NUL-terminated string.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    // SAFETY: strerror_r succeeded, so `buf` is NUL-terminated.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wmem_max() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/wmem_max").unwrap().trim().parse().unwrap()
    }

    fn socket_pair(kind: c_int) -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two descriptors into `fds`, which we then own.
        cvt(unsafe { libc::socketpair(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) }).unwrap();
        (owned(fds[0]), owned(fds[1]))
    }

    /// Whether this process may pass wmem_max (CAP_NET_ADMIN, bit 12 of CapEff).
    fn may_force() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap().trim();
        const CAP_NET_ADMIN: u32 = 12;
        u64::from_str_radix(caps, 16).unwrap() & (1 << CAP_NET_ADMIN) != 0
    }

    #[test]
    fn a_unix_stream_socket_gets_the_send_buffer_asked_for() {
        for want in [256 << 10, 2 << 20, 3 * wmem_max()] {
            let (a, _b) = socket_pair(libc::SOCK_STREAM);
            let granted = if want <= wmem_max() || may_force() { want } else { wmem_max() };
            assert_eq!(grow_unix_send_buffer(a.as_raw_fd(), want), Some(2 * granted), "asking for {want}");
            // Asking for less than it has leaves it as it is.
            assert_eq!(grow_unix_send_buffer(a.as_raw_fd(), 4096), Some(2 * granted));
        }
    }

    #[test]
    fn other_descriptors_are_left_alone() {
        let (dgram, _peer) = socket_pair(libc::SOCK_DGRAM);
        let before = socket_int_option(dgram.as_raw_fd(), libc::SO_SNDBUF).unwrap();
        assert_eq!(grow_unix_send_buffer(dgram.as_raw_fd(), 2 << 20), None);
        assert_eq!(socket_int_option(dgram.as_raw_fd(), libc::SO_SNDBUF).unwrap(), before);
        // SAFETY: socket(2) returns a new descriptor that we own.
        let tcp = owned(cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) }).unwrap());
        let before = socket_int_option(tcp.as_raw_fd(), libc::SO_SNDBUF).unwrap();
        assert_eq!(grow_unix_send_buffer(tcp.as_raw_fd(), 2 << 20), None);
        assert_eq!(socket_int_option(tcp.as_raw_fd(), libc::SO_SNDBUF).unwrap(), before);
        let (r, _w) = pipe_cloexec().unwrap();
        assert_eq!(grow_unix_send_buffer(r.as_raw_fd(), 2 << 20), None);
    }
}
