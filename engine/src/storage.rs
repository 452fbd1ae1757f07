//! The table store WAL replays into: ordered maps of `(table, key) -> value`. A value is
//! identified by the write that produced it and its length (its bytes are `record::value_byte`).

use std::collections::BTreeMap;

use crate::crc32c;
use crate::fingerprint::{fold_u64, FINGERPRINT_START};
use crate::lsn::Lsn;
use crate::wal::record::RowChange;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Value {
    pub write_id: u64,
    pub len: u32,
}

/// Who last changed a row, and when: with `track_commit_timestamp`, PostgreSQL finds these
/// from the row's `xmin` in `pg_commit_ts` (the commit timestamp and replication origin of
/// the transaction that wrote it); here they are kept per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowOrigin {
    /// The node the change was first committed on; `None`: this database's own transaction.
    pub node: Option<u32>,
    /// That node's clock at commit.
    pub commit_ts_ns: u64,
}

impl RowOrigin {
    /// What `pg_commit_ts` keeps for a commit record: the origin's node and timestamp when
    /// the transaction was applied from elsewhere, else the local commit timestamp.
    pub fn of_commit(timestamp_ns: u64, origin: Option<crate::wal::record::CommitOrigin>) -> RowOrigin {
        match origin {
            Some(o) => RowOrigin { node: Some(o.node), commit_ts_ns: o.timestamp_ns },
            None => RowOrigin { node: None, commit_ts_ns: timestamp_ns },
        }
    }
}

/// Rows whose value follows from their key: `key == write_id`, one length per table (the
/// insert-only tables of the workload, one row per write). Held as ranges of keys, so a table
/// of millions of such rows costs a few bytes per gap, not a tree node per row.
#[derive(Clone, Debug, Default)]
struct DerivedRows {
    len: u32,
    /// start -> end (exclusive), disjoint and not adjacent.
    ranges: BTreeMap<u64, u64>,
    count: usize,
}

impl DerivedRows {
    fn contains(&self, key: u64) -> bool {
        self.ranges.range(..=key).next_back().is_some_and(|(_, &end)| key < end)
    }

    fn insert(&mut self, key: u64) {
        // One lookup tells both whether `key` is held and whether it extends the range before.
        let before = self.ranges.range(..=key).next_back().map(|(&s, &e)| (s, e));
        if before.is_some_and(|(_, end)| key < end) {
            return;
        }
        self.count += 1;
        let before = before.filter(|&(_, end)| end == key);
        let after = key.checked_add(1).and_then(|next| self.ranges.get(&next).map(|&e| (next, e)));
        match (before, after) {
            (Some((start, _)), Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(start, end);
            }
            (Some((start, _)), None) => {
                self.ranges.insert(start, key + 1);
            }
            (None, Some((next, end))) => {
                self.ranges.remove(&next);
                self.ranges.insert(key, end);
            }
            (None, None) => {
                self.ranges.insert(key, key + 1);
            }
        }
    }

    fn remove(&mut self, key: u64) -> bool {
        let Some((start, end)) = self.ranges.range(..=key).next_back().map(|(&s, &e)| (s, e)) else { return false };
        if key >= end {
            return false;
        }
        self.count -= 1;
        self.ranges.remove(&start);
        if start < key {
            self.ranges.insert(start, key);
        }
        if key + 1 < end {
            self.ranges.insert(key + 1, end);
        }
        true
    }

    fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.ranges.iter().flat_map(|(&start, &end)| start..end)
    }
}

/// Keys below this are held in a slot per key (`DenseRows`), the rest in a tree.
const DENSE_KEYS: u64 = 1 << 16;

/// A table's rows with keys below `DENSE_KEYS` that are not derived: one slot per key, grown to
/// the highest key written (a register table's keys are small and dense; a tree of its 10,000
/// keys was 8% of a failover run in lookups). At most 1.5 MiB a table.
#[derive(Clone, Debug, Default)]
struct DenseRows {
    slots: Vec<Option<Value>>,
    count: usize,
}

