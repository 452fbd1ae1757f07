//! Hosting the nodes: feeding a node its inputs and carrying out its outputs, and each
//! host's life: boot, PostgreSQL stop, power loss, restart, adding a spare.

use repsim_engine::io::{ComputeTask, Observation, Reply, Request};
use repsim_engine::message::Message;
use repsim_engine::pitr::RecoveryTarget;
use repsim_engine::wal::record::RowChange;
use repsim_engine::{Input, Instant, Node, NodeId, Output};

use crate::check::history::Outcome;
use crate::metrics::{Mark, MarkKind};
use crate::world::cpu::{Cpu, Lane};
use crate::world::disk::DiskOp;
use crate::world::event::EventKind;
use crate::world::net::Delivery;
use crate::world::tls::tls_cpu_ns;
use crate::world::wire::Packet;
use crate::world::{Promotion, World};

/// How long after a PANIC PostgreSQL is started again without an HA manager: systemd's
/// default `RestartSec` is 100 ms; a second covers the postmaster's own crash handling.
pub const RESTART_AFTER_PANIC_NS: u64 = 1_000_000_000;

/// Logical slot events kept for the summary.
pub const MAX_SLOT_EVENTS: usize = 64;
impl World {
    /// Accumulates the time during which two or more nodes ran as primary.
    pub(crate) fn track_primaries(&mut self) {
        let primaries = self
            .nodes
            .iter()
            .filter(|s| !s.subscriber && s.engine.as_ref().is_some_and(|e| e.role() == repsim_engine::Role::Primary))
            .count();
        match (primaries >= 2, self.dual_primary_since_ns) {
            (true, None) => self.dual_primary_since_ns = Some(self.now_ns),
            (false, Some(since)) => {
                self.dual_primary_ns += self.now_ns - since;
                self.dual_primary_since_ns = None;
            }
            _ => {}
        }
    }

    pub(crate) fn is_up(&self, node: NodeId) -> bool {
        self.nodes[node as usize].engine.is_some()
    }

    /// Feeds one input to a node and carries out what it asks.
    pub(crate) fn step_node(&mut self, node: NodeId, input: Input) {
        let slot = &self.nodes[node as usize];
        if slot.engine.is_none() {
            return;
        }
        let local = Instant(slot.clock.local(self.now_ns));
        let incarnation = slot.incarnation;
        if let Input::Client { client, op_id, request: Request::Write { changes, commit: true, .. } } = &input {
            let ids = changes.iter().filter_map(RowChange::write_id);
            self.waiting_writes.arrived(client.0 as u32, *op_id, node, incarnation, ids, self.now_ns);
        }
        let engine = self.nodes[node as usize].engine.as_mut().expect("checked above");
        let mut out = std::mem::take(&mut self.out_buf);
        let role_before = engine.role();
        engine.step(local, input, &mut out);
        self.roles_changed |= engine.role() != role_before;
        for output in out.drain(..) {
            if self.nodes[node as usize].incarnation != incarnation {
                break; // the node went down (PANIC) part-way through its outputs
            }
            self.apply(node, output);
        }
        out.clear();
        self.out_buf = out;
    }

