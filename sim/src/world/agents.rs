//! The HA agents at work in the world: their steps, DCS and probe traffic, the DCS watch,
//! HAProxy's checks, starting PostgreSQL, pg_rewind and base backups.

use repsim_engine::basebackup::{clone_image, rewind};
use repsim_engine::config::BootRole;
use repsim_engine::ha::{HaAgent, HaInput, HaOutput, PgAction, PgRole, PgState, StandbyRow};
use repsim_engine::io::{Command, DiskImage, Input};
use repsim_engine::{Instant, NodeId, Role};

use crate::metrics::{Mark, MarkKind};
use crate::world::event::EventKind;
use crate::world::wire::Packet;
use crate::world::World;

/// Bytes on the wire of one agent or DCS message (a small JSON body over HTTP/gRPC).
use crate::world::ha::HaMsg;

impl World {
    /// The local PostgreSQL as its agent sees it.
    fn pg_state(&self, node: NodeId) -> PgState {
        let slot = &self.nodes[node as usize];
        let Some(engine) = slot.engine.as_ref() else {
            return PgState {
                role: PgRole::Stopped,
                timeline: slot.last_timeline,
                wal_position: slot.max_flushed,
                flush: slot.max_flushed,
                upstream: None,
                diverged: false,
                wal_removed: false,
                standbys: Vec::new(),
                synchronous_standby_names: slot.config.synchronous_standby_names.clone(),
                history: Default::default(),
                shutdown_complete: slot.shutdown_complete,
                busy: slot.busy,
            };
        };
        let role = match engine.role() {
            Role::Primary => PgRole::Primary,
            Role::Standby | Role::Recovering => PgRole::Replica,
            Role::Down | Role::Panicked => PgRole::Stopped,
        };
        let flush = engine.flush_lsn();
        let wal_position = if role == PgRole::Primary { flush } else { flush.max(engine.replay_lsn()) };
        let standbys = engine
            .pg_stat_replication()
            .into_iter()
            .map(|row| StandbyRow {
                name: row.application_name,
                streaming: row.state == "streaming",
                sync_state: row.sync_state,
                flush: row.flush_lsn.unwrap_or_default(),
            })
            .collect();
        PgState {
            role,
            timeline: engine.timeline(),
            wal_position,
            flush,
            upstream: engine.config().primary_conninfo,
            // A standby whose upstream removed the WAL it needs is out of service too; the agent
            // tries to rejoin it, and pg_rewind cannot help (see `copy_data`).
            diverged: slot.diverged || slot.wal_removed,
            wal_removed: slot.wal_removed,
            standbys,
            synchronous_standby_names: engine.config().synchronous_standby_names.clone(),
            history: engine.timeline_history().clone(),
            shutdown_complete: slot.shutdown_complete,
            busy: slot.busy,
        }
    }

    /// A host came up: its HA agent starts fresh and runs its first cycle at `at_ns`.
    pub(crate) fn start_agent(&mut self, node: NodeId, at_ns: u64) {
        if self.nodes[node as usize].subscriber {
            return;
        }
        let Some(ha) = self.ha.as_mut() else { return };
        let config = ha.agent_config(&self.scenario.cluster.nodes, node as usize);
        ha.agents[node as usize] = Some(HaAgent::new(config));
        let incarnation = ha.agent_incarnation[node as usize];
        self.schedule(at_ns, EventKind::HaTick { node, incarnation });
    }

    /// Feeds one input to a node's agent and carries out what it asks.
    pub(crate) fn ha_step(&mut self, node: NodeId, input: HaInput) {
        let pg = self.pg_state(node);
        let local = Instant(self.nodes[node as usize].clock.local(self.now_ns));
        let Some(ha) = self.ha.as_mut() else { return };
        let Some(agent) = ha.agents[node as usize].as_mut() else { return };
        let mut out = Vec::new();
        agent.step(local, input, &pg, &mut out);
        for output in out {
            self.ha_apply(node, output);
        }
    }

    fn ha_apply(&mut self, node: NodeId, output: HaOutput) {
        match output {
            HaOutput::Dcs { request, op } => {
                let dcs = self.ha.as_ref().expect("ha").dcs_endpoint;
                self.send_ha(node, dcs, HaMsg::DcsRequest { request, op });
            }
            HaOutput::Probe { request, to } => self.send_ha(node, to, HaMsg::Probe { request }),
            HaOutput::SetTimer { at } => {
                let at_ns = self.nodes[node as usize].clock.true_time(at.0).max(self.now_ns);
                let incarnation = self.ha.as_ref().expect("ha").agent_incarnation[node as usize];
                self.schedule(at_ns, EventKind::HaTick { node, incarnation });
            }
            HaOutput::Pg(action) => self.pg_action(node, action),
            HaOutput::Event(text) => {
                let label = format!("{}: {text}", self.nodes[node as usize].name);
                self.trace.note(self.now_ns, &label);
                self.ha_log.push((self.now_ns, label));
            }
        }
    }

