//! Full 64 KiB blocks of WAL, held once however many holders have them, and held packed when
//! nobody has read them lately. A primary, its standbys and every simulated disk hold
//! byte-identical WAL at the same LSNs; a driver that hands all its nodes one [`BlockStore`]
//! (and uses it for its own file contents) keeps one copy of each block instead of one per
//! holder. A store made [`BlockStore::packing`] with a codec also keeps only the
//! [`WARM_BLOCKS`] most recently made or read blocks as plain bytes and packs the rest: what
//! `wal_keep_size`, a lagging slot or a spread restartpoint keeps is read rarely (a standby
//! catching up, crash recovery, a base backup) and, being WAL, packs several times smaller.
//! Sharing and packing are invisible to behaviour: a block's bytes never change, and the store
//! is consulted only to find an equal block or to pack an old one, never iterated.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::ops::{Deref, Range};
use std::rc::{Rc, Weak};

/// The size of a shared block, and of the simulator's file chunks, so that both line up.
pub const BLOCK_BYTES: usize = 64 * 1024;

/// Dead entries are swept after this many new blocks: a sweep costs one check per entry.
const PRUNE_EVERY: usize = 32;

/// Blocks a packing store keeps as plain bytes: the most recently made or read, 32 MiB. A
/// walsender reads WAL a few blocks behind the insert position, a standby replays what it just
/// received, and a crash recovery reads back from the last checkpoint, so the blocks in use
/// stay plain; a standby catching up from far behind unpacks each block once as it passes. A
/// run that makes fewer blocks than this (most tests and sweeps) never packs one.
pub const WARM_BLOCKS: usize = 512;

/// How a store packs cold blocks. The engine holds no codec itself (its one dependency is
/// CRC-32C): a driver that wants cold WAL held smaller passes one.
pub trait BlockCodec {
    fn pack(&self, raw: &[u8]) -> Vec<u8>;
    /// The `raw_len` bytes `pack` was given.
    fn unpack(&self, packed: &[u8], raw_len: usize) -> Vec<u8>;
}

enum Repr {
    Plain(Rc<[u8]>),
    Packed(Box<[u8]>),
}

struct Cell {
    repr: RefCell<Repr>,
    len: usize,
    store: Rc<Inner>,
}

/// An immutable full block (or a short one, for a file's last chunk it was not used for).
#[derive(Clone)]
pub struct Block(Rc<Cell>);

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({} bytes)", self.0.len)
    }
}

