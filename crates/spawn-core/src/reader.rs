//! The reader: one epoll thread for every session.
//!
//! It reads output (one chunk per ready fd per turn, so no session starves another: up to 64 KiB
//! from a PTY, whatever a child's pipe holds up to what its slab has room for, see slab.rs; a
//! bulk PTY's reads are gathered for a few ms, see `OutStream::read_bulk_pty`),
//! writes queued stdin when the fd is writable,
//! notices the leader's exit through its pidfd, applies the drain policy and only then reaps and
//! reports the exit, after the last output chunk. A stream is polled only while its owner is not
//! paused and has less than `INFLIGHT_MAX` bytes unconsumed: otherwise the fd is simply left
//! unread and the kernel blocks that child alone. The thread starts with the first session and ends with the last one, so an
//! idle process holds no thread and no descriptor of ours.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::handle::{lock, Ctl, Handle, Shared, WRITER_LOW_WATER};
use crate::outbox::Outbox;
use crate::orphans;
use crate::reaper::{self, ExitStatus};
use crate::spawn::{ChildIo, Spawned};
use crate::slab::{self, Slab, SlabChunk, SlabCursor};
use crate::spec::AfterDrain;
use crate::sys::{self, Epoll, EventFd, TimerFd};

/// Size of one read from a PTY or an fd stream.
pub const CHUNK: usize = 64 * 1024;
/// Largest read from a child's pipe into a buffer of its own (a grown pipe's reads are bounded by
/// its slab instead). A pipe read takes what the pipe holds (FIONREAD), up to this.
pub const PIPE_READ_MAX: usize = 1024 * 1024;
/// Capacity a child's pipe is grown to once it has been seen full at the default 64 KiB: the
/// child then blocks (and wakes us) far less often. Only streams that prove to be bulk pay for
/// it, because the pages count against the user's pipe quota (pipe(7),
/// /proc/sys/fs/pipe-user-pages-soft: past it, every new pipe of that user gets 2 pages).
pub const PIPE_GROW_TO: usize = 1024 * 1024;
/// The kernel's default pipe capacity (pipe(7)); a read this large means the pipe was full.
const PIPE_DEFAULT: usize = 64 * 1024;
/// A PTY or fd stream that gives at least this much in one turn (four of the tty layer's 4 KiB
/// reads, one after the other) is bulk: its reads go into slabs, as a grown pipe's.
const BULK_TURN: usize = 16 * 1024;
/// How long a bulk PTY's bytes may wait to be handed out while more keep coming (see
/// `OutStream::read_bulk_pty`): a terminal redraws at most every 5 ms or so anyway.
const PTY_HOLD: Duration = Duration::from_millis(5);
/// A hold that runs out with less than this (one read of the tty layer) was a trickle, not a
/// stream paused for a moment: the stream is read as an interactive one again.
const PTY_TRICKLE: usize = 4 * 1024;
/// After the drain deadline, at most this much more is read from a stream before it is closed.
const FINAL_DRAIN_MAX: usize = 1024 * 1024;

/// How long the thread stays after its last session ended. Sequential spawns then reuse it
/// instead of paying for a new thread, epoll and eventfd each time; an idle process still ends
/// up holding no thread and no descriptor.
const LINGER: Duration = Duration::from_millis(250);

/// How often adopted orphans are looked for in subreaper mode.
const ORPHAN_SCAN: Duration = Duration::from_millis(200);

const WAKE_TOKEN: u64 = u64::MAX;
const TIMER_TOKEN: u64 = u64::MAX - 1;
const KIND_OUT0: u64 = 0;
const KIND_OUT1: u64 = 1;
const KIND_STDIN: u64 = 2;
const KIND_PIDFD: u64 = 3;

/// Output handed to the owner: its own buffer, or a part of a slab (a bulk pipe's).
pub enum Chunk {
    Owned(Vec<u8>),
    Slab(SlabChunk),
}

impl Chunk {
    pub fn len(&self) -> usize {
        match self {
            Chunk::Owned(v) => v.len(),
            Chunk::Slab(c) => c.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Slab(c) => c.bytes(),
        }
    }
}

/// Which output a chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Stdout,
    Stderr,
    Pty,
}

impl StreamKind {
    pub fn index(self) -> usize {
        match self {
            StreamKind::Stdout | StreamKind::Pty => 0,
            StreamKind::Stderr => 1,
        }
    }
}

/// Receives a session's events, in order, on the reader thread. `exit` is the last call.
pub trait EventSink: Send {
    fn data(&mut self, kind: StreamKind, chunk: Chunk);
    fn stdin_written(&mut self, bytes: usize);
    fn stdin_error(&mut self, errno: Errno);
    fn exit(&mut self, status: ExitStatus);
    /// The stream's slab was let go (slab.rs): no more chunks will come from it.
    fn slab_released(&mut self, _kind: StreamKind) {}
    /// A writer's congestion, which its owner was told of, is over.
    fn drained(&mut self) {}
    /// A routed session sent `frames` frames holding `bytes` bytes of output (route.rs).
    fn routed(&mut self, _frames: u64, _bytes: u64) {}
}

