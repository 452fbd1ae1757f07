//! The simulated world: one priority queue of events keyed `(time_ns, seq)`, the nodes, their
//! clocks, CPUs and disks, the network, the clients and the nemesis. The engine is driven only
//! through `Node::step` inputs and outputs.

use std::collections::BTreeMap;
use std::io::Write;

use repsim_engine::config::{BootRole, NodeConfig};
use repsim_engine::io::{ClientId, ComputeTask, IoId, Observation, Reply, TimerId};
use repsim_engine::message::Message;
use repsim_engine::{initdb, Input, Instant, Node, NodeId, Output};

use crate::clock::NodeClock;
use crate::cpu::{Cpu, Lane};
use crate::disk::{Disk, DiskOp};
use crate::history::{History, Outcome};
use crate::metrics::{Mark, MarkKind, Metrics, SAMPLE_INTERVAL_NS};
use crate::net::{Delivery, Network, Packet};
use crate::rng::stream;
use crate::scenario::model::{FaultKind, Scenario};
use crate::scheduler::EventQueue;
use crate::trace::{Trace, TraceRecord};
use crate::workload::{Op, PlannedOp, Workload};

#[derive(Debug)]
pub enum EventKind {
    /// An input for a node incarnation, its CPU time already paid.
    Input {
        node: NodeId,
        incarnation: u64,
        input: Input,
    },
    Timer {
        node: NodeId,
        incarnation: u64,
        id: TimerId,
        generation: u64,
    },
    DiskDone {
        node: NodeId,
        incarnation: u64,
        io: IoId,
    },
    Arrive {
        from: NodeId,
        to: NodeId,
        epoch: u64,
        packet: Packet,
    },
    /// A client request reaches a node.
    RequestArrives {
        session: u32,
    },
    /// A reply (or a connection failure) reaches a client.
    ReplyArrives {
        session: u32,
        op_id: u64,
        outcome: Outcome,
    },
    OpenArrival,
    SessionReady {
        session: u32,
    },
    Fault {
        index: usize,
    },
    Sample,
    Settle,
    /// An HA agent's timer.
    HaTick {
        node: NodeId,
        incarnation: u64,
    },
    /// The leader key may have expired: fire the DCS watch if it did.
    DcsExpiry,
    /// HAProxy's health check round.
    ProxyCheck,
    /// A pg_rewind or base backup finished copying.
    DataCopied {
        node: NodeId,
        incarnation: u64,
        image: Box<repsim_engine::io::DiskImage>,
        upstream: NodeId,
    },
    /// A paused node resumes.
    Resume {
        node: NodeId,
    },
}

/// `InFlight::node` of an operation no server accepted.
pub const NO_NODE: NodeId = NodeId::MAX;

/// The node whose processes an event needs, if a `pause` can hold it back.
fn paused_target(kind: &EventKind, sessions: &[Session]) -> Option<NodeId> {
    match kind {
        EventKind::Input { node, .. }
        | EventKind::Timer { node, .. }
        | EventKind::DiskDone { node, .. }
        | EventKind::HaTick { node, .. } => Some(*node),
        EventKind::Arrive { to, .. } => Some(*to),
        EventKind::RequestArrives { session } => {
            sessions[*session as usize].current.as_ref().map(|f| f.node).filter(|n| *n != NO_NODE)
        }
        _ => None,
    }
}

/// A promotion, for split-brain accounting and the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Promotion {
    pub at_ns: u64,
    pub node: NodeId,
    /// The timeline it left and the one it started.
    pub from_timeline: u32,
    pub timeline: u32,
    pub switch: repsim_engine::Lsn,
    /// Time from the last acknowledged write (the old primary's last) to this promotion.
    pub since_last_write_ack_ns: u64,
}

pub struct NodeSlot {
    pub name: String,
    pub engine: Option<Node>,
    pub config: NodeConfig,
    pub incarnation: u64,
    pub clock: NodeClock,
    timers: BTreeMap<TimerId, u64>,
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
    /// The timeline PostgreSQL was on when it last stopped.
    pub last_timeline: u32,
    /// Processing resumes at this time (`pause`).
    pub paused_until_ns: u64,
}

/// A client session and its one operation in flight.
#[derive(Default)]
pub struct Session {
    pub current: Option<InFlight>,
    /// The commit LSN of the session's last acknowledged write (read-your-writes by LSN).
    pub last_commit_lsn: repsim_engine::Lsn,
}

pub struct InFlight {
    pub planned: PlannedOp,
    pub node: NodeId,
    pub incarnation: u64,
    pub sent_ns: u64,
    /// When the request reached the server, and whether enough synchronous standbys were
    /// connected then (for `commits_release`).
    pub arrived_ns: u64,
    pub sync_ok_at_arrival: bool,
}

