//! When a commit is acknowledged, for every `synchronous_commit` level and every form of
//! `synchronous_standby_names` (spec §3). The standbys are fake: the test speaks the protocol
//! for them (START_REPLICATION, then status updates with chosen positions).

mod common;

use common::*;
use repsim_engine::config::SyncCommitLevel;
use repsim_engine::io::{Input, Output, Reply};
use repsim_engine::message::Message;
use repsim_engine::wal::record::RecordBody;
use repsim_engine::{Lsn, NodeId};

const NAMES: &[&str] = &["p", "s1", "s2", "s3"];
const P: NodeId = 0;

fn primary(level: SyncCommitLevel, standby_names: &str) -> Harness {
    let cfg = primary_cfg(NAMES, level, standby_names);
    let image = fresh_image(&cfg);
    let mut h = Harness::new();
    h.start(cfg, image);
    h
}

/// Fake standby `id` opens a stream at the primary's flush position and reports that position.
fn connect(h: &mut Harness, id: NodeId) -> Lsn {
    let start = h.node(P).status().flush_lsn;
    let outs = h.inject(id, P, Message::StartReplication { start, timeline: 1 });
    assert!(disconnects(&outs).is_empty(), "stream refused: {outs:?}");
    report(h, id, start, start, start);
    start
}

fn report(h: &mut Harness, id: NodeId, write: Lsn, flush: Lsn, apply: Lsn) -> Vec<Output> {
    let send_time_ns = h.now.0;
    h.inject(id, P, Message::StatusUpdate { write, flush, apply, send_time_ns, reply_requested: false })
}

/// One single-row transaction; returns its commit LSN (the end of its commit record) and the
/// outputs of the client step.
fn commit(h: &mut Harness, op_id: u64) -> (Lsn, Vec<Output>) {
    let outs = h.write(P, op_id, vec![insert(op_id, op_id, 100)]);
    (h.node(P).status().insert_lsn, outs)
}

fn sync_state(h: &Harness, standby: NodeId) -> &'static str {
    h.node(P).pg_stat_replication().into_iter().find(|r| r.standby == standby).expect("row").sync_state
}

#[test]
fn every_level_is_released_at_its_own_step() {
    // Steps: 0 client write, 1 WAL write done, 2 fsync done, 3 s1 reports write,
    // 4 s1 reports flush, 5 s1 reports apply.
    let expected_step = [
        (SyncCommitLevel::Off, 0),
        (SyncCommitLevel::Local, 2),
        (SyncCommitLevel::RemoteWrite, 3),
        (SyncCommitLevel::On, 4),
        (SyncCommitLevel::RemoteApply, 5),
    ];
    for (level, expected) in expected_step {
        let mut h = primary(level, "FIRST 1 (s1, s2)");
        let start = connect(&mut h, 1);
        let (lsn, out0) = commit(&mut h, 1);
        assert!(lsn > start);
        let mut per_step = vec![out0];
        per_step.push(h.complete_writes(P));
        per_step.push(h.complete_all_io(P));
        per_step.push(report(&mut h, 1, lsn, start, start));
        per_step.push(report(&mut h, 1, lsn, lsn, start));
        per_step.push(report(&mut h, 1, lsn, lsn, lsn));
        let released: Vec<(usize, Lsn, Vec<NodeId>, SyncCommitLevel)> = per_step
            .iter()
            .enumerate()
            .flat_map(|(step, outs)| {
                committed(outs).into_iter().map(move |(_, l, p)| (step, l, p.confirmed_by, p.level))
            })
            .collect();
        assert_eq!(released.len(), 1, "{level:?}: one acknowledgement, got {released:?}");
        let (step, commit_lsn, confirmed_by, promised) = released[0].clone();
        assert_eq!(step, expected, "{level:?} released at step {step}");
        assert_eq!(commit_lsn, lsn, "{level:?}");
        assert_eq!(promised, level, "{level:?}");
        let expected_confirmed: Vec<NodeId> = if level >= SyncCommitLevel::RemoteWrite { vec![1] } else { vec![] };
        assert_eq!(confirmed_by, expected_confirmed, "{level:?}");
    }
}

