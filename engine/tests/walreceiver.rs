//! A standby streaming from a real primary, both `Node`s, with the test carrying every message,
//! disk completion and CPU completion between them (spec §2.3, §2.4, §4, §5).

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel};
use repsim_engine::io::{ErrorKind, Input, Observation, Output, Reply, Request, TimerId};
use repsim_engine::message::Message;
use repsim_engine::walsender::{MAX_SEND_BYTES, WAL_PAGE_BYTES};
use repsim_engine::{Lsn, NodeId};

const NAMES: &[&str] = &["p", "s1"];
const P: NodeId = 0;
const S: NodeId = 1;

/// Primary and standby from the same fresh image; the standby's START_REPLICATION is queued.
fn pair(
    level: SyncCommitLevel,
    standby_names: &str,
    tweak_primary: impl FnOnce(&mut NodeConfig),
    tweak_standby: impl FnOnce(&mut NodeConfig),
) -> Harness {
    let mut pcfg = primary_cfg(NAMES, level, standby_names);
    tweak_primary(&mut pcfg);
    let image = fresh_image(&pcfg);
    let mut scfg = standby_cfg(S, NAMES);
    tweak_standby(&mut scfg);
    let mut h = Harness::new();
    h.start(pcfg, image.clone());
    h.start(scfg, image);
    h
}

/// Primary and standby, streaming and idle.
fn streaming_pair(level: SyncCommitLevel, standby_names: &str) -> Harness {
    let mut h = pair(level, standby_names, |_| {}, |_| {});
    h.settle();
    assert_eq!(h.node(S).pg_stat_wal_receiver().expect("walreceiver").status, "streaming");
    h
}

fn rows(from_key: u64, count: u64, len: u32) -> Vec<repsim_engine::wal::record::RowChange> {
    (from_key..from_key + count).map(|k| insert(k, k * 10, len)).collect()
}

fn has_stopped(outs: &[Output]) -> Option<String> {
    observations(outs).into_iter().find_map(|o| match o {
        Observation::WalReceiverStopped { reason } => Some(reason),
        _ => None,
    })
}

#[test]
fn handshake_starts_at_the_flushed_position_and_reports_it() {
    let mut h = pair(SyncCommitLevel::On, "s1", |_| {}, |_| {});
    let flushed = h.node(S).status().flush_lsn;
    let starts = start_replications(&h.peer(S).log);
    assert_eq!(starts, vec![(P, flushed, 1)]);
    // Before the first reply the primary shows NULL positions and priority 0 (spec §5.1).
    h.deliver(S, P);
    let row = h.node(P).pg_stat_replication()[0].clone();
    assert_eq!((row.write_lsn, row.flush_lsn, row.replay_lsn, row.sync_priority), (None, None, None, 0));
    assert_eq!(row.sync_state, "async");
    // The stream opens; the standby answers with a forced status carrying its positions.
    let outs = h.deliver(P, S);
    assert_eq!(status_updates(&outs), vec![(flushed, flushed, flushed, false)]);
    h.deliver(S, P);
    let row = h.node(P).pg_stat_replication()[0].clone();
    assert_eq!(row.flush_lsn, Some(flushed));
    assert_eq!((row.sync_priority, row.sync_state, row.state), (1, "sync", "streaming"));
}