pub struct World {
    pub scenario: Scenario,
    pub seed: u64,
    pub now_ns: u64,
    queue: EventQueue<EventKind>,
    pub nodes: Vec<NodeSlot>,
    pub net: Network,
    pub workload: Workload,
    pub sessions: Vec<Session>,
    pub metrics: Metrics,
    pub history: History,
    pub trace: Trace,
    pub events: u64,
    /// Facts for the checker: `durable_fsync` violations found as they happen.
    pub fsync_violations: Vec<String>,
    pub end_ns: u64,
    pub settling: bool,
    out_buf: Vec<Output>,
    /// The HA manager, DCS and agents, when the scenario has `[ha]`.
    pub ha: Option<crate::ha_world::HaWorld>,
    /// What the HA agents decided, in order (for the report).
    pub ha_log: Vec<(u64, String)>,
    /// Where clients send their operations: HAProxy's view of the primary with `[ha]`, else
    /// the configured primary or the last one promoted by hand.
    pub router_primary: Option<NodeId>,
    pub promotions: Vec<Promotion>,
    /// Two or more nodes running as primary: since when, and the total so far.
    dual_primary_since_ns: Option<u64>,
    pub dual_primary_ns: u64,
    /// Stale reads and the session guarantees, checked as reads complete.
    pub reads: crate::reads::ReadChecker,
    read_cursor: usize,
    /// `commits_release`: commits that waited past `max_commit_wait` with enough synchronous
    /// standbys connected, and the first of them.
    pub slow_commits: u64,
    pub slow_commit_example: Option<String>,
    /// `--history`: every client operation as one JSON line.
    pub history_sink: Option<Box<dyn std::io::Write + Send>>,
    /// Each standby's lag in bytes as the primary last reported it (for `lag_aware`).
    pub standby_lag_bytes: Vec<Option<u64>>,
}

/// Builds each node's engine configuration from the scenario.
pub fn node_configs(s: &Scenario) -> Vec<NodeConfig> {
    let names = s.cluster.nodes.clone();
    (0..names.len())
        .map(|i| {
            let mut c = NodeConfig::with_defaults(i as u32, names.clone());
            let r = &s.replication;
            c.boot_role = if i == s.cluster.primary { BootRole::Primary } else { BootRole::Standby };
            c.primary_conninfo = (i != s.cluster.primary).then_some(s.cluster.primary as u32);
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
            c.recovery_min_apply_delay_ns = r.recovery_min_apply_delay_ns;
            c.replication_slots = r.replication_slots;
            c.max_slot_wal_keep_size_bytes = r.max_slot_wal_keep_size_bytes;
            c
        })
        .collect()
}

impl World {
    pub fn new(mut scenario: Scenario, seed: u64, trace: Trace) -> World {
        // The faults this seed runs: the file's plus its random ones drawn from the `faults`
        // stream (nemesis.rs); from here on `scenario.faults` is that concrete list.
        scenario.faults = crate::nemesis::concrete_faults(&scenario, seed);
        let configs = node_configs(&scenario);
        let image = initdb(&configs[scenario.cluster.primary]);
        let nodes = configs
            .into_iter()
            .enumerate()
            .map(|(i, config)| {
                let spec = &scenario.nodes[i];
                let name = spec.name.clone();
                // A spare starts with an empty disk: it is cloned when added.
                let disk_image = if scenario.cluster.spares.contains(&i) { Default::default() } else { image.clone() };
                NodeSlot {
                    disk: Disk::new(scenario.disks[i].clone(), disk_image, stream(seed, &format!("disk/{name}"))),
                    cpu: Cpu::new(spec.cpus),
                    clock: NodeClock { offset_ns: spec.clock_offset_ns, drift_ppm: spec.clock_drift_ppm },
                    name,
                    engine: None,
                    config,
                    incarnation: 0,
                    timers: BTreeMap::new(),
                    max_flushed: repsim_engine::Lsn::INVALID,
                    crashes: 0,
                    host_up: !scenario.cluster.spares.contains(&i),
                    busy: false,
                    diverged: false,
                    wal_removed: false,
                    shutdown_complete: false,
                    last_timeline: 1,
                    paused_until_ns: 0,
                }
            })
            .collect();
        // With an HA manager the DCS is one more network endpoint, after the nodes.
        let endpoints = scenario.cluster.nodes.len() + scenario.ha.is_some() as usize;
        let net = Network::new(&scenario.network, endpoints, stream(seed, "network"));
        let ha = scenario
            .ha
            .clone()
            .map(|spec| crate::ha_world::HaWorld::new(spec, &scenario.cluster.nodes, scenario.cluster.primary));
        let router_primary = Some(scenario.cluster.primary as NodeId);
        let workload = Workload::new(scenario.workload.clone(), stream(seed, "workload"));
        let sessions = (0..scenario.workload.clients).map(|_| Session::default()).collect();
        let end_ns = scenario.duration_ns + scenario.settle_ns;
        World {
            seed,
            now_ns: 0,
            queue: EventQueue::with_capacity(1024),
            nodes,
            net,
            workload,
            sessions,
            metrics: Metrics::default(),
            history: History::default(),
            trace,
            events: 0,
            fsync_violations: Vec::new(),
            end_ns,
            settling: false,
            out_buf: Vec::new(),
            ha,
            ha_log: Vec::new(),
            router_primary,
            promotions: Vec::new(),
            dual_primary_since_ns: None,
            dual_primary_ns: 0,
            reads: crate::reads::ReadChecker::new(scenario.workload.clients as usize),
            read_cursor: 0,
            slow_commits: 0,
            slow_commit_example: None,
            history_sink: None,
            standby_lag_bytes: vec![None; scenario.cluster.nodes.len()],
            scenario,
        }
    }

