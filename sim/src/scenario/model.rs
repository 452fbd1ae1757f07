//! The validated scenario: what a scenario file means once every value has been parsed,
//! unit-converted and checked. Nothing here can be invalid; `parse.rs` guarantees it.
//!
//! Durations are nanoseconds (`_ns`), sizes are bytes (`_bytes`), rates are per second.

use repsim_engine::config::{SyncCommitLevel, SyncStandbyNames};

pub use super::access::{EndpointsSpec, PgpoolLoadBalance, PoolMode, PoolerKind, PoolerSpec};
pub use super::logical::{LogicalSpec, PublicationSpec, SubscriptionSpec};

/// A latency (or service time) distribution, sampled from a named RNG stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Constant {
        value_ns: u64,
    },
    Uniform {
        min_ns: u64,
        max_ns: u64,
    },
    /// Clamped at zero when sampled.
    Normal {
        mean_ns: u64,
        stddev_ns: u64,
    },
    /// Given by its median and 99th percentile (p99 >= p50 > 0). Made by [`Dist::log_normal`],
    /// which derives `mu` and `sigma` once (two logarithms a draw were 1% of a loaded run).
    LogNormal {
        p50_ns: u64,
        p99_ns: u64,
        mu: f64,
        sigma: f64,
    },
    /// Heavy tail: `min * U^(-1/alpha)`, alpha > 0.
    Pareto {
        min_ns: u64,
        alpha: f64,
    },
}

/// z such that P(Z < z) = 0.99 for a standard normal.
const Z_99: f64 = 2.326_347_874;

impl Dist {
    /// The lognormal distribution with median `p50_ns` and 99th percentile `p99_ns`.
    pub fn log_normal(p50_ns: u64, p99_ns: u64) -> Dist {
        let mu = libm::log(p50_ns as f64);
        let sigma = (libm::log(p99_ns as f64) - mu) / Z_99;
        Dist::LogNormal { p50_ns, p99_ns, mu, sigma }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// `name` from the file (used for the report folder).
    pub name: String,
    pub description: String,
    /// Path the scenario was read from, as given on the command line.
    pub source_path: String,
    /// The `--set` overrides applied, in order, as `key=value` text.
    pub overrides: Vec<String>,
    pub duration_ns: u64,
    /// Liveness phase after `duration`: faults healed, nodes restarted, clients stopped.
    pub settle_ns: u64,
    pub cluster: Cluster,
    pub replication: Replication,
    /// One entry per node of `cluster.nodes`, in the same order: `[node]` defaults with the
    /// `[node.NAME]` override applied.
    pub nodes: Vec<NodeSpec>,
    pub network: Network,
    /// One entry per node, in `cluster.nodes` order: `[disk]` defaults with `[disk.NAME]` applied.
    pub disks: Vec<DiskSpec>,
    pub workload: Workload,
    /// Sorted by `at_ns` (stable for equal times: file order).
    pub faults: Vec<Fault>,
    /// `[[faults]] random = { … }`: faults drawn per seed from the `faults` stream; expanded into
    /// concrete ones by `crate::world::nemesis::concrete_faults`. File order.
    pub random_faults: Vec<RandomFaults>,
    /// `[ha]`: a Patroni-style HA manager on every node. `None`: manual failover only.
    pub ha: Option<Ha>,
    /// `[archive]`: the object store `archive_command` uploads to.
    pub archive: ArchiveSpec,
    /// `[pooler]`: PgBouncer or PgPool-II between the clients and the nodes. `None`: clients
    /// connect to the nodes themselves.
    pub pooler: Option<PoolerSpec>,
    /// `[endpoints]`: clients reach a writer and a reader endpoint through DNS. `None`: they
    /// follow the router's view of the primary at once.
    pub endpoints: Option<EndpointsSpec>,
    /// `[[logical.publications]]` and `[[logical.subscriptions]]` (empty: none).
    pub logical: LogicalSpec,
    pub expect: Expect,
}

/// `[archive]`: an object store (S3-like) reached over its own path: each request pays a
/// round trip and `request_cost`, and its bytes at `bandwidth`.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchiveSpec {
    pub latency: Dist,                // one way; default 10ms
    pub bandwidth_bytes_per_sec: u64, // default 100MB/s
    pub request_cost_ns: u64,         // default 0
    /// Archived segments older than this are deleted (Barman / WAL-G retention); default 1h.
    /// WAL a kept base backup needs is never deleted.
    pub retention_ns: u64,
    /// `backup_interval`: a base backup of the primary is taken into the store at 1 s and then
    /// this often (0, the default: only `base_backup` faults take one).
    pub backup_interval_ns: u64,
    /// `keep_backups`: base backups kept (WAL-G `delete retain N`, Barman `REDUNDANCY N`), and
    /// with them the WAL from the oldest one's start on. Default 2.
    pub keep_backups: u32,
}

