//! The Patroni-style HA agent (`repsim_engine::ha`, spec ha-and-routing §1–2) driven by hand: its
//! decisions as pure functions of the DCS view and the local PostgreSQL. The test plays the DCS,
//! the other members' REST APIs and the clock: it feeds `Tick`s, answers every DCS request and
//! probe the agent emits, and checks the `PgAction`s and DCS writes that come out.

use std::collections::BTreeMap;

use repsim_engine::ha::{
    ClusterView, DcsOp, DcsResult, HaAgent, HaConfig, HaInput, HaOutput, MemberState, PgAction, PgRole, PgState,
    StandbyRow, Switchover, SyncKey, PROBE_TIMEOUT_NS,
};
use repsim_engine::syncrep::{SyncMethod, SyncStandbyNames};
use repsim_engine::timeline::History;
use repsim_engine::{Instant, Lsn, NodeId};

const SEC: u64 = 1_000_000_000;
const TTL: u64 = 30 * SEC;
const LOOP_WAIT: u64 = 10 * SEC;
const RETRY_TIMEOUT: u64 = 10 * SEC;
const MAX_LAG: u64 = 1024 * 1024;
/// Where every member's WAL is unless a test says otherwise.
const WAL: Lsn = Lsn(0x500_0000);
const NAMES: [&str; 3] = ["pg1", "pg2", "pg3"];
/// The agent under test is pg1 (node 0) unless a test builds another.
const PG2: NodeId = 1;
const PG3: NodeId = 2;

fn config(name: &str) -> HaConfig {
    HaConfig {
        name: name.into(),
        node: NAMES.iter().position(|n| *n == name).unwrap() as NodeId,
        members: NAMES.iter().enumerate().map(|(i, n)| (n.to_string(), i as NodeId)).collect(),
        ttl_ns: TTL,
        loop_wait_ns: LOOP_WAIT,
        retry_timeout_ns: RETRY_TIMEOUT,
        maximum_lag_on_failover_bytes: MAX_LAG,
        synchronous_mode: false,
        synchronous_mode_strict: false,
        nofailover: false,
        failover_priority: 1,
        use_pg_rewind: false,
        remove_data_directory_on_rewind_failure: false,
    }
}

fn sync_config(name: &str) -> HaConfig {
    HaConfig { synchronous_mode: true, ..config(name) }
}

fn pg(role: PgRole) -> PgState {
    PgState {
        role,
        timeline: 1,
        wal_position: WAL,
        flush: WAL,
        upstream: None,
        diverged: false,
        wal_removed: false,
        standbys: Vec::new(),
        synchronous_standby_names: SyncStandbyNames::empty(),
        history: History::default(),
        shutdown_complete: false,
        busy: false,
    }
}

fn member(name: &str, role: PgRole, wal: Lsn) -> MemberState {
    MemberState { name: name.into(), role, timeline: 1, wal_position: wal, nofailover: false, failover_priority: 1 }
}

/// The DCS as a read returns it: every member published, `leader` holding the key (or none),
/// `status.optime` at `WAL`.
fn view(leader: Option<&str>) -> ClusterView {
    let members: BTreeMap<String, MemberState> = NAMES
        .iter()
        .map(|n| {
            let role = if Some(*n) == leader { PgRole::Primary } else { PgRole::Replica };
            (n.to_string(), member(n, role, WAL))
        })
        .collect();
    ClusterView {
        leader: leader.map(String::from),
        members,
        sync: None,
        sync_revision: 0,
        optime: WAL,
        timeline: 1,
        history: History::default(),
        switchover: None,
    }
}

fn sync_key(leader: &str, standbys: &[&str]) -> Option<SyncKey> {
    Some(SyncKey { leader: leader.into(), standbys: standbys.iter().map(|s| s.to_string()).collect() })
}

fn first_one(name: &str) -> SyncStandbyNames {
    SyncStandbyNames { method: SyncMethod::Priority, num_sync: 1, names: vec![name.into()] }
}

fn star() -> SyncStandbyNames {
    SyncStandbyNames { method: SyncMethod::Priority, num_sync: 1, names: vec!["*".into()] }
}

fn row(name: &str, streaming: bool, sync_state: &'static str, flush: Lsn) -> StandbyRow {
    StandbyRow { name: name.into(), streaming, sync_state, flush }
}

/// One agent, its clock and its local PostgreSQL; `log` keeps every output in order.
struct Rig {
    ha: HaAgent,
    now: u64,
    pg: PgState,
    log: Vec<HaOutput>,
}

impl Rig {
    fn new(cfg: HaConfig, pg: PgState) -> Rig {
        Rig { ha: HaAgent::new(cfg), now: 100 * SEC, pg, log: Vec::new() }
    }

    fn feed(&mut self, input: HaInput) -> Vec<HaOutput> {
        let mut out = Vec::new();
        self.ha.step(Instant(self.now), input, &self.pg, &mut out);
        self.log.extend(out.iter().cloned());
        out
    }

    fn tick(&mut self) -> Vec<HaOutput> {
        self.feed(HaInput::Tick)
    }

    fn advance(&mut self, ns: u64) {
        self.now += ns;
    }

    /// Starts a cycle with a Tick, checks that it reads the DCS and answers with `view`.
    fn read(&mut self, view: ClusterView) -> Vec<HaOutput> {
        let out = self.tick();
        let (request, op) = dcs(&out).expect("a cycle starts with a DCS read");
        assert_eq!(op, DcsOp::Read);
        self.feed(HaInput::DcsReply { request, result: DcsResult::View(view) })
    }

    /// Answers the DCS request in `out` with `result`.
    fn answer(&mut self, out: &[HaOutput], result: DcsResult) -> Vec<HaOutput> {
        let (request, _) = dcs(out).expect("a DCS request is outstanding");
        self.feed(HaInput::DcsReply { request, result })
    }

    /// Answers every DCS write from `out` on with `reply(op)` until the cycle ends; returns the
    /// writes in the order they were sent and everything emitted meanwhile (including `out`).
    fn drain(&mut self, out: Vec<HaOutput>, reply: impl Fn(&DcsOp) -> DcsResult) -> (Vec<DcsOp>, Vec<HaOutput>) {
        let mut ops = Vec::new();
        let mut all = out.clone();
        let mut last = out;
        while let Some((request, op)) = dcs(&last) {
            assert!(ops.len() < 20, "the agent keeps writing: {ops:?}");
            ops.push(op.clone());
            last = self.feed(HaInput::DcsReply { request, result: reply(&op) });
            all.extend(last.iter().cloned());
        }
        (ops, all)
    }

    /// Answers every DCS write with Ok until the cycle ends.
    fn drain_ok(&mut self, out: Vec<HaOutput>) -> (Vec<DcsOp>, Vec<HaOutput>) {
        self.drain(out, |_| DcsResult::Ok)
    }

    /// One whole cycle: read `view`, answer every write with Ok.
    fn cycle(&mut self, view: ClusterView) -> (Vec<DcsOp>, Vec<HaOutput>) {
        let out = self.read(view);
        self.drain_ok(out)
    }
}

/// The one DCS request in a batch of outputs, if any.
fn dcs(out: &[HaOutput]) -> Option<(u64, DcsOp)> {
    let requests: Vec<(u64, DcsOp)> = out
        .iter()
        .filter_map(|o| match o {
            HaOutput::Dcs { request, op } => Some((*request, op.clone())),
            _ => None,
        })
        .collect();
    assert!(requests.len() <= 1, "more than one DCS request at a time: {requests:?}");
    requests.into_iter().next()
}

fn pg_actions(out: &[HaOutput]) -> Vec<PgAction> {
    out.iter()
        .filter_map(|o| match o {
            HaOutput::Pg(action) => Some(action.clone()),
            _ => None,
        })
        .collect()
}

