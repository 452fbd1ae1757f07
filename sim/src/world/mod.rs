//! The simulated world: one priority queue of events keyed `(time_ns, seq)`, the nodes, their
//! clocks, CPUs and disks, the network, the clients and the nemesis. The engine is driven only
//! through `Node::step` inputs and outputs.

pub mod agents;
pub mod archive;
pub mod archive_store;
pub mod backup;
pub mod clients;
pub mod clock;
pub mod cpu;
pub mod dcs;
pub mod disk;
pub mod dist;
pub mod endpoints;
pub mod event;
pub mod faults;
pub mod ha;
pub mod hosts;
pub mod live;
pub mod logical;
pub mod monitoring;
pub mod nemesis;
pub mod net;
pub mod oracles;
pub mod packing;
pub mod pooler;
pub mod pooling;
pub mod resolve;
pub mod restore_log;
pub mod rng;
pub mod scheduler;
pub mod session;
pub mod slot;
pub mod tls;
pub mod trace;
pub mod wire;
pub mod workload;

use std::collections::BTreeMap;

use repsim_engine::{initdb, Input, NodeId, Output};

use crate::check::history::History;
use crate::metrics::{Metrics, SAMPLE_INTERVAL_NS};
use crate::scenario::model::{FaultKind, Scenario};
use crate::world::clock::NodeClock;
use crate::world::cpu::Cpu;
use crate::world::disk::Disk;
use crate::world::event::{paused_target, EventKind};
use crate::world::net::Network;
use crate::world::rng::stream;
use crate::world::scheduler::EventQueue;
use crate::world::session::Session;
use crate::world::slot::{node_configs, NodeSlot};
use crate::world::trace::{Trace, TraceRecord};
use crate::world::wire::Packet;
use crate::world::workload::Workload;

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
    /// From `pg_promote()` reaching the node to its accepting writes (`None`: it never did).
    pub duration_ns: Option<u64>,
}

/// When the lag sampler looks: once per `SAMPLE_INTERVAL_NS` period, at an instant drawn
/// uniformly within the period from its own stream, so that periodic work (the WAL writer's
/// 200 ms flush, status intervals) cannot alias with it and bias the lag percentiles.
pub struct Sampler {
    rng: crate::world::rng::Rng,
    period_start_ns: u64,
}

impl Sampler {
    /// The instant of the next sample: inside the period after the current one.
    fn next_at(&mut self) -> u64 {
        self.period_start_ns += SAMPLE_INTERVAL_NS;
        self.period_start_ns + self.rng.below(SAMPLE_INTERVAL_NS)
    }
}