    pub(crate) fn send_ha(&mut self, from: NodeId, to: NodeId, msg: HaMsg) {
        if let Some((d, packet)) = self.net.send_fresh(self.now_ns, from, to, Packet::Ha(Box::new(msg))) {
            self.schedule(
                d.at_ns.max(self.now_ns),
                EventKind::Arrive { from, to, epoch: d.epoch, packet, buffered: false },
            );
        }
    }

    /// An HA message arrived at `to` (a node's agent, or the DCS).
    pub(crate) fn ha_arrive(&mut self, from: NodeId, to: NodeId, msg: HaMsg) {
        let Some(ha) = self.ha.as_mut() else { return };
        if to == ha.dcs_endpoint {
            if !ha.dcs.up {
                return;
            }
            let HaMsg::DcsRequest { request, op } = msg else { return };
            let name = self.nodes[from as usize].name.clone();
            let result = ha.dcs.apply(self.now_ns, &name, op);
            let expiry = ha.dcs.leader_expiry_ns();
            let dcs = ha.dcs_endpoint;
            self.send_ha(dcs, from, HaMsg::DcsReply { request, result });
            if let Some(at) = expiry {
                self.schedule(at.max(self.now_ns), EventKind::DcsExpiry);
            }
            self.dcs_watch();
            return;
        }
        if ha.agents[to as usize].is_none() || self.is_paused(to) {
            return;
        }
        match msg {
            HaMsg::DcsReply { request, result } => self.ha_step(to, HaInput::DcsReply { request, result }),
            HaMsg::Watch => self.ha_step(to, HaInput::LeaderChanged),
            HaMsg::Probe { request } => {
                let pg = self.pg_state(to);
                let Some(agent) = self.ha.as_ref().and_then(|h| h.agents[to as usize].as_ref()) else { return };
                let state = agent.member_state(&pg);
                self.send_ha(to, from, HaMsg::ProbeReply { request, state });
            }
            HaMsg::ProbeReply { request, state } => self.ha_step(to, HaInput::ProbeReply { request, state }),
            HaMsg::DcsRequest { .. } => {}
        }
    }

    /// The DCS watch: tell every agent when the leader key changed or expired.
    pub(crate) fn dcs_watch(&mut self) {
        let Some(ha) = self.ha.as_mut() else { return };
        if !ha.dcs.up || !ha.dcs.leader_changed(self.now_ns) {
            return;
        }
        let dcs = ha.dcs_endpoint;
        for node in 0..self.nodes.len() as NodeId {
            self.send_ha(dcs, node, HaMsg::Watch);
        }
    }

    fn pg_action(&mut self, node: NodeId, action: PgAction) {
        let name = self.nodes[node as usize].name.clone();
        match action {
            PgAction::StartPrimary => self.start_pg(node, BootRole::Primary, None),
            PgAction::StartStandby { upstream } => self.start_pg(node, BootRole::Standby, upstream),
            PgAction::Promote => {
                self.metrics.marks.push(Mark {
                    at_ns: self.now_ns,
                    kind: MarkKind::Note,
                    label: format!("promote {name}"),
                });
                self.nodes[node as usize].promote_by_ha = true;
                self.admin(node, Command::Promote);
            }
            PgAction::Demote { upstream } => {
                self.metrics.marks.push(Mark {
                    at_ns: self.now_ns,
                    kind: MarkKind::RoleChange,
                    label: format!("demote {name}"),
                });
                self.stop_pg(node);
                self.start_pg(node, BootRole::Standby, upstream);
            }
            PgAction::Follow { upstream } => {
                self.nodes[node as usize].config.primary_conninfo = Some(upstream);
                self.admin(node, Command::Follow { upstream });
            }
            PgAction::SetSyncStandbyNames(names) => {
                self.nodes[node as usize].config.synchronous_standby_names = names.clone();
                self.admin(node, Command::SetSyncStandbyNames(names));
            }
            PgAction::GracefulStop => self.admin(node, Command::Shutdown),
            PgAction::Rewind { source } => self.copy_data(node, source, true),
            PgAction::Reinit { source } => self.copy_data(node, source, false),
        }
    }

    fn admin(&mut self, node: NodeId, command: Command) {
        if self.nodes[node as usize].engine.is_some() {
            self.step_node(node, Input::Admin(command));
        }
    }

