//! Hot-standby conflicts (spec §4.3, I4.4): a long query on a standby holds back replay of a
//! cleanup that removes row versions its snapshot may see, until the WAL's receipt time plus
//! `max_standby_streaming_delay`, then is cancelled; `hot_standby_feedback` makes the primary
//! keep those versions instead. PostgreSQL: `ResolveRecoveryConflictWithSnapshot`,
//! `GetStandbyLimitTime` (storage/ipc/standby.c), `heap_page_prune_opt` (pruneheap.c).

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel, SECOND_NS};
use repsim_engine::io::{ClientId, ErrorKind, Input, Observation, Output, Reply, Request, TimerId};
use repsim_engine::message::Message;
use repsim_engine::wal::record::RowChange;
use repsim_engine::NodeId;

const NAMES: &[&str] = &["p", "s1"];
const P: NodeId = 0;
const S: NodeId = 1;
const QUERY_OP: u64 = 500;

fn update(key: u64, write_id: u64) -> RowChange {
    RowChange::Update { table: TABLE, key, write_id, value_len: 100 }
}

/// Primary and streaming standby; row 1 exists.
fn pair(tweak_standby: impl FnOnce(&mut NodeConfig)) -> Harness {
    let pcfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    let image = fresh_image(&pcfg);
    let mut scfg = standby_cfg(S, NAMES);
    tweak_standby(&mut scfg);
    let mut h = Harness::new();
    h.start(pcfg, image.clone());
    h.start(scfg, image);
    h.write(P, 1, vec![update(1, 1)]);
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(P).status().flush_lsn, "the standby caught up");
    h
}

/// A query on the standby that runs `duration_ns`.
fn start_query(h: &mut Harness, duration_ns: u64) -> Vec<Output> {
    let request = Request::Read { table: TABLE, key: 1, duration_ns };
    let outs = h.step(S, Input::Client { client: ClientId(QUERY_OP), op_id: QUERY_OP, request });
    assert!(replies(&outs).is_empty(), "a query with a duration answers when it ends");
    outs
}

/// Row 1 is updated (its old version dies, after the query's snapshot); a second later the
/// primary's next transaction cleans the dead version up; the standby receives and flushes
/// it, and replay reaches the cleanup record.
fn cleanup_reaches_the_standby(h: &mut Harness) -> Vec<Output> {
    h.write(P, 2, vec![update(1, 2)]);
    h.settle();
    h.advance(SECOND_NS);
    let outs = h.write(P, 3, vec![update(2, 3)]);
    assert!(
        observations(&outs).iter().any(|o| matches!(o, Observation::Pruned { removed: 1, .. })),
        "the primary removes the dead version: {outs:?}"
    );
    h.settle();
    h.peer(S).log.clone()
}

fn query_reply(outs: &[Output]) -> Option<Reply> {
    replies(outs).into_iter().find(|(op, _)| *op == QUERY_OP).map(|(_, r)| r)
}

#[test]
fn replay_waits_for_a_conflicting_query_until_receipt_plus_the_delay_then_cancels_it() {
    let mut h = pair(|c| c.max_standby_streaming_delay_ns = Some(5 * SECOND_NS));
    start_query(&mut h, 60 * SECOND_NS);
    cleanup_reaches_the_standby(&mut h);
    let received_at = h.now;
    assert!(h.node(S).status().replay_lsn < h.node(S).status().flush_lsn, "replay stopped before the cleanup");
    let limit = h.timer(S, TimerId::StandbyLimit).expect("replay waits for the limit");
    assert_eq!(limit.0, received_at.0 + 5 * SECOND_NS, "receipt time + max_standby_streaming_delay");

    h.fire(S, TimerId::StandbyLimit);
    let outs = h.complete_compute(S);
    let cancelled = Reply::Error {
        kind: ErrorKind::RecoveryConflict,
        message: "canceling statement due to conflict with recovery",
    };
    assert_eq!(query_reply(&outs), Some(cancelled));
    let obs = observations(&outs);
    assert!(obs.contains(&Observation::RecoveryConflict { waited_ns: 5 * SECOND_NS, cancelled: 1 }), "{obs:?}");
    assert!(obs.iter().any(|o| matches!(o, Observation::CleanupReplayed { .. })));
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(S).status().flush_lsn, "replay went on");
}

#[test]
fn a_query_that_ends_in_time_releases_replay_and_is_answered_from_its_snapshot() {
    let mut h = pair(|_| {});
    start_query(&mut h, 3 * SECOND_NS);
    let started = h.now;
    cleanup_reaches_the_standby(&mut h);
    assert!(h.node(S).status().replay_lsn < h.node(S).status().flush_lsn);
    let outs = h.fire(S, TimerId::QueryEnd);
    assert_eq!(h.now.0, started.0 + 3 * SECOND_NS);
    assert!(
        matches!(query_reply(&outs), Some(Reply::Read { value: Some(v), .. }) if v.write_id == 1),
        "the value its snapshot saw, before the update"
    );
    let outs = h.complete_compute(S);
    let waited = observations(&outs).into_iter().find_map(|o| match o {
        Observation::RecoveryConflict { waited_ns, cancelled } => Some((waited_ns, cancelled)),
        _ => None,
    });
    assert_eq!(waited.map(|(_, cancelled)| cancelled), Some(0), "nothing cancelled");
    assert!(waited.is_some_and(|(ns, _)| ns > SECOND_NS), "replay waited for the query");
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(S).status().flush_lsn);
}

