//! The subscriber's apply worker (`worker.c`): one per subscription, on a primary. It asks
//! the publisher's walsender to stream from the slot, applies each transaction it receives as
//! a local transaction (the subscription's `synchronous_commit` is `off` by default, so it
//! does not wait for its own flush), and reports back, as its flush position, the end of the
//! last remote transaction whose local commit is flushed here.
//!
//! Its progress, the replication origin's `remote_lsn`, is written in the same local
//! transaction as the changes, as a row of the catalog table [`ORIGIN_TABLE`] keyed by the
//! publisher (PostgreSQL writes it into the commit record, `xl_origin`, and checkpoints it in
//! `pg_logical/replorigin_checkpoint`): it is exactly as durable as what was applied, survives
//! crash recovery, and reaches the subscriber's own standbys. A transaction that ends at or
//! before it is a duplicate and is skipped, so every transaction is applied once.
//!
//! A change that meets a conflicting row is resolved by the table's policy
//! (`logical/conflict.rs`). By PostgreSQL's default an insert of a key that exists stops the
//! worker with an error; it starts again after `wal_retrieve_retry_interval` and meets the
//! same change, unless the subscription has `disable_on_error`. An update or delete of a
//! missing row is skipped (PostgreSQL logs it and goes on).
//!
//! The local commit carries the transaction's origin (`xl_origin`: the publisher and its
//! commit timestamp), so that with `track_commit_timestamp` each row knows where it was
//! written, and a walsender serving `origin = none` leaves the transaction out.

use std::collections::VecDeque;

use crate::io::{Instant, NodeId, Observation, Output, TimerId};
use crate::logical::conflict::{resolve, ConflictKind, LocalRow, Resolution};
use crate::lsn::Lsn;
use crate::message::Message;
use crate::node::{Node, Role};
use crate::storage::RowOrigin;
use crate::wal::record::{CommitOrigin, RecordBody, RowChange};

/// The catalog table holding each subscription's replication origin (`pg_replication_origin_status`).
pub const ORIGIN_TABLE: u32 = u32::MAX - 1;

/// `pg_subscription.subskiplsn`: a subscription's pending `ALTER SUBSCRIPTION … SKIP`, a row
/// keyed like its origin whose value is the finish LSN to skip (durable, as the catalog is; a
/// restarted worker still skips it).
pub const SKIP_TABLE: u32 = u32::MAX - 5;

/// The key of a subscription's row in [`ORIGIN_TABLE`] (its origin is named after the
/// subscription, `pg_<oid>`, not after the publisher it connects to: a new connection string
/// keeps it).
pub fn origin_key(subscription: &str) -> u64 {
    crate::fingerprint::fold_bytes(crate::fingerprint::FINGERPRINT_START, subscription.as_bytes())
}

/// `CREATE SUBSCRIPTION name CONNECTION '…publisher…' PUBLICATION … WITH (slot_name = …)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub name: String,
    pub publisher: NodeId,
    pub slot: String,
    pub publications: Vec<String>,
    /// `disable_on_error`: an apply error disables the subscription instead of retrying.
    pub disable_on_error: bool,
    /// `copy_data` (PostgreSQL's default, true, for a subscription made on a running
    /// publisher): the worker first has the slot made and the published tables copied as of
    /// its consistent point (`logical/tablesync.rs`). False: the slot exists and the tables
    /// need no copy (made with the empty database).
    pub copy_data: bool,
    /// `failover`: the slot the subscription makes is a failover slot.
    pub failover: bool,
    /// `origin = none` (PostgreSQL 16; default `any`): the publisher sends only changes made
    /// there, not those its own subscriptions applied, so that nodes subscribing to each
    /// other do not send changes round in a loop.
    pub origin_none: bool,
    /// Trigger-based capture instead of logical decoding (`logical/trigger.rs`): a router
    /// polls the publisher's change table. `None`: a logical subscription.
    pub trigger: Option<crate::logical::trigger::Polling>,
    /// The subscription's `synchronous_commit` is `local` or higher (default `off`): each
    /// applied transaction is flushed at once, so its flush is reported without waiting for
    /// the WAL writer (what a synchronous subscription's publisher waits for).
    pub flush_each_commit: bool,
}

