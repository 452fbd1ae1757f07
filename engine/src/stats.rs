//! `pg_stat_replication`, `pg_stat_wal_receiver` and a node summary, as plain structs.

use crate::io::NodeId;
use crate::lsn::Lsn;
use crate::node::{Node, Role};
use crate::syncrep::{self, SyncMethod};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicationRow {
    pub standby: NodeId,
    pub application_name: String,
    pub state: &'static str,
    pub sent_lsn: Lsn,
    /// `None` (NULL) before the first reply.
    pub write_lsn: Option<Lsn>,
    pub flush_lsn: Option<Lsn>,
    pub replay_lsn: Option<Lsn>,
    pub write_lag_ns: Option<u64>,
    pub flush_lag_ns: Option<u64>,
    pub replay_lag_ns: Option<u64>,
    pub sync_priority: u32,
    pub sync_state: &'static str,
    pub reply_time_ns: Option<u64>,
    /// `backend_xmin`: the standby's `hot_standby_feedback` (held by its walsender or slot).
    pub backend_xmin: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalReceiverRow {
    pub status: &'static str,
    pub receive_start_lsn: Lsn,
    pub written_lsn: Lsn,
    pub flushed_lsn: Lsn,
    pub latest_end_lsn: Lsn,
    pub last_msg_send_time_ns: u64,
    /// Our clock when the last message arrived.
    pub last_msg_receipt_time_ns: u64,
}

/// `pg_stat_subscription`: one row per subscription (its leader apply worker); the worker's
/// columns are NULL (`None`, or the invalid LSN) while it does not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub subname: String,
    /// Whether a worker runs (`pid IS NOT NULL`).
    pub running: bool,
    pub received_lsn: Lsn,
    pub last_msg_send_time_ns: Option<u64>,
    pub last_msg_receipt_time_ns: Option<u64>,
    pub latest_end_lsn: Lsn,
    pub latest_end_time_ns: Option<u64>,
}

/// `pg_stat_archiver`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiverRow {
    pub archived_count: u64,
    pub last_archived_wal: Option<String>,
    pub last_archived_time_ns: Option<u64>,
    pub failed_count: u64,
    pub last_failed_wal: Option<String>,
    pub last_failed_time_ns: Option<u64>,
    /// Not a column: the oldest segment not archived yet (`None`: this node does not archive).
    pub next_segno: Option<u64>,
    /// Not a column: when WAL first went into the oldest segment not archived yet.
    pub oldest_unarchived_since_ns: Option<u64>,
}

/// What an operator sees of a node (`pg_current_wal_lsn()`, `pg_last_wal_replay_lsn()`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub role: Role,
    pub timeline: u32,
    pub insert_lsn: Lsn,
    pub write_lsn: Lsn,
    pub flush_lsn: Lsn,
    pub replay_lsn: Lsn,
    /// Oldest WAL still held (memory and disk are bounded by this).
    pub wal_start_lsn: Lsn,
    pub rows: usize,
    pub checkpoints: u64,
    pub commits_waiting_for_standbys: usize,
    /// Dead row versions not cleaned up yet (`n_dead_tup`; primary only, `prune.rs`).
    pub dead_row_versions: u64,
    /// Read queries running (past their snapshot).
    pub running_queries: usize,
}

fn valid(lsn: Lsn) -> Option<Lsn> {
    lsn.is_valid().then_some(lsn)
}

impl Node {
    pub fn pg_stat_replication(&self) -> Vec<ReplicationRow> {
        let names = &self.cfg.synchronous_standby_names;
        let candidates = self.sync_candidates();
        let sync_set = syncrep::sync_set(names, &candidates);
        self.walsenders
            .values()
            .map(|s| {
                let application_name = self.cfg.cluster_names[s.peer as usize].clone();
                // synchronous_standby_names applies on the primary only: a cascading walsender is async.
                let on_primary = self.role == Role::Primary;
                let priority = if s.flush.is_valid() && on_primary { names.priority(&application_name) } else { 0 };
                let sync_state = match (priority, sync_set.contains(&s.slot), names.method) {
                    (0, _, _) => "async",
                    (_, true, SyncMethod::Priority) => "sync",
                    (_, true, SyncMethod::Quorum) => "quorum",
                    (_, false, _) => "potential",
                };
                ReplicationRow {
                    standby: s.peer,
                    application_name,
                    state: s.state.name(),
                    sent_lsn: s.sent,
                    write_lsn: valid(s.write),
                    flush_lsn: valid(s.flush),
                    replay_lsn: valid(s.apply),
                    write_lag_ns: s.write_lag_ns,
                    flush_lag_ns: s.flush_lag_ns,
                    replay_lag_ns: s.replay_lag_ns,
                    sync_priority: priority,
                    sync_state,
                    reply_time_ns: s.reply_time_ns,
                    backend_xmin: s.feedback_xmin.or(self.slot_xmins.get(&s.peer).copied()),
                }
            })
            .collect()
    }