fn probes(out: &[HaOutput]) -> Vec<(u64, NodeId)> {
    out.iter()
        .filter_map(|o| match o {
            HaOutput::Probe { request, to } => Some((*request, *to)),
            _ => None,
        })
        .collect()
}

fn timers(out: &[HaOutput]) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            HaOutput::SetTimer { at } => Some(at.0),
            _ => None,
        })
        .collect()
}

/// Position of the first output matching `f` in `out`.
fn position(out: &[HaOutput], f: impl Fn(&HaOutput) -> bool) -> Option<usize> {
    out.iter().position(f)
}

fn is_pg(action: PgAction) -> impl Fn(&HaOutput) -> bool {
    move |o| *o == HaOutput::Pg(action.clone())
}

fn is_op(f: impl Fn(&DcsOp) -> bool) -> impl Fn(&HaOutput) -> bool {
    move |o| matches!(o, HaOutput::Dcs { op, .. } if f(op))
}

fn has_op(ops: &[DcsOp], f: impl Fn(&DcsOp) -> bool) -> bool {
    ops.iter().any(f)
}

fn is_acquire(op: &DcsOp) -> bool {
    *op == DcsOp::AcquireLeader
}

/// Starts a leader race on `rig` (leader key absent) and returns the probes it sent.
fn start_race(rig: &mut Rig, view: ClusterView) -> (Vec<(u64, NodeId)>, Vec<HaOutput>) {
    let out = rig.read(view);
    (probes(&out), out)
}

fn reply_probe(rig: &mut Rig, request: u64, state: MemberState) -> Vec<HaOutput> {
    rig.feed(HaInput::ProbeReply { request, state })
}

// ---------------------------------------------------------------------------------------------
// Leader key mine (§1.3 step 6, §1.4, §1.5)
// ---------------------------------------------------------------------------------------------

#[test]
fn leader_key_mine_renews_the_lock_and_touches_nothing_else() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let out = rig.read(view(Some("pg1")));
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::RenewLeader));
    assert!(pg_actions(&out).is_empty(), "{out:?}");
    assert!(probes(&out).is_empty());
}

#[test]
fn renewal_ok_writes_status_then_member_and_makes_me_leader_for_ttl() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let out = rig.read(view(Some("pg1")));
    let (ops, all) = rig.drain_ok(out);
    let me = rig.ha.member_state(&rig.pg);
    assert_eq!(
        ops,
        vec![
            DcsOp::RenewLeader,
            DcsOp::PutStatus { optime: WAL, timeline: 1, history: History::default() },
            DcsOp::PutMember(me),
        ]
    );
    assert!(pg_actions(&all).is_empty(), "a healthy primary leader is left alone: {all:?}");
    assert_eq!(rig.ha.leader_until, Some(Instant(rig.now + TTL)));
    assert!(rig.ha.is_leader(Instant(rig.now + TTL - 1)) && !rig.ha.is_leader(Instant(rig.now + TTL)));
    // The next cycle is loop_wait after this one started.
    assert_eq!(timers(&all).last(), Some(&(rig.now + LOOP_WAIT)));
}

#[test]
fn renewal_ok_promotes_a_replica_that_holds_the_key() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Replica));
    let out = rig.read(view(Some("pg1")));
    assert!(pg_actions(&out).is_empty(), "no promotion before the renewal succeeded: {out:?}");
    let out = rig.answer(&out, DcsResult::Ok);
    assert_eq!(pg_actions(&out), vec![PgAction::Promote]);
}

#[test]
fn a_primary_that_died_while_holding_the_key_is_started_as_primary_again() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    rig.cycle(view(Some("pg1")));
    rig.advance(LOOP_WAIT);
    rig.pg = pg(PgRole::Stopped);
    let out = rig.read(view(Some("pg1")));
    assert_eq!(pg_actions(&out), vec![PgAction::StartPrimary]);
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::RenewLeader));
}

/// Patroni `recover()`: a PostgreSQL the agent never saw running as a primary (it died during
/// its promotion, or the agent itself is new after a reboot) starts read-only and is promoted,
/// so it takes a new timeline instead of writing on the old one.
#[test]
fn a_stopped_postgres_not_known_as_primary_starts_read_only_then_is_promoted() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Replica));
    rig.cycle(view(Some("pg1")));
    rig.advance(LOOP_WAIT);
    rig.pg = pg(PgRole::Stopped);
    let out = rig.read(view(Some("pg1")));
    assert_eq!(pg_actions(&out), vec![PgAction::StartStandby { upstream: None }]);
    rig.drain_ok(out);
    rig.advance(LOOP_WAIT);
    rig.pg = pg(PgRole::Replica);
    let (_, all) = rig.cycle(view(Some("pg1")));
    assert_eq!(pg_actions(&all), vec![PgAction::Promote]);
    // A fresh agent (the host rebooted) does not know what its PostgreSQL was.
    let mut fresh = Rig::new(config("pg1"), pg(PgRole::Stopped));
    let out = fresh.read(view(Some("pg1")));
    assert_eq!(pg_actions(&out), vec![PgAction::StartStandby { upstream: None }]);
}

#[test]
fn renewal_rejected_demotes_a_primary_at_once_without_publishing() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let out = rig.read(view(Some("pg1")));
    let (ops, all) = rig.drain(out, |_| DcsResult::Rejected);
    assert_eq!(ops, vec![DcsOp::RenewLeader], "nothing is written after losing the key");
    assert_eq!(pg_actions(&all), vec![PgAction::Demote { upstream: None }]);
    assert_eq!(rig.ha.leader_until, None);
}

#[test]
fn renewal_rejected_on_a_replica_demotes_nothing() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Replica));
    let out = rig.read(view(Some("pg1")));
    let (_, all) = rig.drain(out, |_| DcsResult::Rejected);
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    assert!(!rig.ha.is_leader(Instant(rig.now)));
}

#[test]
fn a_read_that_times_out_demotes_the_primary_offline() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    // A good cycle first: leader until now + ttl.
    rig.cycle(view(Some("pg1")));
    assert!(rig.ha.is_leader(Instant(rig.now)));
    rig.advance(LOOP_WAIT);
    let out = rig.tick();
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::Read));
    let deadline = rig.now + RETRY_TIMEOUT;
    assert!(timers(&out).contains(&deadline), "a timer for the retry_timeout deadline: {out:?}");
    rig.advance(RETRY_TIMEOUT - 1);
    let out = rig.tick();
    assert!(pg_actions(&out).is_empty(), "still within retry_timeout: {out:?}");
    rig.advance(1);
    let out = rig.tick();
    assert_eq!(pg_actions(&out), vec![PgAction::Demote { upstream: None }]);
    assert_eq!(rig.ha.leader_until, None);
}

#[test]
fn a_renewal_that_times_out_demotes_the_primary_offline() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let out = rig.read(view(Some("pg1")));
    let (renewal, op) = dcs(&out).unwrap();
    assert_eq!(op, DcsOp::RenewLeader);
    rig.advance(RETRY_TIMEOUT - 1);
    assert!(pg_actions(&rig.tick()).is_empty());
    rig.advance(1);
    let out = rig.tick();
    assert_eq!(pg_actions(&out), vec![PgAction::Demote { upstream: None }]);
    // A late answer to the abandoned renewal changes nothing.
    let late = rig.feed(HaInput::DcsReply { request: renewal, result: DcsResult::Ok });
    assert!(pg_actions(&late).is_empty() && dcs(&late).is_none(), "{late:?}");
    assert_eq!(rig.ha.leader_until, None);
}

