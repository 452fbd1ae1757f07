//! The nemesis at work: a scheduled fault applied to the world, healing, and the settle phase.

use repsim_engine::{Input, NodeId};

use crate::metrics::{Mark, MarkKind};
use crate::scenario::model::FaultKind;
use crate::world::event::EventKind;
use crate::world::wire::Packet;
use crate::world::World;

impl World {
    pub(crate) fn fault(&mut self, index: usize) {
        let fault = self.scenario.faults[index].clone();
        match fault.kind {
            FaultKind::Crash { node } => self.crash(node as NodeId),
            FaultKind::Restart { node } => self.restart_host(node as NodeId),
            FaultKind::Partition { a, b, one_way } => self.net.partition(&a, &b, one_way),
            FaultKind::Heal => self.heal(),
            FaultKind::SlowDisk { node, factor, for_ns } => {
                self.nodes[node].disk.slow(factor, self.now_ns + for_ns);
            }
            FaultKind::Reset { a, b } => {
                let (a, b) = (a as NodeId, b as NodeId);
                if let Some(d) = self.net.close(self.now_ns, a, b) {
                    self.schedule_arrival(a, b, d, Packet::Reset);
                }
                if self.is_up(a) {
                    self.step_node(a, Input::ConnectionLost { peer: b });
                }
            }
            FaultKind::PartitionDcs { node } => {
                if let Some(dcs) = self.ha.as_ref().map(|h| h.dcs_endpoint as usize) {
                    self.net.partition(&[node], &[dcs], false);
                }
            }
            FaultKind::ArchiveDown { for_ns } => self.archive.take_down(self.now_ns + for_ns),
            FaultKind::KillDcs => {
                if let Some(ha) = self.ha.as_mut() {
                    ha.dcs.up = false;
                }
            }
            FaultKind::Pause { node, for_ns } => {
                let until = self.now_ns + for_ns;
                self.nodes[node].paused_until_ns = until;
                self.pauses_end_ns = self.pauses_end_ns.max(until);
                self.schedule(until, EventKind::Resume { node: node as NodeId });
                let label = format!("{} paused", self.nodes[node].name);
                self.metrics.marks.push(Mark { at_ns: self.now_ns, kind: MarkKind::Note, label });
            }
            FaultKind::ClockSkew { node, by_ns } => self.nodes[node].clock.offset_ns += by_ns,
            FaultKind::ClockDrift { node, ppm } => {
                // Keep the reading continuous: fold the drift so far into the offset.
                let clock = &mut self.nodes[node].clock;
                let reading = clock.local(self.now_ns) as i64;
                clock.drift_ppm = ppm;
                clock.offset_ns = 0;
                clock.offset_ns = reading - clock.local(self.now_ns) as i64;
            }
            FaultKind::Promote { node } => {
                if self.is_up(node as NodeId) {
                    self.nodes[node].promote_by_ha = false;
                    self.step_node(node as NodeId, Input::Admin(repsim_engine::io::Command::Promote));
                }
            }
            FaultKind::AddStandby { node } => self.add_standby(node as NodeId),
            FaultKind::CreateLogicalSlot { node, slot } => {
                if self.is_up(node as NodeId) {
                    let command = repsim_engine::io::Command::CreateLogicalSlot { name: slot, failover: false };
                    self.step_node(node as NodeId, Input::Admin(command));
                }
            }
            FaultKind::SkipTransaction { subscription } => {
                let spec = self.scenario.logical.subscriptions.iter().find(|s| s.name == subscription);
                let node = spec.expect("validated against the subscriptions").node as NodeId;
                if self.is_up(node) {
                    self.step_node(node, Input::Admin(repsim_engine::io::Command::SkipTransaction { subscription }));
                }
            }
            FaultKind::DropLogicalSlot { node, slot } => {
                if self.is_up(node as NodeId) {
                    self.step_node(
                        node as NodeId,
                        Input::Admin(repsim_engine::io::Command::DropLogicalSlot { name: slot }),
                    );
                }
            }
            FaultKind::FsyncError { node } => self.nodes[node].disk.fail_next_fsync(),
            FaultKind::LoseDisk { node } => self.lose_disk(node),
            FaultKind::LoseSite { nodes } => {
                for node in nodes {
                    self.lose_disk(node);
                }
            }
            FaultKind::BaseBackup { node } => self.take_base_backup(node as NodeId),
            FaultKind::Restore { node, target } => self.restore(node as NodeId, target),
            FaultKind::Switchover { node } => {
                // `patronictl switchover` writes the failover key: it fails while the DCS is down.
                let sync_mode = self.scenario.ha.as_ref().is_some_and(|h| h.synchronous_mode);
                if let Some(ha) = self.ha.as_mut().filter(|ha| ha.dcs.up) {
                    let to = self.scenario.cluster.nodes[node].clone();
                    if sync_mode && !ha.dcs.sync_standbys().contains(&to) {
                        // Patroni's `POST /switchover` answers 412: "candidate name does not
                        // match with sync_standby" (patroni/api.py).
                        let refused = format!("switchover to {to} refused: not a synchronous standby");
                        self.ha_log.push((self.now_ns, refused));
                    } else if let Some(from) = ha.dcs.leader(self.now_ns) {
                        ha.dcs.set_switchover(from, to);
                    }
                }
            }
        }
    }

    /// Power loss, and the disk replaced by an empty one.
    fn lose_disk(&mut self, node: usize) {
        self.crash(node as NodeId);
        self.nodes[node].disk.replace_image(Default::default());
        self.nodes[node].max_flushed = Default::default();
        self.nodes[node].disk_replaced = true;
        self.nodes[node].disk_losses_ns.push(self.now_ns);
    }

    pub(crate) fn heal(&mut self) {
        for (from, to, packet, d) in self.net.heal(self.now_ns) {
            self.schedule_arrival(from, to, d, packet);
        }
    }

    /// End of `duration`: clients stop, faults heal, crashed nodes restart, pauses end, the
    /// DCS comes back.
    pub(crate) fn settle(&mut self) {
        self.settling = true;
        self.workload.stopped = true;
        self.workload.backlog.clear();
        self.heal();
        if let Some(ha) = self.ha.as_mut() {
            ha.dcs.up = true;
        }
        for node in 0..self.nodes.len() {
            self.nodes[node].disk.heal();
            if self.nodes[node].paused_until_ns > self.now_ns {
                self.nodes[node].paused_until_ns = self.now_ns;
                self.release_held_events(node as NodeId);
            }
            if self.nodes[node].host_up && !self.has_agent(node as NodeId) {
                self.boot(node as NodeId);
            }
            let never_added = self.scenario.cluster.spares.contains(&node) && self.nodes[node].disk.holds_nothing();
            if !never_added {
                self.restart_host(node as NodeId);
            }
        }
    }
}
