//! A subscription made on a running publisher (`CREATE SUBSCRIPTION … WITH (copy_data =
//! true)`, PostgreSQL's default): the apply worker has its slot made, which fixes a consistent
//! point, and copies every published table as of that point (the tablesync workers' `COPY`
//! in the snapshot the slot exported); then it streams from the slot, which sends only what
//! commits after the point. Here the slot, the snapshot and the copy are one request and one
//! answer (`Message::CreateSubscriptionSlot`, `Message::InitialCopy`), and all tables are copied
//! together rather than by one worker per table.
//!
//! The copy is one local transaction with the origin row set to the consistent point, so a
//! crash before it commits leaves no origin, and the next start makes the slot again (a slot
//! of that name left inactive by the failed attempt is dropped first, as the tablesync worker
//! drops its leftover slot). A copied row that already exists here is a conflict, as `COPY`
//! meets a duplicate key.

use crate::io::{Instant, NodeId, Observation, Output};
use crate::logical::apply::{origin_key, ApplyStop, Subscription, ORIGIN_TABLE};
use crate::lsn::Lsn;
use crate::message::Message;
use crate::node::{Node, Role};
use crate::storage::Value;
use crate::wal::record::{CommitOrigin, RowChange};

/// An initial copy waiting for its consistent point to be flushed and its slot saved:
/// (subscriber, consistent point, generation of the slots' file that holds the slot, rows).
pub(crate) type PendingCopy = (NodeId, Lsn, u64, Vec<(u32, u64, Value)>);

impl Node {
    /// `CREATE SUBSCRIPTION` on this node: kept in its configuration, started if it accepts
    /// writes (else when it does).
    pub(crate) fn create_subscription(&mut self, subscription: Subscription, out: &mut Vec<Output>) {
        if self.cfg.subscriptions.iter().any(|s| s.name == subscription.name || s.publisher == subscription.publisher) {
            let text = "refused: a subscription of this name, or to this publisher, exists".to_string();
            return out.push(Output::Observe(Observation::ApplyWorker {
                subscription: subscription.name,
                text,
                conflict: false,
            }));
        }
        self.cfg.subscriptions.push(subscription.clone());
        if self.role == Role::Primary {
            self.start_apply_worker(subscription, out);
        }
    }

    /// The publisher makes the slot and answers with the published rows as of its consistent
    /// point.
    pub(crate) fn on_create_subscription_slot(
        &mut self,
        peer: NodeId,
        (slot, failover, publications): (String, bool, Vec<String>),
        out: &mut Vec<Output>,
    ) {
        let refuse = |text: String, out: &mut Vec<Output>| self.end_logical_stream_with_error(peer, text, out);
        if self.role != Role::Primary {
            return refuse("logical decoding cannot be used while in recovery".into(), out);
        }
        let tables = match self.published_tables(&publications) {
            Ok(tables) => tables,
            Err(name) => return refuse(format!("publication \"{name}\" does not exist"), out),
        };
        if self.logical_senders.values().any(|s| s.slot == slot) {
            return refuse(format!("replication slot \"{slot}\" already exists and is active"), out);
        }
        if self.logical_slots.contains_key(&slot) {
            // Left by an attempt that did not finish (its copy never committed there).
            self.drop_logical_slot(&slot, out);
        }
        // The slot's point: every transaction committed before it is in the tables now
        // (transactions here log and commit in one step), none after it.
        let consistent_point = self.wal.end();
        self.create_logical_slot(&slot, failover, out);
        let mut rows = Vec::new();
        let filters = self.row_filters(&publications);
        for table in self.store.tables() {
            if tables.publishes(table) {
                let passing = self.store.table(table).filter(|(key, _)| filters.passes(table, *key));
                rows.extend(passing.map(|(key, value)| (table, key, value)));
            }
        }
        // Decoding finds the consistent point in flushed WAL only (`WalSndWaitForWal`), so the
        // snapshot, and the copy, are handed over once the WAL up to it is flushed; and
        // `ReplicationSlotPersist` (walsender.c's `CreateReplicationSlot`): the slot is saved
        // and fsynced before the consistent point is answered, so no subscriber commits a copy
        // of a slot a crash would lose (swarm seed 7825: the slot file's fsync failed after
        // the copy went out, the publisher panicked, and the subscriber, holding its copy,
        // met "slot does not exist" for ever).
        let generation = self.slot_file_generation;
        // A newer request from the same subscriber replaces an older one still waiting: the
        // slot that copy described was just dropped and made again.
        self.pending_copies.retain(|(p, ..)| *p != peer);
        self.pending_copies.push((peer, consistent_point, generation, rows));
        self.send_flushed_copies(out);
    }

    /// Hands over the copies whose consistent point is flushed and whose slot is saved now.
    pub(crate) fn send_flushed_copies(&mut self, out: &mut Vec<Output>) {
        if self.pending_copies.is_empty() {
            return;
        }
        let flushed = self.flusher.flushed;
        let saved = self.slot_file_durable_generation;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending_copies)
            .into_iter()
            .partition(|(_, point, generation, _)| *point <= flushed && *generation <= saved);
        self.pending_copies = waiting;
        for (peer, consistent_point, _, rows) in ready {
            out.push(Output::Send { to: peer, msg: Message::InitialCopy { consistent_point, rows } });
        }
    }

    /// The subscriber applies the copy, with its origin at the consistent point, in one local
    /// transaction, then streams from there.
    pub(crate) fn on_initial_copy(
        &mut self,
        now: Instant,
        publisher: NodeId,
        consistent_point: Lsn,
        rows: Vec<(u32, u64, Value)>,
        out: &mut Vec<Output>,
    ) {
        let Some(worker) = self.apply_workers.get(&publisher) else { return };
        if !worker.needs_copy || worker.state != crate::logical::apply::ApplyState::Streaming {
            return;
        }
        let origin = origin_key(&worker.subscription.name);
        let name = worker.subscription.name.clone();
        if let Some((table, key, _)) = rows.iter().find(|(t, k, _)| self.store.get(*t, *k).is_some()) {
            let text = format!(
                "duplicate key value violates unique constraint: key ({key}) of table {table} already exists, in the initial copy"
            );
            return self.stop_apply_worker(now, publisher, ApplyStop::Conflict(text), out);
        }
        let count = rows.len() as u64;
        let mut changes: Vec<RowChange> = rows
            .into_iter()
            .map(|(table, key, v)| RowChange::Insert { table, key, write_id: v.write_id, value_len: v.len })
            .collect();
        changes.push(RowChange::Update {
            table: ORIGIN_TABLE,
            key: origin,
            write_id: consistent_point.0,
            value_len: 8,
        });
        // The tablesync worker copies under a replication origin of its own, so the copied rows
        // count as the publisher's (and `origin = none` keeps them from being sent back); the
        // copy has no remote commit, so its time is the local one.
        let origin = CommitOrigin { node: publisher, lsn: consistent_point, timestamp_ns: now.0 };
        let commit_end = self.apply_logical_transaction(now, &changes, Some(origin), out);
        let worker = self.apply_workers.get_mut(&publisher).expect("checked above");
        worker.needs_copy = false;
        worker.applied_remote_lsn = consistent_point;
        worker.note_applied(commit_end, consistent_point);
        let done = Observation::InitialCopyDone {
            subscription: name,
            rows: count,
            consistent_point,
            local_end_lsn: commit_end,
        };
        out.push(Output::Observe(done));
        // Streaming follows on the same connection, from the consistent point.
        worker.state = crate::logical::apply::ApplyState::Waiting;
        self.connect_apply_worker(publisher, out);
    }
}