#[test]
fn a_read_that_times_out_on_a_replica_changes_nothing() {
    let mut rig = Rig::new(config("pg2"), PgState { upstream: Some(0), ..pg(PgRole::Replica) });
    let out = rig.tick();
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::Read));
    rig.advance(RETRY_TIMEOUT);
    let out = rig.tick();
    assert!(pg_actions(&out).is_empty(), "a replica cut off from the DCS keeps streaming: {out:?}");
    assert!(dcs(&out).is_none() && probes(&out).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Leader key someone else's (§1.3 step 7, §1.8)
// ---------------------------------------------------------------------------------------------

#[test]
fn another_leader_demotes_my_primary_to_follow_it() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let out = rig.read(view(Some("pg2")));
    assert_eq!(pg_actions(&out), vec![PgAction::Demote { upstream: Some(PG2) }]);
    let (ops, _) = rig.drain_ok(out);
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "only the member key: {ops:?}");
    assert_eq!(rig.ha.leader_until, None);
}

#[test]
fn a_replica_following_another_node_is_pointed_at_the_leader() {
    let mut rig = Rig::new(config("pg1"), PgState { upstream: Some(PG3), ..pg(PgRole::Replica) });
    let out = rig.read(view(Some("pg2")));
    assert_eq!(pg_actions(&out), vec![PgAction::Follow { upstream: PG2 }]);
}

#[test]
fn a_replica_already_following_the_leader_is_left_alone() {
    let mut rig = Rig::new(config("pg1"), PgState { upstream: Some(PG2), ..pg(PgRole::Replica) });
    let (ops, all) = rig.cycle(view(Some("pg2")));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(m)] if m.role == PgRole::Replica && m.wal_position == WAL));
}

#[test]
fn a_stopped_postgres_is_started_as_a_standby_of_the_leader() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Stopped));
    let out = rig.read(view(Some("pg3")));
    assert_eq!(pg_actions(&out), vec![PgAction::StartStandby { upstream: Some(PG3) }]);
}

#[test]
fn a_diverged_replica_is_rewound_when_use_pg_rewind() {
    let cfg = HaConfig { use_pg_rewind: true, remove_data_directory_on_rewind_failure: true, ..config("pg1") };
    let mut rig = Rig::new(cfg, PgState { diverged: true, upstream: Some(PG2), ..pg(PgRole::Replica) });
    let out = rig.read(view(Some("pg2")));
    assert_eq!(pg_actions(&out), vec![PgAction::Rewind { source: PG2 }], "rewind is tried before re-cloning");
    assert!(!rig.ha.needs_reinit);
}

#[test]
fn a_failed_rewind_is_followed_by_a_reinit_when_allowed() {
    let cfg = HaConfig { use_pg_rewind: true, remove_data_directory_on_rewind_failure: true, ..config("pg1") };
    let mut rig = Rig::new(cfg, PgState { diverged: true, upstream: Some(PG2), ..pg(PgRole::Replica) });
    rig.cycle(view(Some("pg2")));
    let mut out = Vec::new();
    rig.ha.rewind_failed(&mut out);
    assert!(rig.ha.needs_reinit);
    rig.advance(LOOP_WAIT);
    let out = rig.read(view(Some("pg2")));
    assert_eq!(pg_actions(&out), vec![PgAction::Reinit { source: PG2 }]);
    assert!(!rig.ha.needs_reinit);
}

#[test]
fn a_diverged_replica_is_recloned_when_only_remove_data_directory_on_rewind_failure() {
    let cfg = HaConfig { remove_data_directory_on_rewind_failure: true, ..config("pg1") };
    let mut rig = Rig::new(cfg, PgState { diverged: true, upstream: Some(PG2), ..pg(PgRole::Replica) });
    let out = rig.read(view(Some("pg2")));
    assert_eq!(pg_actions(&out), vec![PgAction::Reinit { source: PG2 }]);
}

/// The agent says what PostgreSQL said: a standby whose leader recycled the WAL it needs did
/// not diverge (issue: HA log truth).
#[test]
fn a_standby_whose_wal_was_removed_is_logged_as_such_not_as_diverged() {
    let state = PgState { diverged: true, wal_removed: true, upstream: Some(PG2), ..pg(PgRole::Replica) };
    let mut rig = Rig::new(config("pg1"), state);
    let (_, all) = rig.cycle(view(Some("pg2")));
    let events: Vec<&String> =
        all.iter().filter_map(|o| if let HaOutput::Event(e) = o { Some(e) } else { None }).collect();
    assert!(events.iter().any(|e| e.contains("requested WAL segment has already been removed")), "{events:?}");
    assert!(!events.iter().any(|e| e.contains("diverged")), "{events:?}");
}

#[test]
fn a_diverged_replica_without_rewind_or_reinit_stays_out_of_service() {
    let mut rig = Rig::new(config("pg1"), PgState { diverged: true, upstream: Some(PG2), ..pg(PgRole::Replica) });
    let (_, all) = rig.cycle(view(Some("pg2")));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    assert!(rig.ha.needs_reinit);
    // Later cycles do nothing either, and it never races for the key, even as the most
    // advanced member with the leader gone.
    rig.advance(LOOP_WAIT);
    let (_, all) = rig.cycle(view(Some("pg2")));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    rig.advance(LOOP_WAIT);
    let out = rig.read(view(None));
    assert!(probes(&out).is_empty(), "a node needing reinit is no candidate: {out:?}");
    let (ops, all) = rig.drain_ok(out);
    assert!(!has_op(&ops, is_acquire));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    // Even stopped, it is not started again.
    rig.pg = pg(PgRole::Stopped);
    rig.advance(LOOP_WAIT);
    let (_, all) = rig.cycle(view(Some("pg2")));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
}

// ---------------------------------------------------------------------------------------------
// Leader key absent: the race (§1.6)
// ---------------------------------------------------------------------------------------------

/// A race that is refused before any probe: no probe, no AcquireLeader, the member key only.
fn assert_no_race(rig: &mut Rig, view: ClusterView) {
    let out = rig.read(view);
    assert!(probes(&out).is_empty(), "probes sent: {out:?}");
    let (ops, all) = rig.drain_ok(out);
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "{ops:?}");
    assert!(!pg_actions(&all).contains(&PgAction::Promote));
}

#[test]
fn nofailover_never_races() {
    let mut rig = Rig::new(HaConfig { nofailover: true, ..config("pg2") }, pg(PgRole::Replica));
    assert_no_race(&mut rig, view(None));
}

#[test]
fn failover_priority_zero_never_races() {
    let mut rig = Rig::new(HaConfig { failover_priority: 0, ..config("pg2") }, pg(PgRole::Replica));
    assert_no_race(&mut rig, view(None));
}

#[test]
fn a_replica_lagging_beyond_maximum_lag_on_failover_does_not_race() {
    let behind = PgState { wal_position: Lsn(WAL.0 - MAX_LAG - 1), ..pg(PgRole::Replica) };
    let mut rig = Rig::new(config("pg2"), behind);
    assert_no_race(&mut rig, view(None));
}

#[test]
fn a_replica_lagging_exactly_maximum_lag_on_failover_still_races() {
    let at_limit = PgState { wal_position: Lsn(WAL.0 - MAX_LAG), ..pg(PgRole::Replica) };
    let mut rig = Rig::new(config("pg2"), at_limit);
    let (sent, _) = start_race(&mut rig, view(None));
    assert_eq!(sent.len(), 2, "lag == maximum_lag_on_failover is allowed");
}

#[test]
fn synchronous_mode_with_a_sync_key_not_naming_me_does_not_race() {
    let mut v = view(None);
    v.sync = sync_key("pg1", &["pg3"]);
    let mut rig = Rig::new(sync_config("pg2"), pg(PgRole::Replica));
    assert_no_race(&mut rig, v);
}

#[test]
fn synchronous_mode_with_a_sync_key_naming_me_races() {
    let mut v = view(None);
    v.sync = sync_key("pg1", &["pg2"]);
    let mut rig = Rig::new(sync_config("pg2"), pg(PgRole::Replica));
    let (sent, _) = start_race(&mut rig, v);
    assert_eq!(sent.len(), 2);
}