pub(crate) enum Command {
    /// A new session, already attached to the reader's epoll set (see `enqueue`).
    Register(Box<Session>),
    Poke(u64),
    Close(u64),
    Terminate { id: u64, signo: libc::c_int, grace: Duration },
}

struct EngineState {
    commands: Vec<Command>,
    /// Present while the reader thread runs.
    link: Option<ReaderLink>,
    next_id: u64,
}

/// How other threads reach the running reader: its wake-up eventfd and its epoll set.
struct ReaderLink {
    wake: Arc<EventFd>,
    epoll: Arc<Epoll>,
}

static ENGINE: Mutex<EngineState> = Mutex::new(EngineState { commands: Vec::new(), link: None, next_id: 1 });
/// Reader threads alive (briefly two: one finishing its exit while a new one starts).
static THREADS: AtomicUsize = AtomicUsize::new(0);
static SESSIONS: AtomicUsize = AtomicUsize::new(0);

/// Live sessions and whether the reader thread runs (for leak tests).
pub fn stats() -> (usize, bool) {
    (SESSIONS.load(Ordering::Acquire), THREADS.load(Ordering::Acquire) > 0)
}

/// Queues a command for the reader. Commands for sessions of a stopped reader are dropped:
/// those sessions have ended.
pub(crate) fn submit(cmd: Command) {
    let mut engine = lock(&ENGINE);
    if let Some(wake) = engine.link.as_ref().map(|l| Arc::clone(&l.wake)) {
        engine.commands.push(cmd);
        wake.notify();
    }
}

/// Hands a freshly spawned child to the reader and returns its handle. On failure the child is
/// killed and reaped.
///
/// With a `gate` (a writer, see `register_writer`) the session's output is routed there by its
/// sink: it is not read while the writer is congested, and it starts paused, so that its owner
/// can queue what must precede the output (the announcement of the session) and then resume it.
pub fn register(
    spawned: Spawned,
    drain: Duration,
    after_drain: AfterDrain,
    gate: Option<Handle>,
    make_sink: impl FnOnce(Handle) -> Box<dyn EventSink>,
) -> Result<Handle, Errno> {
    let mut engine = lock(&ENGINE);
    if engine.link.is_none() {
        if let Err(e) = start_thread(&mut engine) {
            drop(engine);
            let _ = sys::kill(-spawned.pid, libc::SIGKILL);
            let _ = sys::pidfd_send_signal(spawned.pidfd.as_raw_fd(), libc::SIGKILL);
            let _ = sys::waitpid_exact(spawned.pid);
            return Err(e);
        }
    }
    let id = engine.next_id;
    engine.next_id += 1;
    let (streams, stdin, pty_ctl) = match spawned.io {
        ChildIo::Pty { master } => {
            let write = sys::dup_cloexec(master.as_raw_fd());
            let ctl = sys::dup_cloexec(master.as_raw_fd());
            let (write, ctl) = match (write, ctl) {
                (Ok(w), Ok(c)) => (w, c),
                (Err(e), _) | (_, Err(e)) => {
                    drop(engine);
                    let _ = sys::kill(-spawned.pid, libc::SIGKILL);
                    let _ = sys::waitpid_exact(spawned.pid);
                    return Err(e);
                }
            };
            let out = OutStream::new(master, StreamKind::Pty, false);
            ([Some(out), None], Some(InStream::new(write, true)), Some(ctl))
        }
        ChildIo::Pipes { stdin, stdout, stderr } => (
            [
                Some(OutStream::new(stdout, StreamKind::Stdout, true)),
                Some(OutStream::new(stderr, StreamKind::Stderr, true)),
            ],
            stdin.map(|fd| InStream::new(fd, false)),
            None,
        ),
    };
    let pidfd_raw = spawned.pidfd.as_raw_fd();
    let parts = SessionParts {
        pid: spawned.pid,
        pidfd: Some((spawned.pidfd, pidfd_raw)),
        pty_ctl,
        streams,
        stdin,
        drain,
        after_drain,
        write_only: false,
        gate: gate.map(|h| h.0),
    };
    Ok(enqueue(&mut engine, id, parts, make_sink))
}

/// Hands an already open descriptor (a serial device, an accepted socket) to the reader as a
/// byte stream: its input arrives as `data` events, `Handle::write` queues output, and the
/// stream's end (EOF, hang-up, EIO) is reported as an exit without code or signal. It is also a
/// writer (`Handle::send`, routed sessions) as `register_writer` describes; `write`'s entries are
/// reported back as written, `send`'s are not.
pub fn register_stream(fd: OwnedFd, make_sink: impl FnOnce(Handle) -> Box<dyn EventSink>) -> Result<Handle, Errno> {
    sys::set_nonblocking(fd.as_raw_fd())?;
    let write = sys::dup_cloexec(fd.as_raw_fd())?;
    register_fd(Some(fd), write, make_sink)
}

/// Hands a descriptor (an agent connection's socket, whose reading stays with its owner) to the
/// reader as a writer: one ordered queue for everything written to it, from the owner
/// (`Handle::send`) and from the sessions routed to it (`register` with a gate). Whoever queues
/// onto an empty queue writes at once; the reader writes the rest when the descriptor takes it.
/// A failed write is reported as `stdin_error`, then the writer ends (`exit`), as after `close`.
pub fn register_writer(fd: OwnedFd, make_sink: impl FnOnce(Handle) -> Box<dyn EventSink>) -> Result<Handle, Errno> {
    sys::set_nonblocking(fd.as_raw_fd())?;
    register_fd(None, fd, make_sink)
}

