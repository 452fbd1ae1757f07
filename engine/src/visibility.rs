//! What other sessions on a primary see of commits still waiting (spec I3.3).
//!
//! PostgreSQL's `CommitTransaction` (src/backend/access/transam/xact.c) marks a transaction
//! committed in the commit log and then, inside `RecordTransactionCommit`, waits: first for the
//! local WAL flush (`XLogFlush`, unless `synchronous_commit = off`), then for synchronous
//! standbys (`SyncRepWaitForLSN`). Only after the wait does `ProcArrayEndTransaction` take it
//! out of the proc array, and a snapshot treats every transaction still in the proc array as
//! running. So a commit stays invisible to every other session until it is released, however
//! long the wait (a standby down: forever). A standby's hot-standby snapshot follows replay
//! instead: it can show a commit the primary still hides.
//!
//! The store holds the newest row versions (what a crash and recovery would replay); this
//! overlay remembers, for each row a waiting commit changed, what other sessions see: the
//! value of the newest released write. Bounded by the rows of the commits waiting.
//!
//! Not modelled: the row lock a waiting commit keeps (its locks are released after the wait,
//! in `ResourceOwnerRelease`), so a second writer of the same row does not queue behind it
//! here; the newer of the two released values is what others see.

use std::collections::{BTreeMap, VecDeque};

use crate::lsn::Lsn;
use crate::storage::Value;
use crate::wal::record::RowChange;

/// One row with writes still waiting.
#[derive(Clone, Debug)]
struct HiddenRow {
    /// What other sessions see: the newest released write's value (`None`: no row).
    visible: Option<Value>,
    /// The commit LSN of `visible` (`Lsn::INVALID`: it was there before any tracked write).
    visible_lsn: Lsn,
    /// How many waiting writes this row has (the writes themselves are in `Visibility::writes`).
    waiting: u32,
}

/// One waiting commit's write of one row, with the value it leaves.
#[derive(Clone, Copy, Debug)]
struct WaitingWrite {
    commit_lsn: Lsn,
    row: (u32, u64),
    value: Option<Value>,
    released: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Visibility {
    rows: BTreeMap<(u32, u64), HiddenRow>,
    /// Every waiting write in commit-LSN order (a primary commits in LSN order); a commit's
    /// writes are adjacent. A released write leaves the front once all before it are released
    /// (releases come in LSN order except across levels), so no allocation per commit.
    writes: VecDeque<WaitingWrite>,
}

impl Visibility {
    /// A commit that will wait: hide its changes. `before` reads the store as it was before
    /// the commit's changes are applied.
    pub fn hide(&mut self, commit_lsn: Lsn, changes: &[RowChange], before: impl Fn(u32, u64) -> Option<Value>) {
        assert!(self.writes.back().is_none_or(|last| last.commit_lsn < commit_lsn), "commits wait in LSN order");
        for change in changes {
            let row = change.row();
            let hidden = self.rows.entry(row).or_insert_with(|| HiddenRow {
                visible: before(row.0, row.1),
                visible_lsn: Lsn::INVALID,
                waiting: 0,
            });
            hidden.waiting += 1;
            self.writes.push_back(WaitingWrite { commit_lsn, row, value: change.value(), released: false });
        }
    }

    /// A commit that does not wait (`synchronous_commit = off`) is visible at once; it only
    /// matters here for rows that also have waiting writes.
    pub fn shown_at_once(&mut self, commit_lsn: Lsn, changes: &[RowChange]) {
        for change in changes {
            if let Some(hidden) = self.rows.get_mut(&change.row()) {
                if commit_lsn > hidden.visible_lsn {
                    (hidden.visible, hidden.visible_lsn) = (change.value(), commit_lsn);
                }
            }
        }
    }

