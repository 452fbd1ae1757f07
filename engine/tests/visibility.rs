//! A commit is invisible to other sessions on the primary until its wait ends (spec I3.3):
//! the local flush for `local` and above, the synchronous standbys for the remote levels.
//! PostgreSQL's `CommitTransaction` leaves the proc array only after `SyncRepWaitForLSN`.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel};
use repsim_engine::io::Output;
use repsim_engine::message::Message;
use repsim_engine::{Lsn, NodeId};

const NAMES: &[&str] = &["p", "s1"];
const P: NodeId = 0;

fn primary(level: SyncCommitLevel) -> (Harness, Lsn) {
    start_primary(primary_cfg(NAMES, level, "s1"))
}

/// Boots `cfg` with s1 streaming from it and reporting the start position.
fn start_primary(cfg: NodeConfig) -> (Harness, Lsn) {
    let image = fresh_image(&cfg);
    let mut h = Harness::new();
    h.start(cfg, image);
    let start = h.node(P).status().flush_lsn;
    h.inject(1, P, Message::StartReplication { start, timeline: 1 });
    report(&mut h, start, start);
    (h, start)
}

fn report(h: &mut Harness, flush: Lsn, apply: Lsn) -> Vec<Output> {
    let send_time_ns = h.now.0;
    h.inject(1, P, Message::StatusUpdate { write: flush, flush, apply, send_time_ns, reply_requested: false })
}

/// Writes row 7 (write id 7) in one transaction; returns its commit LSN.
fn write_row(h: &mut Harness) -> (Lsn, Vec<Output>) {
    let outs = h.write(P, 7, vec![insert(7, 7, 100)]);
    (h.node(P).status().insert_lsn, outs)
}

#[test]
fn a_commit_waiting_for_its_standby_is_invisible_until_released() {
    let (mut h, start) = primary(SyncCommitLevel::On);
    let (lsn, _) = write_row(&mut h);
    assert_eq!(h.read_value(P, 7), None, "inserted, not flushed");
    h.complete_all_io(P);
    assert_eq!(h.read_value(P, 7), None, "committed locally, waiting for s1");
    assert!(committed(&report(&mut h, Lsn(lsn.0 - 8), start)).is_empty());
    assert_eq!(h.read_value(P, 7), None, "s1 is one record short");
    assert_eq!(committed(&report(&mut h, lsn, start)).len(), 1);
    assert_eq!(h.read_value(P, 7), Some(value(7, 100)), "released: visible");
}

#[test]
fn local_hides_until_the_local_flush_and_off_hides_nothing() {
    let (mut h, _) = primary(SyncCommitLevel::Local);
    write_row(&mut h);
    h.complete_writes(P);
    assert_eq!(h.read_value(P, 7), None, "written is not flushed");
    assert_eq!(committed(&h.complete_all_io(P)).len(), 1);
    assert_eq!(h.read_value(P, 7), Some(value(7, 100)));

    let (mut h, _) = primary(SyncCommitLevel::Off);
    let (_, outs) = write_row(&mut h);
    assert_eq!(committed(&outs).len(), 1, "off replies at once");
    assert_eq!(h.read_value(P, 7), Some(value(7, 100)), "and shows the row at once");
}

/// A primary that restarts while a commit waits recovers it from its own WAL: committed
/// locally, so visible, though no standby ever confirmed it.
#[test]
fn a_waiting_commit_is_visible_after_the_primary_restarts() {
    let (mut h, _) = primary(SyncCommitLevel::On);
    write_row(&mut h);
    h.complete_all_io(P);
    assert_eq!(h.read_value(P, 7), None);
    let cfg = primary_cfg(NAMES, SyncCommitLevel::On, "s1");
    h.restart_process(cfg);
    h.complete_compute(P);
    h.settle();
    assert_eq!(h.read_value(P, 7), Some(value(7, 100)));
}

/// `statement_timeout` ends a wait for standbys: the commit is reported committed with a
/// `local` promise marked as cancelled (PostgreSQL: "canceling wait for synchronous
/// replication due to user request ... committed locally"), and becomes visible.
#[test]
fn statement_timeout_cancels_the_wait_committed_locally_and_visible() {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::On, "s1");
    cfg.statement_timeout_ns = 2_000_000_000;
    let (mut h, _) = start_primary(cfg);
    let (lsn, _) = write_row(&mut h);
    assert!(committed(&h.complete_all_io(P)).is_empty(), "waits for s1");
    let at = h.timer(P, repsim_engine::io::TimerId::StatementTimeout).expect("the timeout is armed");
    assert_eq!(at.0, h.now.0 + 2_000_000_000);
    h.set_time(at);
    let acks = committed(&h.fire(P, repsim_engine::io::TimerId::StatementTimeout));
    assert_eq!(acks.len(), 1);
    let (_, commit_lsn, promise) = &acks[0];
    assert_eq!(*commit_lsn, lsn);
    assert_eq!(promise.level, SyncCommitLevel::Local, "promised no more than it got");
    assert!(promise.wait_cancelled && promise.confirmed_by.is_empty());
    assert_eq!(h.read_value(P, 7), Some(value(7, 100)), "visible once the wait ends");
    assert!(committed(&report(&mut h, lsn, lsn)).is_empty(), "released once only");
}

fn cancel(h: &mut Harness, op_id: u64) -> Vec<Output> {
    let request = repsim_engine::io::Request::Cancel { op_id };
    h.step(P, repsim_engine::io::Input::Client { client: repsim_engine::io::ClientId(op_id), op_id, request })
}

/// The client's cancel request (libpq `PQcancel`) ends a wait for standbys as the timeout does;
/// one that arrives during the local flush takes effect when the wait starts; one for a
/// statement that already ended is ignored, and none is answered itself.
#[test]
fn a_client_cancel_ends_the_wait_for_standbys_committed_locally() {
    let (mut h, _) = primary(SyncCommitLevel::On);
    let (lsn, _) = write_row(&mut h);
    assert!(cancel(&mut h, 7).is_empty(), "during the local flush: nothing yet");
    let acks = committed(&h.complete_all_io(P));
    assert_eq!(acks.len(), 1, "the wait for s1 ends as soon as it starts");
    assert_eq!((acks[0].1, acks[0].2.level, acks[0].2.wait_cancelled), (lsn, SyncCommitLevel::Local, true));
    assert!(cancel(&mut h, 7).is_empty(), "a cancel after the end is ignored, not answered");

    let (mut h, _) = primary(SyncCommitLevel::On);
    let (lsn, _) = write_row(&mut h);
    assert!(committed(&h.complete_all_io(P)).is_empty(), "waits for s1");
    assert_eq!(h.read_value(P, 7), None);
    let acks = committed(&cancel(&mut h, 7));
    assert_eq!(acks.len(), 1);
    assert!(acks[0].2.wait_cancelled && acks[0].1 == lsn);
    assert_eq!(h.read_value(P, 7), Some(value(7, 100)), "visible once the wait ends");
    assert!(committed(&report(&mut h, lsn, lsn)).is_empty(), "released once only");
}