#[test]
fn off_replies_before_any_wal_write_or_fsync() {
    let mut h = primary(SyncCommitLevel::Off, "FIRST 1 (s1, s2)");
    connect(&mut h, 1);
    let (lsn, outs) = commit(&mut h, 7);
    assert_eq!(committed(&outs).len(), 1);
    assert!(wal_writes(&outs).is_empty() && fsyncs(&outs) == 0, "off must not wait for IO: {outs:?}");
    assert_eq!(h.pending_ios(P), 0);
    assert!(h.node(P).status().flush_lsn < lsn, "acknowledged before it was durable");
    // The WAL writer flushes it later.
    let outs = h.fire(P, repsim_engine::io::TimerId::WalWriter);
    assert_eq!(wal_fsyncs(&outs), 1);
    h.complete_all_io(P);
    assert_eq!(h.node(P).status().flush_lsn, lsn);
}

#[test]
fn local_replies_after_the_local_fsync_without_any_standby() {
    let mut h = primary(SyncCommitLevel::Local, "FIRST 1 (s1, s2)");
    connect(&mut h, 1);
    let (lsn, outs) = commit(&mut h, 1);
    assert!(committed(&outs).is_empty());
    assert_eq!(wal_fsyncs(&outs), 1);
    assert!(committed(&h.complete_writes(P)).is_empty(), "written is not flushed");
    let outs = h.complete_all_io(P);
    let acks = committed(&outs);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].1, lsn);
    assert_eq!(acks[0].2.level, SyncCommitLevel::Local);
    assert!(acks[0].2.confirmed_by.is_empty());
}

#[test]
fn remote_write_needs_the_sync_standby_write_to_reach_the_commit() {
    let mut h = primary(SyncCommitLevel::RemoteWrite, "FIRST 1 (s1, s2)");
    let start = connect(&mut h, 1);
    connect(&mut h, 2);
    let (lsn, _) = commit(&mut h, 1);
    assert!(committed(&h.complete_all_io(P)).is_empty(), "remote_write waits for a standby");
    // s2 is only a potential standby: its write does not count.
    assert!(committed(&report(&mut h, 2, lsn, lsn, lsn)).is_empty());
    // s1 one record short.
    assert!(committed(&report(&mut h, 1, Lsn(lsn.0 - 8), start, start)).is_empty());
    let acks = committed(&report(&mut h, 1, lsn, start, start));
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].2.level, SyncCommitLevel::RemoteWrite);
    // Both standbys had reported a write covering the commit.
    assert_eq!(acks[0].2.confirmed_by, vec![1, 2]);
}

#[test]
fn on_needs_flush_and_remote_apply_needs_apply() {
    for (level, confirm) in [(SyncCommitLevel::On, 1usize), (SyncCommitLevel::RemoteApply, 2)] {
        let mut h = primary(level, "s1");
        let start = connect(&mut h, 1);
        let (lsn, _) = commit(&mut h, 1);
        h.complete_all_io(P);
        let positions = [(lsn, start, start), (lsn, lsn, start), (lsn, lsn, lsn)];
        let mut acked_at = None;
        for (i, (w, f, a)) in positions.into_iter().enumerate() {
            if !committed(&report(&mut h, 1, w, f, a)).is_empty() {
                assert!(acked_at.is_none());
                acked_at = Some(i);
            }
        }
        assert_eq!(acked_at, Some(confirm), "{level:?}");
    }
}

#[test]
fn remote_apply_flags_the_commit_record_for_immediate_apply_feedback() {
    for level in [SyncCommitLevel::On, SyncCommitLevel::RemoteApply] {
        let mut h = primary(level, "s1");
        let start = connect(&mut h, 1);
        let (lsn, _) = commit(&mut h, 1);
        h.complete_all_io(P);
        let data: Vec<(Lsn, Vec<u8>)> = h
            .take_sent(P, 1)
            .into_iter()
            .filter_map(|m| match m {
                Message::XLogData { start, bytes, .. } => Some((start, bytes)),
                _ => None,
            })
            .collect();
        assert_eq!(data.len(), 1, "one XLogData with the new WAL");
        assert_eq!(data[0].0, start);
        let records = decode_stream(&data[0].1, start);
        let (_, end, last) = records.last().expect("records");
        assert_eq!(*end, lsn, "only flushed WAL, all of it, is sent");
        match last.body {
            RecordBody::Commit { apply_feedback, .. } => {
                assert_eq!(apply_feedback, level == SyncCommitLevel::RemoteApply, "{level:?}")
            }
            other => panic!("last record is not a commit: {other:?}"),
        }
    }
}

