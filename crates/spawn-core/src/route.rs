//! Routed output: a session whose output goes out as protocol frames on a writer (an agent
//! connection's socket, `reader::register_writer`) straight from the reader thread, instead of
//! through JavaScript. The bytes are read and written by the same thread while they are still in
//! its cache, and nothing per chunk crosses to the JS thread.
//!
//! The owner describes the frame of each stream as parts it encoded itself (the protocol stays in
//! TypeScript): the flags byte, the envelope up to the header of its payload byte string, and the
//! payload up to the header of the data byte string, data being the last item of both. What is
//! added here is only what depends on the chunk's length: the frame's length field, the id, and
//! the two CBOR byte-string headers (RFC 8949 §3.1, major type 2, shortest form).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::handle::Handle;
use crate::reader::{Chunk, EventSink, StreamKind};
use crate::reaper::ExitStatus;

/// Counts of routed frames reach the owner at most this often while output flows, and in full
/// before the session is held by a congested writer and before the exit.
const REPORT_EVERY: Duration = Duration::from_millis(100);

/// The fixed parts of one stream's data frame (see the module comment).
pub struct FrameParts {
    pub flags: u8,
    pub envelope: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Where a session's output goes.
pub struct Route {
    pub writer: Handle,
    pub id: u32,
    /// Stdout's frame (also the PTY's).
    pub stdout: FrameParts,
    pub stderr: FrameParts,
}

impl Route {
    /// Everything of a frame carrying `n` bytes of `kind` that precedes the bytes.
    pub fn head(&self, kind: StreamKind, n: usize) -> Vec<u8> {
        let parts = if kind == StreamKind::Stderr { &self.stderr } else { &self.stdout };
        let mut data_header = [0u8; 9];
        let data_header = byte_string_header(n, &mut data_header);
        let payload_len = parts.payload.len() + data_header.len() + n;
        let mut payload_header = [0u8; 9];
        let payload_header = byte_string_header(payload_len, &mut payload_header);
        // id and flags, then the body (the envelope).
        let len = 5 + parts.envelope.len() + payload_header.len() + payload_len;
        let mut head = Vec::with_capacity(9 + parts.envelope.len() + payload_header.len() + parts.payload.len() + data_header.len());
        head.extend_from_slice(&(len as u32).to_be_bytes());
        head.extend_from_slice(&self.id.to_be_bytes());
        head.push(parts.flags);
        head.extend_from_slice(&parts.envelope);
        head.extend_from_slice(payload_header);
        head.extend_from_slice(&parts.payload);
        head.extend_from_slice(data_header);
        head
    }
}

/// The CBOR header of a byte string of `n` bytes, in its shortest form.
fn byte_string_header(n: usize, out: &mut [u8; 9]) -> &[u8] {
    const MAJOR: u8 = 0x40;
    if n < 24 {
        out[0] = MAJOR | n as u8;
        &out[..1]
    } else if n <= u8::MAX as usize {
        out[0] = MAJOR | 24;
        out[1] = n as u8;
        &out[..2]
    } else if n <= u16::MAX as usize {
        out[0] = MAJOR | 25;
        out[1..3].copy_from_slice(&(n as u16).to_be_bytes());
        &out[..3]
    } else if n <= u32::MAX as usize {
        out[0] = MAJOR | 26;
        out[1..5].copy_from_slice(&(n as u32).to_be_bytes());
        &out[..5]
    } else {
        out[0] = MAJOR | 27;
        out[1..9].copy_from_slice(&(n as u64).to_be_bytes());
        &out[..9]
    }
}

/// A routed session's sink: output becomes frames on the writer; every other event, and the
/// counts of what was sent (`routed`), go to the owner's sink.
pub struct RouteSink {
    route: Route,
    /// The session's own handle: output is consumed the moment it is queued on the writer.
    own: Handle,
    inner: Box<dyn EventSink>,
    frames: u64,
    bytes: u64,
    reported_at: Option<Instant>,
}

impl RouteSink {
    pub fn new(route: Route, own: Handle, inner: Box<dyn EventSink>) -> RouteSink {
        RouteSink { route, own, inner, frames: 0, bytes: 0, reported_at: None }
    }

    fn report(&mut self) {
        if self.frames > 0 {
            self.inner.routed(self.frames, self.bytes);
            self.frames = 0;
            self.bytes = 0;
        }
    }
}

impl EventSink for RouteSink {
    fn data(&mut self, kind: StreamKind, chunk: Chunk) {
        let n = chunk.len();
        // The writer's congestion bounds what is held from here on, not the stream's inflight.
        self.own.0.inflight[kind.index()].fetch_sub(n, Ordering::AcqRel);
        // One tag per stream of this session: its waiting frames may merge (outbox.rs).
        let tag = (self.own.0.id << 1) | kind.index() as u64;
        let route = &self.route;
        // A closed writer (the peer is gone) drops it: the connection is ending its sessions.
        let Some((congested, merged)) = route.writer.send_frame(chunk, tag, |len| route.head(kind, len)) else { return };
        if !merged {
            self.frames += 1;
        }
        self.bytes += n as u64;
        let now = Instant::now();
        // Congested, the session is about to be held: what it sent is counted before it waits.
        if congested || self.reported_at.is_none_or(|t| now.duration_since(t) >= REPORT_EVERY) {
            self.reported_at = Some(now);
            self.report();
        }
    }
    fn stdin_written(&mut self, bytes: usize) {
        self.inner.stdin_written(bytes);
    }
    fn stdin_error(&mut self, errno: Errno) {
        self.inner.stdin_error(errno);
    }
    fn exit(&mut self, status: ExitStatus) {
        self.report();
        self.inner.exit(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_string_headers_take_the_shortest_form() {
        let mut b = [0u8; 9];
        assert_eq!(byte_string_header(0, &mut b), [0x40]);
        assert_eq!(byte_string_header(23, &mut b), [0x57]);
        assert_eq!(byte_string_header(24, &mut b), [0x58, 24]);
        assert_eq!(byte_string_header(255, &mut b), [0x58, 0xff]);
        assert_eq!(byte_string_header(256, &mut b), [0x59, 0x01, 0x00]);
        assert_eq!(byte_string_header(65535, &mut b), [0x59, 0xff, 0xff]);
        assert_eq!(byte_string_header(65536, &mut b), [0x5a, 0, 1, 0, 0]);
        assert_eq!(byte_string_header(1 << 20, &mut b), [0x5a, 0, 0x10, 0, 0]);
    }
}