    pub fn schedule(&mut self, at_ns: u64, kind: EventKind) {
        self.queue.push(at_ns, kind);
    }

    /// Runs the whole scenario: `duration`, then `settle`.
    pub fn run(&mut self) {
        for node in 0..self.nodes.len() {
            self.boot(node as NodeId);
        }
        for index in 0..self.scenario.faults.len() {
            let at = self.scenario.faults[index].at_ns;
            self.schedule(at, EventKind::Fault { index });
        }
        if self.workload.is_open_loop() {
            let gap = self.workload.next_arrival_gap_ns();
            self.schedule(gap, EventKind::OpenArrival);
        } else {
            for session in 0..self.sessions.len() as u32 {
                let think = self.workload.think_ns();
                self.schedule(think, EventKind::SessionReady { session });
            }
        }
        self.schedule(SAMPLE_INTERVAL_NS, EventKind::Sample);
        self.schedule(self.scenario.duration_ns, EventKind::Settle);
        if let Some((loop_wait, first_check)) =
            self.ha.as_ref().map(|h| (h.spec.loop_wait_ns, h.spec.check_interval_ns))
        {
            // Agents' cycles are not synchronised: each starts at a phase drawn from `ha`.
            let mut rng = stream(self.seed, "ha");
            for node in 0..self.nodes.len() as NodeId {
                let at = rng.below(loop_wait);
                self.schedule(at, EventKind::HaTick { node, incarnation: 0 });
            }
            // Clients start on the configured primary; HAProxy's checks take over from there.
            self.schedule(first_check, EventKind::ProxyCheck);
        }
        while let Some((at_ns, kind)) = self.queue.pop() {
            if at_ns > self.end_ns {
                break;
            }
            self.now_ns = at_ns;
            if let Some(node) = paused_target(&kind, &self.sessions).filter(|&n| (n as usize) < self.nodes.len()) {
                let until = self.nodes[node as usize].paused_until_ns;
                if until > at_ns {
                    // A paused process sees nothing until it resumes.
                    self.schedule(until, kind);
                    continue;
                }
            }
            self.events += 1;
            self.trace.record(at_ns, &TraceRecord::of(&kind));
            self.handle(kind);
            self.track_primaries();
        }
        self.now_ns = self.end_ns;
        if let Some(since) = self.dual_primary_since_ns.take() {
            self.dual_primary_ns += self.end_ns - since;
        }
        self.metrics.unavailable.finish(self.scenario.duration_ns.min(self.now_ns));
    }

