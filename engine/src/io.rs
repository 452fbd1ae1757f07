//! The engine's whole contact with the world: the inputs a driver feeds to
//! [`crate::node::Node::step`] and the outputs it carries out.

use std::collections::BTreeMap;

use crate::config::SyncCommitLevel;
use crate::lsn::Lsn;
use crate::message::Message;
use crate::storage::Value;
use crate::wal::record::RowChange;

/// A node's index in the cluster.
pub type NodeId = u32;

/// Nanoseconds on the node's own clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

/// Identifies one disk operation of one node incarnation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IoId(pub u64);

/// Files of the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileId {
    /// `pg_control`: the latest checkpoint. Smaller than a sector, so written atomically.
    Control,
    /// The table image written by checkpoint number `id`.
    Data(u64),
    /// `pg_wal/<timeline><segno>`.
    WalSegment { timeline: u32, segno: u64 },
    /// `pg_wal/<timeline>.history`.
    History(u32),
    /// `pg_replslot/*/state`: the node's logical slots, one file for all (`logical/slot.rs`),
    /// in two copies written in turn (0 and 1), each with a generation: PostgreSQL writes a
    /// slot's state to a temporary file and renames it, so a failed or torn write leaves the
    /// previous state; here it leaves the other copy.
    ReplSlots(u8),
}

/// Timers a node sets; setting a timer again replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerId {
    /// The WAL writer's `wal_writer_delay` wake-up.
    WalWriter,
    /// `checkpoint_timeout`.
    Checkpoint,
    /// A walsender's keepalive / `wal_sender_timeout` check, per standby.
    WalSender(NodeId),
    /// The walreceiver's status interval, timeout and reconnect wake-up.
    WalReceiver,
    /// Replay waiting for `recovery_min_apply_delay`.
    ApplyDelay,
    /// The earliest deadline of reads waiting for replay.
    ReadWait,
    /// A spread checkpoint's next paced write (`checkpoint::CHECKPOINT_WRITE_DELAY_NS`).
    CheckpointWrite,
    /// The earliest `statement_timeout` of the commits waiting for standbys.
    StatementTimeout,
    /// The earliest end of the read queries running here (`query.rs`).
    QueryEnd,
    /// Replay waiting on a conflict reaches `max_standby_streaming_delay` (`query.rs`).
    StandbyLimit,
    /// The archiver wakes after a failed `archive_command` (`archiver.rs`).
    Archiver,
    /// The checkpointer's `archive_timeout` check (`CheckArchiveTimeout`).
    ArchiveTimeout,
    /// A stopped apply worker for the subscription to this publisher starts again
    /// (`wal_retrieve_retry_interval`, `logical/apply.rs`).
    ApplyRetry(NodeId),
    /// A trigger subscription's router polls its publisher's change table again.
    TriggerPoll(NodeId),
    /// The slot sync worker's next round (`logical/slotsync.rs`).
    SlotSync,
}

/// Work the node's CPU must do before the engine continues it (replay is single-threaded, as
/// PostgreSQL's startup process is). The driver answers with [`Input::ComputeDone`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComputeTask {
    /// Crash recovery redo of this many records.
    Recovery { records: u64 },
    /// Standby replay of this many records.
    Replay { records: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u64);

/// What a client asks of a node. A write transaction arrives whole (its statements and its
/// COMMIT or ROLLBACK), so its WAL is contiguous.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Write {
        changes: Vec<RowChange>,
        commit: bool,
        /// The session's `SET synchronous_commit` (`None`: the server's setting).
        synchronous_commit: Option<crate::config::SyncCommitLevel>,
    },
    /// A read query; it runs `duration_ns` from its snapshot before it answers (0: at once).
    Read { table: u32, key: u64, duration_ns: u64 },
    /// A read that must see at least `min_lsn` of timeline `min_timeline` (read-your-writes by
    /// LSN): a standby waits up to `wait_ns` for replay to get there, else answers
    /// `ErrorKind::TooStale`. An LSN names different WAL on two timelines, so a node whose
    /// history does not hold that position (it still replays the old primary's branch past the
    /// fork, or has not crossed to the new timeline) has not seen it.
    ReadAfter { table: u32, key: u64, min_timeline: u32, min_lsn: Lsn, wait_ns: u64, duration_ns: u64 },
    /// The client's cancel request for its operation `op_id` (libpq's `PQcancel`: a
    /// CancelRequest on a new connection, which gets no answer). A commit waiting for standbys
    /// stops waiting (`cancel.rs`); a read query ends with "canceling statement due to user
    /// request"; anything else ignores it.
    Cancel { op_id: u64 },
}

