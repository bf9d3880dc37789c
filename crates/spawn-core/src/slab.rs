//! Output slabs: one zeroed allocation that consecutive reads of a bulk pipe fill in turn, so
//! JavaScript gets one ArrayBuffer per slab and a cheap view per chunk instead of a Buffer with
//! a finalizer of its own per chunk.
//!
//! The reader writes each read into the unused tail; every chunk it hands out covers bytes that
//! are never written again. The memory is freed when the last `Arc` goes: the reader's (dropped
//! when it moves on to a new slab, or after `SLAB_IDLE` without a read), those of chunks in
//! flight, and the one the JS ArrayBuffer's finalizer holds. Slabs are zeroed, so what a chunk's ArrayBuffer shows beyond the chunk is
//! this stream's other output or zeros, never older memory of the process.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Size of one slab. A chunk that is kept keeps its whole slab, so this is what holding on to
/// one small chunk of a bulk stream can cost. Equal sizes also let the allocator reuse freed
/// slabs exactly, where variable-sized buffers fragmented and came back as fresh pages.
pub const SLAB_SIZE: usize = 256 * 1024;
/// A read that would find less room than this (or than the pipe holds) starts a new slab; at
/// most this much of a slab goes unused.
const MIN_ROOM: usize = 64 * 1024;
/// A stream that has read nothing into its slab for this long lets it go (and tells the JS side
/// to), so a session that printed a burst and then went quiet pins no slab.
pub const SLAB_IDLE: Duration = Duration::from_secs(1);

pub struct Slab {
    ptr: NonNull<u8>,
}

// SAFETY: the slab is plain memory, reached through raw pointers only. The reader writes only
// bytes no chunk covers yet; after that a chunk belongs to its owner (JavaScript may even write
// it), and Rust reads it back only to copy it when no JS view of the slab exists.
unsafe impl Send for Slab {}
// SAFETY: as above.
unsafe impl Sync for Slab {}

impl Slab {
    fn new() -> Option<Arc<Slab>> {
        // SAFETY: the layout is non-zero in size.
        let ptr = unsafe { alloc::alloc_zeroed(Self::layout()) };
        NonNull::new(ptr).map(|ptr| Arc::new(Slab { ptr }))
    }

    fn layout() -> Layout {
        Layout::from_size_align(SLAB_SIZE, 16).expect("constant layout")
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout; dropped once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout()) };
    }
}

/// Bytes `off..off + len` of a slab, handed to the owner.
pub struct SlabChunk {
    pub slab: Arc<Slab>,
    pub off: usize,
    pub len: usize,
}

impl SlabChunk {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: off + len ≤ SLAB_SIZE (SlabCursor::room), the slab is alive while `self` is,
        // and a chunk's bytes are never written again once it was handed out.
        unsafe { std::slice::from_raw_parts(self.slab.as_ptr().add(self.off), self.len) }
    }
}

/// The slab a stream is filling, how much of it is used, and when it is let go if no read comes.
#[derive(Default)]
pub struct SlabCursor {
    current: Option<(Arc<Slab>, usize)>,
    release_at: Option<Instant>,
}

impl SlabCursor {
    /// Room for a read of up to `want` bytes: (slab, offset, at most how many bytes to read).
    /// None when memory is short.
    pub fn room(&mut self, want: usize) -> Option<(Arc<Slab>, usize, usize)> {
        let fits = |used: usize| SLAB_SIZE - used >= want.min(MIN_ROOM);
        if !matches!(&self.current, Some((_, used)) if fits(*used)) {
            self.current = Some((Slab::new()?, 0));
        }
        let (slab, used) = self.current.as_ref()?;
        Some((Arc::clone(slab), *used, want.min(SLAB_SIZE - used)))
    }

    /// Records that `n` bytes were read at the offset `room` gave.
    pub fn advance(&mut self, n: usize) {
        if let Some((_, used)) = self.current.as_mut() {
            *used += n;
            self.release_at = Some(Instant::now() + SLAB_IDLE);
        }
    }

    /// When the current slab is let go unless another read comes first.
    pub fn release_at(&self) -> Option<Instant> {
        self.release_at
    }

    /// Lets the current slab go; true if there was one.
    pub fn release(&mut self) -> bool {
        self.release_at = None;
        self.current.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fill_a_slab_then_start_the_next() {
        let mut c = SlabCursor::default();
        let (a, off, max) = c.room(100_000).unwrap();
        assert_eq!((off, max), (0, 100_000));
        c.advance(100_000);
        let (b, off, max) = c.room(100_000).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((off, max), (100_000, 100_000));
        c.advance(100_000);
        // 62 144 bytes left: less than 64 KiB, so a large read starts a new slab…
        let (n, off, max) = c.room(100_000).unwrap();
        assert!(!Arc::ptr_eq(&a, &n));
        assert_eq!((off, max), (0, 100_000));
        c.advance(200_000);
        // …but a read smaller than what is left still fits, and one larger is capped at the room.
        let (m, off, max) = c.room(1000).unwrap();
        assert!(Arc::ptr_eq(&n, &m));
        assert_eq!((off, max), (200_000, 1000));
        c.advance(1000);
        let (_, off, max) = c.room(1 << 20).unwrap();
        assert_eq!((off, max), (0, SLAB_SIZE));
    }

    #[test]
    fn a_released_cursor_starts_a_new_slab() {
        let mut c = SlabCursor::default();
        assert_eq!(c.release_at(), None);
        let (a, _, _) = c.room(1000).unwrap();
        c.advance(1000);
        assert!(c.release_at().is_some_and(|t| t > Instant::now()));
        assert!(c.release());
        assert!(!c.release());
        assert_eq!(c.release_at(), None);
        let (b, off, _) = c.room(1000).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(off, 0);
    }

    #[test]
    fn a_short_read_leaves_the_rest_for_the_next() {
        let mut c = SlabCursor::default();
        let (a, _, _) = c.room(50_000).unwrap();
        c.advance(10);
        let (b, off, _) = c.room(50_000).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(off, 10);
    }

    #[test]
    fn slabs_start_zeroed_and_chunks_see_their_bytes() {
        let mut c = SlabCursor::default();
        let (slab, off, max) = c.room(SLAB_SIZE).unwrap();
        // SAFETY: the whole slab is ours in this test.
        let all = unsafe { std::slice::from_raw_parts_mut(slab.as_ptr(), SLAB_SIZE) };
        assert!(all.iter().all(|&b| b == 0));
        all[off..off + 3].copy_from_slice(b"abc");
        assert_eq!(max, SLAB_SIZE);
        let chunk = SlabChunk { slab, off, len: 3 };
        assert_eq!(chunk.bytes(), b"abc");
    }
}