/// `[ha]`: Patroni's settings and defaults (spec ha-and-routing §1.2), plus the HAProxy health
/// check clients use to find the primary.
#[derive(Clone, Debug, PartialEq)]
pub struct Ha {
    pub ttl_ns: u64,                                   // default 30s
    pub loop_wait_ns: u64,                             // default 10s
    pub retry_timeout_ns: u64,                         // default 10s; loop_wait + 2*retry_timeout <= ttl
    pub maximum_lag_on_failover_bytes: u64,            // default 1MB
    pub synchronous_mode: bool,                        // default false
    pub synchronous_mode_strict: bool,                 // default false
    pub use_pg_rewind: bool,                           // default false
    pub remove_data_directory_on_rewind_failure: bool, // default false
    /// Node indices tagged `nofailover`.
    pub nofailover: Vec<usize>,
    /// `failover_priority` per node (default 1), in `cluster.nodes` order.
    pub failover_priority: Vec<i32>,
    /// HAProxy `inter`: how often clients' proxy checks which node is the primary. Default 3s.
    pub check_interval_ns: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// Node names, in file order. At least one; unique; each `[a-z0-9_-]+`.
    pub nodes: Vec<String>,
    /// Index into `nodes` of the initial primary.
    pub primary: usize,
    /// `spare = ["pg4"]`: nodes whose host is off with an empty disk until an `add_standby`
    /// fault clones them from the primary.
    pub spares: Vec<usize>,
}