#[test]
fn standby_writes_then_flushes_then_replays_and_reports_each_step() {
    let mut h = streaming_pair(SyncCommitLevel::On, "s1");
    let start = h.node(S).status().flush_lsn;
    h.write(P, 1, rows(1, 2, 100));
    let lsn = h.node(P).status().insert_lsn;
    assert!(committed(&h.complete_all_io(P)).is_empty());

    // XLogData arrives: written to the OS, nothing reported yet.
    let outs = h.deliver(P, S);
    assert!(!wal_writes(&outs).is_empty());
    assert!(status_updates(&outs).is_empty());
    // Write done: report write, then fsync.
    let outs = h.complete_writes(S);
    assert_eq!(status_updates(&outs), vec![(lsn, start, start, false)]);
    assert_eq!(wal_fsyncs(&outs), 1);
    assert!(committed(&h.deliver(S, P)).is_empty(), "a write report does not release `on`");
    // Fsync done: report flush, start replay.
    let outs = h.complete_all_io(S);
    assert_eq!(status_updates(&outs), vec![(lsn, lsn, start, false)]);
    assert!(outs.iter().any(|o| matches!(o, Output::Compute(_))));
    let acks = committed(&h.deliver(S, P));
    assert_eq!(acks.len(), 1);
    assert_eq!((acks[0].1, acks[0].2.confirmed_by.clone()), (lsn, vec![S]));
    // Replay done: report apply.
    let outs = h.complete_compute(S);
    assert_eq!(status_updates(&outs), vec![(lsn, lsn, lsn, false)]);
    h.deliver(S, P);
    assert_eq!(h.node(S).status().replay_lsn, lsn);
    assert_eq!(h.node(S).store(), h.node(P).store());
}

#[test]
fn remote_apply_commit_is_released_by_the_apply_report() {
    let mut h = streaming_pair(SyncCommitLevel::RemoteApply, "s1");
    h.write(P, 1, rows(1, 1, 100));
    h.complete_all_io(P);
    h.deliver(P, S);
    h.complete_all_io(S);
    assert!(committed(&h.deliver(S, P)).is_empty(), "flushed is not applied");
    h.complete_compute(S);
    let acks = committed(&h.deliver(S, P));
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].2.level, SyncCommitLevel::RemoteApply);
    assert_eq!(h.read_value(S, 1), Some(value(10, 100)));
}

#[test]
fn keepalive_with_reply_requested_gets_an_immediate_status() {
    let mut h = streaming_pair(SyncCommitLevel::On, "s1");
    let flushed = h.node(S).status().flush_lsn;
    h.advance(SEC);
    let keepalive = |reply_requested| Message::Keepalive { wal_end: flushed, send_time_ns: 1, reply_requested };
    let outs = h.inject(P, S, keepalive(false));
    assert!(status_updates(&outs).is_empty(), "no reply unasked with nothing new");
    let outs = h.inject(P, S, keepalive(true));
    assert_eq!(status_updates(&outs), vec![(flushed, flushed, flushed, false)]);
    assert_eq!(sends(&outs)[0].0, P);
}

#[test]
fn pg_stat_replication_and_pg_stat_wal_receiver_show_the_stream() {
    let mut h = streaming_pair(SyncCommitLevel::On, "s1");
    let start = h.node(S).status().flush_lsn;
    h.write(P, 1, rows(1, 3, 200));
    let lsn = h.node(P).status().insert_lsn;
    h.settle();
    let rows = h.node(P).pg_stat_replication();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!((r.standby, r.application_name.as_str(), r.state), (S, "s1", "streaming"));
    assert_eq!(r.sent_lsn, lsn);
    assert_eq!((r.write_lsn, r.flush_lsn, r.replay_lsn), (Some(lsn), Some(lsn), Some(lsn)));
    assert_eq!((r.sync_priority, r.sync_state), (1, "sync"));
    let w = h.node(S).pg_stat_wal_receiver().expect("standby has a walreceiver row");
    assert_eq!(w.status, "streaming");
    assert_eq!(w.receive_start_lsn, start);
    assert_eq!((w.written_lsn, w.flushed_lsn, w.latest_end_lsn), (lsn, lsn, lsn));
    assert!(h.node(P).pg_stat_wal_receiver().is_none(), "a primary has no walreceiver row");
}