    /// Boots PostgreSQL on a host that is up, from its disk, in the given role.
    pub(crate) fn start_pg(&mut self, node: NodeId, role: BootRole, upstream: Option<NodeId>) {
        let slot = &mut self.nodes[node as usize];
        if slot.engine.is_some() || !slot.host_up || slot.busy {
            return;
        }
        slot.config.boot_role = role;
        slot.config.primary_conninfo = if role == BootRole::Standby { upstream } else { None };
        self.boot(node);
    }

    /// pg_basebackup from `source` (a new standby, or a re-clone).
    pub(crate) fn clone_from(&mut self, node: NodeId, source: NodeId) {
        self.copy_data(node, source, false);
    }

    /// pg_rewind (`rewind`) or pg_basebackup from `source`, then start as its standby. The copy
    /// takes the bytes it moves over the link between the two nodes.
    fn copy_data(&mut self, node: NodeId, source: NodeId, rewind_first: bool) {
        let Some(source_engine) = self.nodes[source as usize].engine.as_ref() else { return };
        let source_history = source_engine.timeline_history().clone();
        let source_image = self.nodes[source as usize].disk.durable_image();
        let target_timeline = self.pg_state(node).timeline;
        self.stop_pg(node);
        let target_image = self.nodes[node as usize].disk.durable_image();
        let segment = self.scenario.replication.wal_segment_size_bytes;
        let name = self.nodes[node as usize].name.clone();
        let wal_removed = self.nodes[node as usize].wal_removed;
        let copy = if rewind_first {
            let attempt = if wal_removed {
                Err("the upstream removed WAL this standby needs; pg_rewind cannot help".to_string())
            } else {
                rewind(&target_image, target_timeline, &source_image, &source_history, segment)
                    .map_err(|e| e.to_string())
            };
            match attempt {
                Ok(copy) => copy,
                Err(error) => {
                    self.ha_log.push((self.now_ns, format!("{name}: pg_rewind failed: {error}")));
                    let allowed = self.ha.as_ref().is_some_and(|h| h.spec.remove_data_directory_on_rewind_failure);
                    let mut out = Vec::new();
                    if let Some(agent) = self.ha.as_mut().and_then(|h| h.agents[node as usize].as_mut()) {
                        agent.rewind_failed(&mut out);
                    }
                    for output in out {
                        self.ha_apply(node, output);
                    }
                    if allowed {
                        return self.copy_data(node, source, false);
                    }
                    return;
                }
            }
        } else {
            clone_image(&source_image)
        };
        let kind = if rewind_first { "pg_rewind" } else { "re-clone" };
        self.metrics.marks.push(Mark {
            at_ns: self.now_ns,
            kind: MarkKind::RoleChange,
            label: format!("{kind} {name}"),
        });
        let transfer_ns =
            crate::world::dist::transfer_ns(copy.copied_bytes, self.scenario.network.bandwidth_bytes_per_sec);
        let slot = &mut self.nodes[node as usize];
        slot.busy = true;
        let incarnation = slot.incarnation;
        let at = self.now_ns + transfer_ns + 10_000_000;
        self.schedule(at, EventKind::DataCopied { node, incarnation, image: Box::new(copy.image), upstream: source });
    }

    /// A rewind or clone finished: the node's data directory is the copy; start as a standby.
    pub(crate) fn data_copied(&mut self, node: NodeId, image: DiskImage, upstream: NodeId) {
        let slot = &mut self.nodes[node as usize];
        slot.busy = false;
        slot.disk_replaced = false;
        slot.disk.replace_image(image);
        slot.max_flushed = Default::default();
        slot.diverged = false;
        self.start_pg(node, BootRole::Standby, Some(upstream));
    }

    /// HAProxy's health check (`GET /primary` on every node, every `check_interval`): the
    /// node that runs as primary and holds the leader key.
    pub(crate) fn proxy_check(&mut self) {
        let Some(ha) = self.ha.as_ref() else { return };
        let interval = ha.spec.check_interval_ns;
        let mut healthy = None;
        for (i, slot) in self.nodes.iter().enumerate() {
            let Some(engine) = slot.engine.as_ref() else { continue };
            let local = Instant(slot.clock.local(self.now_ns));
            let leader = ha.agents[i].as_ref().is_some_and(|a| a.is_leader(local));
            if engine.role() == Role::Primary && leader && !self.is_paused(i as NodeId) && !slot.shutdown_complete {
                healthy = Some(i as NodeId);
                break;
            }
        }
        self.router_primary = healthy;
        self.endpoint_follow();
        self.subscriptions_follow();
        if self.now_ns + interval <= self.end_ns {
            self.schedule(self.now_ns + interval, EventKind::ProxyCheck);
        }
    }
}
