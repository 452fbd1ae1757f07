//! The world's block store packs WAL blocks and file chunks nobody has read lately with LZ4:
//! a simulated WAL record's payload is derived from its write id, so a block packs to about a
//! quarter of its size, and so does the WAL that `wal_keep_size`, a slot or a spread
//! restartpoint keeps. Packing never changes a block's bytes, so nothing the
//! simulation does depends on it: only memory does.

use repsim_engine::wal::blocks::{BlockCodec, BlockStore};

struct Lz4;

impl BlockCodec for Lz4 {
    fn pack(&self, raw: &[u8]) -> Vec<u8> {
        lz4_flex::block::compress(raw)
    }

    fn unpack(&self, packed: &[u8], raw_len: usize) -> Vec<u8> {
        lz4_flex::block::decompress(packed, raw_len).expect("a block packed by this codec unpacks")
    }
}

/// A store that shares equal blocks and packs the cold ones.
pub fn block_store() -> BlockStore {
    BlockStore::packing(Box::new(Lz4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use repsim_engine::wal::blocks::{BLOCK_BYTES, WARM_BLOCKS};

    #[test]
    fn wal_like_blocks_pack_and_read_back() {
        let store = block_store();
        // A row payload derived from an id, as the workload writes them, behind a varying header.
        let block_of = |i: u64| -> Vec<u8> {
            let mut bytes: Vec<u8> = (0..BLOCK_BYTES as u64)
                .map(|b| if b % 160 < 16 { (b * 31 + i * 7) as u8 } else { (b % 160) as u8 })
                .collect();
            // Distinct blocks: equal ones would be held once, and never packed apart.
            bytes[..8].copy_from_slice(&i.to_le_bytes());
            bytes
        };
        let blocks: Vec<_> = (0..WARM_BLOCKS as u64 + 4).map(|i| store.share(&block_of(i))).collect();
        assert!(blocks[..4].iter().all(|b| b.is_packed()));
        assert!(blocks[4..].iter().all(|b| !b.is_packed()));
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(*block.bytes(), block_of(i as u64)[..]);
        }
    }
}
