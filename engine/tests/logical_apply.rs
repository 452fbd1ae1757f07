//! Logical replication between two clusters: a publisher's walsender streams from a slot and
//! a subscriber's apply worker applies each transaction once, stops on a conflict until it is
//! resolved, and resumes after a crash from its replication origin without applying anything
//! twice.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, Publication, SyncCommitLevel};
use repsim_engine::io::{Command, Input, Observation, TimerId};
use repsim_engine::logical::apply::Subscription;
use repsim_engine::logical::decode::PublishedTables;
use repsim_engine::wal::record::RowChange;
use repsim_engine::NodeId;

const P: NodeId = 0;
const SUB: NodeId = 1;
const NAMES: &[&str] = &["pub", "sub"];

fn subscriber_cfg() -> NodeConfig {
    let mut cfg = NodeConfig::with_defaults(SUB, cluster(NAMES));
    cfg.subscriptions = vec![Subscription {
        name: "s".into(),
        publisher: P,
        slot: "s".into(),
        publications: vec!["orders".into()],
        disable_on_error: false,
        copy_data: false,
        failover: false,
        origin_none: false,
        trigger: None,
        flush_each_commit: false,
    }];
    cfg
}

/// A publisher with a publication and a slot, and a subscriber streaming from it.
fn pair() -> Harness {
    pair_with(SyncCommitLevel::Local, "")
}

fn pair_with(level: SyncCommitLevel, synchronous_standby_names: &str) -> Harness {
    let mut cfg = primary_cfg(NAMES, level, synchronous_standby_names);
    cfg.publications =
        vec![Publication { name: "orders".into(), tables: PublishedTables::Tables(vec![TABLE]), row_filter: None }];
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    h.step(P, Input::Admin(Command::CreateLogicalSlot { name: "s".into(), failover: false }));
    let sub = subscriber_cfg();
    h.start(sub.clone(), fresh_image(&sub));
    settle(&mut h);
    h
}

/// Runs both clusters until quiet, the subscriber's WAL writer included: its apply worker
/// commits with `synchronous_commit = off`, so what it applied is flushed by the WAL writer,
/// and only then confirmed to the publisher.
fn settle(h: &mut Harness) {
    h.settle();
    h.fire(SUB, TimerId::WalWriter);
    h.settle();
}

fn rows(h: &Harness, id: NodeId, keys: std::ops::Range<u64>) -> Vec<Option<u64>> {
    keys.map(|k| h.node(id).store().get(TABLE, k).map(|v| v.write_id)).collect()
}

fn apply_notes(h: &Harness) -> Vec<String> {
    observations(&h.peer(SUB).log)
        .into_iter()
        .filter_map(|o| match o {
            Observation::ApplyWorker { text, .. } => Some(text),
            _ => None,
        })
        .collect()
}

#[test]
fn committed_changes_reach_the_subscriber_and_the_slot_follows_its_flush() {
    let mut h = pair();
    for op in 1..=3u64 {
        h.write(P, op, vec![insert(op, op * 100, 40)]);
        settle(&mut h);
    }
    assert_eq!(rows(&h, SUB, 1..4), vec![Some(100), Some(200), Some(300)]);
    let slot = &h.node(P).pg_replication_slots()[0];
    assert_eq!(slot.confirmed_flush_lsn, h.node(P).status().flush_lsn, "the subscriber confirmed everything");
    // Another table is not published.
    h.write(P, 4, vec![RowChange::Insert { table: TABLE + 1, key: 9, write_id: 400, value_len: 40 }]);
    settle(&mut h);
    assert!(h.node(SUB).store().get(TABLE + 1, 9).is_none());
    assert!(apply_notes(&h).is_empty(), "{:?}", apply_notes(&h));
}

