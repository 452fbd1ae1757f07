//! Two writable primaries replicating to each other by logical replication (active-active):
//! `origin = none` keeps a change from coming back to the node it was made on, and
//! `track_commit_timestamp` lets each apply worker see that a row it is about to change was
//! last written elsewhere, which the table's policy then resolves.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, Publication};
use repsim_engine::io::{Command, Input, Observation, TimerId};
use repsim_engine::logical::apply::Subscription;
use repsim_engine::logical::conflict::{ConflictKind, ConflictResolution, Resolution};
use repsim_engine::logical::decode::PublishedTables;
use repsim_engine::wal::record::RowChange;
use repsim_engine::NodeId;

const A: NodeId = 0;
const B: NodeId = 1;
const NAMES: &[&str] = &["east", "west"];

fn master_cfg(id: NodeId, policy: ConflictResolution, origin_none: bool) -> NodeConfig {
    let mut cfg = NodeConfig::with_defaults(id, cluster(NAMES));
    cfg.publications = vec![Publication { name: "all".into(), tables: PublishedTables::All, row_filter: None }];
    let other = 1 - id;
    cfg.subscriptions = vec![Subscription {
        name: format!("from_{}", NAMES[other as usize]),
        publisher: other,
        slot: format!("to_{}", NAMES[id as usize]),
        publications: vec!["all".into()],
        disable_on_error: false,
        copy_data: false,
        failover: false,
        origin_none,
        trigger: None,
        flush_each_commit: false,
    }];
    cfg.track_commit_timestamp = true;
    cfg.conflict_resolution.default = policy;
    cfg
}

/// Both masters, each with the slot the other's subscription streams from.
fn masters(policy: ConflictResolution, origin_none: bool) -> Harness {
    let mut h = Harness::new();
    for id in [A, B] {
        let cfg = master_cfg(id, policy, origin_none);
        h.start(cfg.clone(), fresh_image(&cfg));
        let slot = format!("to_{}", NAMES[1 - id as usize]);
        h.step(id, Input::Admin(Command::CreateLogicalSlot { name: slot, failover: false }));
    }
    settle(&mut h);
    // The workers found no slot yet at boot: their retry finds it now.
    for id in [A, B] {
        if h.timer(id, TimerId::ApplyRetry(1 - id)).is_some() {
            h.fire(id, TimerId::ApplyRetry(1 - id));
        }
    }
    settle(&mut h);
    h
}

/// Until quiet, the WAL writers included (apply workers commit with `synchronous_commit = off`).
fn settle(h: &mut Harness) {
    for _ in 0..3 {
        h.settle();
        for id in [A, B] {
            if h.timer(id, TimerId::WalWriter).is_some() {
                h.fire(id, TimerId::WalWriter);
            }
        }
    }
    h.settle();
}

fn update(key: u64, write_id: u64) -> RowChange {
    RowChange::Update { table: TABLE, key, write_id, value_len: 40 }
}

fn value_on(h: &Harness, id: NodeId, key: u64) -> Option<u64> {
    h.node(id).store().get(TABLE, key).map(|v| v.write_id)
}

fn conflicts(h: &Harness, id: NodeId) -> Vec<(ConflictKind, Resolution)> {
    observations(&h.peer(id).log)
        .into_iter()
        .filter_map(|o| match o {
            Observation::LogicalConflict { kind, resolution, .. } => Some((kind, resolution)),
            _ => None,
        })
        .collect()
}

#[test]
fn with_origin_none_a_change_reaches_the_other_master_once_and_does_not_come_back() {
    let mut h = masters(ConflictResolution::Error, true);
    h.write(A, 1, vec![insert(1, 100, 40)]);
    settle(&mut h);
    h.write(B, 2, vec![insert(2, 200, 40)]);
    settle(&mut h);
    for id in [A, B] {
        assert_eq!((value_on(&h, id, 1), value_on(&h, id, 2)), (Some(100), Some(200)), "node {id}");
        assert!(conflicts(&h, id).is_empty(), "node {id}: {:?}", conflicts(&h, id));
    }
    // Sequential updates from either side: each sees the other's as a row last written there,
    // so only a policy that tolerates that (not `error`) would go on; here the row written on
    // A is updated on A again, and B applies it with no conflict (same origin).
    h.write(A, 3, vec![update(1, 101)]);
    settle(&mut h);
    assert_eq!(value_on(&h, B, 1), Some(101));
    assert!(conflicts(&h, B).is_empty());
}