    pub(crate) fn apply(&mut self, node: NodeId, output: Output) {
        let incarnation = self.nodes[node as usize].incarnation;
        match output {
            Output::Send { to, msg } => {
                if matches!(msg, Message::StatusUpdate { .. } | Message::XLogData { .. }) {
                    self.audit_send(node, &msg);
                }
                let cost = self.message_cpu_ns(node, &msg, self.scenario.nodes[node as usize].wal_send_cpu_ns);
                let depart = self.nodes[node as usize].cpu.lane(Lane::Sender(to), self.now_ns, cost);
                if let Some((d, packet)) = self.net.send(depart, node, to, Packet::Msg(msg)) {
                    self.schedule_arrival(node, to, d, packet);
                }
            }
            Output::Disconnect { peer } => {
                if let Some(d) = self.net.close(self.now_ns, node, peer) {
                    self.schedule_arrival(node, peer, d, Packet::Reset);
                }
            }
            Output::SetTimer { id, at } => {
                let slot = &mut self.nodes[node as usize];
                let at_ns = slot.clock.true_time(at.0).max(self.now_ns);
                let state = slot.timers.entry(id).or_default();
                state.generation += 1;
                state.due_ns = at_ns;
                // The queued event fires first and moves itself to `due_ns` (see `timer_fired`).
                if state.queued.is_none_or(|(queued_ns, _)| at_ns < queued_ns) {
                    let generation = state.generation;
                    state.queued = Some((at_ns, generation));
                    self.schedule(at_ns, EventKind::Timer { node, incarnation, id, generation });
                }
            }
            Output::Write { io, file, offset, bytes, cost_bytes } => {
                let op = DiskOp::Write { file, offset, bytes, cost_bytes };
                let done = self.nodes[node as usize].disk.submit(self.now_ns, op);
                self.schedule(done, EventKind::DiskDone { node, incarnation, io });
            }
            Output::Fsync { io, file } => {
                let done = self.nodes[node as usize].disk.submit(self.now_ns, DiskOp::Fsync { file });
                self.schedule(done, EventKind::DiskDone { node, incarnation, io });
            }
            Output::Truncate { file, len } => self.nodes[node as usize].disk.truncate(file, len),
            Output::Remove { file } => {
                self.audit_wal_removal(node, file);
                self.nodes[node as usize].disk.remove(file)
            }
            Output::ArchiveSegment { file } => self.run_archive_command(node, file),
            Output::RestoreSegment { file, timelines } => self.run_restore_command(node, file, &timelines),
            Output::Compute(task) => {
                let spec = &self.scenario.nodes[node as usize];
                let records = match task {
                    ComputeTask::Recovery { records } | ComputeTask::Replay { records } => records,
                };
                let cost = records * spec.replay_record_cpu_ns;
                let done = self.nodes[node as usize].cpu.lane(Lane::Startup, self.now_ns, cost);
                self.schedule(done, EventKind::Input { node, incarnation, input: Input::ComputeDone(task) });
            }
            Output::Reply { client, op_id, reply } => {
                self.audit_visibility(node, client.0 as u32, &reply);
                if let Reply::Error { kind: repsim_engine::io::ErrorKind::RecoveryConflict, .. } = reply {
                    self.metrics.standby_queries_cancelled += 1;
                }
                if let Reply::Committed { commit_lsn, promise } = &reply {
                    self.audit_commit(node, client.0 as u32, *commit_lsn, promise);
                }
                if let (Reply::Committed { .. }, Some(max_wait)) = (&reply, self.scenario.expect.max_commit_wait_ns) {
                    self.check_commit_release(node, client.0 as u32, op_id, max_wait);
                }
                let at = self.now_ns + self.net.sample_client_latency(Some(node));
                let timeline = self.nodes[node as usize].engine.as_ref().map_or(0, |e| e.timeline());
                let commit_lsn = match &reply {
                    Reply::Committed { commit_lsn, .. } => Some(*commit_lsn),
                    _ => None,
                };
                // A commit past a fork point another node already took: on a dead branch.
                let split_brain = commit_lsn.is_some_and(|lsn| {
                    self.promotions.iter().any(|p| p.from_timeline == timeline && p.node != node && lsn > p.switch)
                });
                let outcome = Outcome::from_reply(reply, split_brain, self.now_ns, timeline);
                self.schedule(at, EventKind::ReplyArrives { session: client.0 as u32, op_id, outcome });
            }
            Output::Observe(observation) => self.observe(node, observation),
        }
    }

    pub(crate) fn schedule_arrival(&mut self, from: NodeId, to: NodeId, d: Delivery, packet: Packet) {
        self.schedule(
            d.at_ns.max(self.now_ns),
            EventKind::Arrive { from, to, epoch: d.epoch, packet, buffered: false },
        );
    }