/// Why an apply worker stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyStop {
    /// A received change violates a constraint here.
    Conflict(String),
    /// The stream failed: an error from the publisher.
    Error(String),
    /// The connection was lost: there is nothing left to close (closing would close the
    /// connection the publisher's side may have opened since: two masters' workers then cut
    /// each other's new connections in turn, every `wal_retrieve_retry_interval`; swarm seed
    /// 10393, at 1 ms).
    Lost(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyState {
    Streaming,
    /// Stopped by an error; started again by the retry timer.
    Waiting,
    /// `disable_on_error` stopped it for good.
    Disabled,
}

#[derive(Clone, Debug)]
pub struct ApplyWorker {
    pub subscription: Subscription,
    pub state: ApplyState,
    /// The origin's `remote_lsn`: the end of the last remote transaction applied here.
    pub applied_remote_lsn: Lsn,
    /// (local commit end, remote end) of applied transactions not yet flushed here.
    unflushed: VecDeque<(Lsn, Lsn)>,
    /// The end of the last remote transaction whose local commit is flushed (what is reported).
    pub flushed_remote_lsn: Lsn,
    /// The initial copy is still to be made (no origin yet and `copy_data`).
    pub needs_copy: bool,
    /// The finish LSN of the remote transaction a conflict last stopped it on.
    pub failed_end: Option<Lsn>,
    /// `subskiplsn`: the transaction finishing there is skipped, once.
    pub skip_lsn: Option<Lsn>,
    /// Its current stream (one per connection it opened): transactions of an earlier one,
    /// still in flight, are not its to apply (swarm: active-active under `error`, where a
    /// retry met a stale stream's later transactions and so passed over the failed one).
    pub stream: u64,
    /// Its row of `pg_stat_subscription`, for the current stream.
    pub stats: WorkerStats,
    /// The flush position last reported to the publisher.
    reported_flush: Lsn,
    /// The end of the local commit of the last transaction applied (in this run of the node).
    last_local_end: Lsn,
}

/// What `pg_stat_subscription` shows of a running worker (`UpdateWorkerStats` in
/// `worker.c`): every message moves `received_lsn` and the message times; a keepalive also
/// sets `latest_end_lsn` and `latest_end_time`, the position and time the walsender last
/// said it had decoded to. Reset when the worker connects (a new worker in PostgreSQL).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub received_lsn: Lsn,
    /// The publisher's clock when the last message left, ours when it arrived.
    pub last_msg_send_time_ns: Option<u64>,
    pub last_msg_receipt_time_ns: Option<u64>,
    pub latest_end_lsn: Lsn,
    /// The publisher's clock at the last keepalive.
    pub latest_end_time_ns: Option<u64>,
}

impl WorkerStats {
    fn message(&mut self, now: Instant, end: Lsn, send_time_ns: u64) {
        self.received_lsn = self.received_lsn.max(end);
        self.last_msg_send_time_ns = Some(send_time_ns);
        self.last_msg_receipt_time_ns = Some(now.0);
    }
}

impl ApplyWorker {
    /// A local transaction ending at `commit_end` applied remote WAL up to `remote_end`: it is
    /// reported once flushed here.
    pub(crate) fn note_applied(&mut self, commit_end: Lsn, remote_end: Lsn) {
        self.unflushed.push_back((commit_end, remote_end));
        self.last_local_end = commit_end;
    }
}

