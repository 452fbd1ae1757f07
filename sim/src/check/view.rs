//! The narrow view through which the end-of-run checker reads the world: each node's name and
//! running engine, the primaries, the history and the live findings. The world builds it
//! (`World::end_state`); nothing in `check/` reads the world's internals.

use repsim_engine::{Node, NodeId, Role};

use crate::check::history::History;
use crate::check::reads::ReadChecker;
use crate::scenario::Scenario;

pub struct NodeView<'a> {
    pub name: &'a str,
    /// The running PostgreSQL, if any.
    pub engine: Option<&'a Node>,
    /// A spare that was never added (no host, empty disk): not expected to converge.
    pub never_added: bool,
    /// When the host lost power, and when it lost its disk.
    pub power_losses_ns: &'a [u64],
    /// Failed fsyncs: the file's unsynced bytes were dropped.
    pub cache_losses_ns: &'a [u64],
    pub disk_losses_ns: &'a [u64],
    /// Its upstream refused it: "requested WAL segment has already been removed".
    pub wal_removed: bool,
    /// Its disk still has an operation queued at the end.
    pub disk_busy: bool,
    /// The last thing its HA agent decided, if it has one (failed DCS requests skipped), and
    /// when.
    pub last_ha_event: Option<&'a str>,
    pub last_ha_event_ns: Option<u64>,
    /// Its HA agent found it diverged and may neither rewind nor re-clone it.
    pub needs_reinit: bool,
    /// A logical subscriber, outside the physical cluster: judged by the `logical_*`
    /// invariants only.
    pub subscriber: bool,
    /// `recovery_min_apply_delay` holds its replay at a commit not yet due on its clock.
    pub apply_delay_pending: bool,
}

pub struct EndState<'a> {
    pub scenario: &'a Scenario,
    /// An HA manager runs (`[ha]`).
    pub ha: bool,
    pub nodes: Vec<NodeView<'a>>,
    /// Where clients were sent last.
    pub router_primary: Option<NodeId>,
    /// The nodes promoted during the run, in order.
    pub promoted: Vec<NodeId>,
    /// Timeline numbers two promotions created (no shared archive told the second promotion
    /// about the first): copies of their bytes need not agree (spec I1.2, I1.4).
    pub timelines_created_twice: Vec<u32>,
    pub history: &'a History,
    pub reads: &'a ReadChecker,
    /// What the live oracles found.
    pub live: &'a crate::check::oracle::LiveFindings,
    /// `durable_fsync` violations found as they happened.
    pub fsync_violations: &'a [String],
    /// `commits_release`: commits that waited too long, and the first of them.
    pub slow_commits: u64,
    pub slow_commit_example: Option<&'a str>,
    /// Each node's flush position shortly before the end (`World::converge_mark_ns`; empty if
    /// the run was too short to take it).
    pub flush_at_converge_mark: &'a [Option<repsim_engine::Lsn>],
    /// A `restore` that never promoted, and why (no backup fits, FATAL short of its target).
    pub failed_restore: Option<String>,
    /// `[[logical.subscriptions]]`, in file order.
    pub subscriptions: Vec<SubscriptionView<'a>>,
    /// `[multi_master]`: the register writes the masters' clients saw acknowledged.
    pub master_writes: &'a crate::check::master_writes::MasterWrites,
}

/// What a subscription's apply worker did, as far as the end-of-run checks need it.
pub struct SubscriptionView<'a> {
    pub name: &'a str,
    /// The subscriber's index in `nodes`.
    pub node: usize,
    /// Changes that violated a constraint on the subscriber (each stopped the worker).
    pub conflicts: u64,
    /// `disable_on_error` disabled it.
    pub disabled: bool,
    /// Every failover of its publisher kept it whole: a failover slot, copied to the
    /// promoted standby, which the walsender waited for (`LogicalSpec::survives_failover_to`).
    pub survived_failovers: bool,
    /// The node its connection names at the end (the clients' primary when it last moved).
    pub publisher: usize,
}

impl EndState<'_> {
    fn is_primary(&self, i: usize) -> bool {
        !self.nodes[i].subscriber && self.nodes[i].engine.is_some_and(|e| e.role() == Role::Primary)
    }

    /// Whether node `i` is in the physical cluster (not a subscriber or another master).
    pub fn is_physical(&self, i: usize) -> bool {
        !self.nodes[i].subscriber
    }

    /// The nodes of the physical cluster (every node but the logical subscribers), with
    /// their indices.
    pub fn physical(&self) -> impl Iterator<Item = (usize, &NodeView<'_>)> + '_ {
        self.nodes.iter().enumerate().filter(|(_, n)| !n.subscriber)
    }

    /// The primary the cluster converged on: the one clients are routed to, else any node
    /// running as primary (the most recently promoted first).
    pub fn final_primary(&self) -> Option<usize> {
        if let Some(node) = self.router_primary.map(|n| n as usize).filter(|&n| self.is_primary(n)) {
            return Some(node);
        }
        if let Some(p) = self.promoted.iter().rev().map(|&n| n as usize).find(|&n| self.is_primary(n)) {
            return Some(p);
        }
        (0..self.nodes.len()).find(|&i| self.is_primary(i))
    }
}