/// Every row, in `(table, key)` order. Equality is of the rows, whatever their representation.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Rows not derived with keys below `DENSE_KEYS`, by table (sorted; a handful of tables).
    dense: Vec<(u32, DenseRows)>,
    /// Rows not derived with keys from `DENSE_KEYS` up.
    rows: BTreeMap<(u32, u64), Value>,
    derived: BTreeMap<u32, DerivedRows>,
    /// `track_commit_timestamp`: each row's [`RowOrigin`]; `None` while it is off (it costs
    /// an entry per row, which only conflict detection needs).
    origins: Option<BTreeMap<(u32, u64), RowOrigin>>,
    /// `data_hash` since the last change: the end of a run asks for it more than once per
    /// node (the trace's final fold, `converged`), and it walks every row.
    data_hash_memo: std::cell::Cell<Option<u64>>,
}

impl PartialEq for Store {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.all_rows().eq(other.all_rows())
    }
}

impl Eq for Store {}

const ENTRY_BYTES: usize = 4 + 8 + 8 + 4;

impl Store {
    /// `track_commit_timestamp = on`: from now on committed changes keep their origin.
    pub fn track_commit_timestamps(&mut self) {
        self.origins.get_or_insert_with(BTreeMap::new);
    }

    /// A committed change, by the transaction `origin` describes.
    pub fn apply_committed(&mut self, change: &RowChange, origin: RowOrigin) {
        self.apply(change);
        if let Some(origins) = self.origins.as_mut() {
            let row = change.row();
            match change.value() {
                Some(_) => origins.insert(row, origin),
                None => origins.remove(&row),
            };
        }
    }

    /// The origin of a row's current version (`None` when not tracked, or no such row).
    pub fn row_origin(&self, table: u32, key: u64) -> Option<RowOrigin> {
        self.origins.as_ref()?.get(&(table, key)).copied()
    }

    pub fn apply(&mut self, change: &RowChange) {
        self.data_hash_memo.set(None);
        let (table, key) = change.row();
        match change.value() {
            Some(value) => self.put(table, key, value),
            None => {
                if self.explicit_remove(table, key).is_none() {
                    if let Some(d) = self.derived.get_mut(&table) {
                        d.remove(key);
                    }
                }
            }
        }
    }

    fn put(&mut self, table: u32, key: u64, value: Value) {
        let derived_len =
            self.derived.entry(table).or_insert_with(|| DerivedRows { len: value.len, ..Default::default() }).len;
        let derived_held = key == value.write_id && value.len == derived_len && self.explicit_get(table, key).is_none();
        let derived = self.derived.get_mut(&table).expect("made above");
        if derived_held {
            derived.insert(key);
            return;
        }
        if derived.count > 0 {
            derived.remove(key);
        }
        self.explicit_insert(table, key, value);
    }

    pub fn get(&self, table: u32, key: u64) -> Option<Value> {
        if let Some(value) = self.explicit_get(table, key) {
            return Some(value);
        }
        let d = self.derived.get(&table)?;
        d.contains(key).then_some(Value { write_id: key, len: d.len })
    }

    fn dense(&self, table: u32) -> Option<&DenseRows> {
        self.dense.iter().find(|(t, _)| *t == table).map(|(_, d)| d)
    }

    fn explicit_get(&self, table: u32, key: u64) -> Option<Value> {
        if key < DENSE_KEYS {
            return self.dense(table)?.slots.get(key as usize).copied().flatten();
        }
        self.rows.get(&(table, key)).copied()
    }

    fn explicit_insert(&mut self, table: u32, key: u64, value: Value) {
        if key >= DENSE_KEYS {
            self.rows.insert((table, key), value);
            return;
        }
        let index = match self.dense.iter().position(|(t, _)| *t == table) {
            Some(index) => index,
            None => {
                let index = self.dense.partition_point(|(t, _)| *t < table);
                self.dense.insert(index, (table, DenseRows::default()));
                index
            }
        };
        let dense = &mut self.dense[index].1;
        if dense.slots.len() <= key as usize {
            dense.slots.resize(key as usize + 1, None);
        }
        let slot = &mut dense.slots[key as usize];
        dense.count += usize::from(slot.is_none());
        *slot = Some(value);
    }

