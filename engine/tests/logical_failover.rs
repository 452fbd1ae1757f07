//! Failover slots (PostgreSQL 17): a standby's slot sync worker keeps a copy of the primary's
//! failover slot, never past what the standby flushed; after the standby is promoted the
//! subscriber goes on from the copy with nothing lost or applied twice; and with
//! `synchronized_standby_slots` the walsender sends no change the standby has not flushed.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, Publication, SyncCommitLevel};
use repsim_engine::io::{Command, Input, Observation, TimerId};
use repsim_engine::logical::apply::Subscription;
use repsim_engine::logical::decode::PublishedTables;
use repsim_engine::NodeId;

const P: NodeId = 0;
const S: NodeId = 1;
const SUB: NodeId = 2;
const NAMES: &[&str] = &["p", "s", "sub"];

fn primary(wait_for_standby: bool) -> NodeConfig {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.publications = vec![Publication { name: "all".into(), tables: PublishedTables::All, row_filter: None }];
    cfg.replication_slots = true;
    if wait_for_standby {
        cfg.synchronized_standby_slots = vec!["s".into()];
    }
    cfg
}

fn standby() -> NodeConfig {
    let mut cfg = standby_cfg(S, NAMES);
    cfg.replication_slots = true;
    cfg.hot_standby_feedback = true;
    cfg.sync_replication_slots = true;
    // A publication is a catalog object: the standby has it too.
    cfg.publications = primary(false).publications;
    cfg
}

fn subscriber() -> NodeConfig {
    let mut cfg = NodeConfig::with_defaults(SUB, cluster(NAMES));
    cfg.subscriptions = vec![Subscription {
        name: "copy".into(),
        publisher: P,
        slot: "copy".into(),
        publications: vec!["all".into()],
        disable_on_error: false,
        copy_data: false,
        failover: false,
        origin_none: false,
        trigger: None,
        flush_each_commit: false,
    }];
    cfg
}

/// Primary with a failover slot made at initdb, its standby (cloned without the slot) and the
/// subscriber.
fn cluster_with_subscriber(wait_for_standby: bool) -> Harness {
    let p = primary(wait_for_standby);
    let mut h = Harness::new();
    h.start(p.clone(), repsim_engine::logical::admin::initdb_with_logical_slots(&p, &[("copy".into(), true)]));
    h.start(standby(), fresh_image(&p));
    h.start(subscriber(), fresh_image(&subscriber()));
    settle_all(&mut h);
    h
}

/// Quiet, with every WAL writer flushed (the apply worker commits with synchronous_commit off).
fn settle_all(h: &mut Harness) {
    h.settle();
    let primaries: Vec<NodeId> =
        h.nodes.iter().filter(|(_, p)| p.node.role() == repsim_engine::Role::Primary).map(|(id, _)| *id).collect();
    for id in primaries {
        h.fire(id, TimerId::WalWriter);
    }
    h.settle();
}

fn rows(h: &Harness, keys: std::ops::Range<u64>) -> Vec<Option<u64>> {
    keys.map(|k| h.node(SUB).store().get(TABLE, k).map(|v| v.write_id)).collect()
}

fn conflicts(h: &Harness) -> Vec<String> {
    observations(&h.peer(SUB).log)
        .into_iter()
        .filter_map(|o| match o {
            Observation::ApplyWorker { text, conflict: true, .. } => Some(text),
            _ => None,
        })
        .collect()
}

#[test]
fn a_promoted_standby_with_a_synced_copy_of_the_slot_carries_the_subscription_on() {
    let mut h = cluster_with_subscriber(true);
    for op in 1..=3u64 {
        h.write(P, op, vec![insert(op, op * 100, 40)]);
        settle_all(&mut h);
    }
    assert_eq!(rows(&h, 1..4), vec![Some(100), Some(200), Some(300)]);
    assert!(h.node(S).pg_replication_slots().is_empty(), "no copy before the first sync round");
    h.fire(S, TimerId::SlotSync);
    settle_all(&mut h);
    let copy = &h.node(S).pg_replication_slots()[0];
    let original = &h.node(P).pg_replication_slots()[0];
    assert_eq!((copy.slot_name.as_str(), copy.failover), ("copy", true));
    assert_eq!(copy.confirmed_flush_lsn, original.confirmed_flush_lsn);
    // The primary goes; the standby is promoted and the subscription pointed at it.
    h.crash(P);
    h.step(S, Input::ConnectionLost { peer: P });
    h.step(SUB, Input::ConnectionLost { peer: P });
    h.step(S, Input::Admin(Command::Promote));
    settle_all(&mut h);
    h.step(SUB, Input::Admin(Command::SetPublisher { subscription: "copy".into(), publisher: S }));
    settle_all(&mut h);
    for op in 4..=5u64 {
        h.write(S, op, vec![insert(op, op * 100, 40)]);
        settle_all(&mut h);
    }
    assert_eq!(rows(&h, 1..6), (1..6).map(|op| Some(op * 100)).collect::<Vec<_>>());
    assert!(conflicts(&h).is_empty(), "nothing applied twice: {:?}", conflicts(&h));
    assert_eq!(h.node(S).pg_replication_slots()[0].confirmed_flush_lsn, h.node(S).status().flush_lsn);
}

#[test]
fn the_copy_never_runs_ahead_of_what_the_standby_flushed() {
    let mut h = cluster_with_subscriber(false);
    h.write(P, 1, vec![insert(1, 100, 40)]);
    settle_all(&mut h);
    h.fire(S, TimerId::SlotSync);
    settle_all(&mut h);
    let synced = h.node(S).pg_replication_slots()[0].confirmed_flush_lsn;
    // The standby is cut off; the subscriber (not waited for) confirms more.
    let standby_disk = h.crash(S);
    h.step(P, Input::ConnectionLost { peer: S });
    h.write(P, 2, vec![insert(2, 200, 40)]);
    settle_all(&mut h);
    assert_eq!(rows(&h, 1..3), vec![Some(100), Some(200)], "not waited for: the subscriber is ahead");
    let ahead = h.node(P).pg_replication_slots()[0].confirmed_flush_lsn;
    assert!(ahead > synced);
    // The standby comes back with its old WAL; a sync round before it has caught up keeps the
    // copy where it was.
    h.start(standby(), standby_disk.crash_image());
    h.inject(
        P,
        S,
        repsim_engine::message::Message::FailoverSlots {
            slots: vec![repsim_engine::logical::slot::LogicalSlot::create(
                "copy",
                repsim_engine::logical::decode::DecodePoint { at: ahead, prev: ahead },
                true,
            )],
        },
    );
    assert!(h.node(S).status().flush_lsn < ahead);
    assert_eq!(h.node(S).pg_replication_slots()[0].confirmed_flush_lsn, synced, "not past its own flush");
}

#[test]
fn synchronized_standby_slots_hold_changes_back_until_the_standby_flushed_them() {
    let mut h = cluster_with_subscriber(true);
    h.write(P, 1, vec![insert(1, 100, 40)]);
    settle_all(&mut h);
    assert_eq!(rows(&h, 1..2), vec![Some(100)]);
    // The standby is down: its slot on the primary stays where it was.
    let standby_disk = h.crash(S);
    h.step(P, Input::ConnectionLost { peer: S });
    h.write(P, 2, vec![insert(2, 200, 40)]);
    settle_all(&mut h);
    assert_eq!(rows(&h, 1..3), vec![Some(100), None], "held back for the standby");
    h.start(standby(), standby_disk.crash_image());
    settle_all(&mut h);
    assert_eq!(rows(&h, 1..3), vec![Some(100), Some(200)], "sent once the standby flushed it");
}
