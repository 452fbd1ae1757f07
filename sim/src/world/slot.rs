//! One host of the world: its PostgreSQL (when running), clock, disk, CPU and what the world
//! knows of it; and the engine configuration each node boots with.

use std::collections::BTreeMap;

use repsim_engine::config::{BootRole, NodeConfig};
use repsim_engine::io::TimerId;
use repsim_engine::Node;

use crate::scenario::model::Scenario;
use crate::world::clock::NodeClock;
use crate::world::cpu::Cpu;
use crate::world::disk::Disk;

pub struct NodeSlot {
    pub name: String,
    pub engine: Option<Node>,
    pub config: NodeConfig,
    pub incarnation: u64,
    pub clock: NodeClock,
    /// Each engine timer: its latest setting and the one queued event standing for it.
    pub(crate) timers: BTreeMap<TimerId, TimerState>,
    pub disk: Disk,
    pub cpu: Cpu,
    /// Highest LSN this node ever reported durable, for `durable_fsync`.
    pub max_flushed: repsim_engine::Lsn,
    pub crashes: u32,
    /// The host runs (its PostgreSQL may still be stopped).
    pub host_up: bool,
    /// A rewind or clone is copying data.
    pub busy: bool,
    /// The upstream refused our WAL: it goes past the upstream's fork point.
    pub diverged: bool,
    /// The upstream no longer has the WAL we need ("requested WAL segment … removed").
    pub wal_removed: bool,
    /// A fast shutdown (switchover) completed and PostgreSQL stopped.
    pub shutdown_complete: bool,
    /// The first WAL segment this incarnation asked `archive_command` to archive (the
    /// segments it is responsible for, for `archived_before_recycled`).
    pub first_archived_segno: Option<u64>,
    /// The timeline PostgreSQL was on when it last stopped.
    pub last_timeline: u32,
    /// Processing resumes at this time (`pause`).
    pub paused_until_ns: u64,
    /// Events that reached the node while it was paused, in arrival order; released, in that
    /// order, when the pause ends (at its end, at settle, or when the host loses power).
    pub held_events: Vec<crate::world::event::EventKind>,
    /// `lose_disk`: the disk was replaced by an empty one; the host is re-cloned from the
    /// primary when it comes back (and as soon as there is a primary to clone from).
    pub disk_replaced: bool,
    /// When the host lost power, and when it lost its disk (`lose_disk`): a promise a node
    /// made before either is judged by what survives them (`check::durability`).
    pub power_losses_ns: Vec<u64>,
    pub disk_losses_ns: Vec<u64>,
    /// Failed fsyncs: the kernel dropped the file's dirty pages (what `remote_write` promised).
    pub cache_losses_ns: Vec<u64>,
    /// The HA agent asked for the promotion in progress (an operator's `promote` did not).
    pub promote_by_ha: bool,
    /// A logical subscriber (`[[logical.subscriptions]]`): a primary of its own, outside the
    /// physical cluster (no HA agent, no clients, not judged by the physical checks).
    pub subscriber: bool,
}

