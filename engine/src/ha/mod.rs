//! The Patroni-style HA agent that runs beside every server (spec ha-and-routing §1–2), as a
//! sans-IO state machine. It reads the cluster view from the DCS every `loop_wait` (and at once
//! when the leader key changes), holds or races for the leader key, and tells its PostgreSQL
//! what to be: primary, standby of the leader, rewound or re-cloned. The driver carries its DCS
//! requests and probes over the network and applies its `PgAction`s.
//!
//! Modelled: the leader lease with `ttl`, renewal every cycle, `retry_timeout` on every DCS
//! request, self-demotion when the renewal fails (fencing), the leader race with probes of the
//! other members (2 s timeout; unreachable members are ignored) and its candidate rules
//! (`nofailover`, `failover_priority`, `maximum_lag_on_failover`, the `sync` key), the
//! `synchronous_mode`/`_strict` protocol with its ordering rule, planned switchover, rejoin by
//! pg_rewind or re-clone. Left out: failsafe mode, the watchdog, quorum mode, manual failover,
//! `primary_start_timeout` (a crashed primary whose agent survives restarts at once).

use std::collections::{BTreeMap, VecDeque};

use crate::io::{Instant, NodeId};
use crate::lsn::Lsn;
use crate::syncrep::{SyncMethod, SyncStandbyNames};
use crate::timeline::History;

mod follow;
mod lead;
mod race;

/// After changing `synchronous_standby_names`, Patroni sleeps this long and re-reads to
/// confirm the new synchronous standby.
pub const SYNC_RECHECK_NS: u64 = 2_000_000_000;

/// How long a leader-race probe of another member may take (hard-coded in Patroni).
pub const PROBE_TIMEOUT_NS: u64 = 2_000_000_000;