#[test]
fn large_transactions_stream_in_contiguous_bounded_chunks() {
    let mut h = streaming_pair(SyncCommitLevel::On, "s1");
    let start = h.node(S).status().flush_lsn;
    h.write(P, 1, rows(1, 60, 4000)); // about 240 KiB of WAL
    let lsn = h.node(P).status().insert_lsn;
    h.complete_all_io(P);
    let chunks: Vec<(Lsn, Lsn, usize)> = h
        .peer(P)
        .outbox
        .iter()
        .filter_map(|(_, m)| match m {
            Message::XLogData { start, wal_end, bytes, .. } => Some((*start, *wal_end, bytes.len())),
            _ => None,
        })
        .collect();
    assert!(chunks.len() >= 2, "{chunks:?}");
    let mut at = start;
    for &(chunk_start, wal_end, len) in &chunks {
        assert_eq!(chunk_start, at, "contiguous (I2.1)");
        assert_eq!(wal_end, lsn, "walEnd is the send limit");
        assert!(len as u64 <= MAX_SEND_BYTES, "I2.3");
        at = Lsn(at.0 + len as u64);
        assert!(at == lsn || at.0 - at.0 % WAL_PAGE_BYTES == at.0, "chunk ends on a page or at the limit (I2.3)");
    }
    assert_eq!(at, lsn);
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, lsn);
    assert_eq!(h.node(S).data_hash(), h.node(P).data_hash());
    assert_eq!(committed(&h.peer(P).log).len(), 1);
}

#[test]
fn wal_receiver_timeout_pings_at_half_stops_at_full_then_reconnects() {
    let mut h = streaming_pair(SyncCommitLevel::Local, "");
    let flushed = h.node(S).status().flush_lsn;
    let t0 = h.now;
    let timeout = h.node(S).config().wal_receiver_timeout_ns;
    let interval = h.node(S).config().wal_receiver_status_interval_ns;
    assert_eq!((timeout, interval), (60 * SEC, 10 * SEC));
    // The primary goes silent: nothing is delivered to the standby any more.
    let mut statuses = Vec::new();
    let stopped_at;
    let mut guard = 0;
    loop {
        guard += 1;
        assert!(guard < 100, "walreceiver never timed out");
        let outs = h.fire(S, TimerId::WalReceiver);
        for (_, _, _, reply_requested) in status_updates(&outs) {
            statuses.push(((h.now.0 - t0.0) / SEC, reply_requested));
        }
        if let Some(reason) = has_stopped(&outs) {
            assert_eq!(reason, "terminating walreceiver due to timeout");
            assert_eq!(disconnects(&outs), vec![P]);
            stopped_at = h.now;
            break;
        }
    }
    assert_eq!(stopped_at.0 - t0.0, timeout, "stops at wal_receiver_timeout");
    assert_eq!(statuses, vec![(10, false), (20, false), (30, true), (40, false), (50, false)]);
    assert_eq!(h.node(S).pg_stat_wal_receiver().unwrap().status, "waiting");
    // The last attempt was a minute ago, so the retry is due at once.
    assert_eq!(h.timer(S, TimerId::WalReceiver), Some(stopped_at));
    let outs = h.fire(S, TimerId::WalReceiver);
    assert_eq!(start_replications(&outs), vec![(P, flushed, 1)]);
    // The primary replaces the stale walsender and streaming resumes.
    h.take_sent(S, P).into_iter().filter(|m| matches!(m, Message::StartReplication { .. })).for_each(|m| {
        h.inject(S, P, m);
    });
    h.settle();
    assert_eq!(h.node(S).pg_stat_wal_receiver().unwrap().status, "streaming");
}

#[test]
fn reconnect_waits_wal_retrieve_retry_interval_after_the_last_attempt() {
    let mut h = streaming_pair(SyncCommitLevel::Local, "");
    let attempt = h.now; // the standby connected at boot
    let retry = h.node(S).config().wal_retrieve_retry_interval_ns;
    h.advance(SEC);
    let outs = h.step(S, Input::ConnectionLost { peer: P });
    assert!(has_stopped(&outs).is_some());
    assert_eq!(h.timer(S, TimerId::WalReceiver), Some(repsim_engine::io::Instant(attempt.0 + retry)));
    // An early wake-up does not reconnect.
    h.advance(2 * SEC);
    let outs = h.step(S, Input::Timer(TimerId::WalReceiver));
    assert!(start_replications(&outs).is_empty());
    let outs = h.fire(S, TimerId::WalReceiver);
    assert_eq!(h.now.0 - attempt.0, retry);
    assert_eq!(start_replications(&outs).len(), 1);
}

