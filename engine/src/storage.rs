//! The table store WAL replays into: ordered maps of `(table, key) -> value`. A value is
//! identified by the write that produced it and its length (its bytes are `record::value_byte`).

use std::collections::BTreeMap;

use crate::crc32c;
use crate::lsn::Lsn;
use crate::wal::record::RowChange;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Value {
    pub write_id: u64,
    pub len: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    rows: BTreeMap<(u32, u64), Value>,
}

const ENTRY_BYTES: usize = 4 + 8 + 8 + 4;

impl Store {
    pub fn apply(&mut self, change: &RowChange) {
        match *change {
            RowChange::Insert { table, key, write_id, value_len }
            | RowChange::Update { table, key, write_id, value_len } => {
                self.rows.insert((table, key), Value { write_id, len: value_len });
            }
            RowChange::Delete { table, key } => {
                self.rows.remove(&(table, key));
            }
        }
    }

    pub fn get(&self, table: u32, key: u64) -> Option<Value> {
        self.rows.get(&(table, key)).copied()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Every row of a table in key order.
    pub fn table(&self, table: u32) -> impl Iterator<Item = (u64, Value)> + '_ {
        self.rows.range((table, 0)..=(table, u64::MAX)).map(|(&(_, key), &value)| (key, value))
    }

    /// A 64-bit FNV-1a hash over every row in order: equal stores have equal hashes on every
    /// machine (no hasher randomisation, no iteration-order dependence).
    pub fn data_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &byte in bytes {
                hash ^= byte as u64;
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for (&(table, key), value) in &self.rows {
            feed(&table.to_le_bytes());
            feed(&key.to_le_bytes());
            feed(&value.write_id.to_le_bytes());
            feed(&value.len.to_le_bytes());
        }
        hash
    }

    /// The data file a checkpoint writes: redo LSN, row count, rows, CRC-32C of all before it.
    pub fn to_data_file(&self, redo: Lsn) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.rows.len() * ENTRY_BYTES + 4);
        out.extend_from_slice(&redo.0.to_le_bytes());
        out.extend_from_slice(&(self.rows.len() as u64).to_le_bytes());
        for (&(table, key), value) in &self.rows {
            out.extend_from_slice(&table.to_le_bytes());
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&value.write_id.to_le_bytes());
            out.extend_from_slice(&value.len.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a data file back; `None` if it is short or its checksum fails.
    pub fn from_data_file(bytes: &[u8]) -> Option<(Store, Lsn)> {
        if bytes.len() < 20 {
            return None;
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let redo = Lsn(u64::from_le_bytes(body[0..8].try_into().ok()?));
        let count = u64::from_le_bytes(body[8..16].try_into().ok()?) as usize;
        if body.len() != 16 + count * ENTRY_BYTES {
            return None;
        }
        let mut rows = BTreeMap::new();
        for entry in body[16..].chunks_exact(ENTRY_BYTES) {
            let table = u32::from_le_bytes(entry[0..4].try_into().ok()?);
            let key = u64::from_le_bytes(entry[4..12].try_into().ok()?);
            let write_id = u64::from_le_bytes(entry[12..20].try_into().ok()?);
            let len = u32::from_le_bytes(entry[20..24].try_into().ok()?);
            rows.insert((table, key), Value { write_id, len });
        }
        Some((Store { rows }, redo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_round_trips_and_detects_corruption() {
        let mut store = Store::default();
        for key in 0..100 {
            store.apply(&RowChange::Insert { table: 1, key, write_id: key * 3, value_len: 10 });
        }
        store.apply(&RowChange::Delete { table: 1, key: 5 });
        store.apply(&RowChange::Update { table: 2, key: 1, write_id: 9, value_len: 4 });
        let file = store.to_data_file(Lsn(4096));
        let (back, redo) = Store::from_data_file(&file).unwrap();
        assert_eq!(back, store);
        assert_eq!(redo, Lsn(4096));
        assert_eq!(back.data_hash(), store.data_hash());
        let mut corrupt = file.clone();
        corrupt[30] ^= 0x40;
        assert!(Store::from_data_file(&corrupt).is_none());
        assert!(Store::from_data_file(&file[..file.len() - 1]).is_none());
    }

    #[test]
    fn hash_differs_when_one_value_differs() {
        let mut a = Store::default();
        a.apply(&RowChange::Insert { table: 1, key: 1, write_id: 1, value_len: 10 });
        let mut b = a.clone();
        assert_eq!(a.data_hash(), b.data_hash());
        b.apply(&RowChange::Update { table: 1, key: 1, write_id: 2, value_len: 10 });
        assert_ne!(a.data_hash(), b.data_hash());
    }
}