/// A session without a process: an fd stream (`read` present) or a writer.
fn register_fd(
    read: Option<OwnedFd>,
    write: OwnedFd,
    make_sink: impl FnOnce(Handle) -> Box<dyn EventSink>,
) -> Result<Handle, Errno> {
    let mut engine = lock(&ENGINE);
    if engine.link.is_none() {
        start_thread(&mut engine)?;
    }
    let id = engine.next_id;
    engine.next_id += 1;
    let write_only = read.is_none();
    let parts = SessionParts {
        pid: 0,
        pidfd: None,
        pty_ctl: None,
        streams: [read.map(|fd| OutStream::new(fd, StreamKind::Stdout, false)), None],
        stdin: Some(InStream::new(write, false)),
        drain: Duration::ZERO,
        after_drain: AfterDrain::Detach,
        write_only,
        gate: None,
    };
    Ok(enqueue(&mut engine, id, parts, make_sink))
}

/// What a new session is made of.
struct SessionParts {
    pid: libc::pid_t,
    /// The leader's pidfd (owned, and its raw number); None for an fd stream.
    pidfd: Option<(OwnedFd, RawFd)>,
    pty_ctl: Option<OwnedFd>,
    streams: [Option<OutStream>; 2],
    stdin: Option<InStream>,
    drain: Duration,
    after_drain: AfterDrain,
    /// A writer: no output streams, it lives until closed or failed.
    write_only: bool,
    gate: Option<Arc<Shared>>,
}

/// Builds the shared state and the reader's session, and queues it for the reader thread.
fn enqueue(
    engine: &mut EngineState,
    id: u64,
    p: SessionParts,
    make_sink: impl FnOnce(Handle) -> Box<dyn EventSink>,
) -> Handle {
    let (pidfd_owned, pidfd_raw) = match p.pidfd {
        Some((owned, raw)) => (Some(owned), Some(raw)),
        None => (None, None),
    };
    let has_stdin = p.stdin.is_some();
    // A writer or an fd stream (no process) takes sends and routed output; a child's stdin does not.
    let direct_fd = match (&p.stdin, pidfd_raw) {
        (Some(st), None) => st.fd.as_raw_fd(),
        _ => -1,
    };
    let routed = p.gate.is_some();
    let shared = Arc::new(Shared {
        id,
        pid: p.pid,
        inflight: [AtomicUsize::new(0), AtomicUsize::new(0)],
        paused: [AtomicBool::new(routed), AtomicBool::new(routed)],
        js_slab: [AtomicUsize::new(0), AtomicUsize::new(0)],
        ctl: Mutex::new(Ctl { reaped: false, pidfd: pidfd_owned, pty: p.pty_ctl }),
        stdin: Mutex::new(Outbox::new(!has_stdin)),
        direct_fd,
        congested: AtomicBool::new(false),
        gate: p.gate,
    });
    let session = Session {
        shared: Arc::clone(&shared),
        sink: make_sink(Handle(Arc::clone(&shared))),
        pidfd: pidfd_raw,
        pidfd_registered: false,
        streams: p.streams,
        stdin: p.stdin,
        leader: None,
        drain_deadline: None,
        kill_deadline: None,
        drain: p.drain,
        after_drain: p.after_drain,
        write_only: p.write_only,
        closing: false,
        forced: false,
        tombstone: None,
    };
    // Attached here, on the caller's thread, and queued without waking the reader: a wake-up
    // costs the caller ~25 µs on our VMs (an IPI) and the reader a turn per spawn. The reader
    // learns of the session at its next turn, at the latest when one of these descriptors
    // becomes ready (the epoll set is level-triggered: an event it cannot place yet comes back).
    let mut session = Box::new(session);
    if let Some(link) = &engine.link {
        session.attach(&link.epoll);
    }
    SESSIONS.fetch_add(1, Ordering::AcqRel);
    engine.commands.push(Command::Register(session));
    Handle(shared)
}

fn start_thread(engine: &mut EngineState) -> Result<(), Errno> {
    let epoll = Arc::new(Epoll::new()?);
    let wake = Arc::new(EventFd::new()?);
    epoll.add(wake.fd(), libc::EPOLLIN as u32, WAKE_TOKEN)?;
    let timer = TimerFd::new()?;
    epoll.add(timer.fd(), libc::EPOLLIN as u32, TIMER_TOKEN)?;
    let thread_wake = Arc::clone(&wake);
    let thread_epoll = Arc::clone(&epoll);
    THREADS.fetch_add(1, Ordering::AcqRel);
    let started = std::thread::Builder::new().name("msb-reader".into()).spawn(move || {
        // A panic here must not unwind into nothing: catch it, kill what we own, and stop.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&thread_epoll, thread_wake, timer)));
        if result.is_err() {
            let mut engine = lock(&ENGINE);
            engine.link = None;
            engine.commands.clear();
        }
        THREADS.fetch_sub(1, Ordering::AcqRel);
    });
    match started {
        Ok(_) => {
            engine.link = Some(ReaderLink { wake, epoll });
            Ok(())
        }
        Err(_) => {
            THREADS.fetch_sub(1, Ordering::AcqRel);
            Err(Errno::EAGAIN)
        }
    }
}

