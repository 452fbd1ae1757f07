//! Node configuration: PostgreSQL's parameters with PostgreSQL's defaults.

use crate::syncrep::SyncStandbyNames as Names;
pub use crate::syncrep::SyncStandbyNames;

/// `synchronous_commit`. Ordered by how much a commit waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SyncCommitLevel {
    Off,
    Local,
    RemoteWrite,
    On,
    RemoteApply,
}

impl SyncCommitLevel {
    pub const ALL: [SyncCommitLevel; 5] = [
        SyncCommitLevel::Off,
        SyncCommitLevel::Local,
        SyncCommitLevel::RemoteWrite,
        SyncCommitLevel::On,
        SyncCommitLevel::RemoteApply,
    ];

    /// The name PostgreSQL uses in `postgresql.conf`.
    pub fn name(self) -> &'static str {
        match self {
            SyncCommitLevel::Off => "off",
            SyncCommitLevel::Local => "local",
            SyncCommitLevel::RemoteWrite => "remote_write",
            SyncCommitLevel::On => "on",
            SyncCommitLevel::RemoteApply => "remote_apply",
        }
    }

    /// Parses PostgreSQL's spellings (`on`/`true`/`yes`/`1` are `on`, `off`/`false`/`no`/`0` are `off`).
    pub fn parse(text: &str) -> Option<SyncCommitLevel> {
        match text.to_ascii_lowercase().as_str() {
            "off" | "false" | "no" | "0" => Some(SyncCommitLevel::Off),
            "local" => Some(SyncCommitLevel::Local),
            "remote_write" => Some(SyncCommitLevel::RemoteWrite),
            "on" | "true" | "yes" | "1" => Some(SyncCommitLevel::On),
            "remote_apply" => Some(SyncCommitLevel::RemoteApply),
            _ => None,
        }
    }
}

/// Which role the node boots into (PostgreSQL: presence of `standby.signal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootRole {
    Primary,
    Standby,
}

/// Everything a node needs to know about itself and its cluster.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (its index in the cluster) and `application_name`.
    pub node_id: u32,
    pub name: String,
    /// Names of every node, indexed by node id (for `synchronous_standby_names` matching).
    pub cluster_names: Vec<String>,
    pub boot_role: BootRole,
    /// `primary_conninfo`: which node a standby streams from.
    pub primary_conninfo: Option<u32>,
    pub synchronous_commit: SyncCommitLevel,
    pub synchronous_standby_names: Names,
    pub wal_segment_size_bytes: u64,
    pub wal_keep_size_bytes: u64,
    pub max_wal_size_bytes: u64,
    pub checkpoint_timeout_ns: u64,
    pub checkpoint_completion_target: f64,
    pub wal_writer_delay_ns: u64,
    pub wal_writer_flush_after_bytes: u64,
    pub wal_sender_timeout_ns: u64,
    pub wal_receiver_timeout_ns: u64,
    pub wal_receiver_status_interval_ns: u64,
    pub wal_retrieve_retry_interval_ns: u64,
    pub recovery_min_apply_delay_ns: u64,
    /// `full_page_writes` (default on): `engine/src/fpw.rs`.
    pub full_page_writes: bool,
    /// `statement_timeout` of the sessions (0: off, PostgreSQL's default). A commit still
    /// waiting for synchronous standbys when it expires stops waiting: committed locally, not
    /// confirmed (`cancel.rs`).
    pub statement_timeout_ns: u64,
    /// `hot_standby_feedback` (off): a standby reports its oldest `xmin` upstream (`query.rs`).
    pub hot_standby_feedback: bool,
    /// `max_standby_streaming_delay` (30 s); `None` = -1, replay waits for queries forever.
    pub max_standby_streaming_delay_ns: Option<u64>,
    /// `archive_mode` (off): a primary archives every completed WAL segment (`archiver.rs`).
    pub archive_mode: bool,
    /// `archive_timeout` (0: off): a primary switches to a new segment once this long has
    /// passed since the last switch, if WAL was written meanwhile (`archiver.rs`).
    pub archive_timeout_ns: u64,
    /// `restore_command` is set: a standby that cannot stream restores segments from the
    /// archive (`restore.rs`).
    pub restore_command: bool,
    /// `recovery.signal` with a `recovery_target_*` (`pitr.rs`): a standby with no
    /// `primary_conninfo` that ends recovery and promotes when it reaches the target or the
    /// archive's end. `None`: `standby.signal`, recovery goes on until promoted.
    pub recovery_target: Option<crate::pitr::RecoveryTarget>,
    /// A physical replication slot per standby on this node when it is primary.
    pub replication_slots: bool,
    /// `max_slot_wal_keep_size`; `None` = -1, unlimited.
    pub max_slot_wal_keep_size_bytes: Option<u64>,
    /// Bytes a walsender may have sent beyond the standby's reported write position before it
    /// waits (models the TCP socket buffers that give PostgreSQL's walsender its backpressure).
    pub walsender_max_unacked_bytes: u64,
    /// `CREATE PUBLICATION`s on this node, for logical walsenders (`logical/sender.rs`).
    pub publications: Vec<Publication>,
    /// `CREATE SUBSCRIPTION`s on this node, one per publisher (`logical/apply.rs`).
    pub subscriptions: Vec<crate::logical::apply::Subscription>,
    /// `sync_replication_slots` (off; PostgreSQL 17): a standby's slot sync worker keeps
    /// copies of its primary's `failover` logical slots (`logical/slotsync.rs`).
    pub sync_replication_slots: bool,
    /// `synchronized_standby_slots` (''; PostgreSQL 17): the physical slots, by standby name,
    /// whose standbys must have flushed WAL before a logical walsender of a `failover` slot
    /// sends the changes in it.
    pub synchronized_standby_slots: Vec<String>,
    /// `track_commit_timestamp` (off): keep each row's commit timestamp and replication
    /// origin, which conflict detection on a subscriber needs (`logical/conflict.rs`).
    pub track_commit_timestamp: bool,
    /// SymmetricDS-style capture triggers on these tables (`logical/trigger.rs`); `None`: none.
    pub trigger_capture: Option<crate::logical::decode::PublishedTables>,
    /// How this node's apply workers resolve conflicts, per table (`logical/conflict.rs`).
    pub conflict_resolution: crate::logical::conflict::ConflictPolicies,
}