#[derive(Clone, Debug)]
pub struct HaConfig {
    pub name: String,
    pub node: NodeId,
    /// Every member: name and node id.
    pub members: Vec<(String, NodeId)>,
    pub ttl_ns: u64,
    pub loop_wait_ns: u64,
    pub retry_timeout_ns: u64,
    pub maximum_lag_on_failover_bytes: u64,
    pub synchronous_mode: bool,
    pub synchronous_mode_strict: bool,
    pub nofailover: bool,
    pub failover_priority: i32,
    pub use_pg_rewind: bool,
    pub remove_data_directory_on_rewind_failure: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgRole {
    Primary,
    Replica,
    Stopped,
}

/// What a member publishes (`members/<name>`) and answers to a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberState {
    pub name: String,
    pub role: PgRole,
    pub timeline: u32,
    /// Primary: its flush LSN; replica: max(receive, replay).
    pub wal_position: Lsn,
    pub nofailover: bool,
    pub failover_priority: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncKey {
    pub leader: String,
    pub standbys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Switchover {
    pub from: String,
    pub to: String,
}

/// The DCS as one read returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub leader: Option<String>,
    pub members: BTreeMap<String, MemberState>,
    pub sync: Option<SyncKey>,
    pub sync_revision: u64,
    /// `status.optime`: the leader's WAL position at its last renewal.
    pub optime: Lsn,
    /// The cluster's timeline and its history (the `history` key).
    pub timeline: u32,
    pub history: History,
    pub switchover: Option<Switchover>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DcsOp {
    Read,
    /// Create the leader key if absent, on my lease (`ttl`).
    AcquireLeader,
    /// Refresh my lease if the leader key is still mine.
    RenewLeader,
    /// Delete the leader key if it is mine.
    ReleaseLeader,
    PutMember(MemberState),
    PutStatus {
        optime: Lsn,
        timeline: u32,
        history: History,
    },
    /// Compare-and-set the `sync` key on its revision.
    CasSync {
        revision: u64,
        value: Option<SyncKey>,
    },
    ClearSwitchover,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DcsResult {
    View(ClusterView),
    Ok,
    /// A compare-and-set lost, or the key was not mine.
    Rejected,
}

/// One row of the leader's `pg_stat_replication`, as the agent needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandbyRow {
    pub name: String,
    pub streaming: bool,
    pub sync_state: &'static str,
    pub flush: Lsn,
}

/// The local PostgreSQL as the agent sees it (Patroni queries it every cycle).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgState {
    pub role: PgRole,
    pub timeline: u32,
    pub wal_position: Lsn,
    pub flush: Lsn,
    pub upstream: Option<NodeId>,
    /// The walreceiver was refused: our WAL goes past the upstream's fork point, or the
    /// upstream removed WAL we need (`wal_removed`).
    pub diverged: bool,
    /// The refusal was "requested WAL segment has already been removed".
    pub wal_removed: bool,
    pub standbys: Vec<StandbyRow>,
    pub synchronous_standby_names: SyncStandbyNames,
    /// The timeline history of the local server.
    pub history: History,
    pub shutdown_complete: bool,
    /// A rewind or re-clone is running.
    pub busy: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PgAction {
    StartPrimary,
    StartStandby {
        upstream: Option<NodeId>,
    },
    Promote,
    /// Immediate shutdown, restart read-only following `upstream` (Patroni `immediate-nolock`).
    Demote {
        upstream: Option<NodeId>,
    },
    Follow {
        upstream: NodeId,
    },
    Rewind {
        source: NodeId,
    },
    Reinit {
        source: NodeId,
    },
    SetSyncStandbyNames(SyncStandbyNames),
    /// Fast shutdown that ships all WAL to the standbys first (switchover).
    GracefulStop,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaInput {
    Tick,
    /// The DCS watch fired: the leader key changed or expired.
    LeaderChanged,
    DcsReply {
        request: u64,
        result: DcsResult,
    },
    ProbeReply {
        request: u64,
        state: MemberState,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HaOutput {
    Dcs {
        request: u64,
        op: DcsOp,
    },
    Probe {
        request: u64,
        to: NodeId,
    },
    Pg(PgAction),
    SetTimer {
        at: Instant,
    },
    /// What happened, for the trace and the metrics.
    Event(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Waiting for the next cycle.
    Idle,
    /// A DCS request is out; on timeout the cycle fails.
    Dcs {
        request: u64,
        op: DcsOp,
        deadline: Instant,
    },
    Probing {
        request: u64,
        deadline: Instant,
        replies: Vec<MemberState>,
    },
}

pub struct HaAgent {
    pub cfg: HaConfig,
    step: Step,
    next_request: u64,
    next_cycle: Instant,
    /// The view of this cycle.
    view: ClusterView,
    /// DCS writes still to do this cycle, in order.
    todo: VecDeque<DcsOp>,
    /// What to do with the local PostgreSQL once a write succeeds.
    after_acquire: bool,
    /// Leader until this local time (after a successful renewal: now + ttl).
    pub leader_until: Option<Instant>,
    /// Synchronous mode: the flush LSN when `synchronous_standby_names` last changed, and the
    /// standby named then.
    sync_change: Option<(String, Lsn)>,
    switchover_stopping: bool,
    /// `synchronous_standby_names` just changed: re-read in 2 s to confirm the new standby
    /// (Patroni sleeps 2 s and re-reads within the same cycle).
    recheck_soon: bool,
    /// §2.2 ordering: the `synchronous_standby_names` to set (and the standby it picks) once the
    /// CAS that drops the old standbys from the `sync` key has succeeded.
    ssn_after_cas: Option<(SyncStandbyNames, Option<String>)>,
    /// After a failed rewind without permission to re-clone, the node stays out of service.
    pub needs_reinit: bool,
    /// Patroni's `state_handler.role == primary`: this agent saw its PostgreSQL running as a
    /// primary (or started it as one) since it last started it read-only. A fresh agent (after
    /// the host rebooted) has not, and a promotion counts only once it completed.
    pg_ran_as_primary: bool,
}

impl HaAgent {
    pub fn new(cfg: HaConfig) -> HaAgent {
        HaAgent {
            cfg,
            step: Step::Idle,
            next_request: 1,
            next_cycle: Instant(0),
            view: ClusterView::default(),
            todo: VecDeque::new(),
            after_acquire: false,
            leader_until: None,
            sync_change: None,
            switchover_stopping: false,
            recheck_soon: false,
            ssn_after_cas: None,
            needs_reinit: false,
            pg_ran_as_primary: false,
        }
    }

    fn node_of(&self, name: &str) -> Option<NodeId> {
        self.cfg.members.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }

    fn send(&mut self, now: Instant, op: DcsOp, out: &mut Vec<HaOutput>) {
        let request = self.next_request;
        self.next_request += 1;
        let deadline = Instant(now.0 + self.cfg.retry_timeout_ns);
        out.push(HaOutput::Dcs { request, op: op.clone() });
        out.push(HaOutput::SetTimer { at: deadline });
        self.step = Step::Dcs { request, op, deadline };
    }

    fn end_cycle(&mut self, now: Instant, out: &mut Vec<HaOutput>) {
        self.step = Step::Idle;
        self.todo.clear();
        self.ssn_after_cas = None;
        let wait = if self.switchover_stopping {
            100_000_000
        } else if std::mem::take(&mut self.recheck_soon) {
            SYNC_RECHECK_NS.min(self.cfg.loop_wait_ns)
        } else {
            self.cfg.loop_wait_ns
        };
        // A cycle that overran `wait` is followed at once (Patroni: `nap_time <= 0`).
        self.next_cycle = Instant(self.next_cycle.0.max(now.0.saturating_sub(wait)) + wait).max(now);
        out.push(HaOutput::SetTimer { at: self.next_cycle });
    }

    /// The one entry point. `pg` is the local PostgreSQL right now.
    pub fn step(&mut self, now: Instant, input: HaInput, pg: &PgState, out: &mut Vec<HaOutput>) {
        if pg.role == PgRole::Primary {
            self.pg_ran_as_primary = true;
        }
        let first = out.len();
        self.dispatch(now, input, pg, out);
        for output in &out[first..] {
            match output {
                HaOutput::Pg(PgAction::StartPrimary) => self.pg_ran_as_primary = true,
                HaOutput::Pg(
                    PgAction::StartStandby { .. }
                    | PgAction::Demote { .. }
                    | PgAction::Rewind { .. }
                    | PgAction::Reinit { .. },
                ) => self.pg_ran_as_primary = false,
                _ => {}
            }
        }
    }

    fn dispatch(&mut self, now: Instant, input: HaInput, pg: &PgState, out: &mut Vec<HaOutput>) {
        match input {
            HaInput::Tick => self.on_tick(now, pg, out),
            HaInput::LeaderChanged => {
                if self.step == Step::Idle && !self.is_leader(now) {
                    self.start_cycle(now, out);
                }
            }
            HaInput::DcsReply { request, result } => self.on_dcs_reply(now, request, result, pg, out),
            HaInput::ProbeReply { request, state } => {
                if let Step::Probing { request: r, replies, .. } = &mut self.step {
                    if *r == request {
                        replies.push(state);
                        if replies.len() + 1 >= self.cfg.members.len() {
                            self.finish_race(now, pg, out);
                        }
                    }
                }
            }
        }
    }

    pub fn is_leader(&self, now: Instant) -> bool {
        self.leader_until.is_some_and(|until| now < until)
    }

    fn start_cycle(&mut self, now: Instant, out: &mut Vec<HaOutput>) {
        self.next_cycle = now;
        self.send(now, DcsOp::Read, out);
    }

    fn on_tick(&mut self, now: Instant, pg: &PgState, out: &mut Vec<HaOutput>) {
        match &self.step {
            Step::Idle if now >= self.next_cycle => self.start_cycle(now, out),
            Step::Idle => out.push(HaOutput::SetTimer { at: self.next_cycle }),
            Step::Dcs { deadline, op, .. } if now >= *deadline => {
                let op = op.clone();
                self.dcs_failed(now, op, pg, out)
            }
            Step::Probing { deadline, .. } if now >= *deadline => self.finish_race(now, pg, out),
            // A tick before the deadline (the local clock was stepped back or slowed since the
            // timer was set): wait on, or the request is never given up on.
            Step::Dcs { deadline, .. } | Step::Probing { deadline, .. } => {
                out.push(HaOutput::SetTimer { at: *deadline })
            }
        }
    }

    /// A DCS request got no answer within `retry_timeout`.
    fn dcs_failed(&mut self, now: Instant, op: DcsOp, pg: &PgState, out: &mut Vec<HaOutput>) {
        out.push(HaOutput::Event(format!("DCS request {op:?} failed")));
        if matches!(op, DcsOp::Read | DcsOp::RenewLeader) && (pg.role == PgRole::Primary || self.leader_until.is_some())
        {
            // §1.5: a leader that cannot reach the DCS demotes (offline: follows nobody).
            self.leader_until = None;
            // The demotion replaces a switchover's graceful stop: none is under way any more.
            self.switchover_stopping = false;
            if pg.role == PgRole::Primary {
                out.push(HaOutput::Event("demoting: lost contact with the DCS".into()));
                out.push(HaOutput::Pg(PgAction::Demote { upstream: None }));
            }
        }
        self.end_cycle(now, out);
    }

    fn on_dcs_reply(&mut self, now: Instant, request: u64, result: DcsResult, pg: &PgState, out: &mut Vec<HaOutput>) {
        let Step::Dcs { request: expected, op, .. } = &self.step else { return };
        if *expected != request {
            return; // a late answer to a request already given up on
        }
        let op = op.clone();
        match (op, result) {
            (DcsOp::Read, DcsResult::View(view)) => {
                self.view = view;
                self.decide(now, pg, out);
            }
            (DcsOp::RenewLeader, DcsResult::Ok) => {
                self.leader_until = Some(Instant(now.0 + self.cfg.ttl_ns));
                self.lead(now, pg, out);
            }
            (DcsOp::RenewLeader, _) => {
                self.leader_until = None;
                out.push(HaOutput::Event("demoting: the leader key is no longer mine".into()));
                if pg.role == PgRole::Primary {
                    out.push(HaOutput::Pg(PgAction::Demote { upstream: None }));
                }
                self.end_cycle(now, out);
            }
            (DcsOp::AcquireLeader, DcsResult::Ok) => {
                self.leader_until = Some(Instant(now.0 + self.cfg.ttl_ns));
                out.push(HaOutput::Event("acquired the leader key".into()));
                self.after_acquire = true;
                if self.cfg.synchronous_mode {
                    // Before promoting: sync = {leader: me, sync_standby: none} (CAS).
                    let value = Some(SyncKey { leader: self.cfg.name.clone(), standbys: Vec::new() });
                    self.send(now, DcsOp::CasSync { revision: self.view.sync_revision, value }, out);
                } else {
                    self.promote_now(now, pg, out);
                }
            }
            (DcsOp::AcquireLeader, _) => {
                out.push(HaOutput::Event("lost the leader race".into()));
                step_down(pg, out);
                self.publish(now, pg, out);
            }
            (DcsOp::CasSync { .. }, DcsResult::Ok) if self.after_acquire => self.promote_now(now, pg, out),
            (DcsOp::CasSync { .. }, _) if self.after_acquire => {
                // Patroni postpones promotion to the next cycle.
                self.after_acquire = false;
                self.end_cycle(now, out);
            }
            (DcsOp::CasSync { .. }, DcsResult::Ok) if self.ssn_after_cas.is_some() => {
                if let Some((names, picked)) = self.ssn_after_cas.take() {
                    out.push(HaOutput::Pg(PgAction::SetSyncStandbyNames(names)));
                    self.sync_change = picked.map(|p| (p, pg.flush));
                }
                self.next_write(now, out);
            }
            (DcsOp::ReleaseLeader, _) => {
                self.leader_until = None;
                self.switchover_stopping = false;
                out.push(HaOutput::Event("released the leader key for a switchover".into()));
                self.end_cycle(now, out);
            }
            (_, DcsResult::Rejected) => self.end_cycle(now, out),
            _ => self.next_write(now, out),
        }
    }

    fn promote_now(&mut self, now: Instant, pg: &PgState, out: &mut Vec<HaOutput>) {
        self.after_acquire = false;
        if self.cfg.synchronous_mode {
            let names = if self.cfg.synchronous_mode_strict { star() } else { SyncStandbyNames::empty() };
            out.push(HaOutput::Pg(PgAction::SetSyncStandbyNames(names)));
            self.sync_change = None;
        }
        if pg.role != PgRole::Primary {
            out.push(HaOutput::Event("promoting".into()));
            out.push(HaOutput::Pg(PgAction::Promote));
        }
        if self.view.switchover.is_some() {
            self.todo.push_back(DcsOp::ClearSwitchover);
        }
        self.publish(now, pg, out);
    }

    /// Queue the member key and run the queued writes.
    fn publish(&mut self, now: Instant, pg: &PgState, out: &mut Vec<HaOutput>) {
        let me = self.member_state(pg);
        self.todo.push_back(DcsOp::PutMember(me));
        self.next_write(now, out);
    }

    fn next_write(&mut self, now: Instant, out: &mut Vec<HaOutput>) {
        match self.todo.pop_front() {
            Some(op) => self.send(now, op, out),
            None => self.end_cycle(now, out),
        }
    }

    pub fn member_state(&self, pg: &PgState) -> MemberState {
        MemberState {
            name: self.cfg.name.clone(),
            role: pg.role,
            timeline: pg.timeline,
            wal_position: pg.wal_position,
            // Patroni's `Tags.nofailover` (patroni/tags.py): without the tag, a member with
            // `failover_priority` <= 0 is nofailover too, and the other members' leader race
            // skips it (swarm seed 18003: a priority-0 member ahead in WAL blocked every race).
            nofailover: self.cfg.nofailover || self.cfg.failover_priority <= 0,
            failover_priority: self.cfg.failover_priority,
        }
    }

    /// §1.3 steps 4–7, with the cluster view of this cycle.
    fn decide(&mut self, now: Instant, pg: &PgState, out: &mut Vec<HaOutput>) {
        let me = self.cfg.name.clone();
        let leader = self.view.leader.clone();
        if pg.busy {
            // A rewind or clone is running: only keep publishing.
            return self.publish(now, pg, out);
        }
        if leader.as_deref() == Some(me.as_str()) {
            if pg.role == PgRole::Stopped && !self.switchover_stopping {
                // Patroni `Ha.recover()`: only a PostgreSQL it knew as a running primary is
                // started as a primary again; any other (one that died mid-promotion, or one a
                // fresh agent finds stopped) starts read-only and is promoted next cycle, so it
                // takes a new timeline.
                if self.pg_ran_as_primary {
                    out.push(HaOutput::Event("starting primary after failure".into()));
                    out.push(HaOutput::Pg(PgAction::StartPrimary));
                } else {
                    out.push(HaOutput::Event("starting as readonly because i had the session lock".into()));
                    out.push(HaOutput::Pg(PgAction::StartStandby { upstream: None }));
                }
            }
            return self.send(now, DcsOp::RenewLeader, out);
        }
        self.leader_until = None;
        match leader {
            None => self.race(now, pg, out),
            Some(leader) => {
                let upstream = self.node_of(&leader);
                self.follow(pg, upstream, out);
                self.publish(now, pg, out);
            }
        }
    }
}

/// §1.6: a node that may not or did not take the free key follows, and following demotes a
/// running primary (Patroni `follow` → `demote('immediate-nolock')`).
fn step_down(pg: &PgState, out: &mut Vec<HaOutput>) {
    if pg.role == PgRole::Primary {
        out.push(HaOutput::Event("demoting: not the leader".into()));
        out.push(HaOutput::Pg(PgAction::Demote { upstream: None }));
    }
}

fn star() -> SyncStandbyNames {
    SyncStandbyNames { method: SyncMethod::Priority, num_sync: 1, names: vec!["*".into()] }
}
