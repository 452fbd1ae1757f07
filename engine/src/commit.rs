//! The commit path on a primary (PostgreSQL `RecordTransactionCommit` + `SyncRepWaitForLSN`):
//! insert the records, flush locally unless `off`, then wait in the sync-rep queue of the
//! level's kind until enough synchronous standbys have confirmed the commit LSN.

use std::collections::VecDeque;

use crate::config::SyncCommitLevel;
use crate::io::{ClientId, Instant, NodeId, Output, Promise, Reply};
use crate::lsn::Lsn;
use crate::node::Node;
use crate::syncrep::{self, Released, SyncCandidate};
use crate::wal::record::{RecordBody, RowChange};

#[derive(Clone, Debug)]
pub(crate) struct Waiter {
    pub client: ClientId,
    pub op_id: u64,
    pub commit_lsn: Lsn,
    pub level: SyncCommitLevel,
    /// When `statement_timeout` cancels its wait for standbys (`None`: never).
    pub deadline: Option<Instant>,
    /// The client asked to cancel while the local flush ran: the wait for standbys ends as
    /// soon as it starts.
    pub cancel_requested: bool,
}

/// Waiting commits: for the local flush, then per remote kind (write, flush, apply). Each queue
/// is in LSN order because commits enter it in LSN order.
#[derive(Clone, Debug, Default)]
pub struct CommitQueues {
    pub(crate) local: VecDeque<Waiter>,
    pub(crate) remote: [VecDeque<Waiter>; 3],
    /// Released LSN per kind; never goes back (I3.2).
    pub released: Released,
}

impl CommitQueues {
    pub fn has_local_waiters(&self) -> bool {
        !self.local.is_empty()
    }

    /// Commits waiting for standbys, all kinds.
    pub fn remote_waiting(&self) -> usize {
        self.remote.iter().map(VecDeque::len).sum()
    }
}

fn remote_kind(level: SyncCommitLevel) -> Option<usize> {
    match level {
        SyncCommitLevel::RemoteWrite => Some(0),
        SyncCommitLevel::On => Some(1),
        SyncCommitLevel::RemoteApply => Some(2),
        SyncCommitLevel::Off | SyncCommitLevel::Local => None,
    }
}

fn released_for(released: &Released, kind: usize) -> Lsn {
    [released.write, released.flush, released.apply][kind]
}

impl Node {
    /// The level a commit actually waits for: remote levels act as `local` when
    /// `synchronous_standby_names` is empty (spec §3.1).
    /// The level a commit waits for: the session's, else the server's; above `local` only if
    /// synchronous standbys are named (PostgreSQL's `SyncRepRequested` and `SyncStandbysDefined`).
    fn effective_level(&self, session: Option<SyncCommitLevel>) -> SyncCommitLevel {
        let level = session.unwrap_or(self.cfg.synchronous_commit);
        if level > SyncCommitLevel::Local && self.cfg.synchronous_standby_names.is_empty() {
            SyncCommitLevel::Local
        } else {
            level
        }
    }

    /// The full-page image `change` must be preceded by, if any (`crate::fpw`).
    fn page_image_for(&mut self, change: &RowChange) -> Option<(u32, u64, u32)> {
        if !self.cfg.full_page_writes {
            return None;
        }
        let (table, key) = change.row();
        let value_len = match *change {
            RowChange::Insert { value_len, .. } | RowChange::Update { value_len, .. } => value_len,
            // A delete's page holds rows of the table's size; the register workload's is the
            // value size of any row there.
            RowChange::Delete { .. } => self.store.get(table, key).map_or(0, |v| v.len),
        };
        let store = &self.store;
        let rows_present =
            |first: u64, end: u64| (first..end).filter(|&k| store.get(table, k).is_some()).count() as u64;
        let (page, len) = self.full_page_writes.image_for(table, key, value_len, rows_present)?;
        Some((table, page, len))
    }

    /// A node about to write: its xids continue past every xid it replayed.
    pub(crate) fn next_xid_past_replayed(&mut self) {
        self.next_xid = self.next_xid.max(self.replay.max_xid.wrapping_add(1)).max(1);
    }