pub struct World {
    pub scenario: Scenario,
    pub seed: u64,
    pub now_ns: u64,
    queue: EventQueue<EventKind>,
    pub nodes: Vec<NodeSlot>,
    pub net: Network<Packet>,
    pub workload: Workload,
    pub sessions: Vec<Session>,
    pub metrics: Metrics,
    pub history: History,
    pub trace: Trace,
    pub events: u64,
    /// Facts for the checker: `durable_fsync` violations found as they happen.
    pub fsync_violations: Vec<String>,
    /// What the god's-eye oracles found as things happened (`world/oracles.rs`).
    pub live: crate::check::oracle::LiveFindings,
    /// Writes handed to a node and not answered yet (`waiting_commits_hidden`).
    pub waiting_writes: crate::check::oracle::visibility::WaitingWrites,
    /// The WAL archive (`[archive]`, `archive_mode`).
    pub archive: crate::world::archive_store::ArchiveStore,
    /// CPU spent on TLS for replication connections, both ends (`world/tls.rs`).
    pub tls_cpu_ns: u64,
    /// Every `restore` so far (`world/backup.rs`).
    pub restores: Vec<crate::world::restore_log::RestoreRun>,
    /// What happened to logical slots (created, refused, dropped, invalidated), the first
    /// `MAX_SLOT_EVENTS` of them.
    pub logical_slot_events: Vec<String>,
    /// Each `[[logical.subscriptions]]` entry's run, in file order.
    pub subscriptions: Vec<logical::SubscriptionRun>,
    /// `[multi_master]`: register writes acknowledged by any master (`check::multimaster`).
    pub master_writes: crate::check::multimaster::MasterWrites,
    /// The connection pooler (`[pooler]`), if any (`world/pooler.rs`, `world/pooling.rs`).
    pub pooler: Option<crate::world::pooler::Pooler>,
    /// Managed-service endpoints (`[endpoints]`), if any (`world/endpoints.rs`).
    pub endpoints: Option<crate::world::endpoints::Endpoints>,
    /// Base backups waiting for their checkpoint: node and incarnation.
    pub backups_waiting: Vec<(NodeId, u64)>,
    /// Queries past their snapshot, for `recovery_conflicts_resolved`.
    pub running_queries: crate::check::oracle::snapshots::RunningQueries,
    /// A primary lost WAL it had not made durable (power loss, PANIC): crash recovery reuses
    /// those LSNs on the same timeline.
    pub lost_wal: Vec<crate::check::oracle::promotion::LostWal>,
    pub end_ns: u64,
    /// Each node's WAL flush position at the first lag sample after `converge_mark_ns`: what
    /// `converged` requires every standby to have replayed by the end (`check/converged.rs`).
    pub flush_at_converge_mark: Option<Vec<Option<repsim_engine::Lsn>>>,
    pub settling: bool,
    out_buf: Vec<Output>,
    /// The HA manager, DCS and agents, when the scenario has `[ha]`.
    pub ha: Option<crate::world::ha::HaWorld>,
    /// What the HA agents decided, in order (for the report).
    pub ha_log: Vec<(u64, String)>,
    /// Where clients send their operations: HAProxy's view of the primary with `[ha]`, else
    /// the configured primary or the last one promoted by hand.
    pub router_primary: Option<NodeId>,
    pub promotions: Vec<Promotion>,
    /// Two or more nodes running as primary: since when, and the total so far.
    dual_primary_since_ns: Option<u64>,
    /// A node's engine started, stopped or changed role during the current event: the run
    /// loop recounts the primaries (a count after every event was 1 % of a loaded run).
    pub(crate) roles_changed: bool,
    /// The latest `paused_until_ns` any node was given: events after it skip the pause check
    /// (most runs pause nothing, and the check read the event's target on every event).
    pauses_end_ns: u64,
    pub dual_primary_ns: u64,
    /// Stale reads and the session guarantees, checked as reads complete.
    pub reads: crate::check::reads::ReadChecker,
    read_cursor: usize,
    /// `commits_release`: commits that waited past `max_commit_wait` with enough synchronous
    /// standbys connected, and the first of them.
    pub slow_commits: u64,
    pub slow_commit_example: Option<String>,
    /// `--history`: every client operation as one JSON line.
    pub history_sink: Option<Box<dyn std::io::Write + Send>>,
    /// Writing the history file failed (the run goes on; the command reports it as bad output).
    pub history_error: Option<String>,
    /// Each standby's lag in bytes as the primary last reported it (for `lag_aware`).
    pub standby_lag_bytes: Vec<Option<u64>>,
    /// `pg_stat_replication` and `pg_stat_wal_receiver`, the last sample of each second.
    pub monitoring: Vec<monitoring::MonitoringSample>,
    /// Instants `repsim run --snapshot` asked for, not yet taken (sorted), and those taken.
    pub snapshot_at_ns: Vec<u64>,
    pub snapshots: Vec<monitoring::MonitoringSample>,
    pub sampler: Sampler,
    /// Full WAL blocks and file chunks, held once for every engine and disk of this world.
    pub blocks: repsim_engine::wal::blocks::BlockStore,
}