/// The promise an acknowledged commit carried (DESIGN §5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promise {
    /// The level in force; remote levels with an empty `synchronous_standby_names` act as
    /// `local` and are reported as `local`.
    pub level: SyncCommitLevel,
    /// Standbys whose reported position covered the commit when it was released.
    pub confirmed_by: Vec<NodeId>,
    /// The wait for synchronous standbys was cancelled (`statement_timeout`): the commit is
    /// durable on the primary only, and `level` says `local`. PostgreSQL still reports it
    /// committed, with the warning "canceling wait for synchronous replication due to user
    /// request" ("The transaction has already committed locally, but might not have been
    /// replicated to the standby.").
    pub wait_cancelled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// SQLSTATE 25006: cannot execute a write in a read-only transaction.
    ReadOnly,
    /// SQLSTATE 57P03: the database system is starting up.
    NotReady,
    /// SQLSTATE 57P01/57P03: the database system is shutting down.
    ShuttingDown,
    /// A `ReadAfter` whose LSN replay did not reach in time.
    TooStale,
    /// SQLSTATE 40001 on a hot standby: "canceling statement due to conflict with recovery".
    RecoveryConflict,
    /// SQLSTATE 57014: "canceling statement due to user request".
    QueryCanceled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Committed { commit_lsn: Lsn, promise: Promise },
    RolledBack,
    Read { value: Option<Value>, read_lsn: Lsn },
    Error { kind: ErrorKind, message: &'static str },
}