/// [`pair`] whose worker stopped on its second transaction: the subscriber is writable, and a
/// local row took key 2 first.
fn stopped_at_a_conflict() -> Harness {
    let mut h = pair();
    // The subscriber is writable: a local row takes key 2 first.
    h.write(SUB, 50, vec![insert(2, 9_000, 40)]);
    settle(&mut h);
    for op in 1..=3u64 {
        h.write(P, op, vec![insert(op, op * 100, 40)]);
        settle(&mut h);
    }
    assert_eq!(rows(&h, SUB, 1..4), vec![Some(100), Some(9_000), None], "stopped at the conflict");
    h
}

#[test]
fn a_conflicting_insert_stops_the_worker_until_the_row_is_removed() {
    let mut h = stopped_at_a_conflict();
    assert_eq!(apply_notes(&h).len(), 1);
    assert!(apply_notes(&h)[0].starts_with("stopped: duplicate key value violates unique constraint"));
    // It starts again after wal_retrieve_retry_interval and meets the same row.
    h.fire(SUB, TimerId::ApplyRetry(P));
    settle(&mut h);
    assert_eq!(apply_notes(&h).len(), 2);
    // Someone removes the local row: the next retry applies the rest, once each.
    h.write(SUB, 51, vec![RowChange::Delete { table: TABLE, key: 2 }]);
    settle(&mut h);
    h.fire(SUB, TimerId::ApplyRetry(P));
    settle(&mut h);
    assert_eq!(rows(&h, SUB, 1..4), vec![Some(100), Some(200), Some(300)]);
    assert_eq!(apply_notes(&h).len(), 2);
}

#[test]
fn a_subscriber_that_crashes_before_confirming_applies_nothing_twice() {
    let mut h = pair();
    h.write(P, 1, vec![insert(1, 100, 40)]);
    settle(&mut h);
    // Transaction 2 reaches the subscriber, is applied and flushed there, but its status update
    // is lost with the crash: the slot still has it unconfirmed.
    h.write(P, 2, vec![insert(2, 200, 40)]);
    h.complete_all_io(P);
    let sent = h.take_sent(P, SUB);
    for msg in sent.clone() {
        h.inject(P, SUB, msg);
    }
    h.fire(SUB, TimerId::WalWriter);
    h.complete_all_io(SUB);
    h.take_sent(SUB, P);
    let confirmed = h.node(P).pg_replication_slots()[0].confirmed_flush_lsn;
    assert!(confirmed < h.node(P).status().flush_lsn, "transaction 2 is unconfirmed");
    let image = h.crash(SUB).crash_image();
    h.step(P, Input::ConnectionLost { peer: SUB });
    h.start(subscriber_cfg(), image);
    settle(&mut h);
    // The walsender sent transaction 2 again; the origin recovered with it says it is applied.
    assert_eq!(rows(&h, SUB, 1..3), vec![Some(100), Some(200)]);
    assert!(apply_notes(&h).is_empty(), "no duplicate-key conflict: {:?}", apply_notes(&h));
    // A copy of transaction 2 arriving again (a walsender that resends) is skipped by origin.
    for msg in sent {
        h.inject(P, SUB, msg);
    }
    settle(&mut h);
    assert!(apply_notes(&h).is_empty(), "the duplicate was applied: {:?}", apply_notes(&h));
    h.write(P, 3, vec![insert(3, 300, 40)]);
    settle(&mut h);
    assert_eq!(rows(&h, SUB, 1..4), vec![Some(100), Some(200), Some(300)]);
    assert_eq!(h.node(P).pg_replication_slots()[0].confirmed_flush_lsn, h.node(P).status().flush_lsn);
}