#[test]
fn delay_zero_cancels_at_once_and_minus_one_waits_forever() {
    let mut h = pair(|c| c.max_standby_streaming_delay_ns = Some(0));
    start_query(&mut h, 60 * SECOND_NS);
    let log = cleanup_reaches_the_standby(&mut h);
    assert!(matches!(query_reply(&log), Some(Reply::Error { kind: ErrorKind::RecoveryConflict, .. })));
    assert_eq!(h.node(S).status().replay_lsn, h.node(S).status().flush_lsn);

    let mut h = pair(|c| c.max_standby_streaming_delay_ns = None);
    start_query(&mut h, 600 * SECOND_NS);
    cleanup_reaches_the_standby(&mut h);
    assert_eq!(h.timer(S, TimerId::StandbyLimit), None, "-1: no limit");
    h.advance(300 * SECOND_NS);
    h.step(S, Input::Timer(TimerId::StandbyLimit));
    h.settle();
    assert!(h.node(S).status().replay_lsn < h.node(S).status().flush_lsn, "still waiting");
    let outs = h.fire(S, TimerId::QueryEnd);
    assert!(matches!(query_reply(&outs), Some(Reply::Read { .. })), "the query finished, not cancelled");
}

#[test]
fn a_query_whose_snapshot_postdates_the_cleanup_horizon_does_not_conflict() {
    let mut h = pair(|_| {});
    // A version that died before the query's snapshot: the snapshot sees its xmax committed.
    h.write(P, 3, vec![update(1, 3)]);
    h.settle();
    start_query(&mut h, 60 * SECOND_NS);
    h.advance(SECOND_NS);
    let outs = h.write(P, 4, vec![update(2, 4)]);
    assert!(observations(&outs).iter().any(|o| matches!(o, Observation::Pruned { removed: 1, .. })));
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(S).status().flush_lsn, "no conflict, no wait");
}

#[test]
fn hot_standby_feedback_holds_back_cleanup_on_the_primary_until_the_query_ends() {
    let mut h = pair(|c| c.hot_standby_feedback = true);
    start_query(&mut h, 30 * SECOND_NS);
    // The next status interval carries the query's xmin upstream.
    let outs = h.fire(S, TimerId::WalReceiver);
    let xmin = sends(&outs).into_iter().find_map(|(_, m)| match m {
        Message::HotStandbyFeedback { xmin, .. } => Some(xmin),
        _ => None,
    });
    assert!(xmin.is_some(), "an h message with the status update: {outs:?}");
    h.settle();
    assert_eq!(h.node(P).pg_stat_replication()[0].backend_xmin, xmin);
    for op in 3..8 {
        h.advance(SECOND_NS);
        let outs = h.write(P, op, vec![update(1, op)]);
        assert!(
            observations(&outs).iter().all(|o| !matches!(o, Observation::Pruned { removed: 1.., .. })),
            "nothing the standby's query may see is removed"
        );
        h.settle();
    }
    assert_eq!(h.node(S).status().replay_lsn, h.node(S).status().flush_lsn, "no conflict on the standby");
    let dead = h.node(P).status().dead_row_versions;
    assert_eq!(dead, 5, "the primary keeps the dead versions (bloat)");

    let outs = h.fire(S, TimerId::QueryEnd);
    assert!(matches!(query_reply(&outs), Some(Reply::Read { .. })));
    h.advance(10 * SECOND_NS);
    h.fire(S, TimerId::WalReceiver);
    h.settle();
    h.advance(SECOND_NS);
    let outs = h.write(P, 9, vec![update(2, 9)]);
    assert!(observations(&outs).iter().any(|o| matches!(o, Observation::Pruned { removed: 5, .. })), "{outs:?}");
}

#[test]
fn a_cancelled_query_answers_at_once_and_releases_replay() {
    let mut h = pair(|_| {});
    start_query(&mut h, 60 * SECOND_NS);
    cleanup_reaches_the_standby(&mut h);
    assert!(h.node(S).status().replay_lsn < h.node(S).status().flush_lsn, "replay waits for the query");
    let request = Request::Cancel { op_id: QUERY_OP };
    let outs = h.step(S, Input::Client { client: ClientId(QUERY_OP), op_id: QUERY_OP, request });
    assert!(matches!(query_reply(&outs), Some(Reply::Error { kind: ErrorKind::QueryCanceled, .. })));
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(S).status().flush_lsn, "replay went on");
}
