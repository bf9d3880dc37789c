//! The bytes waiting to be written to one descriptor: a child's stdin, or the socket of an agent
//! connection (a writer, `reader::register_writer`). Entries are written in order with writev,
//! many at a time; an entry is either bytes from the owner or a frame built natively (a header
//! and an output chunk, written without copying the chunk: route.rs).

use std::collections::VecDeque;
use std::os::fd::RawFd;

use nix::errno::Errno;

use std::sync::Arc;

use crate::reader::Chunk;
use crate::slab::SlabChunk;
use crate::sys;

/// Entries gathered into one writev (two iovecs each at most).
const BATCH: usize = 64;

/// One entry of the queue.
pub enum OutBuf {
    /// Bytes from the owner (stdin, a JavaScript write), reported as written.
    Bytes(Vec<u8>),
    /// Bytes from the owner's `send` (the part not written at once), not reported.
    Sent(Vec<u8>),
    /// A frame built natively: its header, then an output chunk. Frames with the same nonzero
    /// `tag` (one stream of one routed session) may be merged while they wait (`merge_into_back`).
    Frame { head: Vec<u8>, chunk: Chunk, tag: u64 },
}

impl OutBuf {
    pub fn parts(&self) -> [&[u8]; 2] {
        match self {
            OutBuf::Bytes(v) | OutBuf::Sent(v) => [v, &[]],
            OutBuf::Frame { head, chunk, .. } => [head, chunk.bytes()],
        }
    }