struct OutStream {
    fd: OwnedFd,
    kind: StreamKind,
    registered: bool,
    /// A child's pipe: read as much as it holds, and grown once it has been seen full.
    is_pipe: bool,
    /// A bulk stream: a pipe that was grown, or a PTY (or fd stream) that once gave at least
    /// `BULK_TURN` bytes in one turn. Its reads go into slabs.
    grown: bool,
    /// Where a bulk stream's reads go.
    slab: SlabCursor,
    /// A bulk PTY's bytes read but not handed out yet: they end where the slab's used part ends.
    held: Option<Held>,
}

/// Bytes of a slab read one after the other, handed out as one chunk (`read_bulk_pty`).
struct Held {
    slab: Arc<Slab>,
    off: usize,
    len: usize,
    since: Instant,
}

/// What one turn on a stream gave.
enum Turn {
    /// Bytes to hand out now.
    Chunk(Chunk),
    /// Bytes were read (or none were ready) and are held for now.
    Held,
    /// End of file.
    Eof,
}

impl OutStream {
    fn new(fd: OwnedFd, kind: StreamKind, is_pipe: bool) -> OutStream {
        OutStream { fd, kind, registered: false, is_pipe, grown: false, slab: SlabCursor::default(), held: None }
    }

    /// Reads once: a grown pipe what it holds into its slab (as much as fits), another pipe
    /// into a buffer sized to what it holds (no copy afterwards either way), a PTY or fd stream
    /// as `read_turn` says.
    fn read(&mut self, scratch: &mut [u8]) -> Result<Turn, Errno> {
        let fd = self.fd.as_raw_fd();
        if !self.is_pipe {
            return self.read_turn(fd, scratch);
        }
        let chunk = self.read_pipe(fd)?;
        Ok(if chunk.is_empty() { Turn::Eof } else { Turn::Chunk(chunk) })
    }

    fn read_pipe(&mut self, fd: RawFd) -> Result<Chunk, Errno> {
        // With a slab's worth of room left a grown pipe is read up to it without asking first:
        // FIONREAD takes the pipe's lock, which the child's next write then waits on.
        let want = if self.grown && self.slab.room_left() >= slab::MIN_ROOM {
            PIPE_READ_MAX
        } else {
            // 0 ready (a hang-up, or a race with the writer) still needs a read to see EOF.
            sys::readable_bytes(fd).unwrap_or(0).clamp(1, PIPE_READ_MAX)
        };
        // A bulk pipe reads into slabs (slab.rs); one that never filled up gets a buffer of
        // exactly what it read, so small outputs pin no more memory than their size.
        if self.grown {
            if let Some((slab, off, max)) = self.slab.room(want) {
                // SAFETY: bytes off..off + max of the slab lie in its allocation and are covered
                // by no chunk handed out yet.
                let n = unsafe { sys::read_raw(fd, slab.as_ptr().add(off), max) }?;
                self.slab.advance(n);
                return Ok(if n == 0 { Chunk::Owned(Vec::new()) } else { Chunk::Slab(SlabChunk { slab, off, len: n }) });
            }
        }
        let mut chunk = Vec::new();
        sys::read_append(fd, &mut chunk, want)?;
        if !self.grown && chunk.len() >= PIPE_DEFAULT {
            self.grown = true;
            // Refused (quota, pipe-max-size) is fine: the pipe keeps working at its size.
            let _ = sys::set_pipe_size(fd, PIPE_GROW_TO);
        }
        Ok(Chunk::Owned(chunk))
    }

    /// One turn on a PTY or an fd stream. A bulk PTY: `read_bulk_pty`. Otherwise, as the tty
    /// layer hands out ~4 KiB per read even when more is queued, keep reading until the fd is
    /// empty or `CHUNK` bytes came, so JS gets one chunk instead of up to sixteen.
    /// A bulk stream reads straight into its slab (no copy, and JS gets a view instead of a
    /// Buffer with a finalizer of its own); other turns go through `scratch` into a buffer of
    /// exactly what came, so small outputs pin no more memory than their size.
    fn read_turn(&mut self, fd: RawFd, scratch: &mut [u8]) -> Result<Turn, Errno> {
        if self.grown && self.kind == StreamKind::Pty {
            if let Some(turn) = self.read_bulk_pty(fd)? {
                return Ok(turn);
            }
        }
        let slab = if self.grown { self.slab.room(CHUNK) } else { None };
        let Some((slab, off, max)) = slab else {
            let n = read_until_empty(fd, scratch.as_mut_ptr(), scratch.len())?;
            self.grown |= n >= BULK_TURN;
            return Ok(if n == 0 { Turn::Eof } else { Turn::Chunk(Chunk::Owned(scratch[..n].to_vec())) });
        };
        // SAFETY: bytes off..off + max of the slab lie in its allocation and are covered by no
        // chunk handed out yet.
        let n = read_until_empty(fd, unsafe { slab.as_ptr().add(off) }, max)?;
        self.slab.advance(n);
        Ok(if n == 0 { Turn::Eof } else { Turn::Chunk(Chunk::Slab(SlabChunk { slab, off, len: n })) })
    }

