//! The world's side of logical replication (`[[logical.subscriptions]]`): what each
//! subscription's apply worker did (transactions applied, apply lag, stops, conflicts), and
//! the live oracle `logical_exactly_once`: a subscriber that nothing but its subscription
//! writes to can only meet a row it already holds by applying a transaction twice.

use repsim_engine::io::Observation;
use repsim_engine::logical::conflict::{ConflictKind, Resolution};
use repsim_engine::{Lsn, NodeId};

use crate::metrics::Recorder;
use crate::world::World;

/// Apply worker events kept per subscription for the summary.
const MAX_EVENTS: usize = 16;

/// One subscription's run, in `[[logical.subscriptions]]` order (its name and slot are the
/// entry's).
pub struct SubscriptionRun {
    pub node: NodeId,
    pub publisher: NodeId,
    pub applied_transactions: u64,
    /// Subscriber clock at apply less publisher clock at commit (what users compute from
    /// `pg_stat_subscription`, clock skew included; clamped at 0).
    pub apply_lag_ns: Recorder,
    pub conflicts: u64,
    /// Stops that were not conflicts (errors from the publisher, lost connections).
    pub stream_errors: u64,
    pub disabled: bool,
    /// The first stops and publisher changes, as `"<s> s: <text>"`.
    pub events: Vec<String>,
    /// A failover moved the subscription to a primary without a copy of its slot.
    pub slot_missing_after_failover: bool,
    /// `at`: when it was made; when its initial copy committed on the subscriber, and how
    /// many rows it held.
    pub created_at_ns: Option<u64>,
    pub copied_at_ns: Option<u64>,
    pub rows_copied: u64,
    /// After the copy, the first transaction applied within [`CAUGHT_UP_LAG_NS`] of its commit.
    pub caught_up_at_ns: Option<u64>,
    /// Conflicts resolved by policy (`track_commit_timestamp`), by kind and resolution.
    pub resolved_conflicts: Vec<(ConflictKind, Resolution, u64)>,
    /// The last applied transactions: (publisher's end LSN, subscriber's local commit end),
    /// what `promise_audit` judges a synchronous subscription by.
    pub applied_positions: std::collections::VecDeque<(Lsn, Lsn)>,
    /// The publisher's end of the last transaction applied, and the subscriber incarnation
    /// and publisher it was applied by and from (commit order is judged within them).
    last_applied: Option<(Lsn, u64, NodeId)>,
}

/// Applied positions kept per subscription (a commit is audited when released, soon after).
const KEPT_APPLIED_POSITIONS: usize = 4096;

impl SubscriptionRun {
    /// The subscriber holds every transaction of the publisher's through `remote`, durably
    /// once its own WAL is durable through `local`.
    fn note_held(&mut self, remote: Lsn, local: Lsn) {
        self.applied_positions.push_back((remote, local));
        if self.applied_positions.len() > KEPT_APPLIED_POSITIONS {
            self.applied_positions.pop_front();
        }
    }
}

/// An apply lag this small counts as caught up (a cut-over could follow).
pub const CAUGHT_UP_LAG_NS: u64 = 100_000_000;

impl World {
    /// Whether an HA agent runs `node` (a subscriber never has one).
    pub(crate) fn has_agent(&self, node: NodeId) -> bool {
        self.ha.is_some() && !self.nodes[node as usize].subscriber
    }

    pub(crate) fn subscription_runs(scenario: &crate::scenario::model::Scenario) -> Vec<SubscriptionRun> {
        let primary = scenario.cluster.primary;
        let runs = scenario.logical.subscriptions.iter().map(|s| SubscriptionRun {
            node: s.node as NodeId,
            publisher: s.publisher.unwrap_or(primary) as NodeId,
            applied_transactions: 0,
            apply_lag_ns: Recorder::default(),
            conflicts: 0,
            stream_errors: 0,
            disabled: false,
            events: Vec::new(),
            slot_missing_after_failover: false,
            created_at_ns: None,
            copied_at_ns: None,
            rows_copied: 0,
            caught_up_at_ns: None,
            resolved_conflicts: Vec::new(),
            applied_positions: Default::default(),
            last_applied: None,
        });
        runs.collect()
    }