    /// Logs one row change of transaction `xid`, after the full-page image it needs, if any.
    pub(crate) fn log_row_change(&mut self, xid: u32, change: &RowChange) {
        if let Some((table, page, image_len)) = self.page_image_for(change) {
            self.wal.append(xid, RecordBody::FullPageImage { table, page, image_len });
        }
        self.wal.append(xid, RecordBody::Row(*change));
    }

    /// A committed transaction's changes reach the table; the versions they replace are dead.
    pub(crate) fn store_committed(&mut self, xid: u32, changes: &[RowChange], origin: crate::storage::RowOrigin) {
        let replaced = self.versions_replaced(changes);
        self.dead_versions.add(xid, replaced);
        for change in changes {
            self.store.apply_committed(change, origin);
        }
    }

    pub(crate) fn run_transaction(
        &mut self,
        now: Instant,
        client: ClientId,
        op_id: u64,
        (mut changes, commit, session_level): (Vec<RowChange>, bool, Option<SyncCommitLevel>),
        out: &mut Vec<Output>,
    ) {
        self.prune_if_due(now, out);
        self.capture_changes(now, &mut changes);
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        for change in &changes {
            // The workload's register writes are upserts (`INSERT … ON CONFLICT DO UPDATE`):
            // one that finds no row inserts it, and is logged as the insert it is
            // (`heap_insert`), which a logical subscriber applies as one.
            let change = match *change {
                RowChange::Update { table, key, write_id, value_len } if self.store.get(table, key).is_none() => {
                    RowChange::Insert { table, key, write_id, value_len }
                }
                other => other,
            };
            self.log_row_change(xid, &change);
        }
        if !commit {
            // Aborts never wait (spec §3.1); their record is flushed by the WAL writer.
            self.wal.append(xid, RecordBody::Abort { timestamp_ns: now.0 });
            out.push(Output::Reply { client, op_id, reply: Reply::RolledBack });
            self.after_insert(now, out);
            return;
        }
        let level = self.effective_level(session_level);
        let apply_feedback = level == SyncCommitLevel::RemoteApply;
        let (_, commit_lsn) =
            self.wal.append(xid, RecordBody::Commit { timestamp_ns: now.0, apply_feedback, origin: None });
        if level == SyncCommitLevel::Off {
            self.visibility.shown_at_once(commit_lsn, &changes);
        } else {
            self.visibility.hide(commit_lsn, &changes, |table, key| self.store.get(table, key));
        }
        self.store_committed(xid, &changes, crate::storage::RowOrigin { node: None, commit_ts_ns: now.0 });
        let timeout_ns = self.cfg.statement_timeout_ns;
        let deadline = (timeout_ns > 0).then(|| Instant(now.0.saturating_add(timeout_ns)));
        let waiter = Waiter { client, op_id, commit_lsn, level, deadline, cancel_requested: false };
        if level == SyncCommitLevel::Off {
            out.push(self.release(&waiter));
            self.maybe_flush_after(out);
        } else {
            self.commits.local.push_back(waiter);
            self.flush_wal(out);
        }
        self.after_insert(now, out);
    }

    fn after_insert(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.checkpoint_if_wal_volume(now, out);
    }

    /// Local flush advanced: release `local` waiters, move remote ones to their queue, and
    /// wake the walsenders (only flushed WAL is ever sent).
    pub(crate) fn on_primary_flushed(&mut self, now: Instant, out: &mut Vec<Output>) {
        let flushed = self.flusher.flushed;
        while self.commits.local.front().is_some_and(|w| w.commit_lsn <= flushed) {
            let waiter = self.commits.local.pop_front().expect("checked front");
            match remote_kind(waiter.level) {
                None => out.push(self.release(&waiter)),
                Some(_) if waiter.cancel_requested => out.push(self.release_cancelled(&waiter)),
                Some(kind) => self.commits.remote[kind].push_back(waiter),
            }
        }
        // A statement timeout that expired during the local flush cancels the wait as soon as
        // it starts (XLogFlush is not interruptible; SyncRepWaitForLSN checks for a cancel).
        self.cancel_expired_waits(now, out);
        self.release_sync_waiters(out);
        self.send_to_all_walsenders(now, out);
        self.apply_workers_flushed(now, out);
        self.archive_next(now, out);
    }