/// Facts for the checker and metrics. They never influence the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// WAL up to `lsn` is durable on this node.
    Flushed { lsn: Lsn },
    /// The checkpoint `Command::Checkpoint` asked for is done (or nothing needed one).
    CheckpointRequestDone,
    /// Targeted recovery stopped at its `recovery_target_*`: replayed to `lsn` (`pitr.rs`).
    RecoveryTargetReached { lsn: Lsn },
    /// FATAL: the archive ended before a time or LSN target was reached; the node stops
    /// (`pitr.rs`, [`crate::pitr::TARGET_NOT_REACHED`]).
    RecoveryTargetNotReached { replayed_to: Lsn },
    /// Crash recovery finished: WAL valid to `end`, redo started at `redo`.
    Recovered { redo: Lsn, end: Lsn, records: u64 },
    /// A checkpoint (restartpoint on a standby) completed and recycled WAL below `removed_below`.
    Checkpoint { redo: Lsn, removed_below: Lsn },
    /// A walsender refused or ended a stream.
    WalSenderError { standby: NodeId, text: String },
    /// A logical slot was created, dropped, refused or invalidated (`text` says which).
    LogicalSlot { name: String, text: String },
    /// A subscription's apply worker stopped or was disabled (`text` says why); `conflict`:
    /// a change it received violated a constraint here.
    ApplyWorker { subscription: String, text: String, conflict: bool },
    /// A subscription's apply worker applied a remote transaction that committed on
    /// `publisher` at `commit_timestamp_ns` (the publisher's clock), here at `applied_at_ns`
    /// (this node's clock): their difference is the apply lag users compute from
    /// `pg_stat_subscription`, clock skew included.
    /// `local_end_lsn`: the end of the local commit that applied it (durable once flushed).
    LogicalApplied {
        publisher: NodeId,
        remote_end_lsn: Lsn,
        local_end_lsn: Lsn,
        commit_timestamp_ns: u64,
        applied_at_ns: u64,
    },
    /// A subscription's apply worker reported to `publisher` WAL received past the last
    /// transaction it applied (a keepalive's `wal_end`; as written, and as flushed once nothing
    /// applied is still unflushed here): it holds everything the publisher sent through
    /// `remote_lsn`, durably once its WAL is durable through `local_lsn`.
    LogicalConfirmed { publisher: NodeId, remote_lsn: Lsn, local_lsn: Lsn },
    /// A change from `publisher` met a conflicting local row (detected with
    /// `track_commit_timestamp`, as PostgreSQL 18 logs them) and was resolved by policy.
    LogicalConflict {
        publisher: NodeId,
        table: u32,
        key: u64,
        kind: crate::logical::conflict::ConflictKind,
        resolution: crate::logical::conflict::Resolution,
    },
    /// A new subscription's initial copy (`rows` rows, as of the slot's `consistent_point`)
    /// committed here; streaming follows.
    /// `local_end_lsn`: the end of the local commit that holds the copy.
    InitialCopyDone { subscription: String, rows: u64, consistent_point: Lsn, local_end_lsn: Lsn },
    /// A walreceiver ended its stream (timeout, error, lost connection).
    WalReceiverStopped { reason: String },
    /// A promotion switched timeline: timeline `timeline` starts at `switch`. Writes are
    /// accepted once `PromotionComplete` follows.
    Promoted { timeline: u32, switch: Lsn },
    /// The promotion ended recovery (end-of-recovery record flushed, `pg_control` updated):
    /// writes are accepted, `duration_ns` after `pg_promote()` arrived.
    PromotionComplete { timeline: u32, duration_ns: u64 },
    /// A fast shutdown finished: every connected standby has flushed all our WAL.
    ShutdownComplete { flush: Lsn },
    /// A standby crossed to its upstream's newer timeline.
    TimelineAdopted { timeline: u32 },
    /// PostgreSQL PANIC: the node stops (for example an fsync failure).
    Panic { reason: String },
    /// A read query took its snapshot, with this `xmin`; it answers the client later.
    QuerySnapshot { client: ClientId, op_id: u64, xmin: u32 },
    /// The primary looked for dead row versions to remove (at most once a second): it removed
    /// `removed`, and `dead_row_versions` are left (held by the `xmin` horizon).
    Pruned { removed: u64, dead_row_versions: u64 },
    /// A standby replayed a cleanup record removing versions up to `horizon_xid`.
    CleanupReplayed { horizon_xid: u32 },
    /// Replay passed a cleanup record that conflicted with queries: it waited `waited_ns`,
    /// then cancelled `cancelled` of them.
    RecoveryConflict { waited_ns: u64, cancelled: u32 },
}