/// PostgreSQL settings, PostgreSQL's names and defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct Replication {
    pub synchronous_commit: SyncCommitLevel,         // default on
    pub synchronous_standby_names: SyncStandbyNames, // default '' (empty)
    pub wal_segment_size_bytes: u64,                 // default 16MB; power of two, 1MB..1GB
    pub wal_keep_size_bytes: u64,                    // default 0
    pub max_wal_size_bytes: u64,                     // default 1GB
    pub checkpoint_timeout_ns: u64,                  // default 5min
    pub checkpoint_completion_target: f64,           // default 0.9
    pub wal_writer_delay_ns: u64,                    // default 200ms
    pub wal_writer_flush_after_bytes: u64,           // default 1MB
    pub wal_sender_timeout_ns: u64,                  // default 60s; 0 disables
    pub wal_receiver_timeout_ns: u64,                // default 60s; 0 disables
    pub wal_receiver_status_interval_ns: u64,        // default 10s; 0 disables
    pub wal_retrieve_retry_interval_ns: u64,         // default 5s
    pub recovery_min_apply_delay_ns: u64,
    /// A physical replication slot per standby on the primary (`primary_slot_name`; Patroni's
    /// `use_slots`). Default false, as plain PostgreSQL.
    pub replication_slots: bool,
    /// `full_page_writes` (default on): the first change to a page after a checkpoint logs it.
    pub full_page_writes: bool,
    /// `max_slot_wal_keep_size`; `None` is -1, unlimited (the default).
    pub max_slot_wal_keep_size_bytes: Option<u64>, // default 0
    /// `hot_standby_feedback` (default off): standbys report their oldest snapshot upstream.
    pub hot_standby_feedback: bool,
    /// `max_standby_streaming_delay` (default 30s); `None` is -1, replay waits forever.
    pub max_standby_streaming_delay_ns: Option<u64>,
    /// `archive_mode` (default off): the primary archives every completed WAL segment.
    pub archive_mode: bool,
    /// `archive_timeout` (default 0: off): a primary closes a segment this long after the last
    /// switch if WAL was written meanwhile, so that it is archived.
    pub archive_timeout_ns: u64,
    /// `restore_command` set (default off): a standby that cannot stream restores WAL
    /// segments from the archive.
    pub restore_command: bool,
    /// `sync_replication_slots` (default off; PostgreSQL 17): standbys keep copies of the
    /// primary's failover logical slots. Needs `replication_slots` and `hot_standby_feedback`.
    pub sync_replication_slots: bool,
    /// `synchronized_standby_slots` (default empty): standbys (their physical slots) that must
    /// have flushed WAL before a failover slot's subscriber gets the changes in it.
    pub synchronized_standby_slots: Vec<String>,
    /// `ssl = on` (PostgreSQL's default is off): replication connections are encrypted, at
    /// each node's `ssl_cpu_per_mb` (`world/tls.rs`).
    pub ssl: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    pub name: String,
    pub cpus: u32,                 // default 2, >= 1
    pub statement_cpu_ns: u64,     // default 60us
    pub commit_cpu_ns: u64,        // default 20us
    pub read_cpu_ns: u64,          // default 30us
    pub wal_send_cpu_ns: u64,      // default 10us, per XLogData message
    pub wal_receive_cpu_ns: u64,   // default 10us, per XLogData message
    pub replay_record_cpu_ns: u64, // default 5us
    /// CPU to encrypt or decrypt a MB of replication traffic with `ssl = on`. Default 0.5 ms
    /// (AES-GCM with AES instructions, about 2 GB/s per core through OpenSSL: an assumption).
    pub ssl_cpu_per_mb_ns: u64,
    pub clock_offset_ns: i64, // default 0 ("-5ms" allowed here only)
    pub clock_drift_ppm: f64, // default 0.0
    /// This node's `recovery_min_apply_delay` (a delayed standby); `None`: `[replication]`'s.
    pub recovery_min_apply_delay_ns: Option<u64>,
    /// One-way latency between the clients and this node; `None`: `[network] client_latency`.
    pub client_latency: Option<Dist>,
    /// This standby's upstream, a node name (`primary_conninfo`'s host): another standby for
    /// cascading replication. `None`: the cluster's primary.
    pub primary_conninfo: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub latency: Dist,                // default lognormal p50 0.5ms p99 2ms
    pub bandwidth_bytes_per_sec: u64, // default 1Gbit = 125_000_000
    /// Probability that a message needs a retransmission, 0.0..1.0 exclusive of 1.
    pub loss: f64,
    /// Client <-> node one-way latency. Default constant 0.1ms.
    pub client_latency: Dist,
    /// Per-link overrides (both directions). Unset fields inherit the defaults above.
    pub links: Vec<LinkSpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LinkSpec {
    /// Node indices; a != b.
    pub between: (usize, usize),
    pub latency: Option<Dist>,
    pub bandwidth_bytes_per_sec: Option<u64>,
    pub loss: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DiskSpec {
    pub write: Dist,                  // default constant 20us
    pub fsync: Dist,                  // default lognormal p50 1ms p99 8ms
    pub bandwidth_bytes_per_sec: u64, // default 500MB
    /// On a crash, each unsynced 512-byte sector survives with this probability (torn writes).
    /// Default 0.0: every unsynced byte is lost.
    pub torn_write_probability: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Arrival {
    /// Poisson arrivals at this many operations per second across all clients.
    Open { ops_per_sec: f64 },
    /// Each client waits `think` after a completion before its next operation.
    Closed { think: Dist },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDistribution {
    Uniform,
    /// Zipf with theta 0.99.
    Zipf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    pub clients: u32,                      // default 8, >= 1
    pub arrival: Arrival,                  // default open 1000/s
    pub write_fraction: f64,               // default 0.5, 0..=1
    pub keys: u64,                         // default 1000, >= 1
    pub key_distribution: KeyDistribution, // default uniform
    pub value_size_bytes: u32,             // default 100
    /// Fraction of write transactions that end in ROLLBACK. Default 0.0.
    pub abort_fraction: f64,
    /// How reads are routed. Default `primary`.
    pub router: repsim_engine::client::RouterKind,
    /// `lag_aware`: standbys further behind than this many bytes get no reads. Default 1MB.
    pub delay_threshold_bytes: u64,
    /// `read_your_writes`: how long a standby may wait for replay before the read goes to the
    /// primary. Default 100ms.
    pub read_wait_ns: u64,
    /// `statement_timeout` of the sessions (0: off): a commit still waiting for standbys when
    /// it expires is committed locally, unconfirmed.
    pub statement_timeout_ns: u64,
    /// Sessions that `SET synchronous_commit`: the first `count` sessions use `level`, the
    /// next group the next level, in `SyncCommitLevel::ALL` order; the rest use the server's.
    pub session_synchronous_commit: Vec<(repsim_engine::config::SyncCommitLevel, u32)>,
    /// `pin_after_write`: how long a session's reads stay on the primary after its write.
    /// Default 15s (django-multidb-router's `MULTIDB_PINNING_SECONDS`).
    pub pin_duration_ns: u64,
    /// A client that has waited this long for an answer sends a cancel request (libpq
    /// `PQcancel`); 0: never.
    pub cancel_after_ns: u64,
    /// How long each read query runs from its snapshot (reports and analytics on standbys);
    /// `None`: reads answer at once.
    pub read_duration: Option<Dist>,
}

impl Workload {
    /// Cuts the session groups down to `clients` sessions in all (the shrinker halves clients).
    pub fn fit_session_levels(&mut self) {
        let mut left = self.clients;
        for (_, count) in &mut self.session_synchronous_commit {
            *count = (*count).min(left);
            left -= *count;
        }
        self.session_synchronous_commit.retain(|(_, count)| *count > 0);
    }

    /// `session_synchronous_commit` as an inline table, e.g. `{ off = 8 }`.
    pub fn session_levels_toml(&self) -> String {
        let groups: Vec<String> =
            self.session_synchronous_commit.iter().map(|(level, n)| format!("{} = {n}", level.name())).collect();
        format!("{{ {} }}", groups.join(", "))
    }

    /// The `synchronous_commit` session `session` sets (`None`: the server's).
    pub fn session_level(&self, session: u32) -> Option<repsim_engine::config::SyncCommitLevel> {
        let mut first = 0;
        for &(level, count) in &self.session_synchronous_commit {
            if session < first + count {
                return Some(level);
            }
            first += count;
        }
        None
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub at_ns: u64,
    pub kind: FaultKind,
    /// 1-based line in the scenario file of the `[[faults]]` header, for messages.
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Node crash: memory and unsynced writes are lost.
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    /// `partition = [["pg1"], ["pg2","pg3"]]`: no traffic between the two groups, both ways.
    /// With `one_way = true`, only traffic from the first group to the second is cut.
    Partition {
        a: Vec<usize>,
        b: Vec<usize>,
        one_way: bool,
    },
    /// Heal every partition.
    Heal,
    /// `slow_disk = "pg2"`, `factor = 10.0`, `for = "5s"`: disk latencies multiplied.
    SlowDisk {
        node: usize,
        factor: f64,
        for_ns: u64,
    },
    /// `partition_dcs = "pg1"`: the node cannot reach the DCS (both ways) until `heal`.
    PartitionDcs {
        node: usize,
    },
    /// `kill_dcs = true`: the DCS stops answering until the settle phase.
    KillDcs,
    /// `archive_down = true`, `for = "10min"`: the archive store refuses every request.
    ArchiveDown {
        for_ns: u64,
    },
    /// `pause = "pg1"`, `for = "40s"`: the node (PostgreSQL and its agent) stops processing,
    /// like a long GC or IO stall, then resumes with stale beliefs.
    Pause {
        node: usize,
        for_ns: u64,
    },
    /// `clock_skew = "pg1"`, `by = "-5s"`: the node's clock jumps.
    ClockSkew {
        node: usize,
        by_ns: i64,
    },
    /// `clock_drift = "pg1"`, `ppm = 500.0`: the node's clock runs fast (or slow) from now on.
    ClockDrift {
        node: usize,
        ppm: f64,
    },
    /// `create_logical_slot = "pg1"`, `slot = "cdc"`: an operator (or a CDC tool that then goes
    /// away) creates a logical replication slot that nothing consumes: it holds WAL until it
    /// is dropped or `max_slot_wal_keep_size` invalidates it.
    CreateLogicalSlot {
        node: usize,
        slot: String,
    },
    /// `skip_transaction = "copy"`: `ALTER SUBSCRIPTION copy SKIP (lsn = …)` with the finish
    /// LSN of the transaction its worker last failed on.
    SkipTransaction {
        subscription: String,
    },
    /// `drop_logical_slot = "pg1"`, `slot = "cdc"`: `pg_drop_replication_slot`.
    DropLogicalSlot {
        node: usize,
        slot: String,
    },
    /// `fsync_error = "pg2"`: the node's next fsync fails (EIO). The kernel has dropped the
    /// file's dirty pages (the 2018 "fsyncgate"); PostgreSQL PANICs.
    FsyncError {
        node: usize,
    },
    /// `lose_disk = "pg2"`: the host loses power and its disk is replaced by an empty one. On
    /// restart it is cloned again from the primary (pg_basebackup), as an operator would.
    LoseDisk {
        node: usize,
    },
    /// `promote = "pg2"`: `pg_promote()` by an operator (no HA manager involved).
    Promote {
        node: usize,
    },
    /// `add_standby = "pg4"`: a spare node is cloned from the primary (pg_basebackup -X stream -R)
    /// and starts as its standby.
    AddStandby {
        node: usize,
    },
    /// `base_backup = "pg2"`: a base backup of the node (primary or standby) into the archive
    /// store (`pg_basebackup` piped to WAL-G / Barman).
    BaseBackup {
        node: usize,
    },
    /// `lose_site = ["pg1", "pg2", "pg3"]`: every listed node loses power and its disk at once
    /// (a region or data centre gone).
    LoseSite {
        nodes: Vec<usize>,
    },
    /// `restore = { node = "pg4", target = "latest" }`: an operator restores a spare from the
    /// newest suitable base backup plus archived WAL to the target, then promotes it.
    Restore {
        node: usize,
        target: RestoreTarget,
    },
    /// `switchover = "pg2"`: a planned switchover through the HA manager (`patronictl switchover`).
    Switchover {
        node: usize,
    },
    /// `reset = ["pg1", "pg2"]`: TCP connections between the two nodes are reset.
    Reset {
        a: usize,
        b: usize,
    },
}

/// Where a `restore` stops replaying archived WAL (PostgreSQL's `recovery_target_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreTarget {
    /// `target = "latest"` (the default): all the archive holds.
    Latest,
    /// `target_time = "4m30s"`: simulated time, compared with the writer's commit timestamps.
    TimeNs(u64),
    /// `target_lsn = "0/5000000"`.
    Lsn(u64),
}

/// `[[faults]] random = { rate = "1/10s", kinds = ["crash", "partition"] }`: faults at
/// exponentially distributed gaps, each of a kind and on a node drawn from the `faults` stream,
/// each healing itself by `until` (so before `settle`).
#[derive(Clone, Debug, PartialEq)]
pub struct RandomFaults {
    /// Mean number of faults per second (above zero).
    pub rate_per_sec: f64,
    /// What to draw from (uniformly; a kind listed twice is drawn twice as often). Non-empty.
    pub kinds: Vec<RandomFaultKind>,
    /// Faults start in `from_ns..until_ns` and heal by `until_ns` (`until_ns <= duration`).
    pub from_ns: u64,
    pub until_ns: u64,
    /// Node indices faults are drawn on; default every node. Non-empty, unique.
    pub nodes: Vec<usize>,
    /// How long one fault lasts: a crash's downtime, a partition's length, a slow disk's window.
    /// Default uniform 1s..5s.
    pub lasts: Dist,
    /// Disk latency multiplier of a `slow_disk` fault. Default 10.0, at least 1.
    pub factor: f64,
    /// 1-based line in the scenario file of the `[[faults]]` header, for messages.
    pub line: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomFaultKind {
    /// Crash the drawn node; restart it after the drawn downtime.
    Crash,
    /// Cut the drawn node off from every other node (both ways); heal after the drawn length.
    Partition,
    /// Multiply the drawn node's disk latencies by `factor` for the drawn length.
    SlowDisk,
    /// Reset the TCP connections between the drawn node and another node drawn uniformly.
    Reset,
    /// Pause the drawn node (PostgreSQL and its HA agent) for the drawn length.
    Pause,
    /// Cut the drawn node off from the DCS; heal after the drawn length (nothing without `[ha]`).
    PartitionDcs,
    /// Power loss of the drawn node and of a second node at the same instant (for example the
    /// primary and its synchronous standby); both restart after the drawn downtime.
    DoubleCrash,
    /// The drawn node's next fsync fails (PostgreSQL PANICs); it restarts after the downtime.
    FsyncError,
    /// The drawn node loses power and its disk; it is re-cloned after the drawn downtime.
    LoseDisk,
}

impl RandomFaultKind {
    pub const ALL: [RandomFaultKind; 9] = [
        RandomFaultKind::Crash,
        RandomFaultKind::Partition,
        RandomFaultKind::SlowDisk,
        RandomFaultKind::Reset,
        RandomFaultKind::Pause,
        RandomFaultKind::PartitionDcs,
        RandomFaultKind::DoubleCrash,
        RandomFaultKind::FsyncError,
        RandomFaultKind::LoseDisk,
    ];

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            RandomFaultKind::Crash => "crash",
            RandomFaultKind::Partition => "partition",
            RandomFaultKind::SlowDisk => "slow_disk",
            RandomFaultKind::Reset => "reset",
            RandomFaultKind::Pause => "pause",
            RandomFaultKind::PartitionDcs => "partition_dcs",
            RandomFaultKind::DoubleCrash => "double_crash",
            RandomFaultKind::FsyncError => "fsync_error",
            RandomFaultKind::LoseDisk => "lose_disk",
        }
    }
}

/// `[expect]`: what the CI gate asserts. `None` = not asserted (still reported).
/// `[expect] lost_acked_writes`: a bound on acknowledged writes lost, over every level
/// (`lost_acked_writes = 0`), or per `synchronous_commit` level (`lost_acked_writes = { off =
/// 1000, local = 0 }`), levels not listed unbounded: a loss the level allows is a measurement.
/// A loss the promise did not allow is judged by `acked_writes_durable` whatever this says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LossBound {
    All(u64),
    /// In `SyncCommitLevel::ALL` order.
    PerLevel([Option<u64>; 5]),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub lost_acked_writes: Option<LossBound>,
    pub converged: Option<bool>,
    pub min_commits: Option<u64>,
    pub max_commit_p99_ns: Option<u64>,
    pub max_lag_bytes_p99: Option<u64>,
    pub split_brain_writes: Option<u64>,
    pub max_unavailable_ns: Option<u64>,
    pub min_failovers: Option<u64>,
    /// Assert read-your-writes whatever the router promises.
    pub read_your_writes: Option<bool>,
    /// Assert monotonic reads whatever the router promises.
    pub monotonic_reads: Option<bool>,
    pub max_stale_reads: Option<u64>,
    /// `commits_release`: with enough synchronous standbys connected, no commit waits longer.
    pub max_commit_wait_ns: Option<u64>,
    /// `liveness = false`: the fault plan may leave the cluster unable to recover on its own
    /// (an operator's pg_promote outside the HA manager, every copy of the data lost), so
    /// `converged` is reported but not judged. Safety invariants are judged either way.
    pub liveness: bool,
}
impl Default for Expect {
    fn default() -> Self {
        Expect {
            lost_acked_writes: None,
            converged: None,
            min_commits: None,
            max_commit_p99_ns: None,
            max_lag_bytes_p99: None,
            split_brain_writes: None,
            max_unavailable_ns: None,
            min_failovers: None,
            read_your_writes: None,
            monotonic_reads: None,
            max_stale_reads: None,
            max_commit_wait_ns: None,
            liveness: true,
        }
    }
}