#[test]
fn a_candidate_probes_every_other_member_with_the_probe_timeout() {
    let mut rig = Rig::new(config("pg2"), pg(PgRole::Replica));
    let (sent, out) = start_race(&mut rig, view(None));
    let mut to: Vec<NodeId> = sent.iter().map(|(_, to)| *to).collect();
    to.sort();
    assert_eq!(to, vec![0, PG3], "every member but me");
    assert!(sent.iter().all(|(r, _)| *r == sent[0].0), "one request id for the whole round");
    assert!(timers(&out).contains(&(rig.now + PROBE_TIMEOUT_NS)));
    assert!(dcs(&out).is_none(), "no AcquireLeader before the probes are in");
}

#[test]
fn a_candidate_probes_only_members_in_the_dcs_without_nofailover() {
    // Spec §1.6 check 10: pg1's member key expired (it is gone from the view) and pg3 is
    // nofailover: nobody is probed, and the race does not wait for the probe timeout.
    let mut rig = Rig::new(config("pg2"), pg(PgRole::Replica));
    let mut v = view(None);
    v.members.remove("pg1");
    v.members.get_mut("pg3").expect("pg3").nofailover = true;
    let out = rig.read(v);
    assert!(probes(&out).is_empty(), "{out:?}");
    assert!(dcs(&out).is_some_and(|(_, op)| is_acquire(&op)), "it takes the key at once: {out:?}");
}

/// Runs a race on pg2 (wal `WAL`) where pg1 answers `pg1` and pg3 answers `pg3`; returns the DCS
/// ops that followed.
fn race_with_replies(cfg: HaConfig, v: ClusterView, pg1: MemberState, pg3: MemberState) -> (Vec<DcsOp>, Vec<HaOutput>) {
    let mut rig = Rig::new(cfg, pg(PgRole::Replica));
    let (sent, _) = start_race(&mut rig, v);
    let request = sent[0].0;
    let first = reply_probe(&mut rig, request, pg1);
    assert!(dcs(&first).is_none(), "the race waits for every probe: {first:?}");
    let out = reply_probe(&mut rig, request, pg3);
    rig.drain_ok(out)
}

#[test]
fn every_probe_answered_and_nobody_healthier_acquires_the_key() {
    let (ops, all) = race_with_replies(
        config("pg2"),
        view(None),
        member("pg1", PgRole::Stopped, Lsn(0)),
        member("pg3", PgRole::Replica, Lsn(WAL.0 - 100)),
    );
    assert_eq!(ops.first(), Some(&DcsOp::AcquireLeader), "{ops:?}");
    assert!(pg_actions(&all).contains(&PgAction::Promote));
}

#[test]
fn a_member_with_a_higher_wal_position_wins_over_me() {
    let (ops, all) = race_with_replies(
        config("pg2"),
        view(None),
        member("pg1", PgRole::Stopped, Lsn(0)),
        member("pg3", PgRole::Replica, Lsn(WAL.0 + 1)),
    );
    assert!(!has_op(&ops, is_acquire), "{ops:?}");
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "{ops:?}");
    assert!(pg_actions(&all).is_empty());
}

#[test]
fn equal_wal_position_and_higher_failover_priority_wins_over_me() {
    let better = MemberState { failover_priority: 2, ..member("pg3", PgRole::Replica, WAL) };
    let (ops, _) = race_with_replies(config("pg2"), view(None), member("pg1", PgRole::Stopped, Lsn(0)), better);
    assert!(!has_op(&ops, is_acquire), "{ops:?}");
}

#[test]
fn equal_wal_position_and_lower_failover_priority_does_not_stop_me() {
    let worse = MemberState { failover_priority: 1, ..member("pg3", PgRole::Replica, WAL) };
    let cfg = HaConfig { failover_priority: 2, ..config("pg2") };
    let (ops, _) = race_with_replies(cfg, view(None), member("pg1", PgRole::Stopped, Lsn(0)), worse);
    assert_eq!(ops.first(), Some(&DcsOp::AcquireLeader), "{ops:?}");
}

#[test]
fn a_member_still_running_as_primary_stops_the_race() {
    // The primary is behind me, still it is alive: no promotion (I1.3).
    let (ops, all) = race_with_replies(
        config("pg2"),
        view(None),
        member("pg1", PgRole::Primary, Lsn(WAL.0 - 1000)),
        member("pg3", PgRole::Replica, Lsn(WAL.0 - 100)),
    );
    assert!(!has_op(&ops, is_acquire), "{ops:?}");
    assert!(!pg_actions(&all).contains(&PgAction::Promote));
}

#[test]
fn unanswered_probes_are_ignored_after_the_probe_timeout() {
    let mut rig = Rig::new(config("pg2"), pg(PgRole::Replica));
    let (sent, _) = start_race(&mut rig, view(None));
    // pg3 answers (behind me), pg1 never does.
    let out = reply_probe(&mut rig, sent[0].0, member("pg3", PgRole::Replica, Lsn(WAL.0 - 100)));
    assert!(dcs(&out).is_none());
    rig.advance(PROBE_TIMEOUT_NS - 1);
    let out = rig.tick();
    assert!(dcs(&out).is_none(), "still waiting for pg1: {out:?}");
    rig.advance(1);
    let out = rig.tick();
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
    // pg1's answer arriving late is ignored, even if it says it is a primary.
    let late = reply_probe(&mut rig, sent[0].0, member("pg1", PgRole::Primary, WAL));
    assert!(late.is_empty(), "{late:?}");
}

#[test]
fn acquire_ok_promotes_at_once_in_asynchronous_mode() {
    let mut rig = Rig::new(config("pg2"), pg(PgRole::Replica));
    start_race(&mut rig, view(None));
    rig.advance(PROBE_TIMEOUT_NS);
    let out = rig.tick();
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
    let out = rig.answer(&out, DcsResult::Ok);
    assert_eq!(pg_actions(&out), vec![PgAction::Promote]);
    assert_eq!(rig.ha.leader_until, Some(Instant(rig.now + TTL)));
    let (ops, _) = rig.drain_ok(out);
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "{ops:?}");
}

#[test]
fn acquire_rejected_does_not_promote() {
    let mut rig = Rig::new(config("pg2"), pg(PgRole::Replica));
    start_race(&mut rig, view(None));
    rig.advance(PROBE_TIMEOUT_NS);
    let out = rig.tick();
    let out = rig.answer(&out, DcsResult::Rejected);
    assert!(pg_actions(&out).is_empty(), "{out:?}");
    let (ops, all) = rig.drain_ok(out);
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "{ops:?}");
    assert!(pg_actions(&all).is_empty());
    assert!(!rig.ha.is_leader(Instant(rig.now)));
}

/// pg2 in synchronous mode, named in the sync key, wins the probes (none answer) and its
/// AcquireLeader is answered Ok; returns the rig and what the Ok produced.
fn sync_winner(cfg: HaConfig) -> (Rig, ClusterView, Vec<HaOutput>) {
    let mut v = view(None);
    v.sync = sync_key("pg1", &["pg2"]);
    v.sync_revision = 7;
    let mut rig = Rig::new(cfg, pg(PgRole::Replica));
    start_race(&mut rig, v.clone());
    rig.advance(PROBE_TIMEOUT_NS);
    let out = rig.tick();
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
    let out = rig.answer(&out, DcsResult::Ok);
    (rig, v, out)
}

#[test]
fn synchronous_mode_winner_rewrites_the_sync_key_before_promoting() {
    let (mut rig, _, out) = sync_winner(sync_config("pg2"));
    assert_eq!(
        dcs(&out).map(|(_, op)| op),
        Some(DcsOp::CasSync { revision: 7, value: sync_key("pg2", &[]) }),
        "sync = {{leader: me, sync_standby: none}} on the revision read"
    );
    assert!(pg_actions(&out).is_empty(), "no promotion before the CAS succeeded: {out:?}");
    let out = rig.answer(&out, DcsResult::Ok);
    assert_eq!(pg_actions(&out), vec![PgAction::SetSyncStandbyNames(SyncStandbyNames::empty()), PgAction::Promote]);
}