    /// Subscriptions reach the publisher through the address clients use for the primary (a
    /// VIP or HAProxy in front of the cluster): after a failover each subscriber reconnects
    /// to the new primary (`ALTER SUBSCRIPTION … CONNECTION`, or a multi-host connection
    /// string). Whether the new primary holds a copy of the slot decides what follows.
    pub(crate) fn subscriptions_follow(&mut self) {
        let Some(primary) = self.router_primary else { return };
        let now_s = self.now_ns as f64 / 1e9;
        for i in 0..self.subscriptions.len() {
            let run = &self.subscriptions[i];
            let spec = &self.scenario.logical.subscriptions[i];
            let not_made_yet = spec.at_ns.is_some() && run.created_at_ns.is_none();
            // A subscription to another master names that master, not the cluster.
            if run.publisher == primary || not_made_yet || spec.publisher.is_some() {
                continue;
            }
            let spec = &self.scenario.logical.subscriptions[i];
            let (node, name, slot) = (run.node, spec.name.clone(), &spec.slot);
            let engine = self.nodes[primary as usize].engine.as_ref();
            let copy = engine.and_then(|e| e.pg_replication_slots().into_iter().find(|r| &r.slot_name == slot));
            let text = match &copy {
                Some(row) => format!(
                    "{now_s:.3} s: the publisher is now {}, with slot {} confirmed to {}",
                    self.nodes[primary as usize].name, slot, row.confirmed_flush_lsn
                ),
                None => format!(
                    "{now_s:.3} s: the publisher is now {}, which has no slot {}",
                    self.nodes[primary as usize].name, slot
                ),
            };
            let run = &mut self.subscriptions[i];
            run.publisher = primary;
            run.slot_missing_after_failover |= copy.is_none();
            if run.events.len() < MAX_EVENTS {
                run.events.push(text);
            }
            let config = &mut self.nodes[node as usize].config;
            if let Some(s) = config.subscriptions.iter_mut().find(|s| s.name == name) {
                s.publisher = primary;
            }
            if self.nodes[node as usize].engine.is_some() {
                let command = repsim_engine::io::Command::SetPublisher { subscription: name, publisher: primary };
                self.step_node(node, repsim_engine::io::Input::Admin(command));
            }
        }
    }

    /// Every failover so far kept subscription `index` whole (`LogicalSpec::survives_failover_to`)
    /// and found a copy of its slot on the new primary.
    pub(crate) fn survived_failovers(&self, index: usize) -> bool {
        let spec = &self.scenario.logical.subscriptions[index];
        let replication = &self.scenario.replication;
        // A promotion before the subscription was made chose the node it was made on.
        let since_ns = self.subscriptions[index].created_at_ns.unwrap_or(0);
        !self.subscriptions[index].slot_missing_after_failover
            && self.promotions.iter().filter(|p| p.at_ns >= since_ns).all(|p| {
                let promoted = &self.nodes[p.node as usize].name;
                crate::scenario::logical::LogicalSpec::survives_failover_to(spec, replication, promoted)
            })
    }

    /// `CREATE SUBSCRIPTION` at the entry's `at`, on the running publisher: the worker makes
    /// the slot and copies the tables first. It is kept in the subscriber's configuration, so
    /// a subscriber down now creates it when it starts.
    pub(crate) fn create_subscription(&mut self, index: usize) {
        let spec = &self.scenario.logical.subscriptions[index];
        let cluster_primary = self.router_primary.unwrap_or(self.scenario.cluster.primary as NodeId);
        let publisher = spec.publisher.map_or(cluster_primary, |p| p as NodeId);
        let subscription = spec.engine_subscription(publisher);
        let node = spec.node as NodeId;
        let run = &mut self.subscriptions[index];
        run.publisher = publisher;
        run.created_at_ns = Some(self.now_ns);
        self.nodes[node as usize].config.subscriptions.push(subscription.clone());
        if self.nodes[node as usize].engine.is_some() {
            let command = repsim_engine::io::Command::CreateSubscription(Box::new(subscription));
            self.step_node(node, repsim_engine::io::Input::Admin(command));
        }
    }

    /// Whether subscriber `node` holds the transaction ending at `commit_lsn`: applied
    /// (`remote_write`: the worker reports what it applied as written), or applied by a local
    /// commit its disk holds durably (`on`, `remote_apply`: it reports only flushed applies).
    /// Any of the node's subscriptions counts: one may have moved to a new primary since it
    /// confirmed (swarm seed 12502: released by the old primary the instant a promotion
    /// re-pointed it).
    pub(crate) fn subscriber_holds(&self, node: NodeId, commit_lsn: Lsn, durable: bool) -> bool {
        let timeline = self.nodes[node as usize].engine.as_ref().map_or(1, |e| e.timeline());
        let durable_end = self.wal_facts(node, timeline).durable_end;
        self.subscriptions.iter().filter(|r| r.node == node).any(|run| {
            run.applied_positions
                .iter()
                .any(|&(remote, local)| remote >= commit_lsn && (!durable || local.0 <= durable_end))
        })
    }

    /// Subscriber `node` lost power: applies its disk did not keep are gone.
    pub(crate) fn subscriber_lost_power(&mut self, node: NodeId) {
        if !self.subscriptions.iter().any(|r| r.node == node) {
            return;
        }
        let durable_end = self.wal_facts(node, u32::MAX).durable_end;
        for run in self.subscriptions.iter_mut().filter(|r| r.node == node) {
            run.applied_positions.retain(|&(_, local)| local.0 <= durable_end);
        }
    }