#[test]
fn with_origin_any_a_change_comes_back_and_stops_the_worker_on_its_own_row() {
    let mut h = masters(ConflictResolution::ApplyRemote, false);
    h.write(A, 1, vec![insert(1, 100, 40)]);
    settle(&mut h);
    assert_eq!(value_on(&h, B, 1), Some(100));
    // B sends A's insert back to A (it was applied on B, and origin = any sends it on): the
    // key exists on A, a unique violation.
    assert_eq!(conflicts(&h, A), vec![(ConflictKind::InsertExists, Resolution::Stopped)]);
}

/// Concurrent updates of key 1: A's, then B's a second later (their clocks agree), before
/// either has seen the other's.
fn concurrent_updates(policy: ConflictResolution) -> Harness {
    let mut h = masters(policy, true);
    h.write(A, 1, vec![insert(1, 100, 40)]);
    settle(&mut h);
    h.advance(1_000_000_000);
    h.write(A, 2, vec![update(1, 111)]);
    h.advance(1_000_000_000);
    h.write(B, 3, vec![update(1, 222)]);
    settle(&mut h);
    h
}

#[test]
fn last_update_wins_converges_on_the_later_commit_timestamp() {
    let h = concurrent_updates(ConflictResolution::LastUpdateWins);
    assert_eq!((value_on(&h, A, 1), value_on(&h, B, 1)), (Some(222), Some(222)));
    assert_eq!(conflicts(&h, A), vec![(ConflictKind::UpdateOriginDiffers, Resolution::AppliedRemote)]);
    assert_eq!(conflicts(&h, B), vec![(ConflictKind::UpdateOriginDiffers, Resolution::KeptLocal)]);
}

#[test]
fn keep_local_and_apply_remote_leave_the_masters_diverged() {
    let h = concurrent_updates(ConflictResolution::KeepLocal);
    assert_eq!((value_on(&h, A, 1), value_on(&h, B, 1)), (Some(111), Some(222)), "each kept its own");
    let h = concurrent_updates(ConflictResolution::ApplyRemote);
    assert_eq!((value_on(&h, A, 1), value_on(&h, B, 1)), (Some(222), Some(111)), "each took the other's");
}

#[test]
fn error_stops_both_workers_at_the_conflict() {
    let h = concurrent_updates(ConflictResolution::Error);
    for id in [A, B] {
        assert_eq!(conflicts(&h, id), vec![(ConflictKind::UpdateOriginDiffers, Resolution::Stopped)], "node {id}");
    }
    assert_eq!((value_on(&h, A, 1), value_on(&h, B, 1)), (Some(111), Some(222)));
}

#[test]
fn row_origins_survive_a_crash() {
    let mut h = concurrent_updates(ConflictResolution::LastUpdateWins);
    let before = h.node(A).store().row_origin(TABLE, 1);
    assert_eq!(before.map(|o| o.node), Some(Some(B)), "B's version won, with B's commit time");
    // A checkpoint writes them into the data file; WAL after it is replayed at restart.
    h.step(A, Input::Admin(Command::Checkpoint));
    h.complete_checkpoint(A);
    h.write(A, 4, vec![insert(5, 500, 40)]);
    h.complete_all_io(A);
    let cfg = master_cfg(A, ConflictResolution::LastUpdateWins, true);
    h.restart_process(cfg);
    h.complete_compute(A);
    assert_eq!(h.node(A).store().row_origin(TABLE, 1), before, "from the data file");
    let replayed = h.node(A).store().row_origin(TABLE, 5).map(|o| o.node);
    assert_eq!(replayed, Some(None), "a local commit, from WAL replay");
}

/// A's worker stops (its own row came back, as above) while B's worker streams from A on the
/// same pair of nodes: PostgreSQL's connections are per worker, so B's stream goes on. A ends
/// only its own stream (a message, not a closed connection), and B's walsender for it ends.
#[test]
fn a_worker_that_stops_leaves_the_other_masters_stream_running() {
    let mut h = masters(ConflictResolution::ApplyRemote, false);
    h.write(A, 1, vec![insert(1, 100, 40)]);
    settle(&mut h);
    assert_eq!(conflicts(&h, A), vec![(ConflictKind::InsertExists, Resolution::Stopped)]);
    let a_log = &h.peer(A).log;
    assert!(disconnects(a_log).is_empty(), "A closed the connection B's worker streams on");
    let ended = a_log.iter().any(|o| {
        matches!(
            o,
            repsim_engine::io::Output::Send { to: B, msg: repsim_engine::message::Message::EndLogicalStream { .. } }
        )
    });
    assert!(ended, "A's worker ended its stream");
    assert!(h.node(B).pg_stat_subscription().iter().all(|r| r.running), "B's worker still runs");
    // What A writes next still reaches B.
    h.write(A, 2, vec![insert(2, 200, 40)]);
    settle(&mut h);
    assert_eq!(value_on(&h, B, 2), Some(200));
}