impl Node {
    /// The workers of this node's subscriptions start, or start again, once it accepts writes.
    pub(crate) fn start_apply_workers(&mut self, out: &mut Vec<Output>) {
        if self.role != Role::Primary {
            return;
        }
        for subscription in self.cfg.subscriptions.clone() {
            self.start_apply_worker(subscription, out);
        }
    }

    /// One subscription's worker: from its origin, or, with no origin yet and `copy_data`,
    /// from the initial copy.
    pub(crate) fn start_apply_worker(&mut self, subscription: Subscription, out: &mut Vec<Output>) {
        let origin = self.store.get(ORIGIN_TABLE, origin_key(&subscription.name)).map(|v| Lsn(v.write_id));
        let needs_copy = subscription.copy_data && origin.is_none() && subscription.trigger.is_none();
        let skip_lsn = self.store.get(SKIP_TABLE, origin_key(&subscription.name)).map(|v| Lsn(v.write_id));
        let origin = origin.unwrap_or(Lsn::INVALID);
        let publisher = subscription.publisher;
        let worker = ApplyWorker {
            subscription,
            state: ApplyState::Waiting,
            applied_remote_lsn: origin,
            unflushed: VecDeque::new(),
            flushed_remote_lsn: origin,
            needs_copy,
            failed_end: None,
            skip_lsn,
            stream: 0,
            stats: WorkerStats::default(),
            reported_flush: origin,
            last_local_end: Lsn::INVALID,
        };
        self.apply_workers.insert(publisher, worker);
        self.connect_apply_worker(publisher, out);
    }

    /// Starts a waiting worker's stream (at start, and when its retry timer fires).
    pub(crate) fn connect_apply_worker(&mut self, publisher: NodeId, out: &mut Vec<Output>) {
        let Some(worker) = self.apply_workers.get_mut(&publisher) else { return };
        if worker.state != ApplyState::Waiting {
            return;
        }
        worker.state = ApplyState::Streaming;
        worker.stream += 1;
        worker.stats = WorkerStats::default();
        if worker.subscription.trigger.is_some() {
            return self.poll_changes(publisher, out);
        }
        let s = &worker.subscription;
        if worker.needs_copy {
            // `CREATE_REPLICATION_SLOT … LOGICAL pgoutput (SNAPSHOT 'use')`, then `COPY` of
            // every published table in that snapshot (`logical/tablesync.rs`).
            let msg = Message::CreateSubscriptionSlot {
                slot: s.slot.clone(),
                failover: s.failover,
                publications: s.publications.clone(),
            };
            return out.push(Output::Send { to: publisher, msg });
        }
        let msg = Message::StartLogicalReplication {
            slot: s.slot.clone(),
            start: worker.applied_remote_lsn,
            publications: s.publications.clone(),
            origin_none: s.origin_none,
            stream: worker.stream,
        };
        out.push(Output::Send { to: publisher, msg });
    }

    /// Whether `from` is the publisher of a subscription here.
    pub(crate) fn is_publisher(&self, from: NodeId) -> bool {
        self.apply_workers.contains_key(&from)
    }

    /// The worker stops (an error here or from the publisher, or a lost connection) and is
    /// started again after `wal_retrieve_retry_interval`, or disabled.
    pub(crate) fn stop_apply_worker(&mut self, now: Instant, publisher: NodeId, why: ApplyStop, out: &mut Vec<Output>) {
        let shared = self.shares_connection(publisher, true);
        let Some(worker) = self.apply_workers.get_mut(&publisher) else { return };
        if worker.state != ApplyState::Streaming {
            return;
        }
        let name = worker.subscription.name.clone();
        // Any error of the worker disables it, a lost connection too (`DisableSubscriptionAndExit`
        // in `start_apply`'s error handler).
        let disable = worker.subscription.disable_on_error;
        worker.state = if disable { ApplyState::Disabled } else { ApplyState::Waiting };
        match (&why, shared) {
            (ApplyStop::Lost(_), _) => {}
            (_, true) => {
                out.push(Output::Send { to: publisher, msg: Message::EndLogicalStream { stream: worker.stream } })
            }
            (_, false) => out.push(Output::Disconnect { peer: publisher }),
        }
        let what = if disable { "disabled" } else { "stopped" };
        let (text, conflict) = match why {
            ApplyStop::Conflict(text) => (text, true),
            ApplyStop::Error(text) | ApplyStop::Lost(text) => (text, false),
        };
        let text = format!("{what}: {text}");
        out.push(Output::Observe(Observation::ApplyWorker { subscription: name, text, conflict }));
        if !disable {
            // The launcher starts a failed worker again after `wal_retrieve_retry_interval`
            // (`ApplyLauncherMain`, `logicalrep_worker_launch`).
            let at = Instant(now.0 + self.cfg.wal_retrieve_retry_interval_ns);
            out.push(Output::SetTimer { id: TimerId::ApplyRetry(publisher), at });
        }
    }