impl Block {
    pub fn len(&self) -> usize {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    /// The block's bytes; a packed block is unpacked and counts as recently read.
    pub fn bytes(&self) -> Rc<[u8]> {
        if let Repr::Plain(bytes) = &*self.0.repr.borrow() {
            return bytes.clone();
        }
        let inner = &self.0.store;
        let codec = inner.codec.as_ref().expect("only a store with a codec packs");
        let plain: Rc<[u8]> = match &*self.0.repr.borrow() {
            Repr::Packed(packed) => codec.unpack(packed, self.0.len).into(),
            Repr::Plain(_) => unreachable!("checked above"),
        };
        assert_eq!(plain.len(), self.0.len, "a block unpacks to its length");
        *self.0.repr.borrow_mut() = Repr::Plain(plain.clone());
        inner.warmed(Rc::downgrade(&self.0));
        plain
    }

    /// Whether this block holds `bytes`, without counting as a read.
    fn holds(&self, bytes: &[u8]) -> bool {
        if self.0.len != bytes.len() {
            return false;
        }
        match &*self.0.repr.borrow() {
            Repr::Plain(plain) => **plain == *bytes,
            Repr::Packed(packed) => {
                let codec = self.0.store.codec.as_ref().expect("only a store with a codec packs");
                codec.unpack(packed, self.0.len) == bytes
            }
        }
    }

    /// Whether both are the same held block (equal bytes, one copy).
    pub fn same(&self, other: &Block) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// An identity for counting distinct blocks (tests and benchmarks).
    pub fn identity(&self) -> usize {
        Rc::as_ptr(&self.0) as usize
    }

    /// Whether the block is held packed now (tests).
    pub fn is_packed(&self) -> bool {
        matches!(&*self.0.repr.borrow(), Repr::Packed(_))
    }
}

/// A range of a block's bytes, or of bytes a holder owns (a log's unsealed tail).
pub enum Piece<'a> {
    Borrowed(&'a [u8]),
    Block(&'a Block, Range<usize>),
}

impl<'a> Piece<'a> {
    pub fn len(&self) -> usize {
        match self {
            Piece::Borrowed(b) => b.len(),
            Piece::Block(_, r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes (unpacking a packed block).
    pub fn bytes(&self) -> PieceBytes<'a> {
        match self {
            Piece::Borrowed(b) => PieceBytes::Borrowed(b),
            Piece::Block(block, r) => PieceBytes::Shared(block.bytes(), r.clone()),
        }
    }

    /// Equal without reading when both are the same range of one held block.
    pub fn equals(&self, other: &Piece<'_>) -> bool {
        if let (Piece::Block(a, ra), Piece::Block(b, rb)) = (self, other) {
            if a.same(b) && ra == rb {
                return true;
            }
        }
        *self.bytes() == *other.bytes()
    }
}

/// A piece's bytes, borrowed or sharing a block's.
pub enum PieceBytes<'a> {
    Borrowed(&'a [u8]),
    Shared(Rc<[u8]>, Range<usize>),
    Owned(Vec<u8>),
}

impl Deref for PieceBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            PieceBytes::Borrowed(b) => b,
            PieceBytes::Shared(b, r) => &b[r.clone()],
            PieceBytes::Owned(v) => v,
        }
    }
}

/// A bucket for a block: the second word of every 512 bytes of it, and the whole of a short one.
/// Equal blocks are then compared whole, so this needs only to spread, not to be
/// collision-free: WAL records (a prev pointer and a CRC every hundred-odd bytes) and table
/// images differ within any 512 bytes, and the second word of each 8 KiB WAL page is its
/// address, so what is hashed of WAL blocks at different positions differs. Hashing each block
/// whole was 6% of a run; a word of every 64 bytes still read every cache line of it.
fn block_hash(bytes: &[u8]) -> u64 {
    let mut hash = 0x9e37_79b9_7f4a_7c15u64;
    let mut mix = |w: u64| hash = (hash ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    let (first, step) = if bytes.len() >= 4096 { (8, 512) } else { (0, 8) };
    for word in bytes[first..].chunks_exact(8).step_by(step / 8) {
        mix(u64::from_le_bytes(word.try_into().expect("eight bytes")));
    }
    for &b in bytes.chunks_exact(8).remainder() {
        mix(u64::from(b));
    }
    mix(bytes.len() as u64);
    hash
}

#[derive(Default)]
struct Interner {
    by_hash: BTreeMap<u64, Vec<Weak<Cell>>>,
    made_since_prune: usize,
    /// Plain blocks of a packing store, oldest first: each is packed when `WARM_BLOCKS` newer
    /// ones have been made or read.
    warm: VecDeque<Weak<Cell>>,
}

#[derive(Default)]
struct Inner {
    codec: Option<Box<dyn BlockCodec>>,
    interner: RefCell<Interner>,
}

impl Inner {
    /// `cell` became plain: it is the newest warm block, and the oldest beyond the limit packs.
    fn warmed(&self, cell: Weak<Cell>) {
        let Some(codec) = &self.codec else { return };
        let mut interner = self.interner.borrow_mut();
        interner.warm.push_back(cell);
        while interner.warm.len() > WARM_BLOCKS {
            let Some(cold) = interner.warm.pop_front().and_then(|w| w.upgrade()) else { continue };
            let mut repr = cold.repr.borrow_mut();
            if let Repr::Plain(plain) = &*repr {
                let packed = codec.pack(plain);
                // WAL packs to a third or less; a block that does not pack stays plain.
                if packed.len() < plain.len() - plain.len() / 8 {
                    *repr = Repr::Packed(packed.into_boxed_slice());
                }
            }
        }
    }
}

/// Where equal blocks are found. Cloning shares the store; `default()` makes a new one that
/// never packs.
#[derive(Clone, Default)]
pub struct BlockStore(Rc<Inner>);

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockStore")
    }
}

impl BlockStore {
    /// A store that packs blocks with `codec` once `WARM_BLOCKS` newer ones were made or read.
    pub fn packing(codec: Box<dyn BlockCodec>) -> BlockStore {
        BlockStore(Rc::new(Inner { codec: Some(codec), interner: RefCell::default() }))
    }