    /// Recomputes the released LSNs from the walsenders and wakes every waiter they cover.
    pub(crate) fn release_sync_waiters(&mut self, out: &mut Vec<Output>) {
        let mut candidates = std::mem::take(&mut self.sync_candidates_scratch);
        self.sync_candidates_into(&mut candidates);
        let now_released = syncrep::released(&self.cfg.synchronous_standby_names, &mut candidates);
        self.sync_candidates_scratch = candidates;
        if let Some(now_released) = now_released {
            let r = &mut self.commits.released;
            r.write = r.write.max(now_released.write);
            r.flush = r.flush.max(now_released.flush);
            r.apply = r.apply.max(now_released.apply);
        }
        for kind in 0..3 {
            let limit = released_for(&self.commits.released, kind);
            while self.commits.remote[kind].front().is_some_and(|w| w.commit_lsn <= limit) {
                let waiter = self.commits.remote[kind].pop_front().expect("checked front");
                out.push(self.release(&waiter));
            }
        }
    }

    /// `synchronous_standby_names` was emptied: every waiter is released (as `local`).
    pub(crate) fn release_all_remote_waiters(&mut self, out: &mut Vec<Output>) {
        for kind in 0..3 {
            while let Some(waiter) = self.commits.remote[kind].pop_front() {
                out.push(self.release(&waiter));
            }
        }
    }

    pub(crate) fn sync_candidates(&self) -> Vec<SyncCandidate> {
        let mut candidates = Vec::new();
        self.sync_candidates_into(&mut candidates);
        candidates
    }

    /// The walsenders as the sync-rep code sees them, replacing what `candidates` held.
    fn sync_candidates_into(&self, candidates: &mut Vec<SyncCandidate>) {
        candidates.clear();
        let names = &self.cfg.synchronous_standby_names;
        let physical = self.walsenders.values().map(|sender| SyncCandidate {
            slot: sender.slot,
            priority: names.priority(&self.cfg.cluster_names[sender.peer as usize]),
            eligible: sender.is_sync_eligible(),
            write: sender.write,
            flush: sender.flush,
            apply: sender.apply,
        });
        // A logical walsender is named by its subscription (`application_name`), eligible once
        // its subscriber reported a flush position.
        let logical = self.logical_senders.values().map(|sender| SyncCandidate {
            slot: sender.order,
            priority: names.priority(&sender.slot),
            eligible: sender.is_sync_eligible(),
            write: sender.write,
            flush: sender.flush,
            apply: sender.apply,
        });
        candidates.extend(physical.chain(logical));
    }

    /// A commit's wait ends with the promise its level kept.
    fn release(&mut self, waiter: &Waiter) -> Output {
        let promise = self.promise_kept(waiter);
        self.release_with(waiter, promise)
    }

    /// A commit's wait ends (released, or cancelled: `cancel.rs`): it becomes visible to other
    /// sessions (`ProcArrayEndTransaction` after `SyncRepWaitForLSN`), and its client gets the
    /// reply with `promise`.
    pub(crate) fn release_with(&mut self, waiter: &Waiter, promise: Promise) -> Output {
        self.visibility.release(waiter.commit_lsn);
        let reply = Reply::Committed { commit_lsn: waiter.commit_lsn, promise };
        Output::Reply { client: waiter.client, op_id: waiter.op_id, reply }
    }

    /// The promise a released commit carries: its level, and the standbys that confirmed it.
    fn promise_kept(&self, waiter: &Waiter) -> Promise {
        let confirmed_by: Vec<NodeId> = match remote_kind(waiter.level) {
            None => Vec::new(),
            Some(kind) => {
                let confirms = |eligible: bool, reported: [Lsn; 3]| eligible && reported[kind] >= waiter.commit_lsn;
                let physical =
                    self.walsenders.values().filter(|s| confirms(s.is_sync_eligible(), [s.write, s.flush, s.apply]));
                let logical = self
                    .logical_senders
                    .iter()
                    .filter(|(_, s)| confirms(s.is_sync_eligible(), [s.write, s.flush, s.apply]));
                physical.map(|s| s.peer).chain(logical.map(|(&peer, _)| peer)).collect()
            }
        };
        Promise { level: waiter.level, confirmed_by, wait_cancelled: false }
    }
}