impl World {
    pub fn new(mut scenario: Scenario, seed: u64, trace: Trace) -> World {
        // The faults this seed runs: the file's plus its random ones drawn from the `faults`
        // stream (nemesis.rs); from here on `scenario.faults` is that concrete list.
        scenario.faults = crate::world::nemesis::concrete_faults(&scenario, seed);
        let configs = node_configs(&scenario);
        let primary = scenario.cluster.primary;
        // Standbys start from a copy of the primary's initdb (a base backup at time 0, without
        // its slots); the primary with its subscriptions' slots; a subscriber from its own.
        let image = initdb(&configs[primary]);
        // The slots of the subscriptions made with the empty database, on their publishers.
        let slots_on = |publisher: Option<usize>| -> Vec<(String, bool)> {
            let subscriptions = scenario.logical.subscriptions.iter();
            // A trigger subscription has no slot.
            let made = subscriptions.filter(|s| s.at_ns.is_none() && s.publisher == publisher && s.trigger.is_none());
            made.map(|s| (s.slot.clone(), s.failover)).collect()
        };
        let with_slots = repsim_engine::logical::admin::initdb_with_logical_slots;
        let primary_image = with_slots(&configs[primary], &slots_on(None));
        let interner = crate::world::packing::block_store();
        let nodes = configs
            .into_iter()
            .enumerate()
            .map(|(i, config)| {
                let spec = &scenario.nodes[i];
                let name = spec.name.clone();
                // A spare starts with an empty disk: it is cloned when added.
                let subscriber = scenario.logical.is_subscriber(i);
                let disk_image = if scenario.cluster.spares.contains(&i) {
                    Default::default()
                } else if subscriber {
                    with_slots(&config, &slots_on(Some(i)))
                } else if i == primary {
                    primary_image.clone()
                } else {
                    image.clone()
                };
                NodeSlot {
                    disk: Disk::new(
                        scenario.disks[i].clone(),
                        disk_image,
                        stream(seed, &format!("disk/{name}")),
                        interner.clone(),
                    ),
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
                    held_events: Vec::new(),
                    first_archived_segno: None,
                    disk_replaced: false,
                    power_losses_ns: Vec::new(),
                    disk_losses_ns: Vec::new(),
                    cache_losses_ns: Vec::new(),
                    promote_by_ha: false,
                    subscriber,
                }
            })
            .collect();
        // With an HA manager the DCS is one more network endpoint, after the nodes.
        let endpoints = scenario.cluster.nodes.len() + scenario.ha.is_some() as usize;
        let mut net = Network::new(&scenario.network, endpoints, stream(seed, "network"));
        net.client_latency_by_node = scenario.nodes.iter().map(|n| n.client_latency.clone()).collect();
        let ha = scenario.ha.clone().map(|spec| {
            crate::world::ha::HaWorld::new(
                spec,
                &scenario.cluster.nodes,
                scenario.cluster.primary,
                &[scenario.cluster.spares.clone(), scenario.logical.subscriptions.iter().map(|s| s.node).collect()]
                    .concat(),
            )
        });
        let router_primary = Some(scenario.cluster.primary as NodeId);
        let workload =
            Workload::new(scenario.workload.clone(), stream(seed, "workload"), stream(seed, "read_duration"));
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
            live: Default::default(),
            waiting_writes: Default::default(),
            archive: crate::world::archive_store::ArchiveStore::new(
                scenario.archive.clone(),
                stream(seed, "archive"),
                interner.clone(),
                scenario.replication.restore_command
                    || scenario.faults.iter().any(|f| matches!(f.kind, FaultKind::Restore { .. })),
            ),
            restores: Vec::new(),
            logical_slot_events: Vec::new(),
            subscriptions: World::subscription_runs(&scenario),
            master_writes: Default::default(),
            endpoints: scenario.endpoints.clone().map(|spec| {
                let (primary, sessions) = (scenario.cluster.primary as NodeId, scenario.workload.clients as usize);
                crate::world::endpoints::Endpoints::new(spec, primary, sessions, stream(seed, "endpoints"))
            }),
            pooler: scenario.pooler.clone().map(|spec| {
                let (nodes, sessions) = (scenario.cluster.nodes.len(), scenario.workload.clients as usize);
                crate::world::pooler::Pooler::new(spec, nodes, sessions, stream(seed, "pooler"))
            }),
            tls_cpu_ns: 0,
            backups_waiting: Vec::new(),
            running_queries: Default::default(),
            lost_wal: Vec::new(),
            end_ns,
            flush_at_converge_mark: None,
            settling: false,
            out_buf: Vec::new(),
            ha,
            ha_log: Vec::new(),
            router_primary,
            promotions: Vec::new(),
            dual_primary_since_ns: None,
            roles_changed: false,
            pauses_end_ns: 0,
            dual_primary_ns: 0,
            reads: crate::check::reads::ReadChecker::new(scenario.workload.clients as usize, scenario.workload.keys),
            read_cursor: 0,
            slow_commits: 0,
            slow_commit_example: None,
            history_sink: None,
            history_error: None,
            standby_lag_bytes: vec![None; scenario.cluster.nodes.len()],
            monitoring: Vec::new(),
            snapshot_at_ns: Vec::new(),
            snapshots: Vec::new(),
            sampler: Sampler { rng: stream(seed, "sampler"), period_start_ns: 0 },
            blocks: interner,
            scenario,
        }
    }

    pub fn schedule(&mut self, at_ns: u64, kind: EventKind) {
        self.queue.push(at_ns, kind);
    }

    /// The most events ever pending at once (bounded by the cluster and the load, not by the
    /// length of the run).
    pub fn queue_high_water(&self) -> usize {
        self.queue.high_water()
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
            self.queue.push_lone(gap, EventKind::OpenArrival);
        } else {
            for session in 0..self.sessions.len() as u32 {
                let think = self.workload.think_ns();
                self.schedule(think, EventKind::SessionReady { session });
            }
        }
        if self.pooler.as_ref().is_some_and(|p| p.spec.kind == crate::scenario::model::PoolerKind::Pgpool) {
            self.schedule(0, EventKind::PgpoolCheck);
        }
        let first_sample_ns = self.sampler.next_at();
        self.schedule(first_sample_ns, EventKind::Sample);
        self.schedule(self.scenario.duration_ns, EventKind::Settle);
        let created_later: Vec<(usize, u64)> =
            self.scenario.logical.subscriptions.iter().enumerate().filter_map(|(i, s)| Some((i, s.at_ns?))).collect();
        for (index, at_ns) in created_later {
            self.schedule(at_ns, EventKind::CreateSubscription { index });
        }
        if self.scenario.replication.archive_mode && self.scenario.archive.backup_interval_ns > 0 {
            self.schedule(1_000_000_000u64.min(self.scenario.duration_ns), EventKind::BackupDue);
        }
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
            self.take_snapshots_before(at_ns);
            self.now_ns = at_ns;
            if let Some(node) = (at_ns < self.pauses_end_ns)
                .then(|| paused_target(&kind, &self.sessions))
                .flatten()
                .filter(|&n| (n as usize) < self.nodes.len())
            {
                if self.nodes[node as usize].paused_until_ns > at_ns {
                    // A paused process sees nothing until it resumes; what reaches it waits,
                    // in order. Data its kernel accepted stays readable even if the sender
                    // loses the connection meanwhile.
                    let mut kind = kind;
                    if let EventKind::Arrive { from, to, epoch, buffered, .. } = &mut kind {
                        if !*buffered && !self.net.accepts(*from, *to, *epoch) {
                            continue;
                        }
                        *buffered = true;
                    }
                    self.nodes[node as usize].held_events.push(kind);
                    continue;
                }
            }
            self.events += 1;
            self.trace.record(at_ns, &TraceRecord::of(&kind));
            self.handle(kind);
            if std::mem::take(&mut self.roles_changed) {
                self.track_primaries();
            }
        }
        self.now_ns = self.end_ns;
        self.take_snapshots_before(self.end_ns.saturating_add(1));
        if let Some(since) = self.dual_primary_since_ns.take() {
            self.dual_primary_ns += self.end_ns - since;
        }
        self.metrics.unavailable.finish(self.scenario.duration_ns.min(self.now_ns));
    }

    /// A timer event: the engine's timer if it is still due now, else moved to its latest
    /// deadline; an orphan (superseded by an earlier re-arm) does nothing.
    fn timer_fired(&mut self, node: NodeId, incarnation: u64, id: repsim_engine::io::TimerId, generation: u64) {
        let now_ns = self.now_ns;
        let slot = &mut self.nodes[node as usize];
        if slot.incarnation != incarnation {
            return;
        }
        let Some(state) = slot.timers.get_mut(&id) else { return };
        if state.queued.map(|(_, g)| g) != Some(generation) {
            return;
        }
        if state.generation == generation || state.due_ns <= now_ns {
            state.queued = None;
            return self.step_node(node, Input::Timer(id));
        }
        let (due_ns, latest) = (state.due_ns, state.generation);
        state.queued = Some((due_ns, latest));
        self.schedule(due_ns, EventKind::Timer { node, incarnation, id, generation: latest });
    }

    fn handle(&mut self, kind: EventKind) {
        match kind {
            EventKind::Input { node, incarnation, input } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.step_node(node, input);
                }
            }
            EventKind::Received { from, node, epoch, incarnation, input } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.received(from, node, epoch, input);
                }
            }
            EventKind::Timer { node, incarnation, id, generation } => {
                self.timer_fired(node, incarnation, id, generation)
            }
            EventKind::DiskDone { node, incarnation, io } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    let input = match self.nodes[node as usize].disk.complete_next() {
                        true => Input::DiskDone(io),
                        false => {
                            self.nodes[node as usize].cache_losses_ns.push(self.now_ns);
                            Input::DiskFailed(io)
                        }
                    };
                    self.step_node(node, input);
                }
            }
            EventKind::Arrive { from, to, epoch, packet, buffered } => self.arrive(from, to, epoch, packet, buffered),
            EventKind::RequestArrives { session, op_id } => self.request_arrives(session, op_id),
            EventKind::ReplyArrives { session, op_id, outcome } => self.reply_arrives(session, op_id, outcome),
            EventKind::OpenArrival => self.open_arrival(),
            EventKind::SessionReady { session } => self.session_ready(session),
            EventKind::CancelDue { session, op_id } => self.cancel_due(session, op_id),
            EventKind::ArchiveUploaded { node, incarnation, timeline, segno, len, fingerprint, content } => {
                self.archive_uploaded((node, incarnation), (timeline, segno), (len, fingerprint), content)
            }
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
            EventKind::PoolWaitTimeout { session, op_id, since_ns } => self.pool_wait_timeout(session, op_id, since_ns),
            EventKind::PgpoolCheck => self.pgpool_check(),
            EventKind::EndpointUpdate { node } => self.endpoint_update(node),
            EventKind::DataCopied { node, incarnation, image, upstream } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.data_copied(node, *image, upstream);
                }
            }
            EventKind::RestartAfterPanic { node, incarnation } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.boot(node);
                }
            }
            EventKind::BackupDue => self.backup_due(),
            EventKind::CreateSubscription { index } => self.create_subscription(index),
            EventKind::BackupUploaded { backup } => self.backup_uploaded(*backup),
            EventKind::BackupFetched { node, incarnation, image, bytes, target, ok } => {
                if self.nodes[node as usize].incarnation == incarnation {
                    self.backup_fetched(node, (*image, bytes), ok, target);
                }
            }
            EventKind::Resume { node } => {
                if !self.is_paused(node) {
                    self.release_held_events(node);
                }
            }
        }
    }

    /// The pause of `node` is over: what it missed is delivered now, in the order it came.
    pub(crate) fn release_held_events(&mut self, node: NodeId) {
        let held = std::mem::take(&mut self.nodes[node as usize].held_events);
        for kind in held {
            self.schedule(self.now_ns, kind);
        }
    }

    pub(crate) fn is_paused(&self, node: NodeId) -> bool {
        self.nodes[node as usize].paused_until_ns > self.now_ns
    }

    /// WAL flushed after this instant (a checkpoint record at the last moment) need not have
    /// reached every standby when the run ends: half the settle phase, at most 5 s, before it.
    pub fn converge_mark_ns(&self) -> u64 {
        const MAX_GRACE_NS: u64 = 5_000_000_000;
        self.end_ns - (self.scenario.settle_ns / 2).min(MAX_GRACE_NS)
    }

    fn sample(&mut self) {
        self.check_pool_waits();
        if self.flush_at_converge_mark.is_none() && self.now_ns >= self.converge_mark_ns() {
            let flushes = self.nodes.iter().map(|n| n.engine.as_ref().map(|e| e.flush_lsn())).collect();
            self.flush_at_converge_mark = Some(flushes);
        }
        for node in 0..self.nodes.len() as NodeId {
            if self.nodes[node as usize].disk_replaced {
                self.reclone_replaced_disk(node);
            }
        }
        let primary = self.router_primary.unwrap_or(self.scenario.cluster.primary as NodeId) as usize;
        if let Some(flush) = self.nodes[primary].engine.as_ref().map(|e| e.flush_lsn()) {
            // The primary's walsenders, and a cascading standby's (its lag is still measured
            // from the primary's WAL).
            let serving = (0..self.nodes.len()).filter(|&n| {
                n == primary || self.nodes[n].engine.as_ref().is_some_and(|e| e.role() == repsim_engine::Role::Standby)
            });
            let rows: Vec<_> =
                serving.filter_map(|n| self.nodes[n].engine.as_ref()).flat_map(|e| e.pg_stat_replication()).collect();
            for row in rows {
                let replayed = row.replay_lsn.unwrap_or(row.sent_lsn);
                let lag_bytes = flush.bytes_since(replayed);
                if let Some(slot) = self.standby_lag_bytes.get_mut(row.standby as usize) {
                    *slot = Some(lag_bytes);
                }
                let lags = [row.write_lag_ns, row.flush_lag_ns, row.replay_lag_ns];
                self.metrics.lag_sample(self.now_ns, &row.application_name, lag_bytes, lags);
            }
        }
        self.sample_archive(primary);
        self.keep_monitoring_sample();
        let next_ns = self.sampler.next_at();
        if next_ns <= self.end_ns {
            self.schedule(next_ns, EventKind::Sample);
        }
    }

    // ---- clients ----
}