#[test]
fn a_publisher_that_crashes_keeps_its_slot_as_last_saved_and_the_subscriber_resumes() {
    let mut h = pair();
    for op in 1..=3u64 {
        h.write(P, op, vec![insert(op, op * 100, 40)]);
        settle(&mut h);
    }
    // A checkpoint saves the slot with what was confirmed so far.
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P);
    let saved = h.node(P).pg_replication_slots()[0].confirmed_flush_lsn;
    for op in 4..=5u64 {
        h.write(P, op, vec![insert(op, op * 100, 40)]);
        settle(&mut h);
    }
    assert!(h.node(P).pg_replication_slots()[0].confirmed_flush_lsn > saved);
    let cfg = h.node(P).config().clone();
    let image = h.crash(P).crash_image();
    h.step(SUB, Input::ConnectionLost { peer: P });
    h.start(cfg, image);
    assert_eq!(h.node(P).pg_replication_slots()[0].confirmed_flush_lsn, saved, "the slot as last saved");
    h.fire(SUB, TimerId::ApplyRetry(P));
    settle(&mut h);
    h.write(P, 6, vec![insert(6, 600, 40)]);
    settle(&mut h);
    assert_eq!(rows(&h, SUB, 1..7), (1..7).map(|op| Some(op * 100)).collect::<Vec<_>>());
    let notes = apply_notes(&h);
    assert_eq!(notes, vec!["stopped: the connection to the publisher was lost".to_string()], "no conflict");
    assert_eq!(h.node(P).pg_replication_slots()[0].confirmed_flush_lsn, h.node(P).status().flush_lsn);
}

#[test]
fn a_slot_made_at_initdb_streams_everything_from_the_first_write() {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.publications = vec![Publication { name: "orders".into(), tables: PublishedTables::All, row_filter: None }];
    let mut h = Harness::new();
    let image = repsim_engine::logical::admin::initdb_with_logical_slots(&cfg, &[("s".to_string(), false)]);
    h.start(cfg, image);
    let sub = subscriber_cfg();
    h.start(sub.clone(), fresh_image(&sub));
    settle(&mut h);
    assert_eq!(h.node(P).pg_replication_slots().len(), 1, "the slot was read back at boot");
    // A register upsert of a key nobody wrote inserts the row, and is logged and applied as
    // an insert; the next one updates it.
    for (op, write_id) in [(1u64, 100u64), (2, 200)] {
        h.write(P, op, vec![RowChange::Update { table: TABLE, key: 7, write_id, value_len: 40 }]);
        settle(&mut h);
        assert_eq!(rows(&h, SUB, 7..8), vec![Some(write_id)]);
    }
    assert!(apply_notes(&h).is_empty(), "{:?}", apply_notes(&h));
    let applied = observations(&h.peer(SUB).log)
        .into_iter()
        .filter(|o| matches!(o, Observation::LogicalApplied { publisher: P, .. }))
        .count();
    assert_eq!(applied, 2, "one observation per applied transaction");
}

/// A publisher of `orders` and a subscriber with no subscription yet.
fn publisher_and_bare_subscriber() -> Harness {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.publications =
        vec![Publication { name: "orders".into(), tables: PublishedTables::Tables(vec![TABLE]), row_filter: None }];
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    let sub = NodeConfig::with_defaults(SUB, cluster(NAMES));
    h.start(sub.clone(), fresh_image(&sub));
    h
}

/// `CREATE SUBSCRIPTION s … WITH (copy_data = true)` on the running publisher.
fn copying_subscription() -> Subscription {
    Subscription { copy_data: true, ..subscriber_cfg().subscriptions.remove(0) }
}

#[test]
fn a_subscription_made_on_a_running_publisher_copies_the_tables_then_streams_from_the_slot() {
    let mut h = publisher_and_bare_subscriber();
    for op in 1..=3u64 {
        h.write(P, op, vec![insert(op, op * 100, 40)]);
    }
    settle(&mut h);
    h.step(SUB, Input::Admin(Command::CreateSubscription(Box::new(copying_subscription()))));
    settle(&mut h);
    assert_eq!(rows(&h, SUB, 1..4), vec![Some(100), Some(200), Some(300)], "copied");
    let copied = observations(&h.peer(SUB).log).into_iter().find_map(|o| match o {
        Observation::InitialCopyDone { rows, .. } => Some(rows),
        _ => None,
    });
    assert_eq!(copied, Some(3));
    // What commits after the slot's point streams, once: nothing copied comes again.
    h.write(P, 4, vec![insert(4, 400, 40)]);
    settle(&mut h);
    assert_eq!(rows(&h, SUB, 1..5), vec![Some(100), Some(200), Some(300), Some(400)]);
    assert!(apply_notes(&h).is_empty(), "{:?}", apply_notes(&h));
    assert_eq!(h.node(P).pg_replication_slots()[0].confirmed_flush_lsn, h.node(P).status().flush_lsn);
}