    pub(crate) fn arrive(&mut self, from: NodeId, to: NodeId, epoch: u64, packet: Packet, buffered: bool) {
        let to_dcs = self.ha.as_ref().is_some_and(|h| h.dcs_endpoint == to);
        // Buffered data is read unless the receiver itself has moved to another connection.
        let open = match (&packet, buffered) {
            // A reset announces a newer connection: it is read whenever the receiver has not
            // moved past the connection it closes (held while the receiver was paused, or the
            // first of two closes in a row: swarm seed 15652, both FINs of a promoted node's
            // two streams were dropped and the old primary never learnt it had to reconnect).
            (Packet::Reset, _) => self.net.receiver_not_past(from, to, epoch),
            (_, true) => self.net.receiver_on(from, to, epoch),
            _ => self.net.accepts(from, to, epoch),
        };
        if !open || (!to_dcs && !self.nodes[to as usize].host_up) {
            return;
        }
        if let Packet::Ha(msg) = packet {
            return self.ha_arrive(from, to, *msg);
        }
        if !self.is_up(to) {
            return;
        }
        let incarnation = self.nodes[to as usize].incarnation;
        // The first packet of a connection the sender opened after closing the old one (whose
        // FIN may still be on its way, behind the old one's data): the old one is gone.
        if matches!(packet, Packet::Msg(_)) && self.net.opens_new_connection(from, to, epoch) {
            self.net.learn_reset(from, to, epoch);
            self.step_node(to, Input::ConnectionLost { peer: from });
            if !self.is_up(to) || self.nodes[to as usize].incarnation != incarnation {
                return;
            }
        }
        let (cost, input) = match packet {
            Packet::Ha(_) => unreachable!("handled above"),
            Packet::Reset => {
                // A FIN comes on the connection it closes: the connection to use now is the
                // pair's current one.
                self.net.learn_reset(from, to, epoch.max(self.net.current_epoch(from, to)));
                (0, Input::ConnectionLost { peer: from })
            }
            Packet::Msg(msg) => {
                let receive_ns = self.message_cpu_ns(to, &msg, self.scenario.nodes[to as usize].wal_receive_cpu_ns);
                let cost = receive_ns + self.apply_cpu_ns(to, &msg);
                (cost, Input::Message { from, msg })
            }
        };
        // One process per connection handles its messages in order (walsender, walreceiver).
        let at = self.nodes[to as usize].cpu.lane(Lane::Connection(from), self.now_ns, cost);
        if at == self.now_ns {
            self.step_node(to, input);
        } else {
            self.schedule(at, EventKind::Received { from, node: to, epoch, incarnation, input });
        }
    }

    /// What an apply worker (or a trigger subscription's loader) spends applying `msg`: each
    /// change half a statement (the executor's insert or update and its index entries, with no
    /// parse or plan), and a commit. One process per subscription applies in order, so a
    /// publisher with many writers can outrun it, as PostgreSQL's single apply worker.
    fn apply_cpu_ns(&self, node: NodeId, msg: &Message) -> u64 {
        let spec = &self.scenario.nodes[node as usize];
        let changes = match msg {
            Message::LogicalTxn { txn, .. } => txn.changes.len(),
            Message::ChangeBatch { rows, .. } if !rows.is_empty() => rows.len(),
            _ => return 0,
        };
        changes as u64 * spec.statement_cpu_ns / 2 + spec.commit_cpu_ns
    }

    /// The CPU one end of a replication connection spends on `msg`: `xlogdata_ns` for an
    /// XLogData message, and its TLS work (`world/tls.rs`).
    fn message_cpu_ns(&mut self, node: NodeId, msg: &Message, xlogdata_ns: u64) -> u64 {
        let per_mb_ns = self.scenario.nodes[node as usize].ssl_cpu_per_mb_ns;
        let tls_ns = tls_cpu_ns(self.scenario.replication.ssl, per_mb_ns, msg);
        self.tls_cpu_ns += tls_ns;
        tls_ns + if matches!(msg, Message::XLogData { .. }) { xlogdata_ns } else { 0 }
    }

    /// A message the connection's process read after the CPU it took (decryption, parsing): it
    /// is handled if the process still reads that connection. One that opened another since
    /// has closed the old socket, and its data with it (swarm seed 496: with 10 ms a MB of
    /// TLS, a walreceiver that had reconnected from an earlier position was handed XLogData of
    /// the old stream, past a gap). Data queued before a reset that arrived meanwhile is
    /// dropped too (the reset is learnt on arrival): the stream resends it.
    pub(crate) fn received(&mut self, from: NodeId, node: NodeId, epoch: u64, input: Input) {
        let reset = matches!(input, Input::ConnectionLost { .. });
        if reset || self.net.receiver_on(from, node, epoch) {
            self.step_node(node, input);
        }
    }

