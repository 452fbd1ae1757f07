//! Trigger-based capture (SymmetricDS-style): a capture trigger writes each change into the
//! publisher's change table in the same transaction; the subscriber's router polls it, loads
//! each batch with its progress in one transaction, and the publisher purges what was loaded
//! once the subscriber has flushed it.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, Publication, SyncCommitLevel};
use repsim_engine::io::TimerId;
use repsim_engine::logical::apply::Subscription;
use repsim_engine::logical::decode::PublishedTables;
use repsim_engine::logical::trigger::{Polling, CHANGE_TABLE};
use repsim_engine::NodeId;

const P: NodeId = 0;
const SUB: NodeId = 1;
const NAMES: &[&str] = &["pub", "target"];

fn target_cfg() -> NodeConfig {
    let mut cfg = NodeConfig::with_defaults(SUB, cluster(NAMES));
    cfg.subscriptions = vec![Subscription {
        name: "sym".into(),
        publisher: P,
        slot: "sym".into(),
        publications: vec!["orders".into()],
        disable_on_error: false,
        copy_data: false,
        failover: false,
        origin_none: false,
        trigger: Some(Polling { poll_interval_ns: 1_000_000_000, batch_rows: 2 }),
        flush_each_commit: false,
    }];
    cfg
}

fn pair() -> Harness {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.publications =
        vec![Publication { name: "orders".into(), tables: PublishedTables::Tables(vec![TABLE]), row_filter: None }];
    cfg.trigger_capture = Some(PublishedTables::Tables(vec![TABLE]));
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    let target = target_cfg();
    h.start(target.clone(), fresh_image(&target));
    h.settle();
    h
}

/// Until quiet, the target's WAL writer included (it loads with `synchronous_commit = off`,
/// and reports a batch loaded only once flushed).
fn settle(h: &mut Harness) {
    for _ in 0..3 {
        h.settle();
        if h.timer(SUB, TimerId::WalWriter).is_some() {
            h.fire(SUB, TimerId::WalWriter);
        }
    }
    h.settle();
}

fn change_rows(h: &Harness) -> usize {
    h.node(P).store().table(CHANGE_TABLE).count()
}

#[test]
fn captured_changes_reach_the_target_at_the_next_poll_and_are_purged_once_loaded() {
    let mut h = pair();
    for op in 1..=3u64 {
        h.write(P, op, vec![insert(op, op * 100, 40)]);
    }
    // The trigger wrote a change row per write, in the writing transaction.
    assert_eq!(change_rows(&h), 3);
    assert!(h.node(SUB).store().get(TABLE, 1).is_none(), "nothing before the router polls");
    h.fire(SUB, TimerId::TriggerPoll(P));
    settle(&mut h);
    // Batches of 2: the full first batch was followed by another poll at once.
    let loaded: Vec<Option<u64>> = (1..=3).map(|k| h.node(SUB).store().get(TABLE, k).map(|v| v.write_id)).collect();
    assert_eq!(loaded, vec![Some(100), Some(200), Some(300)]);
    assert_eq!(change_rows(&h), 0, "purged once the target flushed them");
    // A later change waits for the next poll.
    h.write(P, 4, vec![insert(4, 400, 40)]);
    settle(&mut h);
    assert!(h.node(SUB).store().get(TABLE, 4).is_none());
    h.fire(SUB, TimerId::TriggerPoll(P));
    settle(&mut h);
    assert_eq!(h.node(SUB).store().get(TABLE, 4).map(|v| v.write_id), Some(400));
}

#[test]
fn a_target_that_crashes_before_flushing_a_batch_loads_it_again_once() {
    let mut h = pair();
    h.write(P, 1, vec![insert(1, 100, 40)]);
    h.fire(SUB, TimerId::TriggerPoll(P));
    h.settle();
    // Loaded, not flushed (synchronous_commit = off): the source keeps the rows.
    assert_eq!(h.node(SUB).store().get(TABLE, 1).map(|v| v.write_id), Some(100));
    assert_eq!(change_rows(&h), 1);
    h.restart_process(target_cfg());
    h.complete_compute(SUB);
    settle(&mut h);
    h.fire(SUB, TimerId::TriggerPoll(P));
    settle(&mut h);
    assert_eq!(h.node(SUB).store().get(TABLE, 1).map(|v| v.write_id), Some(100));
    assert_eq!(change_rows(&h), 0, "loaded again, then purged");
    h.write(P, 2, vec![insert(2, 200, 40)]);
    h.fire(SUB, TimerId::TriggerPoll(P));
    settle(&mut h);
    assert_eq!(h.node(SUB).store().get(TABLE, 2).map(|v| v.write_id), Some(200));
}