/// What an operator (or the HA agent) asks of the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `pg_promote()`: end recovery, start a new timeline, accept writes.
    Promote,
    /// Re-point `primary_conninfo` at `upstream` (a reload; the walreceiver restarts).
    Follow { upstream: NodeId },
    /// Change `synchronous_standby_names` (a reload); waiting commits are re-evaluated.
    SetSyncStandbyNames(crate::syncrep::SyncStandbyNames),
    /// `CHECKPOINT`, as `pg_backup_start(fast => true)` issues it: an immediate checkpoint on
    /// a primary (a standby answers with its last restartpoint); `CheckpointRequestDone`
    /// follows.
    Checkpoint,
    /// `pg_switch_wal()`: close the current WAL segment (if anything important went into it),
    /// as `pg_backup_stop` does on a primary so that the backup's WAL is archived at once.
    SwitchWal,
    /// `pg_ctl stop -m fast` on a primary: refuse new work, flush, let the walsenders ship
    /// everything to connected standbys, then report `ShutdownComplete`.
    Shutdown,
    /// `pg_create_logical_replication_slot(name, 'pgoutput', failover => failover)` on a
    /// primary (`engine/src/logical/admin.rs`).
    CreateLogicalSlot { name: String, failover: bool },
    /// `pg_drop_replication_slot(name)`.
    DropLogicalSlot { name: String },
    /// `CREATE SUBSCRIPTION` on this node (`logical/tablesync.rs`).
    CreateSubscription(Box<crate::logical::apply::Subscription>),
    /// `ALTER SUBSCRIPTION subscription CONNECTION '…'`: its publisher is now `publisher`.
    SetPublisher { subscription: String, publisher: NodeId },
    /// `ALTER SUBSCRIPTION subscription SKIP (lsn = …)`, with the finish LSN of the
    /// transaction its worker last failed on (as an operator reads it from the log).
    SkipTransaction { subscription: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Start from the durable disk image (memory is always empty at boot).
    Boot(DiskImage),
    Message {
        from: NodeId,
        msg: Message,
    },
    /// The TCP connection to `peer` was reset or closed.
    ConnectionLost {
        peer: NodeId,
    },
    Timer(TimerId),
    DiskDone(IoId),
    DiskFailed(IoId),
    ComputeDone(ComputeTask),
    Admin(Command),
    /// `restore_command` for WAL segment `file` ended: its bytes, or `None` if it failed.
    Restored {
        file: FileId,
        bytes: Option<Vec<u8>>,
    },
    /// `archive_command` for WAL segment `file` ended: `ok` if it exited 0.
    ArchiveDone {
        file: FileId,
        ok: bool,
    },
    Client {
        client: ClientId,
        op_id: u64,
        request: Request,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Send {
        to: NodeId,
        msg: Message,
    },
    /// Close the connection to `peer` (the peer sees `ConnectionLost`).
    Disconnect {
        peer: NodeId,
    },
    SetTimer {
        id: TimerId,
        at: Instant,
    },
    /// `cost_bytes`: the device work the write stands for. Its length, except for a table image
    /// (held compactly, it costs every row: [`file_cost_bytes`]) and a spread checkpoint's
    /// paced writeback of that image's rows (no bytes; the image itself was written into the
    /// page cache at the start, at no cost).
    Write {
        io: IoId,
        file: FileId,
        offset: u64,
        bytes: Vec<u8>,
        cost_bytes: u64,
    },
    Fsync {
        io: IoId,
        file: FileId,
    },
    /// Cut a file to `len` bytes, durably (end of recovery drops a torn tail this way).
    Truncate {
        file: FileId,
        len: u64,
    },
    /// Unlink a file, durably.
    Remove {
        file: FileId,
    },
    Compute(ComputeTask),
    /// Run `restore_command` for WAL segment `file` (`restore.rs`); answer with
    /// [`Input::Restored`].
    RestoreSegment {
        file: FileId,
        /// The timelines whose copy of the segment will do, newest first (`file` names the
        /// first): those of the node's history that wrote part of it, as
        /// `XLogFileReadAnyTLI` tries them.
        timelines: Vec<u32>,
    },
    /// Run `archive_command` for WAL segment `file` (`archiver.rs`); answer with
    /// [`Input::ArchiveDone`].
    ArchiveSegment {
        file: FileId,
    },
    Reply {
        client: ClientId,
        op_id: u64,
        reply: Reply,
    },
    Observe(Observation),
}

/// The bytes writing (or copying) `bytes` into `file` moves: its length, except for a table
/// image, which is held compactly but costs every row it stands for.
pub fn file_cost_bytes(file: FileId, bytes: &[u8]) -> u64 {
    match file {
        FileId::Data(_) => crate::storage::data_file_cost_bytes(bytes),
        _ => bytes.len() as u64,
    }
}

/// The durable content of a node's data directory. Files are held in shared chunks, so that
/// copying an image (a crash's view of a disk, a base backup) and booting from it copy no bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskImage {
    pub files: BTreeMap<FileId, crate::wal::chunks::ChunkedBytes>,
}

impl DiskImage {
    /// A file's bytes, copied out (for the small files a decoder reads whole).
    pub fn read(&self, file: FileId) -> Option<Vec<u8>> {
        self.files.get(&file).map(|b| b.to_vec())
    }
}

/// [`file_cost_bytes`] of a file held in chunks (only a data file is read to count its rows).
pub fn chunked_file_cost_bytes(file: FileId, bytes: &crate::wal::chunks::ChunkedBytes) -> u64 {
    match file {
        FileId::Data(_) => file_cost_bytes(file, &bytes.to_vec()),
        _ => bytes.len() as u64,
    }
}
