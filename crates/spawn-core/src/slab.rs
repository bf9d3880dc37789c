//! Output slabs: one allocation that consecutive reads of a bulk pipe fill in turn, so
//! JavaScript gets one ArrayBuffer per slab and a cheap view per chunk instead of a Buffer with
//! a finalizer of its own per chunk.
//!
//! The reader writes each read into the unused tail; every chunk it hands out covers bytes that
//! are never written again while anything can see them. A slab is let go when the last `Arc`
//! goes: the reader's (dropped when it moves on to a new slab, or after `SLAB_IDLE` without a
//! read), those of chunks in flight, and the one the JS ArrayBuffer's finalizer holds. Its memory
//! then goes to the stream's spares (`Spares`), up to `SPARES_MAX`, for the stream's next slabs:
//! already faulted in, often still in cache, and with no need to zero it. A slab is zeroed only
//! when it is newly allocated, so what a chunk's ArrayBuffer shows beyond the chunk is this
//! stream's other output (older, when the memory was a spare) or zeros, never other memory of the
//! process.

use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Size of one slab. A chunk that is kept keeps its whole slab, so this is what holding on to
/// one small chunk of a bulk stream can cost. Equal sizes also let the allocator reuse freed
/// slabs exactly, where variable-sized buffers fragmented and came back as fresh pages.
pub const SLAB_SIZE: usize = 256 * 1024;
/// A read that would find less room than this (or than the pipe holds) starts a new slab; at
/// most this much of a slab goes unused.
pub const MIN_ROOM: usize = 64 * 1024;
/// A stream that has read nothing into its slab for this long lets it go (and tells the JS side
/// to), so a session that printed a burst and then went quiet pins no slab.
pub const SLAB_IDLE: Duration = Duration::from_secs(1);
/// How many let-go slabs a stream keeps for reuse (1 MiB per 4). Dead slabs come back in batches,
/// whenever V8 collects their ArrayBuffers; what does not fit here is freed.
pub const SPARES_MAX: usize = 16;

pub struct Slab {
    ptr: NonNull<u8>,
    /// Where the memory goes when the slab is let go, while its stream still reads.
    spares: Weak<Spares>,
}

/// Memory of a stream's let-go slabs, for its next ones; freed with the stream's cursor.
struct Spares {
    free: Mutex<Vec<NonNull<u8>>>,
}

// SAFETY: the pointers are allocations nobody else references (their slabs are gone), moved
// between threads only under the mutex.
unsafe impl Send for Spares {}
// SAFETY: as above.
unsafe impl Sync for Spares {}

impl Spares {
    fn take(&self) -> Option<NonNull<u8>> {
        crate::handle::lock(&self.free).pop()
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        for ptr in self.free.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            // SAFETY: allocated by Slab::new with this layout; a spare belongs to nothing else.
            unsafe { alloc::dealloc(ptr.as_ptr(), Slab::layout()) };
        }
    }
}

// SAFETY: the slab is plain memory, reached through raw pointers only. The reader writes only
// bytes no chunk covers yet; after that a chunk belongs to its owner (JavaScript may even write
// it), and Rust reads it back only to copy it when no JS view of the slab exists.
unsafe impl Send for Slab {}
// SAFETY: as above.
unsafe impl Sync for Slab {}

