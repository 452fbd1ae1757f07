//! What an operator's monitoring queries return, sampled: `pg_stat_replication` on the primary
//! the application uses (with `pg_current_wal_lsn()`), and `pg_stat_wal_receiver` on every
//! standby, `pg_stat_subscription` on every subscriber. Kept once per second (the last sample
//! of each second, so the series grows with the run's seconds, not its events) and at the
//! instants `repsim run --snapshot` asks for.

use repsim_engine::stats::{ReplicationRow, SubscriptionRow, WalReceiverRow};
use repsim_engine::{Lsn, NodeId, Role};

use crate::metrics::BUCKET_NS;
use crate::world::World;

/// The views at one instant.
#[derive(Clone, Debug)]
pub struct MonitoringSample {
    pub at_ns: u64,
    /// The node whose `pg_stat_replication` this is (`None`: it was down).
    pub primary: Option<NodeId>,
    /// Its `pg_current_wal_lsn()`.
    pub current_wal_lsn: Lsn,
    pub replication: Vec<ReplicationRow>,
    /// Every running standby's `pg_stat_wal_receiver` (with its replay position).
    pub receivers: Vec<(NodeId, WalReceiverRow, Lsn)>,
    /// Every running node's `pg_stat_subscription` rows.
    pub subscriptions: Vec<(NodeId, SubscriptionRow)>,
}

impl World {
    fn monitoring_sample(&self, at_ns: u64) -> MonitoringSample {
        let primary = self.router_primary.unwrap_or(self.scenario.cluster.primary as NodeId);
        let engine = self.nodes[primary as usize].engine.as_ref().filter(|e| e.role() == Role::Primary);
        let receivers = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| {
                let e = slot.engine.as_ref()?;
                Some((i as NodeId, e.pg_stat_wal_receiver()?, e.status().replay_lsn))
            })
            .collect();
        let subscriptions = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| Some((i as NodeId, slot.engine.as_ref()?.pg_stat_subscription())))
            .flat_map(|(i, rows)| rows.into_iter().map(move |row| (i, row)))
            .collect();
        MonitoringSample {
            at_ns,
            primary: engine.map(|_| primary),
            current_wal_lsn: engine.map_or(Lsn::INVALID, |e| e.status().insert_lsn),
            replication: engine.map_or_else(Vec::new, |e| e.pg_stat_replication()),
            receivers,
            subscriptions,
        }
    }

    /// The lag sampler's turn: the last sample of each second is kept.
    pub(crate) fn keep_monitoring_sample(&mut self) {
        let sample = self.monitoring_sample(self.now_ns);
        let second = |s: &MonitoringSample| s.at_ns / BUCKET_NS;
        match self.monitoring.last_mut() {
            Some(last) if second(last) == second(&sample) => *last = sample,
            _ => self.monitoring.push(sample),
        }
    }

    /// Takes the snapshots asked for at instants before `before_ns`: the state once every event
    /// up to the instant was handled. Reading state only, so the trace does not change.
    pub(crate) fn take_snapshots_before(&mut self, before_ns: u64) {
        while let Some(&at_ns) = self.snapshot_at_ns.first().filter(|&&at| at < before_ns) {
            self.snapshot_at_ns.remove(0);
            let sample = self.monitoring_sample(at_ns);
            self.snapshots.push(sample);
        }
    }
}