#[test]
fn upstream_error_stops_the_walreceiver() {
    let mut h = streaming_pair(SyncCommitLevel::Local, "");
    let outs = h.inject(P, S, Message::Error { text: "boom".into() });
    let reason = has_stopped(&outs).expect("stopped");
    assert!(reason.contains("could not receive data from WAL stream") && reason.contains("boom"), "{reason}");
}

#[test]
fn wal_sender_timeout_pings_at_half_and_drops_the_standby_at_full() {
    let mut h = pair(SyncCommitLevel::Local, "", |c| c.wal_sender_timeout_ns = 10 * SEC, |_| {});
    h.settle();
    let t0 = h.now;
    let outs = h.fire(P, TimerId::WalSender(S));
    assert_eq!(h.now.0 - t0.0, 5 * SEC, "ping at half the timeout");
    let pings: Vec<bool> = sends(&outs)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Keepalive { reply_requested, .. } if to == S => Some(reply_requested),
            _ => None,
        })
        .collect();
    assert_eq!(pings, vec![true]);
    // The standby never answers.
    h.take_sent(P, S);
    let outs = h.fire(P, TimerId::WalSender(S));
    assert_eq!(h.now.0 - t0.0, 10 * SEC);
    assert_eq!(disconnects(&outs), vec![S]);
    assert!(observations(&outs).iter().any(|o| matches!(o,
        Observation::WalSenderError { standby: S, text } if text == "terminating walsender process due to replication timeout")));
    assert!(h.node(P).pg_stat_replication().is_empty());
}

#[test]
fn an_answered_ping_keeps_the_walsender() {
    let mut h = pair(SyncCommitLevel::Local, "", |c| c.wal_sender_timeout_ns = 10 * SEC, |_| {});
    h.settle();
    let t0 = h.now;
    h.fire(P, TimerId::WalSender(S));
    h.advance(SEC);
    let outs = h.deliver(P, S);
    assert_eq!(status_updates(&outs).len(), 1, "a requested reply");
    h.deliver(S, P);
    assert_eq!(h.timer(P, TimerId::WalSender(S)).unwrap().0, t0.0 + 6 * SEC + 5 * SEC);
    h.set_time(repsim_engine::io::Instant(t0.0 + 10 * SEC));
    let outs = h.step(P, Input::Timer(TimerId::WalSender(S)));
    assert!(disconnects(&outs).is_empty());
    assert_eq!(h.node(P).pg_stat_replication().len(), 1);
}

#[test]
fn standby_refuses_writes_as_read_only() {
    let mut h = streaming_pair(SyncCommitLevel::Local, "");
    let outs = h.write(S, 1, rows(1, 1, 10));
    match &replies(&outs)[..] {
        [(1, Reply::Error { kind: ErrorKind::ReadOnly, .. })] => {}
        other => panic!("expected a read-only error, got {other:?}"),
    }
    assert_eq!(h.node(S).status().insert_lsn, h.node(S).status().flush_lsn, "no WAL generated");
}

/// A streaming pair where the primary committed key 5 (write 55) and the standby has flushed
/// that WAL but not replayed it; returns the commit's LSN.
fn flushed_not_replayed(h: &mut Harness) -> repsim_engine::Lsn {
    h.write(P, 1, vec![insert(5, 55, 10)]);
    let lsn = h.node(P).status().insert_lsn;
    h.complete_all_io(P);
    h.deliver(P, S);
    h.complete_all_io(S);
    lsn
}

#[test]
fn standby_reads_see_only_replayed_commits() {
    let mut h = streaming_pair(SyncCommitLevel::Local, "");
    let lsn = flushed_not_replayed(&mut h);
    assert_eq!(h.node(S).status().flush_lsn, lsn, "flushed on the standby");
    let before = h.read(S, TABLE, 5);
    match before {
        Reply::Read { value: None, read_lsn } => assert!(read_lsn < lsn),
        other => panic!("unreplayed commit visible: {other:?}"),
    }
    h.complete_compute(S);
    assert_eq!(h.read(S, TABLE, 5), Reply::Read { value: Some(value(55, 10)), read_lsn: lsn });
}