#[test]
fn first_1_picks_the_highest_priority_connected_standby() {
    let mut h = primary(SyncCommitLevel::On, "FIRST 1 (s1, s2)");
    // s2 connects first (earlier walsender slot) but s1 has the higher priority.
    connect(&mut h, 2);
    connect(&mut h, 1);
    assert_eq!((sync_state(&h, 1), sync_state(&h, 2)), ("sync", "potential"));
    let (lsn, _) = commit(&mut h, 1);
    h.complete_all_io(P);
    assert!(committed(&report(&mut h, 2, lsn, lsn, lsn)).is_empty(), "potential standby released a commit");
    let acks = committed(&report(&mut h, 1, lsn, lsn, Lsn(lsn.0 - 8)));
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].2.confirmed_by, vec![1, 2]);
}

#[test]
fn first_1_falls_back_to_the_next_priority_when_the_sync_standby_disconnects() {
    let mut h = primary(SyncCommitLevel::On, "FIRST 1 (s1, s2)");
    connect(&mut h, 1);
    connect(&mut h, 2);
    let (lsn, _) = commit(&mut h, 1);
    h.complete_all_io(P);
    assert!(committed(&report(&mut h, 2, lsn, lsn, lsn)).is_empty());
    let mut outs = h.step(P, Input::ConnectionLost { peer: 1 });
    assert_eq!(h.node(P).pg_stat_replication().len(), 1);
    assert_eq!(sync_state(&h, 2), "sync");
    // PostgreSQL releases on the new sync standby's next reply (at the latest).
    outs.extend(report(&mut h, 2, lsn, lsn, lsn));
    let acks = committed(&outs);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].1, lsn);
    assert_eq!(acks[0].2.confirmed_by, vec![2]);
}

#[test]
fn first_2_waits_for_the_two_highest_priorities_only() {
    let mut h = primary(SyncCommitLevel::On, "FIRST 2 (s1, s2, s3)");
    let start = connect(&mut h, 1);
    connect(&mut h, 2);
    connect(&mut h, 3);
    assert_eq!((sync_state(&h, 1), sync_state(&h, 2), sync_state(&h, 3)), ("sync", "sync", "potential"));
    let (lsn, _) = commit(&mut h, 1);
    h.complete_all_io(P);
    assert!(committed(&report(&mut h, 1, lsn, lsn, start)).is_empty());
    assert!(committed(&report(&mut h, 3, lsn, lsn, start)).is_empty(), "s3 is not among the first 2");
    let acks = committed(&report(&mut h, 2, lsn, lsn, start));
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].2.confirmed_by, vec![1, 2, 3]);
}

#[test]
fn any_1_releases_on_any_listed_standby_but_not_an_unlisted_one() {
    let mut h = primary(SyncCommitLevel::On, "ANY 1 (s1, s2)");
    connect(&mut h, 1);
    connect(&mut h, 2);
    connect(&mut h, 3);
    assert_eq!((sync_state(&h, 1), sync_state(&h, 2), sync_state(&h, 3)), ("quorum", "quorum", "async"));
    let (lsn, _) = commit(&mut h, 1);
    h.complete_all_io(P);
    assert!(committed(&report(&mut h, 3, lsn, lsn, lsn)).is_empty(), "unlisted standby released a commit");
    let acks = committed(&report(&mut h, 2, lsn, lsn, lsn));
    assert_eq!(acks.len(), 1);
    // s1 had not reported the commit; the unlisted s3 had (it confirmed it, though it could
    // not release it).
    assert_eq!(acks[0].2.confirmed_by, vec![2, 3]);
}

