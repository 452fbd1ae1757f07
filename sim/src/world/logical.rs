//! The world's side of logical replication (`[[logical.subscriptions]]`): what each
//! subscription's apply worker did (transactions applied, apply lag, stops, conflicts), and
//! the live oracle `logical_exactly_once`: a subscriber that nothing but its subscription
//! writes to can only meet a row it already holds by applying a transaction twice.

use repsim_engine::io::Observation;
use repsim_engine::{Lsn, NodeId};

use crate::metrics::Recorder;
use crate::world::World;

/// Apply worker events kept per subscription for the summary.
const MAX_EVENTS: usize = 16;

/// One subscription's run.
pub struct SubscriptionRun {
    pub name: String,
    pub node: NodeId,
    pub publisher: NodeId,
    pub applied_transactions: u64,
    /// The remote end of the last transaction applied (in memory; a crash may lose it).
    pub last_remote_end: Lsn,
    /// Subscriber clock at apply less publisher clock at commit (what users compute from
    /// `pg_stat_subscription`, clock skew included; clamped at 0).
    pub apply_lag_ns: Recorder,
    pub conflicts: u64,
    /// Stops that were not conflicts (errors from the publisher, lost connections).
    pub stream_errors: u64,
    pub disabled: bool,
    /// The first stops, as `"<s> s: <text>"`.
    pub events: Vec<String>,
}

impl World {
    /// Whether an HA agent runs `node` (a subscriber never has one).
    pub(crate) fn has_agent(&self, node: NodeId) -> bool {
        self.ha.is_some() && !self.nodes[node as usize].subscriber
    }

    pub(crate) fn subscription_runs(scenario: &crate::scenario::model::Scenario) -> Vec<SubscriptionRun> {
        let publisher = scenario.cluster.primary as NodeId;
        let runs = scenario.logical.subscriptions.iter().map(|s| SubscriptionRun {
            name: s.name.clone(),
            node: s.node as NodeId,
            publisher,
            applied_transactions: 0,
            last_remote_end: Lsn::INVALID,
            apply_lag_ns: Recorder::default(),
            conflicts: 0,
            stream_errors: 0,
            disabled: false,
            events: Vec::new(),
        });
        runs.collect()
    }

    /// An apply worker's observation on subscriber `node`.
    pub(crate) fn observe_subscription(&mut self, node: NodeId, observation: Observation) {
        let now_ns = self.now_ns;
        let promoted = !self.promotions.is_empty();
        let name = self.nodes[node as usize].name.clone();
        let Some(run) = self.subscriptions.iter_mut().find(|r| r.node == node) else { return };
        match observation {
            Observation::LogicalApplied { publisher, remote_end_lsn, commit_timestamp_ns, applied_at_ns } => {
                debug_assert_eq!(publisher, run.publisher);
                run.applied_transactions += 1;
                run.last_remote_end = remote_end_lsn;
                run.apply_lag_ns.record(applied_at_ns.saturating_sub(commit_timestamp_ns));
            }
            Observation::ApplyWorker { text, conflict, .. } => {
                if conflict {
                    run.conflicts += 1;
                } else {
                    run.stream_errors += 1;
                }
                run.disabled |= text.starts_with("disabled");
                if run.events.len() < MAX_EVENTS {
                    run.events.push(format!("{:.3} s: {text}", now_ns as f64 / 1e9));
                }
                // Nothing but the subscription writes to a subscriber here, and a publisher
                // that never failed over sends one history: a row already there was applied
                // before. (After a failover the new primary may lack what the old one sent.)
                if conflict && !promoted {
                    let subscription = run.name.clone();
                    self.live.record("logical_exactly_once", now_ns, || {
                        format!("{name} (subscription {subscription}) met a row it already holds: {text}")
                    });
                }
            }
            _ => {}
        }
    }
}