    /// A transaction from the publisher: skipped if already applied, else applied whole as
    /// one local transaction, or not at all if a change conflicts.
    pub(crate) fn on_logical_txn(
        &mut self,
        now: Instant,
        publisher: NodeId,
        (txn, stream, send_time_ns): (crate::logical::decode::DecodedTxn, u64, u64),
        out: &mut Vec<Output>,
    ) {
        let Some(worker) = self.apply_workers.get_mut(&publisher) else { return };
        if worker.state != ApplyState::Streaming || stream != worker.stream {
            return;
        }
        worker.stats.message(now, txn.end_lsn, send_time_ns);
        if txn.end_lsn <= worker.applied_remote_lsn {
            return;
        }
        let origin = origin_key(&worker.subscription.name);
        let skipped = worker.skip_lsn == Some(txn.end_lsn);
        let worker_flushes_each_commit = worker.subscription.flush_each_commit;
        let remote = RowOrigin { node: Some(publisher), commit_ts_ns: txn.commit_timestamp_ns };
        let mut changes = Vec::with_capacity(txn.changes.len() + 1);
        let mut conflicts = Vec::new();
        for change in txn.changes.iter().filter(|_| !skipped) {
            let (table, key) = change.row();
            let local =
                LocalRow { exists: self.store.get(table, key).is_some(), origin: self.store.row_origin(table, key) };
            let policy = self.cfg.conflict_resolution.for_table(table);
            let Some((kind, resolution)) = resolve(change, local, remote, self.cfg.node_id, policy) else {
                changes.push(*change);
                continue;
            };
            conflicts.push(Observation::LogicalConflict { publisher, table, key, kind, resolution });
            match resolution {
                Resolution::Stopped => {
                    out.extend(conflicts.into_iter().map(Output::Observe));
                    if let Some(w) = self.apply_workers.get_mut(&publisher) {
                        w.failed_end = Some(txn.end_lsn);
                    }
                    let text = match kind {
                        ConflictKind::InsertExists => format!(
                            "duplicate key value violates unique constraint: key ({key}) of table {table} already exists, in the transaction that ends at {}",
                            txn.end_lsn
                        ),
                        _ => format!(
                            "conflict detected on table {table}: {} for key ({key}), in the transaction that ends at {}",
                            kind.name(),
                            txn.end_lsn
                        ),
                    };
                    return self.stop_apply_worker(now, publisher, ApplyStop::Conflict(text), out);
                }
                // An insert that wins over the row it meets replaces it.
                Resolution::AppliedRemote => changes.push(*change),
                Resolution::KeptLocal | Resolution::Skipped => {}
            }
        }
        out.extend(conflicts.into_iter().map(Output::Observe));
        if skipped {
            // `subskiplsn` is cleared with the skip, in the same transaction.
            changes.push(RowChange::Delete { table: SKIP_TABLE, key: origin });
        }
        // The origin row: its value is the remote end LSN (an 8-byte pg_lsn).
        changes.push(RowChange::Update { table: ORIGIN_TABLE, key: origin, write_id: txn.end_lsn.0, value_len: 8 });
        let commit_origin = CommitOrigin { node: publisher, lsn: txn.end_lsn, timestamp_ns: txn.commit_timestamp_ns };
        let commit_end = self.apply_logical_transaction(now, &changes, Some(commit_origin), out);
        if worker_flushes_each_commit {
            self.flush_wal(out);
        }
        let worker = self.apply_workers.get_mut(&publisher).expect("checked above");
        worker.applied_remote_lsn = txn.end_lsn;
        worker.note_applied(commit_end, txn.end_lsn);
        if skipped {
            // The skip is cleared once used (`clear_subscription_skip_lsn`), and logged.
            worker.skip_lsn = None;
            worker.failed_end = None;
            let subscription = worker.subscription.name.clone();
            let text = format!("skipped the transaction finishing at {}", txn.end_lsn);
            out.push(Output::Observe(Observation::ApplyWorker { subscription, text, conflict: false }));
        }
        out.push(Output::Observe(Observation::LogicalApplied {
            publisher,
            remote_end_lsn: txn.end_lsn,
            local_end_lsn: commit_end,
            commit_timestamp_ns: txn.commit_timestamp_ns,
            applied_at_ns: now.0,
        }));
        self.report_apply_progress(now, publisher, out);
    }