#[test]
fn strict_synchronous_mode_winner_starts_with_star() {
    let (mut rig, _, out) = sync_winner(HaConfig { synchronous_mode_strict: true, ..sync_config("pg2") });
    let out = rig.answer(&out, DcsResult::Ok);
    assert_eq!(pg_actions(&out), vec![PgAction::SetSyncStandbyNames(star()), PgAction::Promote]);
}

#[test]
fn synchronous_mode_winner_whose_sync_cas_is_rejected_does_not_promote_this_cycle() {
    let (mut rig, _, out) = sync_winner(sync_config("pg2"));
    let (ops, all) = rig.drain(out, |_| DcsResult::Rejected);
    assert!(matches!(ops.as_slice(), [DcsOp::CasSync { .. }]), "{ops:?}");
    assert!(pg_actions(&all).is_empty(), "{all:?}");
}

/// The CAS after AcquireLeader lost; in the next cycle the key is still mine but the sync key is
/// somebody else's (revision moved on). Patroni (`enforce_primary_role` →
/// `process_sync_replication_prepromote`) writes `sync = {me, ∅}` again before promoting; a
/// promotion without it leaves a sync key naming another leader and standby while my new primary
/// acknowledges commits they never see (spec §2.2 "Promotion rule", I2.1).
#[test]
fn synchronous_mode_promotion_postponed_by_a_lost_cas_still_needs_the_cas_next_cycle() {
    let (mut rig, mut v, out) = sync_winner(sync_config("pg2"));
    rig.drain(out, |_| DcsResult::Rejected);
    rig.advance(LOOP_WAIT);
    v.leader = Some("pg2".into());
    v.sync_revision = 8;
    let out = rig.read(v);
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::RenewLeader));
    let out = rig.answer(&out, DcsResult::Ok);
    assert!(pg_actions(&out).is_empty(), "promoted before sync = {{pg2, ∅}} was written: {out:?}");
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::CasSync { revision: 8, value: sync_key("pg2", &[]) }));
    let out = rig.answer(&out, DcsResult::Ok);
    assert_eq!(pg_actions(&out), vec![PgAction::SetSyncStandbyNames(SyncStandbyNames::empty()), PgAction::Promote]);
}

#[test]
fn a_primary_on_an_older_timeline_does_not_retake_a_free_key() {
    // A zombie: my PG still runs as primary on timeline 1, the cluster moved to timeline 2.
    let mut v = view(None);
    v.timeline = 2;
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let out = rig.read(v);
    assert!(probes(&out).is_empty(), "{out:?}");
    let (ops, _) = rig.drain_ok(out);
    assert!(!has_op(&ops, is_acquire), "{ops:?}");
}

/// Not a candidate means "follow" (§1.6: "first failing check = not a candidate, follow"), and
/// following with a primary demotes it (§1.3 step 7; Patroni `process_unhealthy_cluster` →
/// `follow` → `demote('immediate-nolock')`). A zombie primary on an old timeline must not keep
/// accepting writes just because the leader key is absent.
#[test]
fn a_primary_on_an_older_timeline_with_the_key_free_is_demoted() {
    let mut v = view(None);
    v.timeline = 2;
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let (_, all) = rig.cycle(v);
    assert_eq!(pg_actions(&all), vec![PgAction::Demote { upstream: None }], "{all:?}");
}

/// Same rule when the race is lost at the DCS: Patroni's `process_unhealthy_cluster` calls
/// `follow`, which demotes a running primary at once.
#[test]
fn a_primary_that_loses_the_acquire_is_demoted() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let (sent, _) = start_race(&mut rig, view(None));
    reply_probe(&mut rig, sent[0].0, member("pg2", PgRole::Replica, WAL));
    let out = reply_probe(&mut rig, sent[0].0, member("pg3", PgRole::Replica, WAL));
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
    let out = rig.answer(&out, DcsResult::Rejected);
    let (_, all) = rig.drain_ok(out);
    assert_eq!(pg_actions(&all), vec![PgAction::Demote { upstream: None }], "{all:?}");
}

#[test]
fn a_primary_on_the_current_timeline_retakes_a_free_key_without_promoting_again() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    let (sent, _) = start_race(&mut rig, view(None));
    reply_probe(&mut rig, sent[0].0, member("pg2", PgRole::Replica, Lsn(WAL.0 - 10)));
    let out = reply_probe(&mut rig, sent[0].0, member("pg3", PgRole::Replica, Lsn(WAL.0 - 10)));
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
    let (_, all) = rig.drain_ok(out);
    assert!(pg_actions(&all).is_empty(), "already primary: {all:?}");
    assert!(rig.ha.is_leader(Instant(rig.now)));
}

#[test]
fn a_nofailover_member_ahead_of_me_does_not_stop_me() {
    let ahead = MemberState { nofailover: true, ..member("pg3", PgRole::Replica, Lsn(WAL.0 + 1000)) };
    let (ops, _) = race_with_replies(config("pg2"), view(None), member("pg1", PgRole::Stopped, Lsn(0)), ahead);
    assert_eq!(ops.first(), Some(&DcsOp::AcquireLeader), "{ops:?}");
}

#[test]
fn synchronous_mode_counts_only_members_named_in_the_sync_key() {
    // pg3 is ahead but not a synchronous standby; pg1, the former leader, is ahead too: both are
    // ignored, pg2 (named in `sync`) wins.
    let mut v = view(None);
    v.sync = sync_key("pg1", &["pg2"]);
    let (ops, _) = race_with_replies(
        sync_config("pg2"),
        v,
        member("pg1", PgRole::Replica, Lsn(WAL.0 + 1000)),
        member("pg3", PgRole::Replica, Lsn(WAL.0 + 1000)),
    );
    assert_eq!(ops.first(), Some(&DcsOp::AcquireLeader), "{ops:?}");
}

#[test]
fn synchronous_mode_a_sync_standby_ahead_of_me_still_wins() {
    let mut v = view(None);
    v.sync = sync_key("pg1", &["pg2", "pg3"]);
    let (ops, _) = race_with_replies(
        sync_config("pg2"),
        v,
        member("pg1", PgRole::Stopped, Lsn(0)),
        member("pg3", PgRole::Replica, Lsn(WAL.0 + 1)),
    );
    assert!(!has_op(&ops, is_acquire), "{ops:?}");
}

#[test]
fn a_busy_postgres_only_publishes() {
    // A rewind is running: no second Rewind, no Follow, no race.
    let busy = PgState { busy: true, diverged: true, upstream: Some(PG3), ..pg(PgRole::Replica) };
    let mut rig = Rig::new(HaConfig { use_pg_rewind: true, ..config("pg1") }, busy);
    let (ops, all) = rig.cycle(view(Some("pg2")));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "{ops:?}");
    rig.advance(LOOP_WAIT);
    let (ops, all) = rig.cycle(view(None));
    assert!(probes(&all).is_empty() && matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "{ops:?}");
}

// ---------------------------------------------------------------------------------------------
// synchronous_mode on the leader (§2.2)
// ---------------------------------------------------------------------------------------------

/// pg1 leads in synchronous mode; the sync key is `sync` at revision 5.
fn sync_leader(pg_state: PgState, sync: Option<SyncKey>) -> (Rig, ClusterView) {
    let mut v = view(Some("pg1"));
    v.sync = sync;
    v.sync_revision = 5;
    (Rig::new(sync_config("pg1"), pg_state), v)
}

fn is_cas(op: &DcsOp) -> bool {
    matches!(op, DcsOp::CasSync { .. })
}