    pub fn len(&self) -> usize {
        let [a, b] = self.parts();
        a.len() + b.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn last_byte(&self) -> Option<u8> {
        let [a, b] = self.parts();
        b.last().or(a.last()).copied()
    }
}

/// What one `flush` did.
#[derive(Default)]
pub struct Flushed {
    /// Lengths of the owner's `Bytes` entries written in full, in order.
    pub written: Vec<usize>,
    /// The last byte of the last entry written in full.
    pub last_byte: Option<u8>,
    /// The descriptor would block with entries left.
    pub blocked: bool,
    /// The write failed: the queue was cleared and marked dead.
    pub error: Option<Errno>,
}

#[derive(Default)]
pub struct Outbox {
    bufs: VecDeque<OutBuf>,
    /// Bytes of the front entry already written.
    offset: usize,
    /// Bytes queued and not yet written.
    queued: usize,
    pub eof_requested: bool,
    /// A write failed or the session ended: nothing more is accepted.
    pub dead: bool,
    /// A writer's owner was told the queue is congested and waits to hear that it drained.
    pub drain_wanted: bool,
}

impl Outbox {
    /// An empty queue; a dead one refuses everything (a session without stdin).
    pub fn new(dead: bool) -> Outbox {
        Outbox { dead, ..Outbox::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Appends an entry; `written` of it (at most its length) already went out.
    pub fn push(&mut self, buf: OutBuf, written: usize) {
        let len = buf.len();
        if written >= len {
            return;
        }
        if self.bufs.is_empty() {
            self.offset = written;
        } else {
            debug_assert_eq!(written, 0, "only the front entry can be partly written");
        }
        self.queued += len - written;
        self.bufs.push_back(buf);
    }

    /// Lets a slab chunk that continues the last queued frame's chunk (same tag, same slab, the
    /// next bytes) join that frame instead of following it as a frame of its own: the frame's
    /// head is rebuilt for the longer chunk (`head_for` its length). Only a frame nothing of which
    /// has been written can grow. True if merged (the caller drops its chunk).
    pub fn merge_into_back(&mut self, tag: u64, next: &SlabChunk, head_for: impl FnOnce(usize) -> Vec<u8>) -> bool {
        if tag == 0 || (self.bufs.len() == 1 && self.offset > 0) {
            return false;
        }
        let Some(OutBuf::Frame { head, chunk: Chunk::Slab(last), tag: t }) = self.bufs.back_mut() else { return false };
        if *t != tag || !Arc::ptr_eq(&last.slab, &next.slab) || last.off + last.len != next.off {
            return false;
        }
        last.len += next.len;
        let new_head = head_for(last.len);
        self.queued = self.queued + next.len + new_head.len() - head.len();
        *head = new_head;
        true
    }

    /// Drops everything queued and refuses more.
    pub fn kill(&mut self) {
        self.bufs.clear();
        self.offset = 0;
        self.queued = 0;
        self.dead = true;
    }

    /// Writes entries in order until the queue is empty, the descriptor would block, or a write
    /// fails (the queue is then killed).
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        let mut out = Flushed::default();
        while !self.bufs.is_empty() {
            let mut iov: Vec<libc::iovec> = Vec::with_capacity(2 * BATCH);
            for (i, buf) in self.bufs.iter().take(BATCH).enumerate() {
                // The front entry may be partly written already.
                let mut skip = if i == 0 { self.offset } else { 0 };
                for part in buf.parts() {
                    let s = skip.min(part.len());
                    skip -= s;
                    push_iovec(&mut iov, &part[s..]);
                }
            }
            let n = match sys::writev(fd, &iov) {
                Ok(n) => n,
                Err(Errno::EAGAIN) => {
                    out.blocked = true;
                    return out;
                }
                Err(e) => {
                    out.error = Some(e);
                    self.kill();
                    return out;
                }
            };
            self.advance(n, &mut out);
        }
        out
    }

    /// Accounts for `n` bytes written from the front of the queue.
    fn advance(&mut self, mut n: usize, out: &mut Flushed) {
        self.queued -= n;
        while n > 0 {
            let Some(front) = self.bufs.front() else { break };
            let left = front.len() - self.offset;
            if n < left {
                self.offset += n;
                return;
            }
            n -= left;
            self.offset = 0;
            let done = self.bufs.pop_front().expect("front exists");
            out.last_byte = done.last_byte().or(out.last_byte);
            if let OutBuf::Bytes(v) = done {
                out.written.push(v.len());
            }
        }
    }
}

/// Writes the parts of one entry straight to `fd` (the caller found the queue empty); returns how
/// many bytes went out. Any error counts as nothing written: the entry is then queued and the
/// reader's flush meets the error again and handles it.
pub fn write_direct(fd: RawFd, parts: [&[u8]; 2]) -> usize {
    let mut iov = Vec::with_capacity(2);
    for part in parts {
        push_iovec(&mut iov, part);
    }
    if iov.is_empty() {
        return 0;
    }
    sys::writev(fd, &iov).unwrap_or(0)
}

fn push_iovec(iov: &mut Vec<libc::iovec>, part: &[u8]) {
    if !part.is_empty() {
        // writev only reads through the pointer.
        iov.push(libc::iovec { iov_base: part.as_ptr() as *mut libc::c_void, iov_len: part.len() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn frame(head: &[u8], body: &[u8]) -> OutBuf {
        OutBuf::Frame { head: head.to_vec(), chunk: Chunk::Owned(body.to_vec()), tag: 0 }
    }

    /// What flushing `q` into a pipe writes.
    fn flushed(q: &mut Outbox) -> Vec<u8> {
        let (r, w) = sys::pipe_cloexec().unwrap();
        sys::set_nonblocking(r.as_raw_fd()).unwrap();
        let f = q.flush(w.as_raw_fd());
        assert!(f.error.is_none() && !f.blocked);
        read_all(r.as_raw_fd())
    }

    fn read_all(fd: RawFd) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = sys::read(fd, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn writes_entries_in_order_from_a_partly_written_front() {
        let (r, w) = sys::pipe_cloexec().unwrap();
        sys::set_nonblocking(r.as_raw_fd()).unwrap();
        let mut q = Outbox::default();
        q.push(frame(b"HEAD", b"body"), 3);
        q.push(OutBuf::Bytes(b"plain".to_vec()), 0);
        q.push(frame(b"", b"tail"), 0);
        assert_eq!(q.queued(), 5 + 5 + 4);
        let f = q.flush(w.as_raw_fd());
        assert!(f.error.is_none() && !f.blocked);
        assert_eq!(f.written, vec![5]);
        assert_eq!(f.last_byte, Some(b'l'));
        assert_eq!(q.queued(), 0);
        assert!(q.is_empty());
        assert_eq!(read_all(r.as_raw_fd()), b"Dbodyplaintail");
    }

    #[test]
    fn a_front_written_into_its_chunk_resumes_there() {
        let mut q = Outbox::default();
        q.push(frame(b"ab", b"cdef"), 4);
        q.push(frame(b"gh", b"ij"), 0);
        assert_eq!(flushed(&mut q), b"efghij");
    }

    #[test]
    fn a_full_descriptor_blocks_and_the_rest_follows_exactly() {
        let (r, w) = sys::pipe_cloexec().unwrap();
        sys::set_nonblocking(r.as_raw_fd()).unwrap();
        sys::set_nonblocking(w.as_raw_fd()).unwrap();
        let mut q = Outbox::default();
        let mut expected = Vec::new();
        for i in 0..40u8 {
            let head = vec![i; 3];
            let body = vec![i ^ 0x5a; 7000 + i as usize];
            expected.extend_from_slice(&head);
            expected.extend_from_slice(&body);
            q.push(OutBuf::Frame { head, chunk: Chunk::Owned(body), tag: 0 }, 0);
        }
        let mut got = Vec::new();
        loop {
            let f = q.flush(w.as_raw_fd());
            assert!(f.error.is_none());
            got.extend(read_all(r.as_raw_fd()));
            if !f.blocked {
                break;
            }
        }
        got.extend(read_all(r.as_raw_fd()));
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn a_failed_write_kills_the_queue() {
        let (r, w) = sys::pipe_cloexec().unwrap();
        drop(r);
        let mut q = Outbox::default();
        q.push(OutBuf::Bytes(b"x".to_vec()), 0);
        let f = q.flush(w.as_raw_fd());
        assert_eq!(f.error, Some(Errno::EPIPE));
        assert!(q.dead && q.is_empty());
        assert_eq!(q.queued(), 0);
    }

    /// A slab with `bytes` at its start, and chunks of it.
    fn slab_with(bytes: &[u8]) -> std::sync::Arc<crate::slab::Slab> {
        let mut cursor = crate::slab::SlabCursor::default();
        let (slab, off, _) = cursor.room(bytes.len()).unwrap();
        assert_eq!(off, 0);
        // SAFETY: the slab has room for `bytes` at offset 0 and nothing else refers to it yet.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), slab.as_ptr(), bytes.len()) };
        slab
    }

    fn part(slab: &std::sync::Arc<crate::slab::Slab>, off: usize, len: usize) -> SlabChunk {
        SlabChunk { slab: std::sync::Arc::clone(slab), off, len }
    }

    /// A head that names the length, so the test can see it was rebuilt.
    fn head_for(len: usize) -> Vec<u8> {
        format!("<{len}>").into_bytes()
    }

    fn slab_frame(slab: &std::sync::Arc<crate::slab::Slab>, off: usize, len: usize, tag: u64) -> OutBuf {
        OutBuf::Frame { head: head_for(len), chunk: Chunk::Slab(part(slab, off, len)), tag }
    }

    #[test]
    fn contiguous_chunks_of_one_stream_merge_into_the_waiting_frame() {
        let slab = slab_with(b"abcdefghij");
        let mut q = Outbox::default();
        q.push(OutBuf::Bytes(b"X".to_vec()), 0);
        q.push(slab_frame(&slab, 0, 3, 7), 0);
        assert!(q.merge_into_back(7, &part(&slab, 3, 4), head_for), "the next bytes join");
        assert!(!q.merge_into_back(8, &part(&slab, 7, 1), head_for), "another stream does not");
        assert!(!q.merge_into_back(7, &part(&slab, 8, 2), head_for), "a gap does not");
        assert!(!q.merge_into_back(0, &part(&slab, 7, 1), head_for), "tag 0 never merges");
        let other = slab_with(b"hij");
        assert!(!q.merge_into_back(7, &part(&other, 0, 3), head_for), "another slab does not");
        assert_eq!(q.queued(), 1 + "<7>".len() + 7);
        assert_eq!(flushed(&mut q), b"X<7>abcdefg");
    }

    #[test]
    fn a_frame_already_partly_written_does_not_grow() {
        let slab = slab_with(b"abcdef");
        let mut q = Outbox::default();
        q.push(slab_frame(&slab, 0, 3, 1), 2);
        assert!(!q.merge_into_back(1, &part(&slab, 3, 3), head_for));
        q.push(slab_frame(&slab, 3, 2, 1), 0);
        assert!(q.merge_into_back(1, &part(&slab, 5, 1), head_for), "a frame behind it can");
        assert_eq!(flushed(&mut q), b">abc<3>def");
    }
}
