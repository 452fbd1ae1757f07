//! Full 64 KiB blocks of WAL, held once however many holders have them. A primary, its
//! standbys and every simulated disk hold byte-identical WAL at the same LSNs; a driver that
//! hands all its nodes one [`BlockStore`] (and uses it for its own file contents) keeps one copy
//! of each block instead of one per holder. Sharing is invisible to behaviour: a block is
//! immutable, and the store is consulted only to find an equal one, never iterated.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

/// The size of a shared block, and of the simulator's file chunks, so that both line up.
pub const BLOCK_BYTES: usize = 64 * 1024;

/// Dead entries are swept after this many new blocks: a sweep costs one check per entry, and
/// until it runs, blocks released since the last one stay allocated (4096 kept up to 256 MiB).
const PRUNE_EVERY: usize = 32;

/// An immutable full block.
pub type Block = Rc<[u8]>;

/// A bucket for a block: every eighth word of it, and the whole of a short one. Equal blocks are
/// then compared whole, so this needs only to spread, not to be collision-free; WAL records
/// (a prev pointer and a CRC every hundred-odd bytes) and table images differ within any 64
/// bytes, and hashing each block whole was 6% of a run.
fn block_hash(bytes: &[u8]) -> u64 {
    let mut hash = 0x9e37_79b9_7f4a_7c15u64;
    let mut mix = |w: u64| hash = (hash ^ w).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    let step = if bytes.len() >= 4096 { 64 } else { 8 };
    for word in bytes.chunks_exact(8).step_by(step / 8) {
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
    by_hash: BTreeMap<u64, Vec<Weak<[u8]>>>,
    interned_since_prune: usize,
}

/// Where equal blocks are found. Cloning shares the store; `default()` makes a new one.
#[derive(Clone, Default)]
pub struct BlockStore(Rc<RefCell<Interner>>);

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlockStore")
    }
}

impl BlockStore {
    /// The held copy of `bytes`, made if no holder has one.
    pub fn share(&self, bytes: &[u8]) -> Block {
        let mut interner = self.0.borrow_mut();
        let hash = block_hash(bytes);
        let bucket = interner.by_hash.entry(hash).or_default();
        bucket.retain(|w| w.strong_count() > 0);
        if let Some(shared) = bucket.iter().filter_map(Weak::upgrade).find(|s| **s == *bytes) {
            return shared;
        }
        let shared: Block = Rc::from(bytes);
        bucket.push(Rc::downgrade(&shared));
        interner.interned_since_prune += 1;
        if interner.interned_since_prune >= PRUNE_EVERY {
            // Blocks nobody holds any more (recycled WAL) leave dead entries, and a dead entry's
            // weak pointer keeps the block's memory allocated: drop them soon.
            interner.interned_since_prune = 0;
            interner.by_hash.retain(|_, bucket| {
                bucket.retain(|w| w.strong_count() > 0);
                !bucket.is_empty()
            });
        }
        shared
    }

    /// Distinct blocks alive now (for tests).
    pub fn live_blocks(&self) -> usize {
        self.0.borrow().by_hash.values().flatten().filter(|w| w.strong_count() > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_blocks_are_one_allocation_and_dead_ones_are_forgotten() {
        let store = BlockStore::default();
        let a = store.share(&[7u8; BLOCK_BYTES]);
        let b = store.share(&vec![7u8; BLOCK_BYTES]);
        let c = store.share(&[8u8; BLOCK_BYTES]);
        assert!(Rc::ptr_eq(&a, &b));
        assert!(!Rc::ptr_eq(&a, &c));
        assert_eq!(store.live_blocks(), 2);
        drop((a, b));
        assert_eq!(store.live_blocks(), 1);
    }
}