/// Builds each node's engine configuration from the scenario.
pub fn node_configs(s: &Scenario) -> Vec<NodeConfig> {
    let names = s.cluster.nodes.clone();
    (0..names.len())
        .map(|i| {
            let mut c = NodeConfig::with_defaults(i as u32, names.clone());
            let r = &s.replication;
            c.boot_role = if i == s.cluster.primary { BootRole::Primary } else { BootRole::Standby };
            let upstream = s.nodes[i].primary_conninfo.as_ref().and_then(|name| names.iter().position(|n| n == name));
            c.primary_conninfo = (i != s.cluster.primary).then_some(upstream.unwrap_or(s.cluster.primary) as u32);
            c.synchronous_commit = r.synchronous_commit;
            c.synchronous_standby_names = r.synchronous_standby_names.clone();
            c.wal_segment_size_bytes = r.wal_segment_size_bytes;
            c.wal_keep_size_bytes = r.wal_keep_size_bytes;
            c.max_wal_size_bytes = r.max_wal_size_bytes;
            c.checkpoint_timeout_ns = r.checkpoint_timeout_ns;
            c.checkpoint_completion_target = r.checkpoint_completion_target;
            c.wal_writer_delay_ns = r.wal_writer_delay_ns;
            c.wal_writer_flush_after_bytes = r.wal_writer_flush_after_bytes;
            c.wal_sender_timeout_ns = r.wal_sender_timeout_ns;
            c.wal_receiver_timeout_ns = r.wal_receiver_timeout_ns;
            c.wal_receiver_status_interval_ns = r.wal_receiver_status_interval_ns;
            c.wal_retrieve_retry_interval_ns = r.wal_retrieve_retry_interval_ns;
            c.recovery_min_apply_delay_ns =
                s.nodes[i].recovery_min_apply_delay_ns.unwrap_or(r.recovery_min_apply_delay_ns);
            c.statement_timeout_ns = s.workload.statement_timeout_ns;
            c.replication_slots = r.replication_slots;
            c.full_page_writes = r.full_page_writes;
            c.max_slot_wal_keep_size_bytes = r.max_slot_wal_keep_size_bytes;
            c.hot_standby_feedback = r.hot_standby_feedback;
            c.archive_mode = r.archive_mode;
            c.restore_command = r.restore_command;
            c.archive_timeout_ns = r.archive_timeout_ns;
            c.max_standby_streaming_delay_ns = r.max_standby_streaming_delay_ns;
            logical_config(s, i, &mut c);
            c
        })
        .collect()
}

/// Publications are catalog objects: every node of the physical cluster has them (a promoted
/// standby too). A subscriber is a primary of its own with its subscription; its
/// `synchronous_standby_names` would name the physical cluster's standbys, so it has none.
fn logical_config(s: &Scenario, i: usize, c: &mut NodeConfig) {
    let logical = &s.logical;
    let publications = logical.publications.iter().map(crate::scenario::logical::PublicationSpec::to_engine).collect();
    let primary = s.cluster.primary;
    // A subscription is a catalog object: the physical cluster's nodes all have the primary's.
    let holder = if logical.is_subscriber(i) { i } else { primary };
    let subscriptions = logical
        .subscriptions
        .iter()
        .filter(|sub| sub.node == holder && sub.at_ns.is_none())
        .map(|sub| sub.engine_subscription(sub.publisher.unwrap_or(primary) as u32))
        .collect::<Vec<_>>();
    if let Some(mm) = &logical.multi_master {
        // Every master publishes and detects conflicts (`track_commit_timestamp`).
        c.track_commit_timestamp = true;
        c.conflict_resolution = mm.policies.clone();
        c.subscriptions = subscriptions.clone();
    }
    if !logical.is_subscriber(i) {
        c.trigger_capture = logical.trigger_capture();
        c.sync_replication_slots = s.replication.sync_replication_slots;
        c.synchronized_standby_slots = s.replication.synchronized_standby_slots.clone();
        c.publications = publications;
        return;
    }
    if logical.multi_master.is_some() {
        c.publications = publications;
    }
    c.boot_role = BootRole::Primary;
    c.primary_conninfo = None;
    c.synchronous_standby_names = repsim_engine::config::SyncStandbyNames::empty();
    // Another database cluster: the physical cluster's WAL archive is not its own (its WAL
    // there would be taken for the cluster's: swarm seed 3708, a standby restored it).
    c.archive_mode = false;
    c.restore_command = false;
    c.archive_timeout_ns = 0;
    c.subscriptions = subscriptions;
}

/// An engine timer, re-armed far more often than it fires (a walsender's keepalive timer moves
/// with every message). Only one event per timer stands in the queue: a re-arm to a later time
/// leaves it there, and when it fires early it is moved to the latest deadline. A re-arm to an
/// earlier time queues a new event and orphans the old one. (Measured: a queue of 31,000 stale
/// timer events on average under load became a few dozen.)
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerState {
    /// Bumped by every `SetTimer`.
    pub generation: u64,
    /// When the engine wants it, in true time.
    pub due_ns: u64,
    /// The queued event standing for it: `(time, the generation it was queued with)`.
    pub queued: Option<(u64, u64)>,
}
