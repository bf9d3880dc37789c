//! Shared helpers for the integration tests: spawn real processes and collect their events.
#![allow(dead_code)]

use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::Duration;

use nix::errno::Errno;
use spawn_core::handle::Handle;
use spawn_core::reader::{register, Chunk, EventSink, StreamKind};
use spawn_core::reaper::ExitStatus;
use spawn_core::spawn::{spawn, SpawnError};
use spawn_core::spec::{AfterDrain, HomeDefault, Mode, SpawnRequest, SpawnSpec, StdinMode};

#[derive(Debug)]
pub enum Ev {
    Data(StreamKind, Vec<u8>),
    Written(usize),
    StdinError(Errno),
    Exit(ExitStatus),
    SlabReleased(StreamKind),
}

struct ChannelSink(Sender<Ev>, Option<Handle>);

impl EventSink for ChannelSink {
    fn data(&mut self, kind: StreamKind, chunk: Chunk) {
        let _ = self.0.send(Ev::Data(kind, chunk.bytes().to_vec()));
    }
    fn stdin_written(&mut self, bytes: usize) {
        let _ = self.0.send(Ev::Written(bytes));
    }
    fn stdin_error(&mut self, errno: Errno) {
        let _ = self.0.send(Ev::StdinError(errno));
    }
    fn exit(&mut self, status: ExitStatus) {
        let _ = self.0.send(Ev::Exit(status));
    }
    fn slab_released(&mut self, kind: StreamKind) {
        let _ = self.0.send(Ev::SlabReleased(kind));
    }
}

pub fn request(file: &str, args: &[&str], mode: Mode) -> SpawnRequest {
    SpawnRequest {
        file: file.into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
        cwd: None,
        mode,
        user: None,
        stdin: StdinMode::Pipe,
        rlimits: vec![],
        restricted: false,
        home_default: HomeDefault::User,
        drain_ms: 100,
        after_drain: AfterDrain::Detach,
    }
}

pub struct Running {
    pub handle: Handle,
    pub events: Receiver<Ev>,
}

pub fn start(req: &SpawnRequest) -> Result<Running, SpawnError> {
    let spec = SpawnSpec::prepare(req).map_err(|failure| SpawnError { failure, path: None })?;
    let spawned = spawn(&spec, req.mode, req.stdin)?;
    let (tx, rx) = channel();
    let handle = register(
        spawned,
        Duration::from_millis(req.drain_ms as u64),
        req.after_drain,
        None,
        |h| Box::new(ChannelSink(tx, Some(h))),
    )
    .expect("reader registration");
    Ok(Running { handle, events: rx })
}

pub struct Outcome {
    pub out: Vec<u8>,
    pub err: Vec<u8>,
    pub status: ExitStatus,
    pub stdin_errors: Vec<Errno>,
    pub events_after_exit: usize,
}

/// Collects every event until exit (crediting consumption), then checks nothing follows.
pub fn collect(r: &Running) -> Outcome {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut stdin_errors = Vec::new();
    loop {
        match r.events.recv_timeout(Duration::from_secs(30)).expect("event within 30 s") {
            Ev::Data(kind, chunk) => {
                r.handle.credit(kind.index(), chunk.len());
                if kind == StreamKind::Stderr { err.extend(chunk) } else { out.extend(chunk) }
            }
            Ev::Written(_) | Ev::SlabReleased(_) => {}
            Ev::StdinError(e) => stdin_errors.push(e),
            Ev::Exit(status) => {
                let events_after_exit = r.events.recv_timeout(Duration::from_millis(50)).into_iter().count();
                return Outcome { out, err, status, stdin_errors, events_after_exit };
            }
        }
    }
}