    /// Each walsender's standby, its `application_name`, and whether it could count for a
    /// synchronous commit now (streaming, a flush position reported): what
    /// `pg_stat_replication` shows of it, without building the rows (audited at every commit).
    pub fn walsender_peers(&self) -> impl Iterator<Item = (NodeId, &str, bool)> + '_ {
        self.walsenders.values().map(|s| {
            let eligible = s.state == crate::walsender::WalSenderState::Streaming && s.flush.is_valid();
            (s.peer, self.cfg.cluster_names[s.peer as usize].as_str(), eligible)
        })
    }

    /// Each logical walsender's subscriber, its `application_name` (the slot's name, as a
    /// subscription's is by default) and whether it counts for sync rep (a flush reported).
    pub fn logical_sender_peers(&self) -> impl Iterator<Item = (NodeId, &str, bool)> + '_ {
        self.logical_senders.iter().map(|(&peer, s)| (peer, s.slot.as_str(), s.is_sync_eligible()))
    }

    /// One row per subscription of this node, in the order they were made (trigger-based
    /// capture has no row: SymmetricDS is not a subscription).
    pub fn pg_stat_subscription(&self) -> Vec<SubscriptionRow> {
        self.cfg
            .subscriptions
            .iter()
            .filter(|s| s.trigger.is_none())
            .filter_map(|s| self.apply_workers.get(&s.publisher))
            .map(|w| {
                let running = w.state == crate::logical::apply::ApplyState::Streaming;
                let s = if running { w.stats } else { Default::default() };
                SubscriptionRow {
                    subname: w.subscription.name.clone(),
                    running,
                    received_lsn: s.received_lsn,
                    last_msg_send_time_ns: s.last_msg_send_time_ns,
                    last_msg_receipt_time_ns: s.last_msg_receipt_time_ns,
                    latest_end_lsn: s.latest_end_lsn,
                    latest_end_time_ns: s.latest_end_time_ns,
                }
            })
            .collect()
    }

    pub fn pg_stat_archiver(&self) -> ArchiverRow {
        let a = &self.archiver;
        let segment = self.cfg.wal_segment_size_bytes;
        let name = |file: crate::io::FileId| match file {
            crate::io::FileId::WalSegment { timeline, segno } => {
                Some(crate::lsn::segment_file_name(timeline, segno, segment))
            }
            _ => None,
        };
        ArchiverRow {
            archived_count: a.archived_count,
            last_archived_wal: a.last_archived.and_then(|(f, _)| name(f)),
            last_archived_time_ns: a.last_archived.map(|(_, at)| at),
            failed_count: a.failed_count,
            last_failed_wal: a.last_failed.and_then(|(f, _)| name(f)),
            last_failed_time_ns: a.last_failed.map(|(_, at)| at),
            next_segno: self.archive_progress().0,
            oldest_unarchived_since_ns: self.archive_progress().1,
        }
    }

    /// `None` when no walreceiver runs (primary, or never started).
    pub fn pg_stat_wal_receiver(&self) -> Option<WalReceiverRow> {
        if self.role != Role::Standby {
            return None;
        }
        let r = &self.receiver;
        Some(WalReceiverRow {
            status: r.state.name(),
            receive_start_lsn: r.receive_start_lsn,
            written_lsn: self.flusher.written,
            flushed_lsn: self.flusher.flushed,
            latest_end_lsn: r.latest_end_lsn,
            last_msg_send_time_ns: r.last_msg_send_time_ns,
            last_msg_receipt_time_ns: r.last_msg_receipt.0,
        })
    }

    /// A hash of every row the node holds (for `converged`): linear in the table size, so it
    /// is computed only when asked, not with every `status()`.
    pub fn data_hash(&self) -> u64 {
        self.store.data_hash()
    }

    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            role: self.role,
            timeline: self.timeline,
            insert_lsn: self.wal.end(),
            write_lsn: self.flusher.written,
            flush_lsn: self.flusher.flushed,
            replay_lsn: if self.role == Role::Primary { self.wal.end() } else { self.replay.lsn },
            wal_start_lsn: self.wal.start(),
            rows: self.store.len(),
            checkpoints: self.checkpointer.completed,
            commits_waiting_for_standbys: self.commits.remote_waiting(),
            dead_row_versions: self.dead_versions.count(),
            running_queries: self.queries.len(),
        }
    }

    /// The full WAL blocks this node holds (to count how many holders share them).
    pub fn wal_blocks(&self) -> impl Iterator<Item = &crate::wal::blocks::Block> + '_ {
        self.wal.full_blocks()
    }

    /// The node's WAL bytes `[from, to)` if still held, in pieces that line up with any other
    /// node's pieces of the same range (for the `replica_prefix` check).
    pub fn wal_pieces(&self, from: Lsn, to: Lsn) -> Option<impl Iterator<Item = crate::wal::blocks::Piece<'_>> + '_> {
        self.wal.pieces(from, to)
    }

    /// Read access to the table store (for the checker's final-state checks).
    pub fn store(&self) -> &crate::storage::Store {
        &self.store
    }
}

impl Node {
    /// The current timeline (cheap, unlike [`Node::status`]).
    pub fn timeline(&self) -> u32 {
        self.timeline
    }

    pub fn timeline_history(&self) -> &crate::timeline::History {
        &self.history
    }

    /// `pg_current_wal_flush_lsn()` / the walreceiver's flushed LSN (cheap).
    pub fn flush_lsn(&self) -> Lsn {
        self.flusher.flushed
    }

    /// `pg_last_wal_replay_lsn()` on a standby (cheap).
    pub fn replay_lsn(&self) -> Lsn {
        self.replay.lsn
    }
}