#[test]
fn a_new_sync_standby_is_set_in_postgres_first_and_published_only_once_confirmed() {
    let primary = PgState { standbys: vec![row("pg2", true, "async", Lsn(WAL.0 - 10))], ..pg(PgRole::Primary) };
    let (mut rig, v) = sync_leader(primary, sync_key("pg1", &[]));
    // Cycle 1: synchronous_standby_names changes, the sync key does not.
    let (ops, all) = rig.cycle(v.clone());
    assert_eq!(pg_actions(&all), vec![PgAction::SetSyncStandbyNames(first_one("pg2"))]);
    assert!(!has_op(&ops, is_cas), "published before confirmed: {ops:?}");
    let flush_at_change = rig.pg.flush;

    // Cycle 2: PostgreSQL applied it and pg2 is `sync`, but not yet flushed to the change point.
    rig.pg.synchronous_standby_names = first_one("pg2");
    rig.pg.flush = Lsn(WAL.0 + 500);
    rig.pg.wal_position = rig.pg.flush;
    rig.pg.standbys = vec![row("pg2", true, "sync", Lsn(flush_at_change.0 - 1))];
    rig.advance(LOOP_WAIT);
    let (ops, all) = rig.cycle(v.clone());
    assert!(!has_op(&ops, is_cas), "pg2 has not reached the flush LSN of the change: {ops:?}");
    assert!(pg_actions(&all).is_empty(), "{all:?}");

    // Cycle 3: caught up (flush ≥ the flush at the change, not necessarily the current one).
    rig.pg.standbys = vec![row("pg2", true, "sync", flush_at_change)];
    rig.advance(LOOP_WAIT);
    let (ops, all) = rig.cycle(v);
    assert!(ops.contains(&DcsOp::CasSync { revision: 5, value: sync_key("pg1", &["pg2"]) }), "{ops:?}");
    assert!(pg_actions(&all).is_empty(), "{all:?}");
}

#[test]
fn a_standby_named_in_postgres_but_only_potential_is_not_published() {
    let primary = PgState {
        synchronous_standby_names: first_one("pg2"),
        standbys: vec![row("pg2", true, "potential", WAL)],
        ..pg(PgRole::Primary)
    };
    let (mut rig, v) = sync_leader(primary, sync_key("pg1", &[]));
    for _ in 0..3 {
        let (ops, _) = rig.cycle(v.clone());
        assert!(!has_op(&ops, is_cas), "{ops:?}");
        rig.advance(LOOP_WAIT);
    }
}

#[test]
fn the_sync_standby_kept_while_it_streams_and_is_sync() {
    let primary = PgState {
        synchronous_standby_names: first_one("pg2"),
        standbys: vec![row("pg2", true, "sync", WAL), row("pg3", true, "async", Lsn(WAL.0 + 7))],
        ..pg(PgRole::Primary)
    };
    let (mut rig, v) = sync_leader(primary, sync_key("pg1", &["pg2"]));
    let (ops, all) = rig.cycle(v);
    assert!(!has_op(&ops, is_cas), "nothing to change: {ops:?}");
    assert!(pg_actions(&all).is_empty(), "the current sync standby is not swapped for a further one: {all:?}");
}

/// The ordering rule when removing (§2.2, Patroni `_process_multisync_replication`): the sync key
/// is shrunk (CAS, waited for) before `synchronous_standby_names` stops naming the old standby.
/// Otherwise, between the two, pg3 alone acknowledges commits while the sync key still lets pg2
/// (which has not got them) win a race, and if the CAS fails the key is never fixed this cycle.
#[test]
fn a_sync_standby_that_stops_streaming_leaves_the_sync_key_before_postgres_forgets_it() {
    let primary = PgState {
        synchronous_standby_names: first_one("pg2"),
        standbys: vec![row("pg2", false, "sync", WAL), row("pg3", true, "async", WAL)],
        ..pg(PgRole::Primary)
    };
    let (mut rig, v) = sync_leader(primary, sync_key("pg1", &["pg2"]));
    let out = rig.read(v);
    let (ops, all) = rig.drain_ok(out);
    let shrink = DcsOp::CasSync { revision: 5, value: sync_key("pg1", &[]) };
    assert!(ops.contains(&shrink), "{ops:?}");
    let cas_sent = position(&all, is_op(|op| *op == shrink)).unwrap();
    let cas_answered = cas_sent + 2; // the request, its timer, then what the Ok produced
    let set = position(&all, is_pg(PgAction::SetSyncStandbyNames(first_one("pg3"))));
    let set = set.expect("pg3 becomes the synchronous standby in PostgreSQL");
    assert!(set >= cas_answered, "s_s_n changed away from pg2 before the sync key dropped it: {all:?}");
}

#[test]
fn a_sync_standby_removal_whose_cas_is_rejected_leaves_postgres_alone() {
    let primary = PgState {
        synchronous_standby_names: first_one("pg2"),
        standbys: vec![row("pg2", false, "sync", WAL), row("pg3", true, "async", WAL)],
        ..pg(PgRole::Primary)
    };
    let (mut rig, v) = sync_leader(primary, sync_key("pg1", &["pg2"]));
    let out = rig.read(v);
    let out = rig.answer(&out, DcsResult::Ok); // the renewal
    let (ops, all) = rig.drain(out, |op| if is_cas(op) { DcsResult::Rejected } else { DcsResult::Ok });
    assert!(has_op(&ops, is_cas), "{ops:?}");
    assert!(
        !pg_actions(&all).iter().any(|a| matches!(a, PgAction::SetSyncStandbyNames(_))),
        "the sync key still names pg2, so s_s_n must keep it: {all:?}"
    );
}

#[test]
fn a_sync_standby_that_is_gone_with_no_replacement_empties_both() {
    let primary = PgState { synchronous_standby_names: first_one("pg2"), ..pg(PgRole::Primary) };
    let (mut rig, v) = sync_leader(primary, sync_key("pg1", &["pg2"]));
    let (ops, all) = rig.cycle(v);
    assert!(ops.contains(&DcsOp::CasSync { revision: 5, value: sync_key("pg1", &[]) }), "{ops:?}");
    assert_eq!(pg_actions(&all), vec![PgAction::SetSyncStandbyNames(SyncStandbyNames::empty())]);
}

#[test]
fn strict_mode_with_no_standby_sets_star() {
    let cfg = HaConfig { synchronous_mode_strict: true, ..sync_config("pg1") };
    let mut v = view(Some("pg1"));
    v.sync = sync_key("pg1", &[]);
    let mut rig = Rig::new(cfg, pg(PgRole::Primary));
    let (ops, all) = rig.cycle(v.clone());
    assert_eq!(pg_actions(&all), vec![PgAction::SetSyncStandbyNames(star())]);
    assert!(!has_op(&ops, is_cas), "the sync key names only the leader already: {ops:?}");
    // Once applied it stays.
    rig.pg.synchronous_standby_names = star();
    rig.advance(LOOP_WAIT);
    let (_, all) = rig.cycle(v);
    assert!(pg_actions(&all).is_empty(), "{all:?}");
}

#[test]
fn a_sync_key_of_another_leader_is_taken_over() {
    let primary = PgState { synchronous_standby_names: SyncStandbyNames::empty(), ..pg(PgRole::Primary) };
    let (mut rig, v) = sync_leader(primary, sync_key("pg3", &[]));
    let (ops, _) = rig.cycle(v);
    assert!(ops.contains(&DcsOp::CasSync { revision: 5, value: sync_key("pg1", &[]) }), "{ops:?}");
}

// ---------------------------------------------------------------------------------------------
// Switchover (§1.7)
// ---------------------------------------------------------------------------------------------

fn switchover_view(leader: Option<&str>, to: &str) -> ClusterView {
    let mut v = view(leader);
    v.switchover = Some(Switchover { from: "pg1".into(), to: to.into() });
    v
}