    /// One read of a bulk PTY, appended to the bytes held from the reads before it. They are
    /// handed out together when the slab has no room for another `CHUNK` after them (so up to a
    /// whole slab at once), or by `take_expired` once `PTY_HOLD` has passed. Reading until the
    /// PTY is empty instead costs, every turn, a wait for the tty's flush worker in the last
    /// read and one more sleep and wake-up in `epoll_wait` after it (bench/README.md, seventh
    /// round). An error or EOF hands out what is held first and is seen again next turn (a PTY
    /// master keeps failing with EIO once its slave side is gone). None: no slab memory; read
    /// it as an interactive stream.
    fn read_bulk_pty(&mut self, fd: RawFd) -> Result<Option<Turn>, Errno> {
        // The next read must land right after the held bytes, in the same slab.
        if self.held.is_some() && self.slab.room_left() < CHUNK {
            return Ok(self.take_held().map(Turn::Chunk));
        }
        let Some((slab, off, max)) = self.slab.room(CHUNK) else {
            return Ok(self.take_held().map(Turn::Chunk));
        };
        // SAFETY: bytes off..off + max of the slab lie in its allocation and are covered by no
        // chunk handed out yet (held bytes end at `off`).
        let n = match unsafe { sys::read_raw(fd, slab.as_ptr().add(off), max) } {
            Ok(n) => n,
            Err(Errno::EAGAIN) => return Ok(Some(Turn::Held)),
            Err(e) => return self.take_held().map(|c| Some(Turn::Chunk(c))).ok_or(e),
        };
        if n == 0 {
            return Ok(Some(self.take_held().map_or(Turn::Eof, Turn::Chunk)));
        }
        self.slab.advance(n);
        match self.held.as_mut() {
            Some(h) => {
                debug_assert!(Arc::ptr_eq(&h.slab, &slab) && h.off + h.len == off);
                h.len += n;
            }
            None => self.held = Some(Held { slab, off, len: n, since: Instant::now() }),
        }
        Ok(Some(Turn::Held))
    }

    /// The held bytes as one chunk, if any.
    fn take_held(&mut self) -> Option<Chunk> {
        self.held.take().map(|h| Chunk::Slab(SlabChunk { slab: h.slab, off: h.off, len: h.len }))
    }

    /// When the held bytes must be handed out.
    fn held_until(&self) -> Option<Instant> {
        self.held.as_ref().map(|h| h.since + PTY_HOLD)
    }

    /// The held bytes, if their hold ran out by `now`. A trickle makes the stream an
    /// interactive one again, so that a shell's prompt after a burst is not held.
    fn take_expired(&mut self, now: Instant) -> Option<Chunk> {
        if self.held_until()? > now {
            return None;
        }
        if self.held.as_ref().is_some_and(|h| h.len < PTY_TRICKLE) {
            self.grown = false;
        }
        self.take_held()
    }
}

/// Reads into `dst` until `len` bytes came or the fd has no more now. The first read's error is
/// returned (EAGAIN, or EIO at a PTY's end); a later one ends the turn and is seen next turn.
/// Ok(0) is EOF.
fn read_until_empty(fd: RawFd, dst: *mut u8, len: usize) -> Result<usize, Errno> {
    // SAFETY: the caller gives `len` writable bytes at `dst`.
    let mut n = unsafe { sys::read_raw(fd, dst, len) }?;
    while n > 0 && n < len {
        // SAFETY: as above; n < len.
        match unsafe { sys::read_raw(fd, dst.add(n), len - n) } {
            Ok(m) if m > 0 => n += m,
            _ => break,
        }
    }
    Ok(n)
}

struct InStream {
    fd: OwnedFd,
    is_pty: bool,
    registered: bool,
    last_byte: Option<u8>,
}

impl InStream {
    fn new(fd: OwnedFd, is_pty: bool) -> InStream {
        InStream { fd, is_pty, registered: false, last_byte: None }
    }
}

pub(crate) struct Session {
    shared: Arc<Shared>,
    sink: Box<dyn EventSink>,
    /// The leader's pidfd; None for an fd stream (a serial device or a socket), which has no
    /// process and ends when its read side does.
    pidfd: Option<RawFd>,
    pidfd_registered: bool,
    streams: [Option<OutStream>; 2],
    stdin: Option<InStream>,
    /// The leader's status, observed with WNOWAIT (still a zombie).
    leader: Option<ExitStatus>,
    drain_deadline: Option<Instant>,
    kill_deadline: Option<Instant>,
    drain: Duration,
    after_drain: AfterDrain,
    /// A writer (`register_writer`).
    write_only: bool,
    /// The owner called close(): discard output, finish when the leader is gone.
    closing: bool,
    /// Streams were closed at the drain deadline, not by EOF.
    forced: bool,
    /// Set when the session finishes during a termination's grace period with something still
    /// holding its output: the group gets SIGKILL at this instant, after the exit is reported.
    tombstone: Option<Instant>,
}