#[test]
fn the_initial_copy_waits_until_its_new_slot_is_saved() {
    let mut h = publisher_and_bare_subscriber();
    h.write(P, 1, vec![insert(1, 100, 40)]);
    settle(&mut h);
    h.step(SUB, Input::Admin(Command::CreateSubscription(Box::new(copying_subscription()))));
    h.deliver(SUB, P);
    let copy_sent = |h: &Harness| {
        h.peer(P)
            .outbox
            .iter()
            .any(|(to, m)| *to == SUB && matches!(m, repsim_engine::message::Message::InitialCopy { .. }))
    };
    // The WAL up to the consistent point is flushed, but the slot's file is not yet fsynced: a
    // crash now would lose the slot, so the copy (and its snapshot) must not leave yet
    // (`ReplicationSlotPersist` before `CreateReplicationSlot` answers).
    assert!(h.pending_ios(P) > 0, "the slot file is being saved");
    assert!(!copy_sent(&h), "sent before the slot was saved");
    h.complete_all_io(P);
    assert!(copy_sent(&h), "sent once the slot is saved");
}

#[test]
fn a_copy_owed_to_a_lost_connection_is_never_sent() {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.publications =
        vec![Publication { name: "orders".into(), tables: PublishedTables::Tables(vec![TABLE]), row_filter: None }];
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    h.write(P, 1, vec![insert(1, 100, 40)]);
    h.settle();
    let request = || repsim_engine::message::Message::CreateSubscriptionSlot {
        slot: "s".into(),
        failover: false,
        publications: vec!["orders".into()],
    };
    // The slot is made and its copy waits for the slot file's fsync; the subscriber's
    // connection dies meanwhile, a commit follows, and the restarted subscriber asks again.
    h.inject(SUB, P, request());
    h.step(P, Input::ConnectionLost { peer: SUB });
    h.write(P, 2, vec![insert(2, 200, 40)]);
    h.inject(SUB, P, request());
    h.complete_all_io(P);
    let copies: Vec<usize> = h
        .take_sent(P, SUB)
        .into_iter()
        .filter_map(|m| match m {
            repsim_engine::message::Message::InitialCopy { rows, .. } => Some(rows.len()),
            _ => None,
        })
        .collect();
    // Only the answer to the live request, as of the slot made again (both rows).
    assert_eq!(copies, vec![2]);
}

/// [`pair`] with the subscription named in `synchronous_standby_names` (commits at `on`).
fn synchronous_pair() -> Harness {
    pair_with(SyncCommitLevel::On, "s")
}

#[test]
fn a_subscription_named_in_synchronous_standby_names_holds_commits_until_it_flushed_them() {
    let mut h = synchronous_pair();
    let acked = |h: &Harness| {
        h.peer(P).log.iter().find_map(|o| match o {
            repsim_engine::io::Output::Reply {
                op_id: 1,
                reply: repsim_engine::io::Reply::Committed { promise, .. },
                ..
            } => Some(promise.confirmed_by.clone()),
            _ => None,
        })
    };
    h.write(P, 1, vec![insert(1, 100, 40)]);
    h.settle();
    // Applied on the subscriber, not yet flushed there (its apply commits are asynchronous):
    // the commit still waits.
    assert_eq!(rows(&h, SUB, 1..2), vec![Some(100)]);
    assert_eq!(acked(&h), None, "released before the subscriber flushed it");
    settle(&mut h);
    assert_eq!(acked(&h), Some(vec![SUB]), "released once the subscriber reported it flushed");
}