/// `CREATE PUBLICATION name FOR TABLE …` (or `FOR ALL TABLES`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    pub name: String,
    pub tables: crate::logical::decode::PublishedTables,
    /// `FOR TABLE … WHERE (…)` (PostgreSQL 15), on every table it lists; `None`: every row.
    pub row_filter: Option<crate::logical::decode::RowFilter>,
}

pub const MB: u64 = 1024 * 1024;
pub const SECOND_NS: u64 = 1_000_000_000;
pub const MS_NS: u64 = 1_000_000;

impl NodeConfig {
    /// PostgreSQL's defaults for a node of a cluster.
    pub fn with_defaults(node_id: u32, cluster_names: Vec<String>) -> NodeConfig {
        NodeConfig {
            node_id,
            name: cluster_names[node_id as usize].clone(),
            cluster_names,
            boot_role: BootRole::Primary,
            primary_conninfo: None,
            synchronous_commit: SyncCommitLevel::On,
            synchronous_standby_names: Names::empty(),
            wal_segment_size_bytes: 16 * MB,
            wal_keep_size_bytes: 0,
            max_wal_size_bytes: 1024 * MB,
            checkpoint_timeout_ns: 300 * SECOND_NS,
            checkpoint_completion_target: 0.9,
            wal_writer_delay_ns: 200 * MS_NS,
            wal_writer_flush_after_bytes: MB,
            wal_sender_timeout_ns: 60 * SECOND_NS,
            wal_receiver_timeout_ns: 60 * SECOND_NS,
            wal_receiver_status_interval_ns: 10 * SECOND_NS,
            wal_retrieve_retry_interval_ns: 5 * SECOND_NS,
            recovery_min_apply_delay_ns: 0,
            full_page_writes: true,
            statement_timeout_ns: 0,
            hot_standby_feedback: false,
            archive_mode: false,
            archive_timeout_ns: 0,
            restore_command: false,
            recovery_target: None,
            max_standby_streaming_delay_ns: Some(30 * SECOND_NS),
            replication_slots: false,
            max_slot_wal_keep_size_bytes: None,
            publications: Vec::new(),
            subscriptions: Vec::new(),
            sync_replication_slots: false,
            synchronized_standby_slots: Vec::new(),
            track_commit_timestamp: false,
            trigger_capture: None,
            conflict_resolution: Default::default(),
            walsender_max_unacked_bytes: 16 * MB,
        }
    }

    /// PostgreSQL's `CheckPointSegments`: segments of WAL between automatic checkpoints.
    pub fn checkpoint_segments(&self) -> u64 {
        let segs = self.max_wal_size_bytes as f64 / self.wal_segment_size_bytes as f64;
        ((segs / (1.0 + self.checkpoint_completion_target)).floor() as u64).max(1)
    }
}