fn token(id: u64, kind: u64) -> u64 {
    (id << 2) | kind
}

fn run(epoll: &Epoll, wake: Arc<EventFd>, timer: TimerFd) {
    let mut sessions: HashMap<u64, Session> = HashMap::new();
    let mut buf = vec![0u8; CHUNK];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 128];
    let mut idle_since: Option<Instant> = None;
    // (process group, when to SIGKILL it) of terminated sessions whose exit was already reported.
    let mut tombstones: Vec<(libc::pid_t, Instant)> = Vec::new();
    let mut next_orphan_scan = Instant::now();
    // When the timer fires, if it is armed. It is armed only for a deadline earlier than that;
    // one that moved later (a slab's idle time, pushed back by every read) is found when it
    // fires, so a busy stream arms it about once per deadline, not once per turn.
    let mut armed: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let subreaper = orphans::enabled();
        if subreaper && now >= next_orphan_scan {
            orphans::reap();
            next_orphan_scan = now + ORPHAN_SCAN;
        }
        let deadline = sessions
            .values()
            .filter_map(Session::next_deadline)
            .chain(tombstones.iter().map(|t| t.1))
            .chain(idle_since.map(|t| t + LINGER))
            .chain(subreaper.then_some(next_orphan_scan))
            .min();
        let timeout = match deadline {
            Some(d) if d <= now => Some(Duration::ZERO),
            Some(d) if armed.is_none_or(|a| d < a) => match timer.arm(d - now) {
                Ok(()) => {
                    armed = Some(d);
                    None
                }
                Err(_) => Some(d - now),
            },
            _ => None,
        };
        let n = epoll.wait(&mut events, timeout).unwrap_or(0);
        for ev in &events[..n] {
            let tok = ev.u64;
            if tok == WAKE_TOKEN {
                wake.drain();
                continue;
            }
            if tok == TIMER_TOKEN {
                timer.drain();
                armed = None;
                continue;
            }
            let Some(s) = sessions.get_mut(&(tok >> 2)) else { continue };
            match tok & 3 {
                KIND_OUT0 => s.on_readable(0, epoll, &mut buf),
                KIND_OUT1 => s.on_readable(1, epoll, &mut buf),
                KIND_STDIN => s.pump_stdin(epoll),
                _ => s.on_pidfd(epoll),
            }
        }
        let commands = std::mem::take(&mut lock(&ENGINE).commands);
        for cmd in commands {
            match cmd {
                Command::Register(s) => {
                    sessions.insert(s.shared.id, *s);
                }
                Command::Poke(id) => {
                    if let Some(s) = sessions.get_mut(&id) {
                        s.pump_stdin(epoll);
                    }
                }
                Command::Close(id) => {
                    if let Some(s) = sessions.get_mut(&id) {
                        s.close(epoll);
                    }
                }
                Command::Terminate { id, signo, grace } => {
                    if let Some(s) = sessions.get_mut(&id) {
                        s.terminate(signo, grace);
                    }
                }
            }
        }
        let now = Instant::now();
        let mut finished = Vec::new();
        for (id, s) in sessions.iter_mut() {
            s.update_interest(epoll);
            if s.advance(now, epoll) {
                finished.push(*id);
            }
        }
        for id in finished {
            if let Some(s) = sessions.remove(&id) {
                if let Some(at) = s.tombstone {
                    tombstones.push((s.shared.pid, at));
                }
                s.finish(epoll);
                SESSIONS.fetch_sub(1, Ordering::AcqRel);
            }
        }
        tombstones.retain(|&(pgid, at)| {
            if now < at {
                return true;
            }
            // The group outlived its leader's reap; its surviving members pin the pgid.
            let _ = sys::kill(-pgid, libc::SIGKILL);
            false
        });
        if !sessions.is_empty() || !tombstones.is_empty() || subreaper {
            idle_since = None;
        } else if idle_since.is_some_and(|t| now >= t + LINGER) {
            let mut engine = lock(&ENGINE);
            if engine.commands.is_empty() {
                engine.link = None;
                return;
            }
        } else if idle_since.is_none() {
            idle_since = Some(now);
        }
    }
}

impl Session {
    fn attach(&mut self, epoll: &Epoll) {
        let id = self.shared.id;
        if let Some(pidfd) = self.pidfd {
            if epoll.add(pidfd, libc::EPOLLIN as u32, token(id, KIND_PIDFD)).is_ok() {
                self.pidfd_registered = true;
            } else if let Ok(Some(status)) = reaper::peek_exit(pidfd) {
                self.leader = Some(status);
                self.drain_deadline = Some(Instant::now() + self.drain);
            }
        }
        self.update_interest(epoll);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let drain = match (self.leader, self.after_drain) {
            (Some(_), AfterDrain::KillGroup | AfterDrain::Detach) if self.has_open_streams() => self.drain_deadline,
            _ => None,
        };
        let slabs = self.streams.iter().flatten().filter_map(|s| s.slab.release_at());
        let holds = self.streams.iter().flatten().filter_map(OutStream::held_until);
        [drain, self.kill_deadline].into_iter().flatten().chain(slabs).chain(holds).min()
    }