    pub(crate) fn observe(&mut self, node: NodeId, observation: Observation) {
        let slot = &mut self.nodes[node as usize];
        match observation {
            Observation::Flushed { lsn } => slot.max_flushed = slot.max_flushed.max(lsn),
            // A standby may have flushed part of a record; recovery ends at the last whole one.
            // What the disk kept was judged at boot (`boot`); from here the node's flushed
            // WAL is what it recovered.
            Observation::Recovered { end, .. } => {
                slot.max_flushed = end;
                // Torn sectors can keep bytes past a hole: the WAL a crash lost is what
                // recovery did not find valid, not the length of the file.
                if let Some(lost) = self.lost_wal.iter_mut().rev().find(|l| l.node == node) {
                    lost.end = lost.end.min(end.0);
                }
            }
            Observation::Promoted { timeline, switch } => {
                // A time or LSN target stops replay short of the WAL on disk, by design.
                let stopped_at = match self.nodes[node as usize].config.recovery_target {
                    Some(RecoveryTarget::TimeNs(_) | RecoveryTarget::Lsn(_)) => Some(switch),
                    _ => None,
                };
                // The signal files are gone: a restart recovers as a primary (PostgreSQL removes
                // standby.signal / recovery.signal at the end of recovery).
                let config = &mut self.nodes[node as usize].config;
                config.recovery_target = None;
                config.boot_role = repsim_engine::config::BootRole::Primary;
                config.primary_conninfo = None;
                // The new timeline's history file goes to the archive with the promotion.
                if let Some(engine) =
                    self.nodes[node as usize].engine.as_ref().filter(|_| self.scenario.replication.archive_mode)
                {
                    let history = engine.timeline_history().encode();
                    self.archive.note_history(timeline, || history);
                }
                self.restore_promoted(node, switch);
                let by_ha = std::mem::take(&mut self.nodes[node as usize].promote_by_ha);
                self.audit_promotion(node, timeline - 1, by_ha, stopped_at);
                let slot = &mut self.nodes[node as usize];
                // Bytes past the switch point were never part of the new history.
                slot.max_flushed = switch;
                let label = format!("{} promoted: timeline {timeline} at {switch}", slot.name);
                let since_last_write_ack_ns = self.now_ns.saturating_sub(self.metrics.unavailable.last_ack_ns());
                self.promotions.push(Promotion {
                    at_ns: self.now_ns,
                    node,
                    from_timeline: timeline - 1,
                    timeline,
                    switch,
                    since_last_write_ack_ns,
                    duration_ns: None,
                });
                self.metrics.marks.push(Mark { at_ns: self.now_ns, kind: MarkKind::Failover, label });
                if self.ha.is_none() {
                    // An operator promoting by hand re-points the application at once.
                    self.router_primary = Some(node);
                    self.endpoint_follow();
                    self.subscriptions_follow();
                    // The application now reads a history that forked at the switch point:
                    // acknowledged writes it does not hold were lost (judged by
                    // `acked_writes_durable`), not missed by a read.
                    if let Some(store) = self.nodes[node as usize].engine.as_ref().map(|e| e.store()) {
                        self.reads.history_changed(|id| store.get(crate::check::history::INSERT_TABLE, id).is_some());
                    }
                }
            }
            Observation::PromotionComplete { timeline, duration_ns } => {
                if let Some(p) = self.promotions.iter_mut().rev().find(|p| p.node == node && p.timeline == timeline) {
                    p.duration_ns = Some(duration_ns);
                }
            }
            Observation::WalReceiverStopped { reason }
                if reason.contains("not in this server's history") || reason.contains("differs from local WAL") =>
            {
                slot.diverged = true;
            }
            Observation::WalReceiverStopped { reason } if reason.contains("has already been removed") => {
                slot.wal_removed = true;
            }
            Observation::ShutdownComplete { .. } => {
                slot.shutdown_complete = true;
                self.stop_pg(node);
            }
            Observation::CheckpointRequestDone => self.backup_checkpoint_done(node),
            Observation::LogicalSlot { name, text } if self.logical_slot_events.len() < MAX_SLOT_EVENTS => {
                let at = self.now_ns as f64 / 1e9;
                let event = format!("{at:.3}s {}: slot {name} {text}", self.nodes[node as usize].name);
                self.logical_slot_events.push(event);
            }
            Observation::RecoveryTargetNotReached { replayed_to } => self.restore_failed(node, replayed_to),
            o @ (Observation::ApplyWorker { .. }
            | Observation::LogicalApplied { .. }
            | Observation::LogicalConflict { .. }
            | Observation::LogicalConfirmed { .. }
            | Observation::InitialCopyDone { .. }) => self.observe_subscription(node, o),
            Observation::Panic { reason } => self.panicked(node, reason),
            Observation::QuerySnapshot { client, op_id, xmin } => {
                let incarnation = slot.incarnation;
                self.running_queries.started(node, incarnation, client.0 as u32, op_id, xmin, self.now_ns);
            }
            Observation::CleanupReplayed { horizon_xid } => self.audit_cleanup(node, horizon_xid),
            Observation::Pruned { removed, dead_row_versions } => {
                // What the cleanup found: the versions it removed and those it had to keep.
                let found = removed + dead_row_versions;
                self.metrics.dead_row_versions_max = self.metrics.dead_row_versions_max.max(found);
            }
            Observation::RecoveryConflict { waited_ns, .. } => {
                self.metrics.replay_conflict_waits += 1;
                self.metrics.replay_conflict_wait_max_ns = self.metrics.replay_conflict_wait_max_ns.max(waited_ns);
            }
            _ => {}
        }
    }

