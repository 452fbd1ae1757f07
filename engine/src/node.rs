//! One PostgreSQL server: wires WAL, the flusher, commits, walsenders, the walreceiver, replay
//! and checkpoints together by role. All behaviour is reached through [`Node::step`].

use std::collections::BTreeMap;

use crate::checkpoint::Checkpointer;
use crate::commit::CommitQueues;
use crate::config::{BootRole, NodeConfig};
use crate::flush::WalFlusher;
use crate::io::{ComputeTask, ErrorKind, FileId, Input, Instant, IoId, NodeId, Observation, Output, Reply, Request};
use crate::logical::apply::ApplyStop;
use crate::lsn::Lsn;
use crate::replay::Replay;
use crate::storage::Store;
use crate::wal::log::WalLog;
use crate::walreceiver::WalReceiver;
use crate::walsender::WalSender;

/// What the node is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Created, not booted yet.
    Down,
    /// Crash recovery redo is running; no connections accepted.
    Recovering,
    Primary,
    Standby,
    /// PANIC: the node stopped itself and does nothing until restarted.
    Panicked,
}

/// Why a disk operation was issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IoPurpose {
    WalWrite {
        end: Lsn,
    },
    WalFsync {
        end: Lsn,
    },
    Checkpoint,
    /// History files and timeline-file copies: nothing waits for them.
    Meta,
    /// The fsync of the slots' state file of this generation: an initial copy waits for it.
    SlotsSaved {
        generation: u64,
    },
    /// The fsync of a promotion's timeline history file: the timeline switch at `switch`
    /// waits for it.
    PromotionHistory {
        switch: Lsn,
    },
    /// The write and fsync of `pg_control` that ends a promotion (`EndOfRecovery::Control`).
    PromotionControl,
}

/// A promotion past its timeline switch, not yet accepting writes: PostgreSQL's
/// `CreateEndOfRecoveryRecord` (xlog.c) inserts and flushes the end-of-recovery record and
/// updates `pg_control`; only then does `StartupXLOG` set `SharedRecoveryState` to done, and
/// until then `RecoveryInProgress()` keeps sessions read-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndOfRecovery {
    /// The end-of-recovery record, ending at `record_end`, waits for its flush.
    RecordFlush { record_end: Lsn },
    /// `pg_control` is being written and fsynced (`pending` of those two left).
    Control { pending: u32 },
}