    /// Lets go of the slabs of streams that have been quiet for `SLAB_IDLE`.
    fn release_idle_slabs(&mut self, now: Instant) {
        for s in self.streams.iter_mut().flatten() {
            if s.slab.release_at().is_some_and(|t| now >= t) && s.slab.release() {
                self.sink.slab_released(s.kind);
            }
        }
    }

    fn has_open_streams(&self) -> bool {
        self.streams.iter().any(Option::is_some)
    }

    fn update_interest(&mut self, epoll: &Epoll) {
        let id = self.shared.id;
        for idx in 0..2 {
            let want = !self.closing && self.shared.allowed(idx);
            let Some(s) = self.streams[idx].as_mut() else { continue };
            if want && !s.registered {
                s.registered = epoll.add(s.fd.as_raw_fd(), libc::EPOLLIN as u32, token(id, idx as u64)).is_ok();
            } else if !want && s.registered {
                let _ = epoll.delete(s.fd.as_raw_fd());
                s.registered = false;
            }
        }
    }

    /// Closes a stream; bytes it still holds are handed out first, unless the owner closed the
    /// session.
    fn close_stream(&mut self, idx: usize, epoll: &Epoll) {
        if let Some(mut s) = self.streams[idx].take() {
            if s.registered {
                let _ = epoll.delete(s.fd.as_raw_fd());
            }
            if let Some(chunk) = s.take_held().filter(|_| !self.closing) {
                self.deliver(idx, s.kind, chunk);
            }
        }
    }

    fn deliver(&mut self, idx: usize, kind: StreamKind, chunk: Chunk) {
        self.shared.inflight[idx].fetch_add(chunk.len(), Ordering::AcqRel);
        self.sink.data(kind, chunk);
    }

    /// Hands out the bytes of streams whose hold ran out.
    fn hand_out_expired(&mut self, now: Instant) {
        for idx in 0..2 {
            let Some(s) = self.streams[idx].as_mut() else { continue };
            let kind = s.kind;
            if let Some(chunk) = s.take_expired(now) {
                self.deliver(idx, kind, chunk);
            }
        }
    }

    /// Reads once from a ready stream. Returns the number of bytes delivered (0 at EOF/EAGAIN).
    fn read_once(&mut self, idx: usize, epoll: &Epoll, buf: &mut [u8]) -> Option<usize> {
        let s = self.streams[idx].as_mut()?;
        match s.read(buf) {
            Ok(Turn::Eof) => {
                self.close_stream(idx, epoll);
                None
            }
            Ok(Turn::Chunk(chunk)) => {
                let (kind, n) = (s.kind, chunk.len());
                self.deliver(idx, kind, chunk);
                Some(n)
            }
            Ok(Turn::Held) | Err(Errno::EAGAIN) => Some(0),
            // EIO on a PTY master after the last slave fd closed is EOF (pty(7)); any other
            // read error also ends the stream.
            Err(_) => {
                self.close_stream(idx, epoll);
                None
            }
        }
    }

    fn on_readable(&mut self, idx: usize, epoll: &Epoll, buf: &mut [u8]) {
        if self.closing || !self.shared.allowed(idx) {
            return;
        }
        self.read_once(idx, epoll, buf);
    }

    fn on_pidfd(&mut self, epoll: &Epoll) {
        let Some(pidfd) = self.pidfd.filter(|_| self.leader.is_none()) else { return };
        if let Ok(Some(status)) = reaper::peek_exit(pidfd) {
            self.leader = Some(status);
            self.drain_deadline = Some(Instant::now() + self.drain);
            if self.pidfd_registered {
                let _ = epoll.delete(pidfd);
                self.pidfd_registered = false;
            }
        }
    }

    /// Writes queued stdin until the queue is empty or the fd would block; then EOF if asked.
    /// A writer that drains to its low water is relieved of its congestion.
    fn pump_stdin(&mut self, epoll: &Epoll) {
        let Some(st) = self.stdin.as_mut() else { return };
        let fd = st.fd.as_raw_fd();
        let (flushed, eof, relieved) = {
            let mut q = lock(&self.shared.stdin);
            let flushed = q.flush(fd);
            let eof = flushed.error.is_none() && q.is_empty() && q.eof_requested;
            if eof {
                q.dead = true;
            }
            // A dead writer holds nobody back either.
            let relieved = (q.dead || q.queued() <= WRITER_LOW_WATER) && self.shared.congested.swap(false, Ordering::AcqRel);
            (flushed, eof, relieved && std::mem::take(&mut q.drain_wanted))
        };
        if flushed.last_byte.is_some() {
            st.last_byte = flushed.last_byte;
        }
        for bytes in flushed.written {
            self.sink.stdin_written(bytes);
        }
        if flushed.blocked != st.registered {
            let id = self.shared.id;
            st.registered = if flushed.blocked {
                epoll.add(fd, libc::EPOLLOUT as u32, token(id, KIND_STDIN)).is_ok()
            } else {
                let _ = epoll.delete(fd);
                false
            };
        }
        if relieved {
            self.sink.drained();
        }
        if let Some(e) = flushed.error {
            self.sink.stdin_error(e);
            self.drop_stdin(epoll);
        } else if eof {
            if st.is_pty {
                send_veof(fd, st.last_byte);
            }
            self.drop_stdin(epoll);
        }
    }