    /// A local transaction of the apply worker, applying a remote one from `origin`:
    /// `synchronous_commit = off`, so nothing waits for its flush. Returns the end of its
    /// commit record.
    pub(crate) fn apply_logical_transaction(
        &mut self,
        now: Instant,
        changes: &[RowChange],
        origin: Option<CommitOrigin>,
        out: &mut Vec<Output>,
    ) -> Lsn {
        let xid = self.next_xid;
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        for change in changes {
            self.log_row_change(xid, change);
        }
        let body = RecordBody::Commit { timestamp_ns: now.0, apply_feedback: false, origin };
        let (_, commit_end) = self.wal.append(xid, body);
        self.visibility.shown_at_once(commit_end, changes);
        self.store_committed(xid, changes, RowOrigin::of_commit(now.0, origin));
        self.maybe_flush_after(out);
        self.checkpoint_if_wal_volume(now, out);
        commit_end
    }

    /// Local WAL was flushed: the remote transactions it holds are safe here; tell each
    /// publisher how far (`send_feedback`).
    pub(crate) fn apply_workers_flushed(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.apply_workers.is_empty() {
            return;
        }
        let publishers: Vec<NodeId> = self.apply_workers.keys().copied().collect();
        for publisher in publishers {
            self.report_apply_progress(now, publisher, out);
        }
    }

    /// A keepalive from the publisher: the worker notes how far the walsender decoded and
    /// answers (`send_feedback`).
    pub(crate) fn on_logical_keepalive(
        &mut self,
        now: Instant,
        publisher: NodeId,
        (wal_end, send_time_ns, stream): (Lsn, u64, u64),
        out: &mut Vec<Output>,
    ) {
        let Some(worker) = self.apply_workers.get_mut(&publisher) else { return };
        if worker.state != ApplyState::Streaming || stream != worker.stream {
            return;
        }
        worker.stats.message(now, wal_end, send_time_ns);
        worker.stats.latest_end_lsn = worker.stats.received_lsn;
        worker.stats.latest_end_time_ns = Some(send_time_ns);
        self.report_apply_progress(now, publisher, out);
    }