    /// The held copy of `bytes`, made if no holder has one.
    pub fn share(&self, bytes: &[u8]) -> Block {
        let hash = block_hash(bytes);
        let made = {
            let mut interner = self.0.interner.borrow_mut();
            let bucket = interner.by_hash.entry(hash).or_default();
            bucket.retain(|w| w.strong_count() > 0);
            if let Some(shared) = bucket.iter().filter_map(Weak::upgrade).map(Block).find(|b| b.holds(bytes)) {
                return shared;
            }
            let cell = Rc::new(Cell {
                repr: RefCell::new(Repr::Plain(Rc::from(bytes))),
                len: bytes.len(),
                store: self.0.clone(),
            });
            bucket.push(Rc::downgrade(&cell));
            interner.made_since_prune += 1;
            if interner.made_since_prune >= PRUNE_EVERY {
                // Blocks nobody holds any more (recycled WAL) leave dead entries: drop them.
                interner.made_since_prune = 0;
                interner.by_hash.retain(|_, bucket| {
                    bucket.retain(|w| w.strong_count() > 0);
                    !bucket.is_empty()
                });
            }
            Block(cell)
        };
        self.0.warmed(Rc::downgrade(&made.0));
        made
    }

    /// Distinct blocks alive now, and how many of them are packed (tests).
    pub fn live_blocks(&self) -> (usize, usize) {
        let interner = self.0.interner.borrow();
        let live: Vec<Block> = interner.by_hash.values().flatten().filter_map(Weak::upgrade).map(Block).collect();
        (live.len(), live.iter().filter(|b| b.is_packed()).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run-length pairs (byte, count): enough to pack a test's blocks.
    struct RunLength;

    impl BlockCodec for RunLength {
        fn pack(&self, raw: &[u8]) -> Vec<u8> {
            let mut out = Vec::new();
            for run in raw.chunk_by(|a, b| a == b) {
                for part in run.chunks(255) {
                    out.extend([part[0], part.len() as u8]);
                }
            }
            out
        }
        fn unpack(&self, packed: &[u8], raw_len: usize) -> Vec<u8> {
            let mut out = Vec::with_capacity(raw_len);
            for pair in packed.chunks(2) {
                out.resize(out.len() + usize::from(pair[1]), pair[0]);
            }
            out
        }
    }

    #[test]
    fn equal_blocks_are_one_allocation_and_dead_ones_are_forgotten() {
        let store = BlockStore::default();
        let a = store.share(&[7u8; BLOCK_BYTES]);
        let b = store.share(&vec![7u8; BLOCK_BYTES]);
        let c = store.share(&[8u8; BLOCK_BYTES]);
        assert!(a.same(&b));
        assert!(!a.same(&c));
        assert_eq!(store.live_blocks(), (2, 0));
        drop((a, b));
        assert_eq!(store.live_blocks(), (1, 0));
    }

    #[test]
    fn old_blocks_pack_a_read_unpacks_and_sharing_still_finds_them() {
        let store = BlockStore::packing(Box::new(RunLength));
        let block_of = |i: usize| {
            let mut bytes = vec![(i % 251) as u8; BLOCK_BYTES];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            bytes
        };
        let blocks: Vec<Block> = (0..WARM_BLOCKS + 10).map(|i| store.share(&block_of(i))).collect();
        assert_eq!(store.live_blocks(), (WARM_BLOCKS + 10, 10), "the ten oldest are packed");
        assert!(blocks[9].is_packed() && !blocks[10].is_packed());
        // Finding an equal block does not unpack it; reading does, and packs the oldest plain one.
        assert!(store.share(&block_of(3)).same(&blocks[3]));
        assert!(blocks[3].is_packed());
        assert_eq!(*blocks[3].bytes(), block_of(3)[..]);
        assert!(!blocks[3].is_packed() && blocks[10].is_packed());
        assert_eq!(store.live_blocks().1, 10, "still WARM_BLOCKS plain");
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(*block.bytes(), block_of(i)[..], "block {i} reads back whole");
        }
        // A block that does not pack stays plain.
        let noise: Vec<u8> = (0..BLOCK_BYTES).map(|i| (i * 7 + i / 3) as u8).collect();
        let noisy = store.share(&noise);
        for i in 0..WARM_BLOCKS {
            store.share(&block_of(1000 + i));
        }
        assert!(!noisy.is_packed());
        assert_eq!(*noisy.bytes(), noise[..]);
    }
}