    fn drop_stdin(&mut self, epoll: &Epoll) {
        if let Some(st) = self.stdin.take() {
            if st.registered {
                let _ = epoll.delete(st.fd.as_raw_fd());
            }
        }
    }

    fn terminate(&mut self, signo: libc::c_int, grace: Duration) {
        let _ = self.shared.signal(signo, true);
        self.kill_deadline = Some(Instant::now() + grace);
    }

    fn close(&mut self, epoll: &Epoll) {
        if self.closing {
            return;
        }
        self.closing = true;
        let _ = self.shared.signal(libc::SIGKILL, true);
        self.close_stream(0, epoll);
        self.close_stream(1, epoll);
        lock(&self.shared.stdin).kill();
        self.shared.congested.store(false, Ordering::Release);
        self.drop_stdin(epoll);
    }

    fn kill_group(&self) {
        let _ = self.shared.signal(libc::SIGKILL, true);
    }

    /// Moves the session along; true when it is ready to finish.
    fn advance(&mut self, now: Instant, epoll: &Epoll) -> bool {
        self.hand_out_expired(now);
        self.release_idle_slabs(now);
        if let Some(k) = self.kill_deadline {
            if now >= k && (self.leader.is_none() || self.has_open_streams()) {
                self.kill_group();
                self.kill_deadline = None;
            }
        }
        if self.pidfd.is_none() {
            // An fd stream ends with its read side, a writer when its writes fail; either when
            // its owner closes it.
            return self.closing || if self.write_only { self.stdin.is_none() } else { !self.has_open_streams() };
        }
        if self.leader.is_none() {
            return false;
        }
        if self.closing {
            return true;
        }
        if self.has_open_streams() {
            let drained = self.drain_deadline.is_some_and(|d| now >= d);
            if self.after_drain == AfterDrain::Wait || !drained {
                return false;
            }
            if self.after_drain == AfterDrain::KillGroup {
                self.kill_group();
            }
            self.final_drain(epoll);
            self.forced = true;
        }
        if let Some(k) = self.kill_deadline {
            // A termination is under way. If output ended by itself the group is most likely
            // empty: SIGKILL now (harmless to a zombie). If something still held the output,
            // the exit is reported now (the drain bound holds) and the group still gets its
            // SIGKILL when the grace period ends (a tombstone).
            if self.forced && now < k {
                self.tombstone = Some(k);
            } else {
                self.kill_group();
            }
            self.kill_deadline = None;
        }
        true
    }

    /// At the drain deadline: read what is buffered now (bounded), then close the streams.
    fn final_drain(&mut self, epoll: &Epoll) {
        let mut buf = vec![0u8; CHUNK];
        for idx in 0..2 {
            // Held bytes go first; then a PTY is read until it is empty, not one read per turn.
            if let Some(s) = self.streams[idx].as_mut() {
                let kind = s.kind;
                s.grown = s.grown && s.is_pipe;
                if let Some(chunk) = s.take_held() {
                    self.deliver(idx, kind, chunk);
                }
            }
            let mut total = 0;
            while total < FINAL_DRAIN_MAX {
                match self.read_once(idx, epoll, &mut buf) {
                    Some(n) if n > 0 => total += n,
                    _ => break,
                }
            }
            self.close_stream(idx, epoll);
        }
    }

    /// Reaps the leader and reports the exit: the session's last event.
    fn finish(mut self, epoll: &Epoll) {
        // Refuse further writes first, under the same lock that sees what is pending, so a write
        // racing with the exit is either refused (the caller learns it) or pumped below.
        let pending = {
            let mut q = lock(&self.shared.stdin);
            q.dead = true;
            !q.is_empty()
        };
        if pending && !self.closing {
            // The child is gone: this surfaces EPIPE for input it never read.
            self.pump_stdin(epoll);
        }
        self.drop_stdin(epoll);
        self.close_stream(0, epoll);
        self.close_stream(1, epoll);
        if let Some(pidfd) = self.pidfd.filter(|_| self.pidfd_registered) {
            let _ = epoll.delete(pidfd);
        }
        let status = {
            let mut ctl = lock(&self.shared.ctl);
            let reaped = self.pidfd.and_then(|fd| reaper::reap(fd).ok().flatten());
            ctl.reaped = true;
            ctl.pidfd = None;
            if self.pidfd.is_some() {
                orphans::untrack(self.shared.pid);
            }
            ctl.pty = None;
            reaped
        };
        lock(&self.shared.stdin).kill();
        self.shared.congested.store(false, Ordering::Release);
        let status = status.or(self.leader).unwrap_or(ExitStatus { code: None, signal: None });
        self.sink.exit(status);
    }
}

/// Sends the terminal's EOF character. In canonical mode a pending partial line needs one VEOF to
/// be delivered and a second to read as end of file.
fn send_veof(fd: RawFd, last_byte: Option<u8>) {
    let Ok((veof, canonical)) = sys::terminal_eof(fd) else { return };
    let twice = canonical && last_byte.is_some_and(|b| b != b'\n');
    let bytes = [veof, veof];
    let _ = sys::write(fd, &bytes[..if twice { 2 } else { 1 }]);
}