    pub(crate) fn boot(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        // An empty, replaced disk is cloned first (`reclone_replaced_disk`); while a clone or a
        // rewind copies data, PostgreSQL is not started on the half-copied directory (the copy
        // starts it when it lands; swarm seed 10580: settle booted it mid-copy, the PANIC that
        // followed dropped the copy, and the spare never came up).
        if slot.engine.is_some() || !slot.host_up || slot.disk_replaced || slot.busy {
            return;
        }
        slot.timers.clear();
        slot.diverged = false;
        slot.wal_removed = false;
        slot.shutdown_complete = false;
        // durable_fsync, from the disk itself: every byte of WAL the node ever reported as
        // fsynced is still there after the crash.
        let segment = self.scenario.replication.wal_segment_size_bytes;
        let durable_end = slot.disk.wal_extent(segment, u32::MAX).durable_end;
        if durable_end < slot.max_flushed.0 {
            self.fsync_violations.push(format!(
                "{} had reported {} as fsynced, but after the crash its disk holds WAL only to {}",
                slot.name,
                slot.max_flushed,
                repsim_engine::Lsn(durable_end)
            ));
        }
        let slot = &mut self.nodes[node as usize];
        let image = slot.disk.durable_image();
        slot.engine = Some(Node::sharing_wal_blocks(slot.config.clone(), self.blocks.clone()));
        self.roles_changed = true;
        self.step_node(node, Input::Boot(image));
        if self.nodes[node as usize].incarnation > 0 {
            // Peers' next packet to the restarted node draws an RST.
            for peer in 0..self.nodes.len() as NodeId {
                if peer != node {
                    if let Some(d) = self.net.announce_restart(self.now_ns, node, peer) {
                        self.schedule_arrival(node, peer, d, Packet::Reset);
                    }
                }
            }
        }
    }

    /// In-flight client operations on `node` end without an answer.
    pub(crate) fn fail_sessions_on(&mut self, node: NodeId) {
        for session in 0..self.sessions.len() {
            let Some(flight) = self.sessions[session].current.as_ref().filter(|f| f.node == node) else { continue };
            let op_id = flight.planned.op_id;
            let at = self.now_ns + self.net.sample_client_latency(Some(node));
            let session = session as u32;
            self.schedule(at, EventKind::ReplyArrives { session, op_id, outcome: Outcome::Indeterminate });
        }
    }

    /// PostgreSQL stops (immediate or fast shutdown) while the host stays up: the page cache
    /// survives, connections are closed.
    pub(crate) fn stop_pg(&mut self, node: NodeId) {
        if self.nodes[node as usize].engine.is_none() {
            return;
        }
        self.drop_engine(node);
        self.nodes[node as usize].disk.stop_process();
        for peer in 0..self.nodes.len() as NodeId {
            if peer != node {
                if let Some(d) = self.net.close(self.now_ns, node, peer) {
                    self.schedule_arrival(node, peer, d, Packet::Reset);
                }
            }
        }
        self.fail_sessions_on(node);
    }

    /// The PostgreSQL process is gone (its memory with it): a new incarnation, so that events
    /// for the old one are dropped, with fresh CPU lanes.
    pub(crate) fn drop_engine(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        if let Some(engine) = slot.engine.take() {
            slot.last_timeline = engine.timeline();
            self.roles_changed = true;
        }
        slot.incarnation += 1;
        slot.first_archived_segno = None;
        slot.timers.clear();
        slot.cpu = Cpu::new(self.scenario.nodes[node as usize].cpus);
    }