impl Slab {
    /// A slab over one of `spares` (this stream's own older output), or over new zeroed memory.
    fn new(spares: &Arc<Spares>) -> Option<Arc<Slab>> {
        // SAFETY: the layout is non-zero in size.
        let ptr = spares.take().or_else(|| NonNull::new(unsafe { alloc::alloc_zeroed(Self::layout()) }))?;
        Some(Arc::new(Slab { ptr, spares: Arc::downgrade(spares) }))
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
        if let Some(spares) = self.spares.upgrade() {
            let mut free = crate::handle::lock(&spares.free);
            if free.len() < SPARES_MAX {
                // Nothing references the memory any more: the last Arc of this slab is going.
                free.push(self.ptr);
                return;
            }
        }
        // SAFETY: allocated in `new` with the same layout; this slab was its only owner.
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

/// The slab a stream is filling, how much of it is used, when it is let go if no read comes, and
/// the stream's spare slab memory.
#[derive(Default)]
pub struct SlabCursor {
    current: Option<(Arc<Slab>, usize)>,
    release_at: Option<Instant>,
    spares: Option<Arc<Spares>>,
}

impl SlabCursor {
    /// Room for a read of up to `want` bytes: (slab, offset, at most how many bytes to read).
    /// None when memory is short.
    pub fn room(&mut self, want: usize) -> Option<(Arc<Slab>, usize, usize)> {
        let fits = |used: usize| SLAB_SIZE - used >= want.min(MIN_ROOM);
        if !matches!(&self.current, Some((_, used)) if fits(*used)) {
            let spares = self.spares.get_or_insert_with(|| Arc::new(Spares { free: Mutex::new(Vec::new()) }));
            self.current = Some((Slab::new(spares)?, 0));
        }
        let (slab, used) = self.current.as_ref()?;
        Some((Arc::clone(slab), *used, want.min(SLAB_SIZE - used)))
    }

    /// Bytes left in the current slab (0 without one).
    pub fn room_left(&self) -> usize {
        self.current.as_ref().map_or(0, |(_, used)| SLAB_SIZE - used)
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

    /// Lets the current slab and the spares go (a quiet stream holds no memory); true if there
    /// was a current slab.
    pub fn release(&mut self) -> bool {
        self.release_at = None;
        self.spares = None;
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

    /// Fills the cursor's current slab so that the next `room` starts a new one.
    fn fill(c: &mut SlabCursor) {
        let (_, off, _) = c.room(MIN_ROOM).unwrap();
        c.advance(SLAB_SIZE - off);
    }

    fn spare_count(c: &SlabCursor) -> usize {
        c.spares.as_ref().map_or(0, |s| s.free.lock().unwrap().len())
    }

    #[test]
    fn a_let_go_slab_is_reused_by_its_own_stream_as_it_was() {
        let mut c = SlabCursor::default();
        let (a, off, _) = c.room(3).unwrap();
        // SAFETY: bytes 0..3 of the slab are the room just given.
        unsafe { std::ptr::copy_nonoverlapping(b"xyz".as_ptr(), a.as_ptr().add(off), 3) };
        c.advance(3);
        let addr = a.as_ptr();
        fill(&mut c);
        c.room(1).unwrap(); // the cursor moves on to a new slab
        assert_eq!(spare_count(&c), 0, "a chunk still holds the first slab");
        drop(a);
        assert_eq!(spare_count(&c), 1, "its memory became a spare");
        fill(&mut c);
        let (b, off, _) = c.room(1).unwrap();
        assert_eq!((b.as_ptr(), off), (addr, 0), "the next slab is the spare");
        // SAFETY: the slab is SLAB_SIZE bytes and nothing writes it here.
        let old = unsafe { std::slice::from_raw_parts(b.as_ptr(), 3) };
        assert_eq!(old, b"xyz", "not zeroed again: it only ever held this stream's output");
    }

    #[test]
    fn another_stream_never_gets_a_spare() {
        let mut a = SlabCursor::default();
        let (slab, _, _) = a.room(SLAB_SIZE).unwrap();
        // SAFETY: the whole slab is the room just given.
        unsafe { std::ptr::write_bytes(slab.as_ptr(), 0xab, SLAB_SIZE) };
        a.advance(SLAB_SIZE);
        let addr = slab.as_ptr();
        a.room(1).unwrap();
        drop(slab);
        assert_eq!(spare_count(&a), 1);
        let mut b = SlabCursor::default();
        let (other, _, _) = b.room(SLAB_SIZE).unwrap();
        assert_ne!(other.as_ptr(), addr);
        // SAFETY: the whole slab is ours in this test.
        let all = unsafe { std::slice::from_raw_parts(other.as_ptr(), SLAB_SIZE) };
        assert!(all.iter().all(|&x| x == 0), "a new stream's slab is zeroed");
    }

    #[test]
    fn spares_are_bounded_and_go_with_the_stream() {
        let mut c = SlabCursor::default();
        let mut held = Vec::new();
        for _ in 0..SPARES_MAX + 4 {
            held.push(c.room(SLAB_SIZE).unwrap().0);
            c.advance(SLAB_SIZE);
        }
        let spares = Arc::downgrade(c.spares.as_ref().unwrap());
        c.room(1).unwrap();
        held.clear();
        assert_eq!(spare_count(&c), SPARES_MAX, "at most SPARES_MAX kept, the rest freed");
        // A quiet stream lets its spares go; slabs let go afterwards are freed, not kept.
        let (last, _, _) = c.room(1).unwrap();
        assert!(c.release());
        assert!(spares.upgrade().is_none(), "the spares were freed with the release");
        drop(last);
        assert_eq!(spare_count(&c), 0);
    }
}