#[test]
fn switchover_stops_gracefully_then_writes_status_and_releases_the_key() {
    let primary = PgState { standbys: vec![row("pg2", true, "async", WAL)], ..pg(PgRole::Primary) };
    let mut rig = Rig::new(config("pg1"), primary);
    let (ops, all) = rig.cycle(switchover_view(Some("pg1"), "pg2"));
    assert_eq!(pg_actions(&all), vec![PgAction::GracefulStop]);
    assert!(!has_op(&ops, |op| *op == DcsOp::ReleaseLeader), "Postgres has not stopped yet: {ops:?}");

    // Still shutting down: no second GracefulStop, no release; cycles come quickly now.
    let next = *timers(&all).last().unwrap();
    assert!(next < rig.now + LOOP_WAIT, "the next cycle comes sooner than loop_wait");
    rig.now = next;
    let (ops, all) = rig.cycle(switchover_view(Some("pg1"), "pg2"));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    assert!(!has_op(&ops, |op| *op == DcsOp::ReleaseLeader), "{ops:?}");

    // Shutdown complete, final flush at WAL + 4096: status with it, then release.
    rig.pg.shutdown_complete = true;
    rig.pg.role = PgRole::Stopped;
    rig.pg.flush = Lsn(WAL.0 + 4096);
    rig.now = *timers(&all).last().unwrap();
    let (ops, all) = rig.cycle(switchover_view(Some("pg1"), "pg2"));
    assert!(pg_actions(&all).is_empty(), "a stopping leader is not restarted as primary: {all:?}");
    assert_eq!(
        ops,
        vec![
            DcsOp::RenewLeader,
            DcsOp::PutStatus { optime: Lsn(WAL.0 + 4096), timeline: 1, history: History::default() },
            DcsOp::ReleaseLeader,
        ]
    );
    assert!(!rig.ha.is_leader(Instant(rig.now)));
}

#[test]
fn a_leader_still_a_replica_hands_a_pending_switchover_over_instead_of_promoting() {
    // Swarm seed 25715: pg1 restarted read-only with the key while its switchover to pg2 was
    // pending; promoting first made pg1 and pg2 both create timeline 2.
    let replica = PgState { standbys: vec![row("pg2", true, "async", WAL)], ..pg(PgRole::Replica) };
    let mut rig = Rig::new(config("pg1"), replica);
    let (_, all) = rig.cycle(switchover_view(Some("pg1"), "pg2"));
    assert_eq!(pg_actions(&all), vec![PgAction::GracefulStop], "no promotion: {all:?}");
}

#[test]
fn under_synchronous_mode_a_leader_still_a_replica_hands_over_to_its_sync_standby_without_touching_the_sync_key() {
    let replica = PgState { standbys: vec![row("pg2", true, "sync", WAL)], ..pg(PgRole::Replica) };
    let mut rig = Rig::new(sync_config("pg1"), replica);
    let mut v = switchover_view(Some("pg1"), "pg2");
    v.sync = sync_key("pg1", &["pg2"]);
    let (ops, all) = rig.cycle(v);
    assert_eq!(pg_actions(&all), vec![PgAction::GracefulStop], "no promotion: {all:?}");
    assert!(!has_op(&ops, |op| matches!(op, DcsOp::CasSync { .. })), "the sync key stays: {ops:?}");
}

#[test]
fn a_leader_still_a_replica_promotes_when_the_switchover_candidate_does_not_stream_from_it() {
    let replica = PgState { standbys: vec![row("pg2", false, "async", WAL)], ..pg(PgRole::Replica) };
    let mut rig = Rig::new(config("pg1"), replica);
    let (_, all) = rig.cycle(switchover_view(Some("pg1"), "pg2"));
    assert_eq!(pg_actions(&all), vec![PgAction::Promote], "{all:?}");
}

#[test]
fn switchover_to_a_member_that_does_not_stream_is_not_started() {
    let primary = PgState { standbys: vec![row("pg2", false, "async", WAL)], ..pg(PgRole::Primary) };
    let mut rig = Rig::new(config("pg1"), primary);
    let (ops, all) = rig.cycle(switchover_view(Some("pg1"), "pg2"));
    assert!(pg_actions(&all).is_empty(), "{all:?}");
    assert!(has_op(&ops, |op| matches!(op, DcsOp::PutStatus { .. })), "business as usual: {ops:?}");
}

/// pg1 leads under synchronous_mode with pg3 synchronous and pg2 asynchronous, and a
/// switchover to pg2 is asked for.
fn sync_leader_asked_to_switch_over_to_async_pg2() -> (Rig, ClusterView) {
    let primary = PgState {
        synchronous_standby_names: first_one("pg3"),
        standbys: vec![row("pg2", true, "async", WAL), row("pg3", true, "sync", WAL)],
        ..pg(PgRole::Primary)
    };
    let mut v = switchover_view(Some("pg1"), "pg2");
    v.sync = sync_key("pg1", &["pg3"]);
    (Rig::new(sync_config("pg1"), primary), v)
}

#[test]
fn synchronous_mode_switchover_needs_the_candidate_in_the_sync_key() {
    let (mut rig, v) = sync_leader_asked_to_switch_over_to_async_pg2();
    let (_, all) = rig.cycle(v);
    assert!(!pg_actions(&all).contains(&PgAction::GracefulStop), "{all:?}");
}

#[test]
fn the_switchover_candidate_races_without_the_lag_check_and_clears_the_key() {
    // pg2 lags far beyond maximum_lag_on_failover and pg3 is ahead of it: it still wins.
    let lagging = PgState { wal_position: Lsn(WAL.0 - 10 * MAX_LAG), ..pg(PgRole::Replica) };
    let mut rig = Rig::new(config("pg2"), lagging);
    let (sent, _) = start_race(&mut rig, switchover_view(None, "pg2"));
    assert_eq!(sent.len(), 2, "the candidate probes: {sent:?}");
    reply_probe(&mut rig, sent[0].0, member("pg1", PgRole::Stopped, WAL));
    let out = reply_probe(&mut rig, sent[0].0, member("pg3", PgRole::Replica, WAL));
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
    let out = rig.answer(&out, DcsResult::Ok);
    assert_eq!(pg_actions(&out), vec![PgAction::Promote]);
    let (ops, _) = rig.drain_ok(out);
    assert_eq!(ops.first(), Some(&DcsOp::ClearSwitchover), "{ops:?}");
}

#[test]
fn the_switchover_candidate_still_yields_to_a_live_primary() {
    let mut rig = Rig::new(config("pg2"), pg(PgRole::Replica));
    let (sent, _) = start_race(&mut rig, switchover_view(None, "pg2"));
    reply_probe(&mut rig, sent[0].0, member("pg1", PgRole::Primary, WAL));
    let out = reply_probe(&mut rig, sent[0].0, member("pg3", PgRole::Replica, WAL));
    let (ops, _) = rig.drain_ok(out);
    assert!(!has_op(&ops, is_acquire), "{ops:?}");
}

#[test]
fn members_other_than_the_switchover_candidate_do_not_race() {
    // pg3 is the most advanced member; still, it does not compete with pg2 while pg2 answers.
    let ahead = PgState { wal_position: Lsn(WAL.0 + 1000), ..pg(PgRole::Replica) };
    let mut rig = Rig::new(config("pg3"), ahead);
    let out = rig.read(switchover_view(None, "pg2"));
    let sent = probes(&out);
    reply_probe(&mut rig, sent[0].0, member("pg1", PgRole::Stopped, WAL));
    let out = reply_probe(&mut rig, sent[0].0, member("pg2", PgRole::Replica, WAL));
    let (ops, all) = rig.drain_ok(out);
    assert!(matches!(ops.as_slice(), [DcsOp::PutMember(_)]), "{ops:?}");
    assert!(!pg_actions(&all).contains(&PgAction::Promote));
}