#[test]
fn pg_stat_subscription_shows_what_arrived_and_keepalives_confirm_unpublished_wal() {
    let mut h = pair();
    h.write(P, 1, vec![insert(1, 100, 40)]);
    settle(&mut h);
    let flushed = h.node(P).status().flush_lsn;
    let row = &h.node(SUB).pg_stat_subscription()[0];
    assert_eq!((row.subname.as_str(), row.running), ("s", true));
    assert_eq!(row.received_lsn, flushed, "the transaction, then a keepalive through the flushed end");
    assert_eq!(row.latest_end_lsn, flushed);
    assert!(row.latest_end_time_ns.is_some() && row.last_msg_receipt_time_ns >= row.last_msg_send_time_ns);
    // WAL of a table no publication covers: nothing is sent but a keepalive, and the
    // subscriber's answer moves the slot past it (the WAL is not held for the subscriber).
    h.write(P, 2, vec![RowChange::Insert { table: TABLE + 1, key: 9, write_id: 200, value_len: 40 }]);
    settle(&mut h);
    let flushed_after = h.node(P).status().flush_lsn;
    assert!(flushed_after > flushed);
    assert_eq!(h.node(SUB).pg_stat_subscription()[0].latest_end_lsn, flushed_after);
    assert_eq!(h.node(P).pg_replication_slots()[0].confirmed_flush_lsn, flushed_after);
    assert!(h.node(SUB).store().get(TABLE + 1, 9).is_none());
}

#[test]
fn a_synchronous_subscriber_releases_a_commit_that_changed_no_published_table() {
    let mut h = synchronous_pair();
    h.write(P, 1, vec![RowChange::Insert { table: TABLE + 1, key: 9, write_id: 100, value_len: 40 }]);
    settle(&mut h);
    let released = h.peer(P).log.iter().any(|o| {
        matches!(
            o,
            repsim_engine::io::Output::Reply { op_id: 1, reply: repsim_engine::io::Reply::Committed { .. }, .. }
        )
    });
    assert!(released, "a keepalive's answer confirms the commit's WAL");
    let confirmed = observations(&h.peer(SUB).log)
        .into_iter()
        .any(|o| matches!(o, Observation::LogicalConfirmed { publisher: P, .. }));
    assert!(confirmed, "the subscriber says what it confirmed past its last applied transaction");
}

#[test]
fn a_stopped_worker_shows_a_row_of_nulls() {
    let h = stopped_at_a_conflict();
    let row = &h.node(SUB).pg_stat_subscription()[0];
    assert!(!row.running, "stopped by the conflict");
    assert!(!row.received_lsn.is_valid() && row.last_msg_send_time_ns.is_none() && row.latest_end_time_ns.is_none());
}

/// `ALTER SUBSCRIPTION … SKIP` is saved in the catalog (`subskiplsn`): a subscriber that
/// restarts before the worker meets the transaction again still skips it, once.
#[test]
fn a_skip_survives_a_restart_of_the_subscriber_and_is_cleared_when_used() {
    let mut h = stopped_at_a_conflict();
    h.step(SUB, Input::Admin(Command::SkipTransaction { subscription: "s".into() }));
    assert!(apply_notes(&h).last().unwrap().starts_with("skip set to the transaction finishing at"));
    // The skip's own transaction is flushed (the WAL writer), then the subscriber crashes.
    settle(&mut h);
    let image = h.crash(SUB).crash_image();
    h.step(P, Input::ConnectionLost { peer: SUB });
    h.start(subscriber_cfg(), image);
    settle(&mut h);
    // Transaction 2 is skipped whole (the local row stays), transaction 3 is applied.
    assert_eq!(rows(&h, SUB, 1..4), vec![Some(100), Some(9_000), Some(300)]);
    assert!(
        apply_notes(&h).iter().any(|n| n.starts_with("skipped the transaction finishing at")),
        "{:?}",
        apply_notes(&h)
    );
    // Cleared with the skip: the catalog row is gone.
    let key = repsim_engine::logical::apply::origin_key("s");
    assert!(h.node(SUB).store().get(repsim_engine::logical::apply::SKIP_TABLE, key).is_none());
}