    fn handle(&mut self, kind: EventKind) {
        match kind {
            EventKind::Input { node, incarnation, input } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.step_node(node, input);
                }
            }
            EventKind::Timer { node, incarnation, id, generation } => {
                let slot = &self.nodes[node as usize];
                if slot.incarnation == incarnation && slot.timers.get(&id) == Some(&generation) {
                    self.step_node(node, Input::Timer(id));
                }
            }
            EventKind::DiskDone { node, incarnation, io } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.nodes[node as usize].disk.complete_next();
                    self.step_node(node, Input::DiskDone(io));
                }
            }
            EventKind::Arrive { from, to, epoch, packet } => self.arrive(from, to, epoch, packet),
            EventKind::RequestArrives { session } => self.request_arrives(session),
            EventKind::ReplyArrives { session, op_id, outcome } => self.reply_arrives(session, op_id, outcome),
            EventKind::OpenArrival => self.open_arrival(),
            EventKind::SessionReady { session } => self.session_ready(session),
            EventKind::Fault { index } => self.fault(index),
            EventKind::Sample => self.sample(),
            EventKind::Settle => self.settle(),
            EventKind::HaTick { node, incarnation } => {
                if self.ha.as_ref().is_some_and(|h| h.agent_incarnation[node as usize] == incarnation) {
                    self.ha_step(node, repsim_engine::ha::HaInput::Tick);
                }
            }
            EventKind::DcsExpiry => self.dcs_watch(),
            EventKind::ProxyCheck => self.proxy_check(),
            EventKind::DataCopied { node, incarnation, image, upstream } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.data_copied(node, *image, upstream);
                }
            }
            EventKind::Resume { .. } => {}
        }
    }

    pub(crate) fn is_paused(&self, node: NodeId) -> bool {
        self.nodes[node as usize].paused_until_ns > self.now_ns
    }

    /// Accumulates the time during which two or more nodes ran as primary.
    fn track_primaries(&mut self) {
        let primaries = self
            .nodes
            .iter()
            .filter(|s| s.engine.as_ref().is_some_and(|e| e.role() == repsim_engine::Role::Primary))
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

    fn is_up(&self, node: NodeId) -> bool {
        self.nodes[node as usize].engine.is_some()
    }

    /// Feeds one input to a node and carries out what it asks.
    pub(crate) fn step_node(&mut self, node: NodeId, input: Input) {
        let slot = &mut self.nodes[node as usize];
        let Some(engine) = slot.engine.as_mut() else {
            return;
        };
        let local = Instant(slot.clock.local(self.now_ns));
        let incarnation = slot.incarnation;
        let mut out = std::mem::take(&mut self.out_buf);
        engine.step(local, input, &mut out);
        for output in out.drain(..) {
            if self.nodes[node as usize].incarnation != incarnation {
                break; // the node went down (PANIC) part-way through its outputs
            }
            self.apply(node, output);
        }
        out.clear();
        self.out_buf = out;
    }

    fn apply(&mut self, node: NodeId, output: Output) {
        let incarnation = self.nodes[node as usize].incarnation;
        match output {
            Output::Send { to, msg } => {
                let cost = match msg {
                    Message::XLogData { .. } => self.scenario.nodes[node as usize].wal_send_cpu_ns,
                    _ => 0,
                };
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
                let generation = slot.timers.get(&id).map_or(1, |g| g + 1);
                slot.timers.insert(id, generation);
                let at_ns = slot.clock.true_time(at.0).max(self.now_ns);
                self.schedule(at_ns, EventKind::Timer { node, incarnation, id, generation });
            }
            Output::Write { io, file, offset, bytes } => {
                let done = self.nodes[node as usize].disk.submit(self.now_ns, DiskOp::Write { file, offset, bytes });
                self.schedule(done, EventKind::DiskDone { node, incarnation, io });
            }
            Output::Fsync { io, file } => {
                let done = self.nodes[node as usize].disk.submit(self.now_ns, DiskOp::Fsync { file });
                self.schedule(done, EventKind::DiskDone { node, incarnation, io });
            }
            Output::Truncate { file, len } => self.nodes[node as usize].disk.truncate(file, len),
            Output::Remove { file } => self.nodes[node as usize].disk.remove(file),
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
                if let (Reply::Committed { .. }, Some(max_wait)) = (&reply, self.scenario.expect.max_commit_wait_ns) {
                    self.check_commit_release(node, client.0 as u32, op_id, max_wait);
                }
                let at = self.now_ns + self.net.sample_client_latency();
                let timeline = self.nodes[node as usize].engine.as_ref().map_or(0, |e| e.timeline());
                let commit_lsn = match &reply {
                    Reply::Committed { commit_lsn, .. } => Some(*commit_lsn),
                    _ => None,
                };
                // A commit past a fork point another node already took: on a dead branch.
                let split_brain = commit_lsn.is_some_and(|lsn| {
                    self.promotions.iter().any(|p| p.from_timeline == timeline && p.node != node && lsn > p.switch)
                });
                let outcome = Outcome::from_reply(reply, split_brain);
                self.schedule(at, EventKind::ReplyArrives { session: client.0 as u32, op_id, outcome });
            }
            Output::Observe(observation) => self.observe(node, observation),
        }
    }

    fn schedule_arrival(&mut self, from: NodeId, to: NodeId, d: Delivery, packet: Packet) {
        self.schedule(d.at_ns.max(self.now_ns), EventKind::Arrive { from, to, epoch: d.epoch, packet });
    }

    fn arrive(&mut self, from: NodeId, to: NodeId, epoch: u64, packet: Packet) {
        let to_dcs = self.ha.as_ref().is_some_and(|h| h.dcs_endpoint == to);
        if !self.net.accepts(from, to, epoch) || (!to_dcs && !self.nodes[to as usize].host_up) {
            return;
        }
        if let Packet::Ha(msg) = packet {
            return self.ha_arrive(from, to, *msg);
        }
        if !self.is_up(to) {
            return;
        }
        let incarnation = self.nodes[to as usize].incarnation;
        let (cost, input) = match packet {
            Packet::Ha(_) => unreachable!("handled above"),
            Packet::Reset => {
                self.net.learn_reset(from, to, epoch);
                (0, Input::ConnectionLost { peer: from })
            }
            Packet::Msg(msg) => {
                let cost = match msg {
                    Message::XLogData { .. } => self.scenario.nodes[to as usize].wal_receive_cpu_ns,
                    _ => 0,
                };
                (cost, Input::Message { from, msg })
            }
        };
        // One process per connection handles its messages in order (walsender, walreceiver).
        let at = self.nodes[to as usize].cpu.lane(Lane::Connection(from), self.now_ns, cost);
        if at == self.now_ns {
            self.step_node(to, input);
        } else {
            self.schedule(at, EventKind::Input { node: to, incarnation, input });
        }
    }

    fn observe(&mut self, node: NodeId, observation: Observation) {
        let slot = &mut self.nodes[node as usize];
        match observation {
            Observation::Flushed { lsn } => slot.max_flushed = slot.max_flushed.max(lsn),
            Observation::Recovered { end, .. } if end < slot.max_flushed => {
                self.fsync_violations.push(format!(
                    "{} recovered WAL only to {end} after a crash, but had reported {} as fsynced",
                    slot.name, slot.max_flushed
                ));
            }
            Observation::Promoted { timeline, switch } => {
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
                });
                self.metrics.marks.push(Mark { at_ns: self.now_ns, kind: MarkKind::Failover, label });
                if self.ha.is_none() {
                    // An operator promoting by hand re-points the application at once.
                    self.router_primary = Some(node);
                }
            }
            Observation::WalReceiverStopped { reason } if reason.contains("not in this server's history") => {
                slot.diverged = true;
            }
            Observation::WalReceiverStopped { reason } if reason.contains("has already been removed") => {
                slot.wal_removed = true;
            }
            Observation::ShutdownComplete { .. } => {
                slot.shutdown_complete = true;
                self.stop_pg(node);
            }
            Observation::Panic { .. } => self.crash(node),
            _ => {}
        }
    }

    pub(crate) fn boot(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        if slot.engine.is_some() || !slot.host_up {
            return;
        }
        slot.timers.clear();
        slot.diverged = false;
        slot.wal_removed = false;
        slot.shutdown_complete = false;
        let image = slot.disk.durable_image();
        slot.engine = Some(Node::new(slot.config.clone()));
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
    fn fail_sessions_on(&mut self, node: NodeId) {
        for session in 0..self.sessions.len() {
            let Some(flight) = self.sessions[session].current.as_ref().filter(|f| f.node == node) else { continue };
            let op_id = flight.planned.op_id;
            let at = self.now_ns + self.net.sample_client_latency();
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
    fn drop_engine(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        if let Some(engine) = slot.engine.take() {
            slot.last_timeline = engine.timeline();
        }
        slot.incarnation += 1;
        slot.timers.clear();
        slot.cpu = Cpu::new(self.scenario.nodes[node as usize].cpus);
    }

    /// Power loss: memory and unsynced writes are gone; in-flight client ops are indeterminate;
    /// the HA agent dies with the host.
    fn crash(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        if !slot.host_up {
            return;
        }
        slot.host_up = false;
        slot.crashes += 1;
        slot.busy = false;
        slot.paused_until_ns = 0;
        slot.disk.crash();
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
        self.fail_sessions_on(node);
    }

    /// The host comes back. Without an HA manager PostgreSQL starts in its configured role;
    /// with one, the agent starts and decides.
    fn restart_host(&mut self, node: NodeId) {
        let slot = &mut self.nodes[node as usize];
        if slot.host_up {
            return;
        }
        slot.host_up = true;
        if self.ha.is_some() {
            self.start_agent(node, self.now_ns);
        } else {
            self.boot(node);
        }
    }

    fn fault(&mut self, index: usize) {
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
            FaultKind::KillDcs => {
                if let Some(ha) = self.ha.as_mut() {
                    ha.dcs.up = false;
                }
            }
            FaultKind::Pause { node, for_ns } => {
                let until = self.now_ns + for_ns;
                self.nodes[node].paused_until_ns = until;
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
                    self.step_node(node as NodeId, Input::Admin(repsim_engine::io::Command::Promote));
                }
            }
            FaultKind::AddStandby { node } => self.add_standby(node as NodeId),
            FaultKind::Switchover { node } => {
                if let Some(ha) = self.ha.as_mut() {
                    let to = self.scenario.cluster.nodes[node].clone();
                    if let Some(from) = ha.dcs.leader(self.now_ns) {
                        ha.dcs.set_switchover(from, to);
                    }
                }
            }
        }
    }

    /// `add_standby`: power on a spare and clone it from the current primary.
    fn add_standby(&mut self, node: NodeId) {
        let Some(primary) = self.router_primary.filter(|&p| self.is_up(p)) else { return };
        let slot = &mut self.nodes[node as usize];
        if slot.host_up || slot.engine.is_some() {
            return;
        }
        slot.host_up = true;
        self.start_agent(node, self.now_ns + 1);
        self.clone_from(node, primary);
    }

    fn heal(&mut self) {
        for (from, to, packet, d) in self.net.heal(self.now_ns) {
            self.schedule_arrival(from, to, d, packet);
        }
    }

    /// End of `duration`: clients stop, faults heal, crashed nodes restart, pauses end, the
    /// DCS comes back.
    fn settle(&mut self) {
        self.settling = true;
        self.workload.stopped = true;
        self.workload.backlog.clear();
        self.heal();
        if let Some(ha) = self.ha.as_mut() {
            ha.dcs.up = true;
        }
        for node in 0..self.nodes.len() {
            self.nodes[node].disk.slow(1.0, 0);
            if self.nodes[node].paused_until_ns > self.now_ns {
                self.nodes[node].paused_until_ns = self.now_ns;
            }
            if self.nodes[node].host_up && self.ha.is_none() {
                self.boot(node as NodeId);
            }
            let never_added =
                self.scenario.cluster.spares.contains(&node) && self.nodes[node].disk.durable_bytes() == 0;
            if !never_added {
                self.restart_host(node as NodeId);
            }
        }
    }

    fn sample(&mut self) {
        let primary = self.router_primary.unwrap_or(self.scenario.cluster.primary as NodeId) as usize;
        if let Some(engine) = &self.nodes[primary].engine {
            let flush = engine.flush_lsn();
            for row in engine.pg_stat_replication() {
                let replayed = row.replay_lsn.unwrap_or(row.sent_lsn);
                let lag_bytes = flush.bytes_since(replayed);
                if let Some(slot) = self.standby_lag_bytes.get_mut(row.standby as usize) {
                    *slot = Some(lag_bytes);
                }
                let lags = [row.write_lag_ns, row.flush_lag_ns, row.replay_lag_ns];
                self.metrics.lag_sample(self.now_ns, &row.application_name, lag_bytes, lags);
            }
        }
        if self.now_ns + SAMPLE_INTERVAL_NS <= self.end_ns {
            self.schedule(self.now_ns + SAMPLE_INTERVAL_NS, EventKind::Sample);
        }
    }

    // ---- clients ----

    fn open_arrival(&mut self) {
        if self.workload.stopped {
            return;
        }
        let planned = self.workload.plan(self.now_ns);
        match self.workload.idle_sessions.pop_front() {
            Some(session) => self.send_op(session, planned),
            None if self.workload.backlog.len() < crate::workload::MAX_BACKLOG_OPS => {
                self.workload.backlog.push_back(planned)
            }
            None => self.workload.refused_ops += 1,
        }
        let gap = self.workload.next_arrival_gap_ns();
        self.schedule(self.now_ns + gap, EventKind::OpenArrival);
    }

    fn session_ready(&mut self, session: u32) {
        if self.workload.stopped {
            return;
        }
        let planned = self.workload.plan(self.now_ns);
        self.send_op(session, planned);
    }

    /// Where a session's requests go. Reads and writes both go to the configured primary for
    /// now (routers come with failover).
    /// Where an operation goes. Writes go to the primary; reads as the router says. A router
    /// that finds no standby sends the read to the primary.
    fn route(&mut self, op: &Op) -> Option<NodeId> {
        use repsim_engine::client::RouterKind;
        let router = self.scenario.workload.router;
        if op.is_write() || router == RouterKind::Primary {
            return self.router_primary;
        }
        let primary = self.router_primary;
        let threshold = self.scenario.workload.delay_threshold_bytes;
        let candidates: Vec<NodeId> = (0..self.nodes.len() as NodeId)
            .filter(|&n| {
                let serving = self.nodes[n as usize]
                    .engine
                    .as_ref()
                    .is_some_and(|e| matches!(e.role(), repsim_engine::Role::Standby) || Some(n) == primary);
                let standby = Some(n) != primary;
                let lag_ok =
                    self.standby_lag_bytes.get(n as usize).copied().flatten().is_none_or(|lag| lag <= threshold);
                serving
                    && match router {
                        RouterKind::RoundRobin => true,
                        RouterKind::LagAware => standby && lag_ok,
                        _ => standby,
                    }
            })
            .collect();
        if candidates.is_empty() {
            return primary;
        }
        self.read_cursor = self.read_cursor.wrapping_add(1);
        Some(candidates[self.read_cursor % candidates.len()])
    }

    fn send_op(&mut self, session: u32, planned: PlannedOp) {
        if planned.op.is_write() {
            self.metrics.unavailable.invoked(planned.intended_ns);
        }
        let at = self.now_ns + self.net.sample_client_latency();
        let Some(node) = self.route(&planned.op) else {
            // The proxy has no healthy primary: the connection is refused at once.
            let op_id = planned.op_id;
            let flight = InFlight {
                planned,
                node: NO_NODE,
                incarnation: 0,
                sent_ns: self.now_ns,
                arrived_ns: 0,
                sync_ok_at_arrival: false,
            };
            self.sessions[session as usize].current = Some(flight);
            self.schedule(at, EventKind::ReplyArrives { session, op_id, outcome: Outcome::Failed });
            return;
        };
        let incarnation = self.nodes[node as usize].incarnation;
        self.sessions[session as usize].current = Some(InFlight {
            planned,
            node,
            incarnation,
            sent_ns: self.now_ns,
            arrived_ns: 0,
            sync_ok_at_arrival: false,
        });
        self.schedule(at, EventKind::RequestArrives { session });
    }

    fn request_arrives(&mut self, session: u32) {
        let Some(flight) = self.sessions[session as usize].current.as_ref() else {
            return;
        };
        let (node, op_id) = (flight.node, flight.planned.op_id);
        if !self.is_up(node) {
            // Connection refused.
            let at = self.now_ns + self.net.sample_client_latency();
            self.schedule(at, EventKind::ReplyArrives { session, op_id, outcome: Outcome::Failed });
            return;
        }
        let incarnation = self.nodes[node as usize].incarnation;
        let sync_ok = self.scenario.expect.max_commit_wait_ns.is_some() && self.enough_sync_standbys(node);
        if let Some(flight) = self.sessions[session as usize].current.as_mut() {
            flight.arrived_ns = self.now_ns;
            flight.sync_ok_at_arrival = sync_ok;
        }
        let spec = &self.scenario.nodes[node as usize];
        let flight = self.sessions[session as usize].current.as_mut().expect("checked above");
        flight.incarnation = incarnation;
        let cost = match &flight.planned.op {
            Op::Write { .. } => 2 * spec.statement_cpu_ns + spec.commit_cpu_ns,
            Op::Read { .. } => spec.read_cpu_ns,
        };
        let mut request = flight.planned.op.request(self.scenario.workload.value_size_bytes);
        let ryw = self.scenario.workload.router == repsim_engine::client::RouterKind::ReadYourWrites;
        if let (true, repsim_engine::io::Request::Read { table, key }) = (ryw, &request) {
            let min_lsn = self.sessions[session as usize].last_commit_lsn;
            let wait_ns = self.scenario.workload.read_wait_ns;
            request = repsim_engine::io::Request::ReadAfter { table: *table, key: *key, min_lsn, wait_ns };
        }
        let done = self.nodes[node as usize].cpu.backend(self.now_ns, cost);
        let input = Input::Client { client: ClientId(session as u64), op_id, request };
        self.schedule(done, EventKind::Input { node, incarnation, input });
    }

    fn reply_arrives(&mut self, session: u32, op_id: u64, outcome: Outcome) {
        let slot = &mut self.sessions[session as usize];
        if slot.current.as_ref().map(|f| f.planned.op_id) != Some(op_id) {
            return; // a late reply for an operation already given up on
        }
        let flight = slot.current.take().expect("checked");
        if outcome == Outcome::TooStale {
            // read_your_writes: the standby did not catch up in time; read from the primary.
            let Some(primary) = self.router_primary else {
                return self.reply_arrives_failed(session, flight);
            };
            let incarnation = self.nodes[primary as usize].incarnation;
            let retry = InFlight { node: primary, incarnation, sent_ns: self.now_ns, ..flight };
            self.sessions[session as usize].current = Some(retry);
            let at = self.now_ns + self.net.sample_client_latency();
            return self.schedule(at, EventKind::RequestArrives { session });
        }
        let latency_ns = self.now_ns - flight.planned.intended_ns;
        self.check_read_or_write(session, &flight, &outcome);
        if flight.planned.op.is_write() {
            let acked = matches!(outcome, Outcome::Committed { .. });
            self.metrics.unavailable.finished(self.now_ns, acked);
        }
        match &outcome {
            Outcome::Committed { .. } => self.metrics.commit(self.now_ns, latency_ns),
            Outcome::Read { .. } => self.metrics.read(self.now_ns, latency_ns),
            Outcome::RolledBack => self.metrics.rollbacks += 1,
            Outcome::Failed => self.metrics.failed_ops += 1,
            Outcome::Indeterminate => self.metrics.indeterminate_ops += 1,
            Outcome::TooStale => unreachable!("retried above"),
        }
        self.history.record(&flight.planned.op, flight.node, &outcome);
        self.write_history_line(session, &flight, &outcome);
        self.next_for_session(session);
    }

    /// `--history`: invoke and completion times, outcome, node, LSN and value of one operation.
    fn write_history_line(&mut self, session: u32, flight: &InFlight, outcome: &Outcome) {
        let Some(sink) = self.history_sink.as_mut() else { return };
        let (kind, write_id, key) = match flight.planned.op {
            Op::Write { write_id, key, .. } => ("write", write_id, key),
            Op::Read { key } => ("read", 0, key),
        };
        let (result, lsn, value) = match outcome {
            Outcome::Committed { commit_lsn, .. } => ("ok", commit_lsn.to_string(), write_id),
            Outcome::Read { value, read_lsn } => ("ok", read_lsn.to_string(), value.map_or(0, |v| v.write_id)),
            Outcome::RolledBack => ("rolled_back", String::new(), write_id),
            Outcome::Failed | Outcome::TooStale => ("failed", String::new(), 0),
            Outcome::Indeterminate => ("indeterminate", String::new(), 0),
        };
        let node = self.nodes.get(flight.node as usize).map_or("", |s| s.name.as_str());
        let line = serde_json::json!({
            "session": session, "op_id": flight.planned.op_id, "kind": kind, "key": key,
            "invoke_ns": flight.planned.intended_ns, "complete_ns": self.now_ns,
            "outcome": result, "node": node, "lsn": lsn, "value_write_id": value,
        });
        if writeln!(sink, "{line}").is_err() {
            self.history_sink = None;
            self.trace.write_error.get_or_insert("could not write the history file".into());
        }
    }

    fn reply_arrives_failed(&mut self, session: u32, flight: InFlight) {
        self.metrics.failed_ops += 1;
        self.history.record(&flight.planned.op, flight.node, &Outcome::Failed);
        self.next_for_session(session);
    }

    /// `synchronous_standby_names` is satisfied on `node`: as many standbys are `sync` or
    /// `quorum` as it asks for (or it asks for none).
    fn enough_sync_standbys(&self, node: NodeId) -> bool {
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
    fn check_commit_release(&mut self, node: NodeId, session: u32, op_id: u64, max_wait_ns: u64) {
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
    fn check_read_or_write(&mut self, session: u32, flight: &InFlight, outcome: &Outcome) {
        match (&flight.planned.op, outcome) {
            (Op::Write { write_id, key, .. }, Outcome::Committed { commit_lsn, .. }) => {
                self.sessions[session as usize].last_commit_lsn = *commit_lsn;
                self.reads.write_acked(session, *key, *write_id, *commit_lsn, self.now_ns);
            }
            (Op::Write { write_id, .. }, Outcome::RolledBack) => self.reads.write_rolled_back(*write_id),
            (Op::Read { key }, Outcome::Read { value, .. }) => {
                let node = self.nodes.get(flight.node as usize).map_or("", |s| s.name.as_str());
                self.reads.read(crate::reads::Read {
                    session,
                    key: *key,
                    node,
                    invoked_at_ns: flight.planned.intended_ns,
                    completed_at_ns: self.now_ns,
                    value: *value,
                });
            }
            _ => {}
        }
    }

    fn next_for_session(&mut self, session: u32) {
        if self.workload.stopped {
            return;
        }
        if self.workload.is_open_loop() {
            match self.workload.backlog.pop_front() {
                Some(planned) => self.send_op(session, planned),
                None => self.workload.idle_sessions.push_back(session),
            }
        } else {
            let think = self.workload.think_ns();
            self.schedule(self.now_ns + think, EventKind::SessionReady { session });
        }
    }
}

impl Outcome {
    fn from_reply(reply: Reply, split_brain: bool) -> Outcome {
        match reply {
            Reply::Committed { commit_lsn, promise } => Outcome::Committed { commit_lsn, promise, split_brain },
            Reply::RolledBack => Outcome::RolledBack,
            Reply::Read { value, read_lsn } => Outcome::Read { value, read_lsn },
            Reply::Error { kind: repsim_engine::io::ErrorKind::TooStale, .. } => Outcome::TooStale,
            Reply::Error { .. } => Outcome::Failed,
        }
    }
}