#[test]
fn any_2_releases_at_the_second_highest_position() {
    let mut h = primary(SyncCommitLevel::On, "ANY 2 (s1, s2, s3)");
    let start = connect(&mut h, 1);
    connect(&mut h, 2);
    connect(&mut h, 3);
    let (l1, _) = commit(&mut h, 1);
    h.complete_all_io(P);
    let (l2, _) = commit(&mut h, 2);
    h.complete_all_io(P);
    assert!(committed(&report(&mut h, 1, l2, l2, start)).is_empty(), "one of two is not a quorum");
    // Positions s1 = l2, s2 = l1, s3 = start: the second highest is l1.
    let acks = committed(&report(&mut h, 2, l1, l1, start));
    assert_eq!(acks.iter().map(|a| a.0).collect::<Vec<_>>(), vec![1]);
    assert_eq!(acks[0].2.confirmed_by, vec![1, 2]);
    let acks = committed(&report(&mut h, 3, l2, l2, start));
    assert_eq!(acks.iter().map(|a| a.0).collect::<Vec<_>>(), vec![2]);
    assert_eq!(acks[0].2.confirmed_by, vec![1, 3]);
}

#[test]
fn too_few_sync_standbys_make_commits_wait_not_fail() {
    for names in ["FIRST 2 (s1, s2)", "ANY 2 (s1, s2)"] {
        let mut h = primary(SyncCommitLevel::On, names);
        connect(&mut h, 1);
        let (lsn, _) = commit(&mut h, 1);
        let mut outs = h.complete_all_io(P);
        for _ in 0..10 {
            h.advance(10 * SEC);
            outs.extend(report(&mut h, 1, lsn, lsn, lsn));
        }
        assert!(replies(&outs).is_empty(), "{names}: a commit must wait, never fail: {outs:?}");
        assert_eq!(h.node(P).status().commits_waiting_for_standbys, 1, "{names}");
        // The second standby arrives (behind), catches up, and the commit goes through.
        let outs = h.inject(2, P, Message::StartReplication { start: Lsn(lsn.0 - 8 * 20), timeline: 1 });
        assert!(committed(&outs).is_empty());
        let acks = committed(&report(&mut h, 2, lsn, lsn, lsn));
        assert_eq!(acks.len(), 1, "{names}");
        assert_eq!(acks[0].2.confirmed_by, vec![1, 2], "{names}");
        assert_eq!(h.node(P).status().commits_waiting_for_standbys, 0);
    }
}

#[test]
fn empty_standby_names_make_remote_levels_local() {
    for level in [SyncCommitLevel::RemoteWrite, SyncCommitLevel::On, SyncCommitLevel::RemoteApply] {
        let mut h = primary(level, "");
        connect(&mut h, 1); // connected but never confirms anything
        let (lsn, _) = commit(&mut h, 1);
        assert!(committed(&h.complete_writes(P)).is_empty());
        let acks = committed(&h.complete_all_io(P));
        assert_eq!(acks.len(), 1, "{level:?} with '' waits for the local flush only");
        assert_eq!(acks[0].1, lsn);
        assert_eq!(acks[0].2.level, SyncCommitLevel::Local, "{level:?} is reported as local");
        assert!(acks[0].2.confirmed_by.is_empty());
        assert_eq!(sync_state(&h, 1), "async");
    }
}

#[test]
fn group_commit_releases_commits_that_queued_behind_an_fsync_in_one_round() {
    let mut h = primary(SyncCommitLevel::Local, "");
    let (l1, outs) = commit(&mut h, 1);
    let mut fsync_count = wal_fsyncs(&outs);
    assert_eq!(fsync_count, 1);
    // Two more commits while the first fsync is in flight: written, not fsynced yet.
    let (_, outs) = commit(&mut h, 2);
    fsync_count += wal_fsyncs(&outs);
    let (l3, outs) = commit(&mut h, 3);
    fsync_count += wal_fsyncs(&outs);
    assert_eq!(fsync_count, 1, "one fsync round in flight at a time");
    let outs = h.complete_through_fsync(P);
    fsync_count += wal_fsyncs(&outs);
    assert_eq!(committed(&outs).iter().map(|a| (a.0, a.1)).collect::<Vec<_>>(), vec![(1, l1)]);
    let outs = h.complete_all_io(P);
    fsync_count += wal_fsyncs(&outs);
    let acks = committed(&outs);
    assert_eq!(acks.iter().map(|a| a.0).collect::<Vec<_>>(), vec![2, 3], "both ride the second round");
    assert_eq!(fsync_count, 2, "three commits, two fsync rounds");
    assert_eq!(h.node(P).status().flush_lsn, l3);
    // All released by the same completion: one step's outputs held both replies.
    let log = &h.peer(P).log;
    let pos2 = log.iter().position(|o| matches!(o, Output::Reply { op_id: 2, .. })).unwrap();
    let pos3 = log.iter().position(|o| matches!(o, Output::Reply { op_id: 3, .. })).unwrap();
    assert_eq!(pos3, pos2 + 1);
}