    /// An apply worker's observation on subscriber `node`.
    pub(crate) fn observe_subscription(&mut self, node: NodeId, observation: Observation) {
        let now_ns = self.now_ns;
        let specs = &self.scenario.logical.subscriptions;
        let found = match &observation {
            Observation::LogicalApplied { publisher, .. }
            | Observation::LogicalConflict { publisher, .. }
            | Observation::LogicalConfirmed { publisher, .. } => {
                self.subscriptions.iter().position(|r| r.node == node && r.publisher == *publisher)
            }
            Observation::ApplyWorker { subscription, .. } | Observation::InitialCopyDone { subscription, .. } => {
                (0..specs.len()).find(|&i| specs[i].node == node as usize && specs[i].name == *subscription)
            }
            _ => None,
        };
        let Some(index) = found else { return };
        let run = &mut self.subscriptions[index];
        match observation {
            Observation::LogicalConflict { kind, resolution, .. } => {
                match run.resolved_conflicts.iter_mut().find(|(k, r, _)| *k == kind && *r == resolution) {
                    Some((_, _, count)) => *count += 1,
                    None => run.resolved_conflicts.push((kind, resolution, 1)),
                }
            }
            Observation::LogicalApplied {
                publisher,
                remote_end_lsn,
                local_end_lsn,
                commit_timestamp_ns,
                applied_at_ns,
            } => {
                debug_assert_eq!(publisher, run.publisher);
                run.applied_transactions += 1;
                // Commit order: within one incarnation of the subscriber and one publisher, each
                // transaction applied ends after the last (a restart re-applies what its disk
                // lost; a new primary's history may rejoin below the old one's tail).
                let incarnation = self.nodes[node as usize].incarnation;
                let previous = run.last_applied.replace((remote_end_lsn, incarnation, publisher));
                let out_of_order = previous
                    .is_some_and(|(end, inc, from)| inc == incarnation && from == publisher && remote_end_lsn <= end);
                if out_of_order && self.scenario.logical.multi_master.is_none() && self.survived_failovers(index) {
                    let name = &self.nodes[node as usize].name;
                    let subscription = &self.scenario.logical.subscriptions[index].name;
                    let last = previous.map_or(Lsn::INVALID, |(end, _, _)| end);
                    self.live.record("logical_exactly_once", now_ns, || {
                        format!("{name} (subscription {subscription}) applied the transaction ending at {remote_end_lsn} after the one ending at {last}: out of commit order, or twice")
                    });
                }
                let run = &mut self.subscriptions[index];
                // Kept whatever the file says: an HA manager may make any walsender synchronous
                // (`*`), logical ones included.
                run.note_held(remote_end_lsn, local_end_lsn);
                let lag_ns = applied_at_ns.saturating_sub(commit_timestamp_ns);
                run.apply_lag_ns.record(lag_ns);
                if run.copied_at_ns.is_some() && run.caught_up_at_ns.is_none() && lag_ns <= CAUGHT_UP_LAG_NS {
                    run.caught_up_at_ns = Some(now_ns);
                }
            }
            // WAL received past the last applied transaction, confirmed: the commits it held
            // changed nothing published (or nothing a row filter passes), so the subscriber
            // holds them as it holds its applied transactions (a synchronous subscriber
            // releases such commits so).
            Observation::LogicalConfirmed { remote_lsn, local_lsn, .. } => run.note_held(remote_lsn, local_lsn),
            Observation::InitialCopyDone { rows, consistent_point, local_end_lsn, .. } => {
                run.copied_at_ns = Some(now_ns);
                run.rows_copied = rows;
                // The copy holds every commit before its consistent point.
                run.note_held(consistent_point, local_end_lsn);
            }
            Observation::ApplyWorker { text, conflict, .. } => {
                if conflict {
                    run.conflicts += 1;
                } else if text.starts_with("stopped") || text.starts_with("disabled") {
                    run.stream_errors += 1;
                }
                run.disabled |= text.starts_with("disabled");
                if run.events.len() < MAX_EVENTS {
                    run.events.push(format!("{:.3} s: {text}", now_ns as f64 / 1e9));
                }
                // Nothing but the subscription writes to a subscriber here, and a publisher
                // that never failed over, or failed over with the subscription kept whole,
                // sends one history: a row already there was applied before. (Otherwise the
                // new primary may lack what the old one sent.)
                // Masters write too: their conflicts are expected, and resolved by policy.
                let multi_master = self.scenario.logical.multi_master.is_some();
                if conflict && !multi_master && self.survived_failovers(index) {
                    let name = &self.nodes[node as usize].name;
                    let subscription = &self.scenario.logical.subscriptions[index].name;
                    self.live.record("logical_exactly_once", now_ns, || {
                        format!("{name} (subscription {subscription}) met a row it already holds: {text}")
                    });
                }
            }
            _ => {}
        }
    }
}