/// Read-your-writes by LSN (spec: P3 routing): a read waits for replay of the session's commit,
/// and the commit's timeline must be on the standby's history, since an LSN names different WAL
/// on two timelines (swarm seeds 2926 and 3665: a standby still on the old primary's branch past
/// the fork served a read after the session wrote on the new timeline).
#[test]
fn an_lsn_read_waits_for_replay_and_for_the_sessions_timeline() {
    let mut h = streaming_pair(SyncCommitLevel::Local, "");
    let lsn = flushed_not_replayed(&mut h);
    let read_after = |min_timeline, op_id| Input::Client {
        client: repsim_engine::io::ClientId(7),
        op_id,
        request: Request::ReadAfter {
            table: TABLE,
            key: 5,
            min_timeline,
            min_lsn: lsn,
            wait_ns: 1_000_000,
            duration_ns: 0,
        },
    };
    assert!(replies(&h.step(S, read_after(1, 1))).is_empty(), "answered before replay reached the LSN");
    let outs = h.complete_compute(S);
    assert_eq!(replies(&outs), vec![(1, Reply::Read { value: Some(value(55, 10)), read_lsn: lsn })]);
    // The same LSN on timeline 2, which this standby (still on timeline 1) has not seen.
    assert!(replies(&h.step(S, read_after(2, 2))).is_empty(), "served a position of another timeline");
    h.advance(1_000_000);
    let outs = h.step(S, Input::Timer(TimerId::ReadWait));
    assert!(matches!(&replies(&outs)[..], [(2, Reply::Error { kind: ErrorKind::TooStale, .. })]), "{outs:?}");
}

#[test]
fn a_recovering_node_refuses_clients() {
    let pcfg = primary_cfg(NAMES, SyncCommitLevel::On, "");
    let image = fresh_image(&pcfg);
    let mut h = Harness::new();
    h.boot(standby_cfg(S, NAMES), image);
    match h.read(S, TABLE, 1) {
        Reply::Error { kind: ErrorKind::NotReady, .. } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn start_replication_is_refused_ahead_of_the_flush_or_on_an_unknown_timeline() {
    let mut h = streaming_pair(SyncCommitLevel::Local, "");
    let flushed = h.node(P).status().flush_lsn;
    // The old stream is gone; the standby asks again.
    h.step(P, Input::ConnectionLost { peer: S });
    let cases = [
        (Message::StartReplication { start: Lsn(flushed.0 + 8), timeline: 1 }, "is ahead of the WAL flush position"),
        (
            Message::StartReplication { start: flushed, timeline: 2 },
            "requested timeline 2 is not in this server's history",
        ),
    ];
    for (request, expected) in cases {
        let outs = h.inject(S, P, request);
        let error = sends(&outs).into_iter().find_map(|(to, m)| match m {
            Message::Error { text } if to == S => Some(text),
            _ => None,
        });
        assert!(error.as_deref().is_some_and(|t| t.contains(expected)), "{error:?}");
        assert_eq!(disconnects(&outs), vec![S]);
        assert!(h.node(P).pg_stat_replication().is_empty(), "a refused stream has no walsender");
    }
}

/// WAL that continues another history at our position (two promotions made "the same"
/// timeline, spec I1.2/I1.4) does not decode: replay stops there and the walreceiver stops to
/// ask again (PostgreSQL's startup process logs the invalid record and retries), no panic.
#[test]
fn received_wal_that_does_not_decode_stops_replay_and_streaming() {
    let mut h = streaming_pair(SyncCommitLevel::Off, "");
    let end = h.node(S).status().flush_lsn;
    let garbage = Message::XLogData { start: end, wal_end: Lsn(end.0 + 64), send_time_ns: 0, bytes: vec![0xA5; 64] };
    let mut outs = h.inject(P, S, garbage);
    outs.extend(h.complete_all_io(S));
    while !h.peer(S).computes.is_empty() {
        outs.extend(h.complete_compute(S));
    }
    let reason = has_stopped(&outs).expect("the walreceiver stopped");
    assert!(reason.starts_with(&format!("invalid record at {end}")), "{reason}");
    assert_eq!(h.node(S).status().replay_lsn, end, "replay stays before the invalid record");
}
