//! A simulated file's bytes in 64 KiB chunks, where every full chunk is shared with every other
//! file holding the same bytes. A primary and its standbys write identical WAL segments, and a
//! base backup copies files whole: held once, the bytes of all the nodes' disks cost about what
//! one disk's do. Sharing is invisible to the simulation: only memory changes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

pub const CHUNK_BYTES: usize = 64 * 1024;

/// A bucket for a chunk, eight bytes at a time (FNV-1a byte by byte was 13% of a run): equal
/// chunks are then compared whole, so this needs only to spread, not to be collision-free.
fn chunk_hash(bytes: &[u8]) -> u64 {
    let mut hash = 0x9e37_79b9_7f4a_7c15u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let w = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        hash = (hash ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    }
    for &b in words.remainder() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    }
    hash
}

/// The full chunks of one world's disks, by content. Lookups only, never iterated for output.
#[derive(Default)]
pub struct Interner {
    by_hash: BTreeMap<u64, Vec<Weak<[u8]>>>,
    interned_since_prune: usize,
}

pub type SharedInterner = Rc<RefCell<Interner>>;

impl Interner {
    /// The shared copy of `bytes` (a full chunk), made if none is alive.
    fn intern(&mut self, bytes: &[u8]) -> Rc<[u8]> {
        let hash = chunk_hash(bytes);
        let bucket = self.by_hash.entry(hash).or_default();
        bucket.retain(|w| w.strong_count() > 0);
        if let Some(shared) = bucket.iter().filter_map(Weak::upgrade).find(|s| **s == *bytes) {
            return shared;
        }
        let shared: Rc<[u8]> = Rc::from(bytes);
        bucket.push(Rc::downgrade(&shared));
        self.interned_since_prune += 1;
        if self.interned_since_prune >= 4096 {
            // Chunks no file holds any more (recycled WAL) leave dead entries: drop them.
            self.interned_since_prune = 0;
            self.by_hash.retain(|_, bucket| {
                bucket.retain(|w| w.strong_count() > 0);
                !bucket.is_empty()
            });
        }
        shared
    }
}

#[derive(Clone, Debug)]
enum Chunk {
    /// Being written (or a file's short last chunk).
    Owned(Vec<u8>),
    /// Full and possibly shared; copied on the next write to it.
    Shared(Rc<[u8]>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(s) => s,
        }
    }

    fn owned(&mut self) -> &mut Vec<u8> {
        if let Chunk::Shared(s) = self {
            *self = Chunk::Owned(s.to_vec());
        }
        match self {
            Chunk::Owned(v) => v,
            Chunk::Shared(_) => unreachable!("made owned above"),
        }
    }
}

/// A file's contents: `len` bytes in chunks of `CHUNK_BYTES` (the last one may be shorter).
#[derive(Clone, Debug, Default)]
pub struct ChunkedBytes {
    chunks: Vec<Chunk>,
    len: usize,
}

impl ChunkedBytes {
    pub fn from_vec(bytes: Vec<u8>, interner: &SharedInterner) -> ChunkedBytes {
        let mut out = ChunkedBytes::default();
        out.write_at(0, &bytes, interner);
        out
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `bytes` at `offset`, zero-filling any gap; full chunks it completes are shared.
    pub fn write_at(&mut self, offset: usize, bytes: &[u8], interner: &SharedInterner) {
        let end = offset + bytes.len();
        if end > self.len {
            self.grow_to(end);
        }
        let mut at = offset;
        while at < end {
            let index = at / CHUNK_BYTES;
            let within = at % CHUNK_BYTES;
            let n = (CHUNK_BYTES - within).min(end - at);
            let chunk = self.chunks[index].owned();
            chunk[within..within + n].copy_from_slice(&bytes[at - offset..at - offset + n]);
            if chunk.len() == CHUNK_BYTES {
                let shared = interner.borrow_mut().intern(chunk);
                self.chunks[index] = Chunk::Shared(shared);
            }
            at += n;
        }
    }

    fn grow_to(&mut self, len: usize) {
        // The current last chunk fills up to a chunk boundary, then whole zero chunks follow.
        let last_start = self.chunks.len().saturating_sub(1) * CHUNK_BYTES;
        if let Some(last) = self.chunks.last_mut() {
            let last_len = last.bytes().len();
            if last_len < CHUNK_BYTES {
                let target = (len - last_start).min(CHUNK_BYTES);
                if target > last_len {
                    last.owned().resize(target, 0);
                }
            }
        }
        while self.chunks.len() * CHUNK_BYTES < len {
            let start = self.chunks.len() * CHUNK_BYTES;
            self.chunks.push(Chunk::Owned(vec![0; (len - start).min(CHUNK_BYTES)]));
        }
        self.len = len;
    }

    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.chunks.truncate(len.div_ceil(CHUNK_BYTES));
        if let Some(last) = self.chunks.last_mut() {
            let keep = len - (len.div_ceil(CHUNK_BYTES) - 1) * CHUNK_BYTES;
            if keep < CHUNK_BYTES {
                last.owned().truncate(keep);
            }
        }
        self.len = len;
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk.bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunked bytes behave as a plain vector under writes, gaps, overwrites and truncation,
    /// and equal full chunks of two files are one allocation.
    #[test]
    fn chunked_bytes_behave_as_a_vec_and_share_full_chunks() {
        let interner = SharedInterner::default();
        let (mut a, mut plain) = (ChunkedBytes::default(), Vec::new());
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..400 {
            let offset = next(3 * CHUNK_BYTES as u64) as usize;
            let len = next(20_000) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (i + round) as u8).collect();
            a.write_at(offset, &bytes, &interner);
            if plain.len() < offset + len {
                plain.resize(offset + len, 0);
            }
            plain[offset..offset + len].copy_from_slice(&bytes);
            if round % 37 == 0 {
                let cut = next(plain.len() as u64 + 1) as usize;
                a.truncate(cut);
                plain.truncate(cut);
            }
            assert_eq!(a.len(), plain.len());
        }
        assert_eq!(a.to_vec(), plain);
        let b = ChunkedBytes::from_vec(plain.clone(), &interner);
        assert_eq!(b.to_vec(), plain);
        let full = plain.len() / CHUNK_BYTES;
        assert!(full > 0, "the test wrote no full chunk");
        for i in 0..full {
            let (Chunk::Shared(x), Chunk::Shared(y)) = (&a.chunks[i], &b.chunks[i]) else {
                panic!("full chunk {i} is not shared")
            };
            assert!(Rc::ptr_eq(x, y), "chunk {i} is held twice");
        }
    }
}