    /// PostgreSQL PANICked: its processes die, the host and its page cache stay (a failed
    /// fsync has already lost that file's dirty pages, `Disk::complete_next`). The postmaster
    /// or systemd starts it again after `RESTART_AFTER_PANIC_NS`; with `[ha]` the agent does.
    pub(crate) fn panicked(&mut self, node: NodeId, reason: String) {
        let label = format!("{} PANIC: {reason}", self.nodes[node as usize].name);
        self.metrics.marks.push(Mark { at_ns: self.now_ns, kind: MarkKind::RoleChange, label });
        self.note_lost_wal(node);
        self.stop_pg(node);
        if !self.has_agent(node) {
            let incarnation = self.nodes[node as usize].incarnation;
            self.schedule(self.now_ns + RESTART_AFTER_PANIC_NS, EventKind::RestartAfterPanic { node, incarnation });
        }
    }

    /// Power loss: memory and unsynced writes are gone; in-flight client ops are indeterminate;
    /// the HA agent dies with the host.
    pub(crate) fn crash(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        if !slot.host_up {
            return;
        }
        slot.host_up = false;
        slot.crashes += 1;
        slot.power_losses_ns.push(self.now_ns);
        slot.busy = false;
        slot.paused_until_ns = 0;
        slot.disk.crash();
        self.note_lost_wal(node);
        self.subscriber_lost_power(node);
        self.drop_engine(node);
        self.net.crash(node);
        if let Some(ha) = self.ha.as_mut() {
            ha.agents[node as usize] = None;
            ha.agent_incarnation[node as usize] += 1;
        }
        self.metrics.marks.push(Mark {
            at_ns: self.now_ns,
            kind: MarkKind::RoleChange,
            label: format!("{} crashed", self.nodes[node as usize].name),
        });
        self.restore_interrupted(node);
        self.fail_sessions_on(node);
        // What a paused node had not seen yet dies with it (each event finds the old
        // incarnation, a closed connection or a host that is down).
        self.release_held_events(node);
    }

    /// The host comes back. Without an HA manager PostgreSQL starts in its configured role;
    /// with one, the agent starts and decides.
    pub(crate) fn restart_host(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        if slot.host_up {
            return;
        }
        slot.host_up = true;
        if slot.disk_replaced {
            // Nothing to run until it is cloned: its agent starts with the copy, as for a
            // spare (Patroni on an empty data directory bootstraps from the leader).
            return self.reclone_replaced_disk(node);
        }
        if self.has_agent(node) {
            self.start_agent(node, self.now_ns);
        } else {
            self.boot(node);
        }
    }

    /// A host whose disk was replaced is cloned from the primary (pg_basebackup), as an
    /// operator or Patroni would; with no primary running yet, `sample` tries again.
    pub(crate) fn reclone_replaced_disk(&mut self, node: NodeId) {
        let slot = &self.nodes[node as usize];
        if !slot.host_up || slot.busy || slot.engine.is_some() || !slot.disk_replaced {
            return;
        }
        let Some(primary) = self.running_primary() else { return };
        // `disk_replaced` stays set until the copy lands (`data_copied`): a crash during the
        // copy leaves the disk empty, and the node must be cloned again when it comes back.
        self.start_agent(node, self.now_ns + 1);
        self.clone_from(node, primary);
    }

    /// A node running as primary: the one clients are routed to if it is, else any.
    pub(crate) fn running_primary(&self) -> Option<NodeId> {
        let is_primary = |n: NodeId| {
            let slot = &self.nodes[n as usize];
            !slot.subscriber && slot.engine.as_ref().is_some_and(|e| e.role() == repsim_engine::Role::Primary)
        };
        self.router_primary
            .filter(|&p| is_primary(p))
            .or_else(|| (0..self.nodes.len() as NodeId).find(|&n| is_primary(n)))
    }

    /// `add_standby`: power on a spare and clone it from the current primary.
    pub(crate) fn add_standby(&mut self, node: NodeId) {
        let Some(primary) = self.router_primary.filter(|&p| self.is_up(p)) else { return };
        let slot = &mut self.nodes[node as usize];
        if slot.host_up || slot.engine.is_some() {
            return;
        }
        slot.host_up = true;
        self.start_agent(node, self.now_ns + 1);
        self.clone_from(node, primary);
    }
}
