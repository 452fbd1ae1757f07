//! Dead row versions and their cleanup on the primary, and the `xmin` horizon that holds it
//! back (PostgreSQL's heap pruning and VACUUM, `heap_page_prune_opt` in pruneheap.c and
//! `GlobalVisTestFor` in procarray.c).
//!
//! An UPDATE or DELETE of a row leaves the old version dead, with `xmax` = the transaction that
//! replaced it. A dead version can be removed once no snapshot anywhere can still see it: its
//! `xmax` precedes the oldest `xmin` of the primary's own snapshots and of the `xmin`s standbys
//! report with `hot_standby_feedback` (held by their walsenders, or by their replication slots
//! when slots are in use). Each cleanup writes a record carrying `snapshotConflictHorizon`, the
//! newest `xmax` it removed: replaying it on a hot standby conflicts with every query whose
//! snapshot `xmin` is at or before that horizon (`query.rs`).
//!
//! Simplifications, each on the conservative side:
//! - PostgreSQL prunes a page when a backend finds it nearly full, and writes one record per
//!   page. Under an update workload that is continuous; here the primary cleans up at most once
//!   every [`PRUNE_INTERVAL_NS`], at its next transaction, in one record per
//!   [`MAX_REMOVED_PER_RECORD`] versions (2 bytes per removed line pointer, as the record's
//!   offset arrays). A conflict therefore reaches a standby within about a second of the
//!   update that causes it, as it does in PostgreSQL under load.
//! - Versions are counted in runs of at most [`XID_RUN`] consecutive xids; a run is removed only
//!   when all of it may be, so a version can outlive its horizon by a few transactions.
//! - A node starts with no dead versions: those a promoted standby replayed are not counted.
//! - Versions a rolled-back transaction inserted are dead too in PostgreSQL; not counted here.

use std::collections::VecDeque;

use crate::io::{Instant, NodeId, Observation, Output};
use crate::node::Node;
use crate::wal::record::{RecordBody, RowChange};

/// The primary cleans up dead versions at most this often (see the module notes).
pub const PRUNE_INTERVAL_NS: u64 = 1_000_000_000;
/// Line pointers one cleanup record frees at most.
pub const MAX_REMOVED_PER_RECORD: u32 = 4096;
/// Consecutive xids counted together (bounds memory while dead versions pile up behind a held
/// horizon: one entry per `XID_RUN` updating transactions).
pub const XID_RUN: u32 = 64;

/// Dead versions in `xmax` order: `(first xid, last xid, versions)`.
#[derive(Clone, Debug, Default)]
pub struct DeadVersions {
    runs: VecDeque<(u32, u32, u64)>,
    count: u64,
    /// When the last cleanup ran (primary clock, ns); `None`: never.
    pub last_prune_ns: Option<u64>,
}

/// One cleanup: versions removed and the newest `xmax` among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pruned {
    pub removed: u64,
    pub conflict_horizon_xid: u32,
}

impl DeadVersions {
    /// Transaction `xmax` committed, replacing `versions` row versions.
    pub fn add(&mut self, xmax: u32, versions: u64) {
        if versions == 0 {
            return;
        }
        self.count += versions;
        if let Some(last) = self.runs.back_mut() {
            if xmax >= last.1 && xmax - last.0 < XID_RUN {
                last.1 = xmax;
                last.2 += versions;
                return;
            }
        }
        self.runs.push_back((xmax, xmax, versions));
    }

    /// Removes every run whose versions all died before `horizon_xid` (no snapshot with an
    /// `xmin` at or after the horizon sees them).
    pub fn prune(&mut self, horizon_xid: u32) -> Option<Pruned> {
        let mut pruned = Pruned { removed: 0, conflict_horizon_xid: 0 };
        while self.runs.front().is_some_and(|run| run.1 < horizon_xid) {
            let (_, last, versions) = self.runs.pop_front().expect("checked front");
            pruned.removed += versions;
            pruned.conflict_horizon_xid = last;
        }
        self.count -= pruned.removed;
        (pruned.removed > 0).then_some(pruned)
    }

    /// Dead row versions still held (`n_dead_tup`).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Entries kept (bounded by updating transactions / `XID_RUN`).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}

impl Node {
    /// Row versions `changes` leave dead: updates and deletes of rows that exist (before the
    /// changes are applied to the store).
    pub(crate) fn versions_replaced(&self, changes: &[RowChange]) -> u64 {
        let replaces = |c: &&RowChange| matches!(c, RowChange::Update { .. } | RowChange::Delete { .. });
        changes.iter().filter(replaces).filter(|c| self.store.get(c.row().0, c.row().1).is_some()).count() as u64
    }

    /// A backend is about to change pages: once per `PRUNE_INTERVAL_NS`, remove the dead
    /// versions no snapshot can see and log the cleanup.
    pub(crate) fn prune_if_due(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.dead_versions.last_prune_ns.is_some_and(|at| now.0 < at.saturating_add(PRUNE_INTERVAL_NS)) {
            return;
        }
        self.dead_versions.last_prune_ns = Some(now.0);
        let horizon = self.oldest_xmin();
        let removed = match self.dead_versions.prune(horizon) {
            Some(Pruned { removed, conflict_horizon_xid }) => {
                debug_assert!(conflict_horizon_xid < horizon, "removed a version a snapshot may see");
                let mut left = removed;
                while left > 0 {
                    let chunk = left.min(u64::from(MAX_REMOVED_PER_RECORD)) as u32;
                    self.wal.append(0, RecordBody::Prune { conflict_horizon_xid, removed: chunk });
                    left -= u64::from(chunk);
                }
                removed
            }
            None => 0,
        };
        let dead_row_versions = self.dead_versions.count();
        if removed > 0 || dead_row_versions > 0 {
            out.push(Output::Observe(Observation::Pruned { removed, dead_row_versions }));
        }
    }

    /// `h` from standby `peer`: its oldest `xmin` (0 clears it), held by its slot if it has
    /// one (`PhysicalReplicationSlotNewXmin`), else by its walsender (`MyProc->xmin`).
    pub(crate) fn on_hot_standby_feedback(&mut self, now: Instant, peer: NodeId, xmin: u32, send_time_ns: u64) {
        let Some(sender) = self.walsenders.get_mut(&peer) else {
            return;
        };
        sender.note_reply(now, send_time_ns);
        let xmin = (xmin != 0).then_some(xmin);
        if self.slots.contains_key(&peer) {
            match xmin {
                Some(xmin) => self.slot_xmins.insert(peer, xmin),
                None => self.slot_xmins.remove(&peer),
            };
        } else {
            sender.feedback_xmin = xmin;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_versions_dead_before_the_horizon_are_removed_and_the_record_names_the_newest() {
        let mut d = DeadVersions::default();
        d.add(10, 1);
        d.add(11, 2);
        d.add(10 + XID_RUN, 1);
        assert_eq!(d.count(), 4);
        assert_eq!(d.runs(), 2, "xids 10 and 11 share a run");
        assert_eq!(d.prune(11), None, "a run is removed only whole");
        assert_eq!(d.prune(12), Some(Pruned { removed: 3, conflict_horizon_xid: 11 }));
        assert_eq!(d.count(), 1);
        assert_eq!(d.prune(10 + XID_RUN), None, "xmax equal to the horizon: a snapshot may still see it");
        assert_eq!(d.prune(11 + XID_RUN), Some(Pruned { removed: 1, conflict_horizon_xid: 10 + XID_RUN }));
        assert_eq!((d.count(), d.runs()), (0, 0));
    }
}