    fn explicit_remove(&mut self, table: u32, key: u64) -> Option<Value> {
        if key >= DENSE_KEYS {
            return self.rows.remove(&(table, key));
        }
        let dense = &mut self.dense.iter_mut().find(|(t, _)| *t == table)?.1;
        let removed = dense.slots.get_mut(key as usize)?.take();
        dense.count -= usize::from(removed.is_some());
        removed
    }

    fn explicit_len(&self) -> usize {
        self.rows.len() + self.dense.iter().map(|(_, d)| d.count).sum::<usize>()
    }

    /// A table's rows not derived, in key order (the dense keys all come before the tree's).
    fn explicit_table(&self, table: u32) -> impl Iterator<Item = (u64, Value)> + '_ {
        let dense = self
            .dense(table)
            .into_iter()
            .flat_map(|d| d.slots.iter().enumerate().filter_map(|(key, value)| value.map(|v| (key as u64, v))));
        let tree = self.rows.range((table, DENSE_KEYS)..=(table, u64::MAX)).map(|(&(_, key), &value)| (key, value));
        dense.chain(tree)
    }

    /// Every row not derived in `(table, key)` order.
    fn explicit_rows(&self) -> impl Iterator<Item = (u32, u64, Value)> + '_ {
        let mut tables: Vec<u32> =
            self.rows.keys().map(|&(t, _)| t).chain(self.dense.iter().map(|(t, _)| *t)).collect();
        tables.sort_unstable();
        tables.dedup();
        tables.into_iter().flat_map(move |t| self.explicit_table(t).map(move |(key, value)| (t, key, value)))
    }

    pub fn len(&self) -> usize {
        self.explicit_len() + self.derived.values().map(|d| d.count).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every row of a table in key order.
    pub fn table(&self, table: u32) -> impl Iterator<Item = (u64, Value)> + '_ {
        let general = self.explicit_table(table);
        let derived = self
            .derived
            .get(&table)
            .into_iter()
            .flat_map(|d| d.keys().map(move |key| (key, Value { write_id: key, len: d.len })));
        merge_by_key(general, derived)
    }

    /// The tables that hold rows, in order.
    pub fn tables(&self) -> Vec<u32> {
        let mut tables: Vec<u32> = self
            .rows
            .keys()
            .map(|&(t, _)| t)
            .chain(self.dense.iter().map(|(t, _)| *t))
            .chain(self.derived.keys().copied())
            .collect();
        tables.sort_unstable();
        tables.dedup();
        tables
    }

    /// Every row in `(table, key)` order.
    fn all_rows(&self) -> impl Iterator<Item = (u32, u64, Value)> + '_ {
        self.tables().into_iter().flat_map(move |t| self.table(t).map(move |(key, value)| (t, key, value)))
    }

    /// A fingerprint of every row in order (`crate::fingerprint`, a word at a time): equal
    /// stores have equal hashes on every machine (no hasher randomisation, no iteration-order
    /// dependence).
    pub fn data_hash(&self) -> u64 {
        if let Some(hash) = self.data_hash_memo.get() {
            return hash;
        }
        let mut hash = FINGERPRINT_START;
        for (table, key, value) in self.all_rows() {
            hash = fold_u64(hash, ((table as u64) << 32) | value.len as u64);
            hash = fold_u64(hash, key);
            hash = fold_u64(hash, value.write_id);
        }
        self.data_hash_memo.set(Some(hash));
        hash
    }

    /// The data file a checkpoint writes: redo LSN, row count, then the rows held one by one
    /// and the derived rows as key ranges (so a table of millions of inserted rows takes a few
    /// bytes per gap), then the CRC-32C of all before it. What a server would write for it is
    /// [`data_file_cost_bytes`], which counts every row.
    pub fn to_data_file(&self, redo: Lsn) -> Vec<u8> {
        let ranges: Vec<(u32, u32, u64, u64)> = self
            .derived
            .iter()
            .flat_map(|(&table, d)| d.ranges.iter().map(move |(&start, &end)| (table, d.len, start, end)))
            .collect();
        let explicit = self.explicit_len();
        let mut out = Vec::with_capacity(DATA_HEADER_BYTES + (explicit + ranges.len()) * ENTRY_BYTES + 4);
        out.extend_from_slice(&redo.0.to_le_bytes());
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        out.extend_from_slice(&(explicit as u64).to_le_bytes());
        out.extend_from_slice(&(ranges.len() as u64).to_le_bytes());
        for (table, key, value) in self.explicit_rows() {
            out.extend_from_slice(&table.to_le_bytes());
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&value.write_id.to_le_bytes());
            out.extend_from_slice(&value.len.to_le_bytes());
        }
        for (table, len, start, end) in ranges {
            out.extend_from_slice(&table.to_le_bytes());
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
        // `pg_commit_ts`, when tracked: an entry per row, then their count.
        if let Some(origins) = &self.origins {
            for (&(table, key), origin) in origins {
                out.extend_from_slice(&table.to_le_bytes());
                out.extend_from_slice(&key.to_le_bytes());
                out.extend_from_slice(&origin.node.map_or(u32::MAX, |n| n).to_le_bytes());
                out.extend_from_slice(&origin.commit_ts_ns.to_le_bytes());
            }
            out.extend_from_slice(&(origins.len() as u64).to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a data file back; `None` if it is short, inconsistent or its checksum fails.
    pub fn from_data_file(bytes: &[u8]) -> Option<(Store, Lsn)> {
        if bytes.len() < DATA_HEADER_BYTES + 4 {
            return None;
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let u64_at = |at: usize| body[at..at + 8].try_into().ok().map(u64::from_le_bytes);
        let u32_at = |at: usize| body[at..at + 4].try_into().ok().map(u32::from_le_bytes);
        let redo = Lsn(u64_at(0)?);
        let (count, explicit, ranges) = (u64_at(8)? as usize, u64_at(16)? as usize, u64_at(24)? as usize);
        let rows_end = DATA_HEADER_BYTES + (explicit + ranges) * ENTRY_BYTES;
        let origins = match body.len().checked_sub(rows_end)? {
            0 => 0,
            extra => {
                let count = u64_at(body.len() - 8)? as usize;
                (extra == 8 + count * ENTRY_BYTES).then_some(count)?
            }
        };
        let mut store = Store::default();
        if origins > 0 || body.len() > rows_end {
            let mut map = BTreeMap::new();
            for at in (0..origins).map(|i| rows_end + i * ENTRY_BYTES) {
                let node = u32_at(at + 12)?;
                let origin = RowOrigin { node: (node != u32::MAX).then_some(node), commit_ts_ns: u64_at(at + 16)? };
                map.insert((u32_at(at)?, u64_at(at + 4)?), origin);
            }
            store.origins = Some(map);
        }
        let entry_at = |i: usize| DATA_HEADER_BYTES + i * ENTRY_BYTES;
        for at in (0..explicit).map(entry_at) {
            let value = Value { write_id: u64_at(at + 12)?, len: u32_at(at + 20)? };
            store.explicit_insert(u32_at(at)?, u64_at(at + 4)?, value);
        }
        for at in (explicit..explicit + ranges).map(entry_at) {
            let (table, len, start, end) = (u32_at(at)?, u32_at(at + 4)?, u64_at(at + 8)?, u64_at(at + 16)?);
            let d = store.derived.entry(table).or_insert_with(|| DerivedRows { len, ..Default::default() });
            if d.len != len || start >= end {
                return None;
            }
            d.ranges.insert(start, end);
            d.count += (end - start) as usize;
        }
        (store.len() == count).then_some((store, redo))
    }
}

/// Redo LSN, row count, rows held one by one, derived key ranges.
const DATA_HEADER_BYTES: usize = 32;

/// The bytes a server would write (or a base backup copy) for this data file: every row at
/// `ENTRY_BYTES`, as the whole table image it stands for, however compactly it is held.
pub(crate) fn data_file_cost_bytes(bytes: &[u8]) -> u64 {
    match bytes.get(8..16).map(|b| u64::from_le_bytes(b.try_into().expect("eight bytes"))) {
        Some(rows) if bytes.len() >= DATA_HEADER_BYTES + 4 => (16 + rows as usize * ENTRY_BYTES + 4) as u64,
        _ => bytes.len() as u64,
    }
}

/// Two key-ordered iterators with disjoint keys, merged in key order.
fn merge_by_key<V>(
    a: impl Iterator<Item = (u64, V)>,
    b: impl Iterator<Item = (u64, V)>,
) -> impl Iterator<Item = (u64, V)> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some((x, _)), Some((y, _))) => {
            if x < y {
                a.next()
            } else {
                b.next()
            }
        }
        (Some(_), None) => a.next(),
        (None, _) => b.next(),
    })
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

    /// The compact form holds exactly the rows a plain map would, through inserts, updates
    /// that break the key == write_id pattern, deletes that split ranges, and re-inserts.
    #[test]
    /// Keys straddle `DENSE_KEYS`, so rows are derived, in slots and in the tree at once.
    fn derived_rows_behave_as_a_plain_map() {
        let mut store = Store::default();
        let mut plain: BTreeMap<(u32, u64), Value> = BTreeMap::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let (table, key) = (1 + (next() % 2) as u32, DENSE_KEYS - 150 + next() % 300);
            let change = match next() % 6 {
                0 => RowChange::Delete { table, key },
                1 => RowChange::Update { table, key, write_id: key + 1, value_len: 10 },
                2 => RowChange::Insert { table, key, write_id: key, value_len: 7 },
                _ => RowChange::Insert { table, key, write_id: key, value_len: 10 },
            };
            store.apply(&change);
            match change {
                RowChange::Delete { table, key } => {
                    plain.remove(&(table, key));
                }
                RowChange::Insert { table, key, write_id, value_len }
                | RowChange::Update { table, key, write_id, value_len } => {
                    plain.insert((table, key), Value { write_id, len: value_len });
                }
            }
        }
        assert_eq!(store.len(), plain.len());
        let rows: Vec<(u32, u64, Value)> = store.all_rows().collect();
        let expected: Vec<(u32, u64, Value)> = plain.iter().map(|(&(t, k), &v)| (t, k, v)).collect();
        assert_eq!(rows, expected);
        for key in DENSE_KEYS - 150..DENSE_KEYS + 150 {
            assert_eq!(store.get(1, key), plain.get(&(1, key)).copied(), "key {key}");
        }
        let (back, _) = Store::from_data_file(&store.to_data_file(Lsn(1))).unwrap();
        assert_eq!(back, store);
        assert_eq!(back.data_hash(), store.data_hash());
    }

    /// A table of inserted rows is held and written as key ranges, yet costs every row.
    #[test]
    fn an_insert_table_is_written_as_ranges_but_costs_every_row() {
        let mut store = Store::default();
        for id in (1..100_000u64).filter(|id| id % 5000 != 0) {
            store.apply(&RowChange::Insert { table: 1, key: id, write_id: id, value_len: 100 });
        }
        store.apply(&RowChange::Update { table: 1, key: 7, write_id: 3, value_len: 100 });
        let file = store.to_data_file(Lsn(1));
        assert!(file.len() < 1024, "{} bytes for {} rows", file.len(), store.len());
        let cost = crate::io::file_cost_bytes(crate::io::FileId::Data(1), &file);
        assert_eq!(cost, (16 + store.len() * ENTRY_BYTES + 4) as u64);
        let (back, _) = Store::from_data_file(&file).unwrap();
        assert_eq!(back, store);
        assert_eq!(back.to_data_file(Lsn(1)), file, "read back, it is written the same way");
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
