//! Live checks fed as things happen: `commits_release` and the read checker.

use repsim_engine::NodeId;

use crate::check::history::Outcome;
use crate::world::session::InFlight;
use crate::world::workload::Op;
use crate::world::World;

impl World {
    /// `synchronous_standby_names` is satisfied on `node`: as many standbys are `sync` or
    /// `quorum` as it asks for (or it asks for none).
    pub(crate) fn enough_sync_standbys(&self, node: NodeId) -> bool {
        let Some(engine) = self.nodes[node as usize].engine.as_ref() else { return false };
        let names = &engine.config().synchronous_standby_names;
        if names.is_empty() {
            return true;
        }
        let sync = engine.pg_stat_replication().iter().filter(|r| matches!(r.sync_state, "sync" | "quorum")).count();
        sync >= names.num_sync as usize
    }

    /// `commits_release`: a commit that waited past `max_commit_wait` although enough
    /// synchronous standbys were connected when it arrived and when it was released.
    pub(crate) fn check_commit_release(&mut self, node: NodeId, session: u32, op_id: u64, max_wait_ns: u64) {
        let Some(flight) = self.sessions.get(session as usize).and_then(|s| s.current.as_ref()) else { return };
        if flight.planned.op_id != op_id || !flight.sync_ok_at_arrival {
            return;
        }
        let waited_ns = self.now_ns.saturating_sub(flight.arrived_ns);
        if waited_ns > max_wait_ns && self.enough_sync_standbys(node) {
            self.slow_commits += 1;
            if self.slow_commit_example.is_none() {
                self.slow_commit_example = Some(format!(
                    "session {session} op {op_id} waited {:.1} ms on {} from {:.3}s with enough synchronous standbys connected",
                    waited_ns as f64 / 1e6,
                    self.nodes[node as usize].name,
                    flight.arrived_ns as f64 / 1e9
                ));
            }
        }
    }

    /// Feeds the read checker: acknowledged writes, rollbacks, and what each read saw.
    /// Timeline numbers more than one promotion created.
    pub(crate) fn timelines_created_twice(&self) -> Vec<u32> {
        let mut created: Vec<u32> = self.promotions.iter().map(|p| p.timeline).collect();
        created.sort_unstable();
        let mut twice: Vec<u32> = created.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        twice.dedup();
        twice
    }

    pub(crate) fn check_read_or_write(&mut self, session: u32, flight: &InFlight, outcome: &Outcome) {
        match (&flight.planned.op, outcome) {
            (Op::Write { write_id, key, .. }, Outcome::Committed { commit_lsn, timeline, .. }) => {
                // Acknowledged by a primary the application has since left (an operator
                // re-pointed it while the commit was in flight): the write is on the abandoned
                // branch, judged as lost by `acked_writes_durable`, not as a read that missed it.
                let abandoned = self.router_primary.filter(|p| *p != flight.node).is_some_and(|p| {
                    self.nodes[p as usize]
                        .engine
                        .as_ref()
                        .is_some_and(|e| e.store().get(crate::check::history::INSERT_TABLE, *write_id).is_none())
                });
                if !abandoned {
                    self.sessions[session as usize].last_commit = (*timeline, *commit_lsn);
                    self.sessions[session as usize].pinned_until_ns =
                        self.now_ns.saturating_add(self.scenario.workload.pin_duration_ns);
                    self.reads.write_acked(session, *key, *write_id, *commit_lsn, self.now_ns);
                }
                if !self.restores.is_empty() {
                    self.note_write_on(flight.node);
                }
            }
            (Op::Write { write_id, .. }, Outcome::RolledBack) => self.reads.write_rolled_back(*write_id),
            (Op::Read { key }, Outcome::Read { value, read_lsn }) => {
                let node = self.nodes.get(flight.node as usize).map_or("", |s| s.name.as_str());
                self.reads.read(crate::check::reads::Read {
                    session,
                    key: *key,
                    node,
                    invoked_at_ns: flight.planned.intended_ns,
                    completed_at_ns: self.now_ns,
                    value: *value,
                    read_lsn: *read_lsn,
                });
            }
            _ => {}
        }
    }
}

impl World {
    /// The narrow view the end-of-run checker reads (`check::view`).
    pub fn end_state(&self) -> crate::check::view::EndState<'_> {
        use crate::check::view::{EndState, NodeView, SubscriptionView};
        // The agent's last decision: a DCS request that failed is not one (the loop after it
        // decides again from what it last knew).
        let last_ha_event = |name: &str| {
            let prefix = format!("{name}: ");
            self.ha_log
                .iter()
                .rev()
                .filter_map(|(at, text)| text.strip_prefix(prefix.as_str()).map(|t| (*at, t)))
                .find(|(_, text)| !text.starts_with("DCS request"))
        };
        EndState {
            scenario: &self.scenario,
            ha: self.ha.is_some(),
            nodes: self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, slot)| NodeView {
                    name: &slot.name,
                    engine: slot.engine.as_ref(),
                    never_added: !slot.host_up && slot.disk.holds_nothing(),
                    power_losses_ns: &slot.power_losses_ns,
                    cache_losses_ns: &slot.cache_losses_ns,
                    disk_losses_ns: &slot.disk_losses_ns,
                    wal_removed: slot.wal_removed,
                    disk_busy: slot.disk.is_busy(),
                    last_ha_event: last_ha_event(&slot.name).map(|(_, text)| text),
                    last_ha_event_ns: last_ha_event(&slot.name).map(|(at, _)| at),
                    needs_reinit: self
                        .ha
                        .as_ref()
                        .and_then(|h| h.agents[i].as_ref())
                        .is_some_and(|agent| agent.needs_reinit),
                    subscriber: slot.subscriber,
                    apply_delay_pending: slot
                        .engine
                        .as_ref()
                        .and_then(|e| e.apply_delay_until_ns())
                        .is_some_and(|until_ns| until_ns > slot.clock.local(self.now_ns)),
                })
                .collect(),
            router_primary: self.router_primary,
            promoted: self.promotions.iter().map(|p| p.node).collect(),
            timelines_created_twice: self.timelines_created_twice(),
            history: &self.history,
            reads: &self.reads,
            live: &self.live,
            fsync_violations: &self.fsync_violations,
            slow_commits: self.slow_commits,
            slow_commit_example: self.slow_commit_example.as_deref(),
            flush_at_converge_mark: self.flush_at_converge_mark.as_deref().unwrap_or(&[]),
            // A restore still running at the end is not excused: it is judged.
            failed_restore: self
                .restores
                .iter()
                .find(|r| r.promoted_at_ns.is_none() && !r.outcome.is_empty())
                .map(|r| format!("the restore of {} did not promote ({})", r.node, r.outcome)),
            subscriptions: self
                .subscriptions
                .iter()
                .enumerate()
                .map(|(i, r)| SubscriptionView {
                    name: &self.scenario.logical.subscriptions[i].name,
                    node: r.node as usize,
                    conflicts: r.conflicts,
                    disabled: r.disabled,
                    survived_failovers: self.survived_failovers(i),
                    publisher: r.publisher as usize,
                })
                .collect(),
            master_writes: &self.master_writes,
        }
    }
}