pub struct Node {
    pub(crate) cfg: NodeConfig,
    pub(crate) role: Role,
    pub(crate) timeline: u32,
    pub(crate) history: crate::timeline::History,
    /// A promotion was asked for and waits for replay to reach the end of flushed WAL.
    pub(crate) promote_requested: bool,
    /// When `pg_promote()` arrived (promotion duration is measured from it).
    pub(crate) promote_requested_at: Instant,
    /// Past the timeline switch, finishing recovery: writes are still refused.
    pub(crate) end_of_recovery: Option<EndOfRecovery>,
    /// `Shutdown` asked for; `true` in the second field once `ShutdownComplete` was reported.
    pub(crate) shutdown: Option<bool>,
    pub(crate) wal: WalLog,
    /// Where full WAL blocks are found when another holder has them (memory only).
    pub(crate) blocks: crate::wal::blocks::BlockStore,
    pub(crate) store: Store,
    pub(crate) next_xid: u32,
    next_io: u64,
    pub(crate) ios: BTreeMap<IoId, IoPurpose>,
    pub(crate) flusher: WalFlusher,
    pub(crate) checkpointer: Checkpointer,
    pub(crate) commits: CommitQueues,
    /// What other sessions see of commits still waiting (spec I3.3).
    pub(crate) visibility: crate::visibility::Visibility,
    /// Heap pages imaged since the redo point (`full_page_writes`).
    pub(crate) full_page_writes: crate::fpw::FullPageWrites,
    pub(crate) walsenders: BTreeMap<NodeId, WalSender>,
    pub(crate) next_walsender_slot: u32,
    /// Scratch list for `release_sync_waiters` (no state: refilled on every use), kept so a
    /// commit's release allocates nothing.
    pub(crate) sync_candidates_scratch: Vec<crate::syncrep::SyncCandidate>,
    /// Physical replication slots by standby: their `restart_lsn`. Kept in memory only
    /// (PostgreSQL persists them in pg_replslot; a restarted primary recreates them as the
    /// standbys reconnect).
    pub(crate) slots: BTreeMap<NodeId, Lsn>,
    /// The generation of the last slot state written (its copy is `generation % 2`).
    pub(crate) slot_file_generation: u64,
    /// The newest generation of that file known to be fsynced.
    pub(crate) slot_file_durable_generation: u64,
    /// Logical replication slots by name (`logical/admin.rs`), saved in `FileId::ReplSlots`.
    pub(crate) logical_slots: BTreeMap<String, crate::logical::slot::LogicalSlot>,
    /// The slot sync worker's current nap (`logical/slotsync.rs`).
    pub(crate) slot_sync_naptime_ns: u64,
    /// Initial copies waiting for their consistent point to be flushed: (subscriber, point,
    /// rows) (`logical/tablesync.rs`).
    pub(crate) pending_copies: Vec<crate::logical::tablesync::PendingCopy>,
    /// Logical walsenders by subscriber (`logical/sender.rs`).
    pub(crate) logical_senders: BTreeMap<NodeId, crate::logical::sender::LogicalSender>,
    /// Apply workers of this node's subscriptions, by publisher (`logical/apply.rs`).
    pub(crate) apply_workers: BTreeMap<NodeId, crate::logical::apply::ApplyWorker>,
    pub(crate) receiver: WalReceiver,
    pub(crate) replay: Replay,
    /// Reads waiting for replay to reach their LSN.
    pub(crate) waiting_reads: Vec<crate::client::WaitingRead>,
    /// Read queries past their snapshot (`query.rs`); bounded by the sessions.
    pub(crate) queries: Vec<crate::query::RunningQuery>,
    /// Dead row versions waiting for cleanup (`prune.rs`).
    pub(crate) dead_versions: crate::prune::DeadVersions,
    /// `restore_command` (`restore.rs`).
    pub(crate) restorer: crate::restore::Restorer,
    /// `archive_mode`'s archiver (`archiver.rs`).
    pub(crate) archiver: crate::archiver::Archiver,
    /// `xmin` held by physical slots from their standbys' feedback (kept while disconnected).
    pub(crate) slot_xmins: BTreeMap<NodeId, u32>,
    /// Records redone by crash recovery, waiting for their CPU time.
    pub(crate) recovery_records: u64,
    /// Redo's CPU work is done; recovery ends once the boot-time fsyncs are done too.
    pub(crate) redo_done: bool,
}

impl Node {
    /// A node that has not booted. Feed it [`Input::Boot`] with its disk image.
    /// A node that has not booted and holds its full WAL blocks in `blocks`, where the driver's
    /// other nodes (and its simulated disks) find them: memory only, behaviour is the same.
    pub fn sharing_wal_blocks(cfg: NodeConfig, blocks: crate::wal::blocks::BlockStore) -> Node {
        let segment = cfg.wal_segment_size_bytes;
        Node {
            role: Role::Down,
            timeline: 1,
            history: crate::timeline::History::default(),
            promote_requested: false,
            promote_requested_at: Instant(0),
            end_of_recovery: None,
            shutdown: None,
            wal: WalLog::sharing(segment, Lsn(segment), Lsn::INVALID, blocks.clone()),
            blocks,
            store: Store::default(),
            next_xid: 1,
            next_io: 1,
            ios: BTreeMap::new(),
            flusher: WalFlusher::default(),
            checkpointer: Checkpointer::default(),
            commits: CommitQueues::default(),
            visibility: Default::default(),
            full_page_writes: Default::default(),
            walsenders: BTreeMap::new(),
            next_walsender_slot: 0,
            sync_candidates_scratch: Vec::new(),
            slots: BTreeMap::new(),
            logical_slots: BTreeMap::new(),
            slot_sync_naptime_ns: crate::logical::slotsync::MIN_NAPTIME_NS,
            pending_copies: Vec::new(),
            logical_senders: BTreeMap::new(),
            apply_workers: BTreeMap::new(),
            slot_file_generation: 0,
            slot_file_durable_generation: 0,
            receiver: WalReceiver::default(),
            replay: Replay::default(),
            recovery_records: 0,
            redo_done: false,
            waiting_reads: Vec::new(),
            queries: Vec::new(),
            dead_versions: Default::default(),
            slot_xmins: BTreeMap::new(),
            archiver: Default::default(),
            restorer: Default::default(),
            cfg,
        }
    }