    /// The commit at `commit_lsn` was released: its changes become visible.
    pub fn release(&mut self, commit_lsn: Lsn) {
        let first = self.writes.partition_point(|w| w.commit_lsn < commit_lsn);
        for index in first..self.writes.len() {
            let write = &mut self.writes[index];
            if write.commit_lsn != commit_lsn {
                break;
            }
            assert!(!write.released, "a commit is released once");
            write.released = true;
            let hidden = self.rows.get_mut(&write.row).expect("a waiting write's row is tracked");
            if commit_lsn > hidden.visible_lsn {
                (hidden.visible, hidden.visible_lsn) = (write.value, commit_lsn);
            }
            hidden.waiting -= 1;
            if hidden.waiting == 0 {
                self.rows.remove(&write.row);
            }
        }
        while self.writes.front().is_some_and(|w| w.released) {
            self.writes.pop_front();
        }
    }

    /// What another session reads: the hidden row's visible value, or the store's.
    pub fn get(&self, table: u32, key: u64, store: impl FnOnce() -> Option<Value>) -> Option<Value> {
        match self.rows.get(&(table, key)) {
            Some(hidden) => hidden.visible,
            None => store(),
        }
    }

    /// Commits whose changes are hidden.
    pub fn waiting_commits(&self) -> usize {
        let mut lsns: Vec<Lsn> = self.writes.iter().filter(|w| !w.released).map(|w| w.commit_lsn).collect();
        lsns.dedup();
        lsns.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: u64, write_id: u64) -> RowChange {
        RowChange::Update { table: 1, key, write_id, value_len: 10 }
    }

    fn id(v: Option<Value>) -> Option<u64> {
        v.map(|v| v.write_id)
    }

    /// Two waiting commits on one row are released out of LSN order (a `remote_apply` commit
    /// behind an `on` one), and an `off` commit lands in between: others see the newest
    /// released write, never a waiting one, and the overlay empties when nothing waits.
    #[test]
    fn others_see_the_newest_released_write_only() {
        let mut store: BTreeMap<u64, u64> = BTreeMap::from([(7, 1)]);
        let mut v = Visibility::default();
        let read = |v: &Visibility, store: &BTreeMap<u64, u64>| {
            id(v.get(1, 7, || store.get(&7).map(|&w| Value { write_id: w, len: 10 })))
        };
        let before = |s: &BTreeMap<u64, u64>| {
            let s = s.clone();
            move |_: u32, k: u64| s.get(&k).map(|&w| Value { write_id: w, len: 10 })
        };
        v.hide(Lsn(100), &[put(7, 2)], before(&store));
        store.insert(7, 2);
        assert_eq!(read(&v, &store), Some(1), "a waiting commit is hidden");
        v.hide(Lsn(200), &[put(7, 3)], before(&store));
        store.insert(7, 3);
        assert_eq!(read(&v, &store), Some(1));
        v.release(Lsn(200));
        assert_eq!(read(&v, &store), Some(3), "the newer commit was released first");
        v.shown_at_once(Lsn(150), &[put(7, 9)]);
        assert_eq!(read(&v, &store), Some(3), "an older off commit does not hide a newer one");
        v.release(Lsn(100));
        assert_eq!(read(&v, &store), Some(3), "releasing the older commit later changes nothing");
        assert_eq!(v.waiting_commits(), 0);
        assert!(v.rows.is_empty() && v.writes.is_empty());
    }

    /// A waiting insert of a new row is absent for others until released; a waiting delete
    /// leaves the row visible.
    #[test]
    fn inserts_and_deletes_wait_too() {
        let mut v = Visibility::default();
        v.hide(Lsn(10), &[RowChange::Insert { table: 1, key: 5, write_id: 5, value_len: 3 }], |_, _| None);
        assert_eq!(v.get(1, 5, || Some(Value { write_id: 5, len: 3 })), None);
        v.release(Lsn(10));
        assert_eq!(id(v.get(1, 5, || Some(Value { write_id: 5, len: 3 }))), Some(5));
        v.hide(Lsn(20), &[RowChange::Delete { table: 1, key: 5 }], |_, _| Some(Value { write_id: 5, len: 3 }));
        assert_eq!(id(v.get(1, 5, || None)), Some(5));
        v.release(Lsn(20));
        assert_eq!(v.get(1, 5, || None), None);
    }
}