/// The candidate died after the old leader released the key (it streamed when the switchover
/// started). Patroni (`manual_failover_process_no_leader`) probes the named candidate and, if it
/// is unhealthy, lets the other members race as usual. Here the others refuse to race while the
/// `failover` key names someone else, and only the winner clears that key, so the cluster stays
/// without a leader for good.
#[test]
fn members_fall_back_to_a_normal_race_when_the_switchover_candidate_is_dead() {
    let mut rig = Rig::new(config("pg3"), pg(PgRole::Replica));
    let out = rig.read(switchover_view(None, "pg2"));
    let sent = probes(&out);
    assert!(sent.iter().any(|(_, to)| *to == PG2), "the candidate is probed: {out:?}");
    // Only pg1 (stopped old leader) answers; pg2 never does.
    reply_probe(&mut rig, sent[0].0, member("pg1", PgRole::Stopped, WAL));
    rig.advance(PROBE_TIMEOUT_NS);
    let out = rig.tick();
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
}

// ---------------------------------------------------------------------------------------------
// Scheduling (§1.3 step 9)
// ---------------------------------------------------------------------------------------------

#[test]
fn leader_changed_while_idle_starts_a_cycle_at_once() {
    let mut rig = Rig::new(config("pg2"), PgState { upstream: Some(0), ..pg(PgRole::Replica) });
    rig.cycle(view(Some("pg1")));
    rig.advance(SEC);
    assert!(dcs(&rig.tick()).is_none(), "not yet time for the next cycle");
    let out = rig.feed(HaInput::LeaderChanged);
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::Read));
    // A second watch event while that read is out does not start another.
    let again = rig.feed(HaInput::LeaderChanged);
    assert!(dcs(&again).is_none(), "{again:?}");
}

#[test]
fn leader_changed_is_ignored_by_the_leader() {
    let mut rig = Rig::new(config("pg1"), pg(PgRole::Primary));
    rig.cycle(view(Some("pg1")));
    rig.advance(SEC);
    let out = rig.feed(HaInput::LeaderChanged);
    assert!(dcs(&out).is_none(), "{out:?}");
}

#[test]
fn cycles_follow_loop_wait_from_their_start() {
    let mut rig = Rig::new(config("pg2"), PgState { upstream: Some(0), ..pg(PgRole::Replica) });
    let start = rig.now;
    let out = rig.read(view(Some("pg1")));
    rig.advance(3 * SEC); // a slow member-key write
    let (_, all) = rig.drain_ok(out);
    assert_eq!(timers(&all).last(), Some(&(start + LOOP_WAIT)));
    rig.now = start + LOOP_WAIT - 1;
    assert!(dcs(&rig.tick()).is_none());
    rig.now = start + LOOP_WAIT;
    assert_eq!(dcs(&rig.tick()).map(|(_, op)| op), Some(DcsOp::Read));
}

/// Spec §1.3 step 9 (Patroni `Patroni._run_cycle`: `nap_time <= 0` → reschedule immediately):
/// a cycle that overran `loop_wait` is followed at once, not after another full `loop_wait`.
/// The fencing arithmetic of §1.2 (`loop_wait + 2·retry_timeout <= ttl`) depends on it.
#[test]
fn a_cycle_that_overran_loop_wait_is_followed_at_once() {
    let mut rig = Rig::new(config("pg2"), PgState { upstream: Some(0), ..pg(PgRole::Replica) });
    let start = rig.now;
    // The read and the member-key write take 6 s each (each within retry_timeout).
    let out = rig.tick();
    rig.advance(6 * SEC);
    let out = rig.answer(&out, DcsResult::View(view(Some("pg1"))));
    assert!(matches!(dcs(&out), Some((_, DcsOp::PutMember(_)))), "{out:?}");
    rig.advance(6 * SEC);
    let (_, all) = rig.drain_ok(out);
    let end = rig.now;
    assert!(end > start + LOOP_WAIT);
    assert_eq!(timers(&all).last(), Some(&end), "the next cycle should be due now");
    assert_eq!(dcs(&rig.tick()).map(|(_, op)| op), Some(DcsOp::Read));
}

// A switchover names a `nofailover` member (swarm seed 2741: it promoted, far behind, onto a
// timeline number another node had taken). §1.6 check 3 comes before the manual path, and
// §1.7's `is_failover_possible` refuses such a candidate.

#[test]
fn a_nofailover_switchover_candidate_does_not_race() {
    let mut rig = Rig::new(HaConfig { nofailover: true, ..config("pg2") }, pg(PgRole::Replica));
    let out = rig.read(switchover_view(None, "pg2"));
    assert!(probes(&out).is_empty(), "{out:?}");
    assert!(!pg_actions(&out).contains(&PgAction::Promote));
}

#[test]
fn the_leader_refuses_a_switchover_to_a_nofailover_member_and_clears_the_key() {
    let primary = PgState { standbys: vec![row("pg2", true, "async", WAL)], ..pg(PgRole::Primary) };
    let mut rig = Rig::new(config("pg1"), primary);
    let mut v = switchover_view(Some("pg1"), "pg2");
    v.members.insert("pg2".into(), MemberState { nofailover: true, ..member("pg2", PgRole::Replica, WAL) });
    let (ops, all) = rig.cycle(v);
    assert!(!pg_actions(&all).contains(&PgAction::GracefulStop), "{all:?}");
    assert!(has_op(&ops, |op| *op == DcsOp::ClearSwitchover), "{ops:?}");
}

#[test]
fn members_race_when_the_switchover_candidate_is_nofailover() {
    let mut rig = Rig::new(config("pg3"), pg(PgRole::Replica));
    let out = rig.read(switchover_view(None, "pg2"));
    let sent = probes(&out);
    reply_probe(&mut rig, sent[0].0, member("pg1", PgRole::Stopped, WAL));
    let refused = MemberState { nofailover: true, ..member("pg2", PgRole::Replica, WAL) };
    let out = reply_probe(&mut rig, sent[0].0, refused);
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader));
}

// Swarm seed 11716: a stale switchover key named an asynchronous member; with the leader gone
// it raced past the sync-key check, won, and lost 314 writes a synchronous standby had
// confirmed. Patroni's `is_healthiest_node` checks the sync key before the switchover path.

#[test]
fn synchronous_mode_a_switchover_target_outside_the_sync_key_does_not_race() {
    let mut v = switchover_view(None, "pg2");
    v.sync = sync_key("pg1", &["pg3"]);
    let mut rig = Rig::new(sync_config("pg2"), pg(PgRole::Replica));
    let out = rig.read(v);
    assert!(probes(&out).is_empty(), "{out:?}");
    assert!(!pg_actions(&out).contains(&PgAction::Promote));
}

#[test]
fn synchronous_mode_members_do_not_wait_for_a_switchover_target_outside_the_sync_key() {
    let mut v = switchover_view(None, "pg2");
    v.sync = sync_key("pg1", &["pg3"]);
    let mut rig = Rig::new(sync_config("pg3"), pg(PgRole::Replica));
    let out = rig.read(v);
    let sent = probes(&out);
    assert!(!sent.is_empty(), "pg3, in the sync key, races");
    reply_probe(&mut rig, sent[0].0, member("pg1", PgRole::Stopped, WAL));
    let out = reply_probe(&mut rig, sent[0].0, member("pg2", PgRole::Replica, WAL));
    assert_eq!(dcs(&out).map(|(_, op)| op), Some(DcsOp::AcquireLeader), "pg2 may not take over: {out:?}");
}

#[test]
fn synchronous_mode_the_leader_clears_a_switchover_to_an_asynchronous_member() {
    let (mut rig, v) = sync_leader_asked_to_switch_over_to_async_pg2();
    let (ops, all) = rig.cycle(v);
    assert!(!pg_actions(&all).contains(&PgAction::GracefulStop), "{all:?}");
    assert!(has_op(&ops, |op| *op == DcsOp::ClearSwitchover), "{ops:?}");
}