    /// A node that has not booted, sharing its WAL blocks with nobody.
    pub fn new(cfg: NodeConfig) -> Node {
        Node::sharing_wal_blocks(cfg, Default::default())
    }

    pub fn config(&self) -> &NodeConfig {
        &self.cfg
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The one entry point: process `input` at local time `now`, appending what the node wants
    /// done to `out`.
    pub fn step(&mut self, now: Instant, input: Input, out: &mut Vec<Output>) {
        if self.role == Role::Panicked {
            return;
        }
        match input {
            Input::Boot(image) => self.boot(now, image, out),
            Input::Message { from, msg } => self.on_message(now, from, msg, out),
            Input::ConnectionLost { peer } => self.on_connection_lost(now, peer, out),
            Input::Timer(id) => self.on_timer(now, id, out),
            Input::DiskDone(io) => self.on_disk_done(now, io, out),
            Input::DiskFailed(io) => self.on_disk_failed(io, out),
            Input::ComputeDone(task) => self.on_compute_done(now, task, out),
            Input::Client { client, op_id, request } => self.on_client(now, client, op_id, request, out),
            Input::Admin(command) => self.on_admin(now, command, out),
            Input::ArchiveDone { file, ok } => self.on_archive_done(now, file, ok, out),
            Input::Restored { file, bytes } => self.on_restored(now, file, bytes, out),
        }
        self.check_shutdown(out);
        self.check_invariants();
    }

    /// A fast shutdown completes once all WAL is flushed and every streaming standby has it.
    fn check_shutdown(&mut self, out: &mut Vec<Output>) {
        if self.shutdown != Some(false) {
            return;
        }
        let flushed = self.flusher.flushed;
        let all_flushed = self.wal.end() == flushed;
        let standbys_have_it = self.walsenders.values().all(|s| s.flush >= flushed);
        if all_flushed && standbys_have_it {
            self.shutdown = Some(true);
            out.push(Output::Observe(Observation::ShutdownComplete { flush: flushed }));
        }
    }

    pub(crate) fn new_io(&mut self, purpose: IoPurpose) -> IoId {
        let io = IoId(self.next_io);
        self.next_io += 1;
        self.ios.insert(io, purpose);
        io
    }

    /// Writes a whole file and fsyncs it: two operations with the same purpose.
    pub(crate) fn write_and_fsync(&mut self, purpose: IoPurpose, file: FileId, bytes: Vec<u8>, out: &mut Vec<Output>) {
        let io = self.new_io(purpose);
        let cost_bytes = crate::io::file_cost_bytes(file, &bytes);
        out.push(Output::Write { io, file, offset: 0, bytes, cost_bytes });
        let io = self.new_io(purpose);
        out.push(Output::Fsync { io, file });
    }

    fn on_disk_done(&mut self, now: Instant, io: IoId, out: &mut Vec<Output>) {
        let Some(purpose) = self.ios.remove(&io) else {
            return;
        };
        match purpose {
            IoPurpose::WalWrite { end } => self.on_wal_written(now, end, out),
            IoPurpose::WalFsync { end } => self.on_wal_fsynced(now, end, out),
            IoPurpose::Checkpoint => self.on_checkpoint_io_done(now, out),
            IoPurpose::Meta => {}
            IoPurpose::SlotsSaved { generation } => {
                // The disk completes in order: every earlier generation is durable too.
                self.slot_file_durable_generation = self.slot_file_durable_generation.max(generation);
                self.send_flushed_copies(out);
            }
            IoPurpose::PromotionHistory { switch } => self.history_file_durable(now, switch, out),
            IoPurpose::PromotionControl => self.promotion_control_done(now, out),
        }
    }

    fn on_disk_failed(&mut self, io: IoId, out: &mut Vec<Output>) {
        let purpose = self.ios.remove(&io);
        // PostgreSQL PANICs on a failed WAL write or fsync: retrying an fsync is unsafe
        // because the kernel may have dropped the dirty pages (the 2018 "fsyncgate").
        self.role = Role::Panicked;
        out.push(Output::Observe(Observation::Panic {
            reason: format!("could not write or fsync ({purpose:?}): Input/output error"),
        }));
    }

    fn on_compute_done(&mut self, now: Instant, task: ComputeTask, out: &mut Vec<Output>) {
        match task {
            ComputeTask::Recovery { .. } => self.finish_recovery(now, out),
            ComputeTask::Replay { .. } => self.finish_replay_batch(now, out),
        }
    }

    fn on_timer(&mut self, now: Instant, id: crate::io::TimerId, out: &mut Vec<Output>) {
        use crate::io::TimerId;
        match id {
            TimerId::WalWriter => self.on_wal_writer_timer(now, out),
            TimerId::Checkpoint => self.on_checkpoint_timer(now, out),
            TimerId::WalSender(peer) => self.on_walsender_timer(now, peer, out),
            TimerId::WalReceiver => self.on_walreceiver_timer(now, out),
            TimerId::ApplyDelay => self.kick_replay(now, out),
            TimerId::ReadWait => self.release_waiting_reads(now, out),
            TimerId::CheckpointWrite => self.checkpoint_write(now, out),
            TimerId::StatementTimeout => self.cancel_expired_waits(now, out),
            TimerId::QueryEnd => self.finish_queries(now, out),
            TimerId::StandbyLimit => self.kick_replay(now, out),
            TimerId::Archiver => self.archive_next(now, out),
            TimerId::ArchiveTimeout => self.check_archive_timeout(now, out),
            TimerId::ApplyRetry(publisher) => self.connect_apply_worker(publisher, out),
            TimerId::SlotSync => self.on_slot_sync_timer(now, out),
            TimerId::TriggerPoll(publisher) => self.poll_changes(publisher, out),
        }
    }

    fn on_client(
        &mut self,
        now: Instant,
        client: crate::io::ClientId,
        op_id: u64,
        request: Request,
        out: &mut Vec<Output>,
    ) {
        let reply = |reply| Output::Reply { client, op_id, reply };
        if let Request::Cancel { op_id } = request {
            // A cancel request is never answered, whatever the server's state.
            return self.cancel_request(now, client, op_id, out);
        }
        if self.shutdown.is_some() {
            let message = "the database system is shutting down";
            return out.push(reply(Reply::Error { kind: ErrorKind::ShuttingDown, message }));
        }
        match (self.role, request) {
            // Promoted but still ending recovery (`EndOfRecovery`): read-only, as a standby.
            (Role::Primary, Request::Write { .. }) if self.end_of_recovery.is_some() => out.push(reply(Reply::Error {
                kind: ErrorKind::ReadOnly,
                message: "cannot execute INSERT in a read-only transaction",
            })),
            (Role::Primary, Request::Write { changes, commit, synchronous_commit }) => {
                self.run_transaction(now, client, op_id, (changes, commit, synchronous_commit), out)
            }
            (Role::Primary | Role::Standby, Request::Read { table, key, duration_ns }) => {
                // On a primary a commit still waiting (local flush or standbys) is invisible
                // (spec I3.3); a standby shows what replay applied.
                let read_lsn = if self.role == Role::Primary { self.wal.end() } else { self.replay.lsn };
                let value = self.visible_value(table, key);
                self.answer_read(now, (client, op_id), Reply::Read { value, read_lsn }, duration_ns, out)
            }
            (
                Role::Primary | Role::Standby,
                Request::ReadAfter { table, key, min_timeline, min_lsn, wait_ns, duration_ns },
            ) => self.read_after(now, (client, op_id, table, key, duration_ns), (min_timeline, min_lsn), wait_ns, out),
            (Role::Standby, Request::Write { .. }) => out.push(reply(Reply::Error {
                kind: ErrorKind::ReadOnly,
                message: "cannot execute INSERT in a read-only transaction",
            })),
            _ => out
                .push(reply(Reply::Error { kind: ErrorKind::NotReady, message: "the database system is starting up" })),
        }
    }

    /// What a read by another session returns: on a primary, commits still waiting are hidden
    /// (spec I3.3, `visibility.rs`); on a standby, what replay applied.
    pub(crate) fn visible_value(&self, table: u32, key: u64) -> Option<crate::storage::Value> {
        match self.role {
            Role::Primary => self.visibility.get(table, key, || self.store.get(table, key)),
            _ => self.store.get(table, key),
        }
    }

    /// Role this node boots into from its configuration.
    pub(crate) fn configured_role(&self) -> Role {
        match self.cfg.boot_role {
            BootRole::Primary => Role::Primary,
            BootRole::Standby => Role::Standby,
        }
    }

    /// TigerBeetle-style: assert what must always hold, after every step.
    fn check_invariants(&self) {
        // I1.1: insert >= write >= flush.
        assert!(self.wal.end() >= self.flusher.written, "insert < write");
        assert!(self.flusher.written >= self.flusher.flushed, "write < flush");
        if self.role == Role::Standby {
            // I4.1: replay <= flushed.
            assert!(self.replay.lsn <= self.flusher.flushed.max(self.replay.recovered_end));
        }
    }
}

impl Node {
    fn on_message(&mut self, now: Instant, from: NodeId, msg: crate::message::Message, out: &mut Vec<Output>) {
        use crate::message::Message;
        match msg {
            Message::StartReplication { start, timeline } => self.on_start_replication(now, from, start, timeline, out),
            Message::StatusUpdate { write, flush, apply, .. } if self.is_logical_peer(from) => {
                self.on_logical_status(from, (write, flush, apply), out)
            }
            Message::StatusUpdate { write, flush, apply, send_time_ns, reply_requested } => {
                self.on_status_update(now, from, (write, flush, apply), send_time_ns, reply_requested, out)
            }
            Message::FetchFailoverSlots => self.on_fetch_failover_slots(from, out),
            Message::PollChanges { after, max_rows } => self.on_poll_changes(from, after, max_rows, out),
            Message::ChangeBatch { rows, more } if self.is_publisher(from) => {
                self.on_change_batch(now, from, rows, more, out)
            }
            Message::ChangesLoaded { through } => self.on_changes_loaded(now, through, out),
            Message::CreateSubscriptionSlot { slot, failover, publications } => {
                self.on_create_subscription_slot(from, (slot, failover, publications), out)
            }
            Message::InitialCopy { consistent_point, rows } if self.is_publisher(from) => {
                self.on_initial_copy(now, from, consistent_point, rows, out)
            }
            Message::FailoverSlots { slots } => self.on_failover_slots(from, slots, out),
            Message::StartLogicalReplication { slot, start, publications, origin_none, stream } => {
                self.on_start_logical(now, from, slot, (start, publications, origin_none, stream), out)
            }
            Message::HotStandbyFeedback { xmin, send_time_ns } => {
                self.on_hot_standby_feedback(now, from, xmin, send_time_ns)
            }
            Message::XLogData { start, wal_end, send_time_ns, bytes } if self.is_upstream(from) => {
                self.on_xlogdata(now, start, wal_end, send_time_ns, &bytes, out)
            }
            Message::Keepalive { wal_end, send_time_ns, reply_requested } if self.is_upstream(from) => {
                self.on_keepalive(now, wal_end, send_time_ns, reply_requested, out)
            }
            Message::StreamStart { timeline, history } if self.is_upstream(from) => {
                self.on_stream_start(now, timeline, history, out)
            }
            Message::Error { text } if self.is_upstream(from) => {
                self.stop_walreceiver(now, format!("could not receive data from WAL stream: ERROR: {text}"), out)
            }
            Message::LogicalTxn { txn, stream, send_time_ns, .. } if self.is_publisher(from) => {
                self.on_logical_txn(now, from, (txn, stream, send_time_ns), out)
            }
            Message::EndLogicalStream { stream } => self.on_end_logical_stream(from, stream),
            Message::LogicalKeepalive { wal_end, send_time_ns, stream } if self.is_publisher(from) => {
                self.on_logical_keepalive(now, from, (wal_end, send_time_ns, stream), out)
            }
            Message::Error { text } if self.is_publisher(from) => {
                let why = ApplyStop::Error(format!("could not receive data from WAL stream: ERROR: {text}"));
                self.stop_apply_worker(now, from, why, out)
            }
            _ => {}
        }
    }

    pub(crate) fn is_upstream(&self, from: NodeId) -> bool {
        self.role == Role::Standby && self.cfg.primary_conninfo == Some(from)
    }

    fn on_connection_lost(&mut self, now: Instant, peer: NodeId, out: &mut Vec<Output>) {
        self.drop_walsender(peer);
        if self.is_publisher(peer) {
            self.stop_apply_worker(now, peer, ApplyStop::Lost("the connection to the publisher was lost".into()), out);
        }
        if self.is_upstream(peer) {
            self.stop_walreceiver(
                now,
                "could not receive data from WAL stream: server closed the connection unexpectedly".into(),
                out,
            );
        }
    }
}
