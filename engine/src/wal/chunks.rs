//! A file's bytes in 64 KiB chunks, where every full chunk can be shared with every other file
//! holding the same bytes. A primary and its standbys write identical WAL segments, and a base
//! backup copies files whole: held once, the bytes of all the nodes' disks cost about what one
//! disk's do; the engines' WAL blocks are found in the same store, and a node booting from its
//! disk takes the WAL segments' full chunks as its log's blocks without copying them
//! ([`crate::wal::log::WalLog::load`]). Sharing is invisible to behaviour: only memory changes.

use crate::wal::blocks::{Block, BlockStore, Piece, BLOCK_BYTES};

/// A chunk is one engine WAL block long, so WAL chunks and the engines' blocks are shared.
pub const CHUNK_BYTES: usize = BLOCK_BYTES;

#[derive(Clone, Debug)]
enum Chunk {
    /// Being written (or a file's short last chunk).
    Owned(Vec<u8>),
    /// Full and possibly shared; copied on the next write to it.
    Shared(Block),
}

impl Chunk {
    fn len(&self) -> usize {
        match self {
            Chunk::Owned(v) => v.len(),
            Chunk::Shared(s) => s.len(),
        }
    }

    fn owned(&mut self) -> &mut Vec<u8> {
        if let Chunk::Shared(s) = self {
            *self = Chunk::Owned(s.bytes().to_vec());
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

/// Equal when the bytes are, however they are held.
impl PartialEq for ChunkedBytes {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.to_vec() == other.to_vec()
    }
}

impl Eq for ChunkedBytes {}

/// Bytes held in chunks of their own, shared with nobody (an engine writing an image of its
/// own, as `initdb` does); [`ChunkedBytes::share_full`] shares them later.
impl From<Vec<u8>> for ChunkedBytes {
    fn from(bytes: Vec<u8>) -> ChunkedBytes {
        let len = bytes.len();
        let chunks = match len {
            0 => Vec::new(),
            // Most files (pg_control, a history file) fit in one chunk: the vector itself.
            1..=CHUNK_BYTES => vec![Chunk::Owned(bytes)],
            _ => bytes.chunks(CHUNK_BYTES).map(|c| Chunk::Owned(c.to_vec())).collect(),
        };
        ChunkedBytes { chunks, len }
    }
}

impl ChunkedBytes {
    pub fn from_vec(bytes: Vec<u8>, interner: &BlockStore) -> ChunkedBytes {
        ChunkedBytes::from(bytes).share_full(interner)
    }

    /// Full chunks held alone become shared in `interner`.
    pub fn share_full(mut self, interner: &BlockStore) -> ChunkedBytes {
        for chunk in &mut self.chunks {
            if let Chunk::Owned(v) = chunk {
                if v.len() == CHUNK_BYTES {
                    *chunk = Chunk::Shared(interner.share(v));
                }
            }
        }
        self
    }

    /// The bytes in order, a chunk a piece: a shared chunk as its block, whole.
    pub fn pieces(&self) -> impl Iterator<Item = Piece<'_>> + '_ {
        self.chunks.iter().map(|c| match c {
            Chunk::Owned(v) => Piece::Borrowed(v),
            Chunk::Shared(b) => Piece::Block(b, 0..b.len()),
        })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes `bytes` at `offset`, zero-filling any gap; full chunks it completes are shared.
    /// Bytes past the end are appended, not zero-filled first and then overwritten (WAL is
    /// written at its file's end: the extra pass was 2 % of a loaded run).
    pub fn write_at(&mut self, offset: usize, bytes: &[u8], interner: &BlockStore) {
        if offset > self.len {
            self.grow_to(offset);
        }
        let end = offset + bytes.len();
        let mut at = offset;
        while at < end {
            let index = at / CHUNK_BYTES;
            let within = at % CHUNK_BYTES;
            let n = (CHUNK_BYTES - within).min(end - at);
            if index == self.chunks.len() {
                self.chunks.push(Chunk::Owned(Vec::new()));
            }
            let chunk = self.chunks[index].owned();
            let source = &bytes[at - offset..at - offset + n];
            // Every chunk but the last is full, so only the last is ever extended here.
            let overwritten = chunk.len().saturating_sub(within).min(n);
            chunk[within..within + overwritten].copy_from_slice(&source[..overwritten]);
            if overwritten < n {
                reserve_for(chunk, within + n);
                chunk.extend_from_slice(&source[overwritten..]);
            }
            if chunk.len() == CHUNK_BYTES {
                let shared = interner.share(chunk);
                self.chunks[index] = Chunk::Shared(shared);
            }
            at += n;
        }
        self.len = self.len.max(end);
    }

    fn grow_to(&mut self, len: usize) {
        // The current last chunk fills up to a chunk boundary, then whole zero chunks follow.
        let last_start = self.chunks.len().saturating_sub(1) * CHUNK_BYTES;
        if let Some(last) = self.chunks.last_mut() {
            let last_len = last.len();
            if last_len < CHUNK_BYTES {
                let target = (len - last_start).min(CHUNK_BYTES);
                if target > last_len {
                    grow_chunk(last.owned(), target);
                }
            }
        }
        while self.chunks.len() * CHUNK_BYTES < len {
            let start = self.chunks.len() * CHUNK_BYTES;
            let mut owned = Vec::new();
            grow_chunk(&mut owned, (len - start).min(CHUNK_BYTES));
            self.chunks.push(Chunk::Owned(owned));
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

    /// The full chunks, as shared blocks (to count how many holders share them).
    pub fn shared_blocks(&self) -> impl Iterator<Item = &Block> + '_ {
        self.chunks.iter().filter_map(|c| if let Chunk::Shared(b) = c { Some(b) } else { None })
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            match chunk {
                Chunk::Owned(v) => out.extend_from_slice(v),
                Chunk::Shared(s) => out.extend_from_slice(&s.bytes()),
            }
        }
        out
    }
}

/// Zero-extends `chunk` to `target` bytes.
fn grow_chunk(chunk: &mut Vec<u8>, target: usize) {
    reserve_for(chunk, target);
    chunk.resize(target, 0);
}

/// Makes room for `chunk` to grow to `target` bytes. A chunk that grows past a page is being
/// appended to (a WAL segment, a file copy): it gets the whole chunk at once rather than
/// doubling through six reallocations and copies (issue 11's profile: 5 % of a run in `realloc`
/// and its page faults). Small files stay small.
fn reserve_for(chunk: &mut Vec<u8>, target: usize) {
    const PAGE_BYTES: usize = 4096;
    if target > PAGE_BYTES && chunk.capacity() < CHUNK_BYTES {
        chunk.reserve_exact(CHUNK_BYTES - chunk.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Chunked bytes behave as a plain vector under writes, gaps, overwrites and truncation,
    /// and equal full chunks of two files are one allocation.
    #[test]
    fn chunked_bytes_behave_as_a_vec_and_share_full_chunks() {
        let interner = BlockStore::default();
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
            assert!(x.same(y), "chunk {i} is held twice");
        }
    }
}