#[test]
fn one_standby_reply_releases_every_waiting_commit_it_covers() {
    let mut h = primary(SyncCommitLevel::On, "s1");
    let start = connect(&mut h, 1);
    let mut lsns = Vec::new();
    for op in 1..=3 {
        lsns.push(commit(&mut h, op).0);
    }
    h.complete_all_io(P);
    assert_eq!(h.node(P).status().commits_waiting_for_standbys, 3);
    // Covers the first two only.
    let acks = committed(&report(&mut h, 1, lsns[1], lsns[1], start));
    assert_eq!(acks.iter().map(|a| a.0).collect::<Vec<_>>(), vec![1, 2]);
    // A stale (lower) report does not take anything back nor release more.
    assert!(committed(&report(&mut h, 1, lsns[0], lsns[0], start)).is_empty());
    let acks = committed(&report(&mut h, 1, lsns[2], lsns[2], start));
    assert_eq!(acks.iter().map(|a| a.0).collect::<Vec<_>>(), vec![3]);
}

#[test]
fn aborts_never_wait() {
    let mut h = primary(SyncCommitLevel::On, "s1");
    connect(&mut h, 1);
    let outs = h.step(
        P,
        Input::Client {
            client: repsim_engine::io::ClientId(1),
            op_id: 1,
            request: repsim_engine::io::Request::Write {
                changes: vec![insert(1, 1, 10)],
                commit: false,
                synchronous_commit: None,
            },
        },
    );
    assert_eq!(replies(&outs), vec![(1, Reply::RolledBack)]);
    assert_eq!(h.node(P).status().commits_waiting_for_standbys, 0);
}

/// A session's `SET synchronous_commit` overrides the server's for its commits only (spec §3.1:
/// a per-transaction setting): `off` answers at once on a server running `on`, and `on` waits
/// for the standby's flush on a server running `local`; the promise names the level used.
#[test]
fn a_session_level_overrides_the_server_level_for_its_own_commits() {
    let session_write = |h: &mut Harness, op_id: u64, level: SyncCommitLevel| {
        let request = repsim_engine::io::Request::Write {
            changes: vec![insert(op_id, op_id, 100)],
            commit: true,
            synchronous_commit: Some(level),
        };
        h.step(P, Input::Client { client: repsim_engine::io::ClientId(op_id), op_id, request })
    };
    let mut h = primary(SyncCommitLevel::On, "s1");
    connect(&mut h, 1);
    let outs = session_write(&mut h, 1, SyncCommitLevel::Off);
    let answered = committed(&outs);
    assert_eq!(answered.len(), 1, "off answers before any flush: {outs:?}");
    assert_eq!(answered[0].2.level, SyncCommitLevel::Off);
    let (_, outs) = commit(&mut h, 2);
    assert!(committed(&outs).is_empty(), "the server's own level still waits");

    let mut h = primary(SyncCommitLevel::Local, "s1");
    connect(&mut h, 1);
    session_write(&mut h, 3, SyncCommitLevel::On);
    let lsn = h.node(P).status().insert_lsn;
    let outs = h.complete_all_io(P);
    assert!(committed(&outs).is_empty(), "on waits for s1 beyond the local flush: {outs:?}");
    let outs = report(&mut h, 1, lsn, lsn, Lsn::INVALID);
    let answered = committed(&outs);
    assert_eq!(answered.len(), 1, "{outs:?}");
    assert_eq!(answered[0].2.level, SyncCommitLevel::On);
}