    /// Reports to the publisher how far what it sent is flushed here, when that moved. With
    /// no applied transaction still unflushed, that is everything received, keepalives'
    /// WAL included (`send_feedback`: with no pending transaction, flush = write = received).
    pub(crate) fn report_apply_progress(&mut self, now: Instant, publisher: NodeId, out: &mut Vec<Output>) {
        let flushed = self.flusher.flushed;
        let Some(worker) = self.apply_workers.get_mut(&publisher) else { return };
        while worker.unflushed.front().is_some_and(|(local, _)| *local <= flushed) {
            let (_, remote) = worker.unflushed.pop_front().expect("checked front");
            worker.flushed_remote_lsn = remote;
        }
        let all_flushed = worker.unflushed.is_empty();
        let received = worker.stats.received_lsn;
        let flush = if all_flushed { worker.flushed_remote_lsn.max(received) } else { worker.flushed_remote_lsn };
        if flush <= worker.reported_flush || worker.state != ApplyState::Streaming {
            return;
        }
        worker.reported_flush = flush;
        if worker.subscription.trigger.is_some() {
            // The router marks the batches loaded (`sym_outgoing_batch` status OK).
            return out.push(Output::Send { to: publisher, msg: Message::ChangesLoaded { through: flush.0 } });
        }
        let msg = Message::StatusUpdate {
            write: worker.applied_remote_lsn.max(received),
            flush,
            apply: flush,
            send_time_ns: now.0,
            reply_requested: false,
        };
        out.push(Output::Send { to: publisher, msg });
        if received > worker.applied_remote_lsn {
            // Held here once the last transaction applied is durable.
            let local_lsn = worker.last_local_end;
            out.push(Output::Observe(Observation::LogicalConfirmed { publisher, remote_lsn: received, local_lsn }));
        }
    }
}

impl Node {
    /// `ALTER SUBSCRIPTION … SKIP (lsn = …)` with the finish LSN of the transaction its worker
    /// last failed on: the worker skips that transaction whole (advancing its origin past it)
    /// the next time it meets it. Saved in the catalog ([`SKIP_TABLE`]) in a transaction of
    /// its own. Refused when the worker failed on none.
    pub(crate) fn skip_transaction(&mut self, now: Instant, subscription: &str, out: &mut Vec<Output>) {
        let worker = self.apply_workers.values_mut().find(|w| w.subscription.name == subscription);
        let failed_end = worker.as_ref().and_then(|w| w.failed_end).filter(|_| self.role == Role::Primary);
        let text = match (worker, failed_end) {
            (Some(w), Some(lsn)) => {
                w.skip_lsn = Some(lsn);
                let key = origin_key(subscription);
                let row = RowChange::Update { table: SKIP_TABLE, key, write_id: lsn.0, value_len: 8 };
                self.apply_logical_transaction(now, &[row], None, out);
                format!("skip set to the transaction finishing at {lsn}")
            }
            _ => "refused: no failed transaction to skip".to_string(),
        };
        let subscription = subscription.to_string();
        out.push(Output::Observe(Observation::ApplyWorker { subscription, text, conflict: false }));
    }

    /// `ALTER SUBSCRIPTION … CONNECTION`: the subscription now reaches its publisher at
    /// `publisher` (after a failover, the new primary). A running worker ends its stream and
    /// starts again there from its origin; a disabled one stays disabled.
    pub(crate) fn set_publisher(&mut self, subscription: &str, publisher: NodeId, out: &mut Vec<Output>) {
        let Some(old) = self.apply_workers.iter().find(|(_, w)| w.subscription.name == subscription).map(|(p, _)| *p)
        else {
            return;
        };
        if old == publisher {
            return;
        }
        if let Some(s) = self.cfg.subscriptions.iter_mut().find(|s| s.name == subscription) {
            s.publisher = publisher;
        }
        let mut worker = self.apply_workers.remove(&old).expect("found above");
        worker.subscription.publisher = publisher;
        if worker.state == ApplyState::Streaming {
            out.push(Output::Disconnect { peer: old });
            worker.state = ApplyState::Waiting;
        }
        // Progress not yet flushed here is reported to the new publisher once flushed.
        self.apply_workers.insert(publisher, worker);
        self.connect_apply_worker(publisher, out);
    }
}
