//! A hash map keyed by `u64` ids (register keys, write ids) for the checker's per-operation
//! lookups: a BTreeMap of tens of thousands of keys cost about 4% of a run in comparisons and
//! cache misses. The hasher is fixed (no per-process random seed), and no caller's result
//! depends on iteration order: these maps are only looked up, inserted into and retained.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Fibonacci hashing of one `u64`: a multiply by 2^64/φ. The low bits (the bucket) of
/// consecutive keys are a permutation of theirs; the high bits (hashbrown's tag) are mixed.
#[derive(Clone, Copy, Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0.rotate_left(5) ^ id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn the_hash_is_the_same_in_every_process_and_spreads_consecutive_ids() {
        let build = BuildHasherDefault::<IdHasher>::default();
        assert_eq!(build.hash_one(1u64), 0x9e37_79b9_7f4a_7c15, "fixed, not seeded per process");
        let tags: std::collections::BTreeSet<u64> = (0..1000u64).map(|id| build.hash_one(id) >> 57).collect();
        assert!(tags.len() > 100, "the top seven bits of consecutive ids take many values: {}", tags.len());
    }
}
