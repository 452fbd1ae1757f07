//! Crash recovery (spec §7), checkpoints and WAL recycling (spec §1.4–1.6), driven through
//! `Node::step` with the test's in-memory disk deciding what survives.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel};
use repsim_engine::io::{DiskImage, FileId, Input, Observation, Output, TimerId};
use repsim_engine::message::Message;
use repsim_engine::wal::record::RecordBody;
use repsim_engine::{Lsn, NodeId, Role};

const NAMES: &[&str] = &["p", "s1", "s2"];
const P: NodeId = 0;
const S: NodeId = 1;
const SEG: u64 = 64 * 1024;

fn seg1() -> FileId {
    FileId::WalSegment { timeline: 1, segno: 1 }
}

fn cfg_with(tweak: impl FnOnce(&mut NodeConfig)) -> NodeConfig {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    tweak(&mut cfg);
    cfg
}

fn small_segments(cfg: &mut NodeConfig) {
    cfg.wal_segment_size_bytes = SEG;
    // Checkpoints not spread: each recycles WAL the moment it completes (the spread is
    // tested on its own below).
    cfg.checkpoint_completion_target = 0.0;
}

fn primary(cfg: &NodeConfig) -> Harness {
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(cfg));
    h
}

/// One committed, fully durable transaction of `rows` rows keyed `key..`; returns its commit LSN.
fn durable_commit(h: &mut Harness, op: u64, key: u64, rows: u64, len: u32) -> Lsn {
    let changes = (key..key + rows).map(|k| insert(k, op * 1000 + k, len)).collect();
    h.write(P, op, changes);
    let lsn = h.node(P).status().insert_lsn;
    let outs = h.complete_all_io(P);
    assert!(committed(&outs).iter().any(|a| a.0 == op), "op {op} not acknowledged");
    lsn
}

/// Writes transactions until the insert position is in segment `segno`; returns their keys.
fn fill_to_segment(h: &mut Harness, segno: u64, first_op: u64) -> Vec<u64> {
    let mut keys = Vec::new();
    let mut op = first_op;
    while h.node(P).status().insert_lsn.segment(SEG) < segno {
        durable_commit(h, op, op * 10, 4, 4000);
        keys.extend(op * 10..op * 10 + 4);
        op += 1;
    }
    keys
}

fn has_key(h: &Harness, id: NodeId, key: u64) -> bool {
    h.node(id).store().get(TABLE, key).is_some()
}

/// Every record in the image's segment 1, from the initdb checkpoint on.
fn records_in_segment_1(image: &DiskImage) -> Vec<(Lsn, Lsn, repsim_engine::wal::record::Record)> {
    decode_records(&image.read(seg1()).unwrap(), Lsn(SEG), Lsn::INVALID)
}

fn checkpoints(outs: &[Output]) -> Vec<(Lsn, Lsn)> {
    observations(outs)
        .into_iter()
        .filter_map(|o| match o {
            Observation::Checkpoint { redo, removed_below } => Some((redo, removed_below)),
            _ => None,
        })
        .collect()
}

fn removed_segments(outs: &[Output]) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Remove { file: FileId::WalSegment { segno, .. } } => Some(*segno),
            _ => None,
        })
        .collect()
}

#[test]
fn crash_recovery_keeps_exactly_the_fsynced_commits() {
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    let mut lsns = Vec::new();
    for op in 1..=4 {
        lsns.push(durable_commit(&mut h, op, op, 1, 100));
    }
    // Op 5: written to the OS, its fsync still in flight. Op 6: not even written.
    h.write(P, 5, vec![insert(5, 5005, 100)]);
    lsns.push(h.node(P).status().insert_lsn);
    h.complete_writes(P);
    h.write(P, 6, vec![insert(6, 6006, 100)]);
    lsns.push(h.node(P).status().insert_lsn);
    let flushed = h.node(P).status().flush_lsn;
    assert_eq!(flushed, lsns[3]);
    let acked: Vec<Lsn> = committed(&h.peer(P).log).into_iter().map(|a| a.1).collect();
    let power_loss = h.crash_image(P);
    let process_crash = h.process_crash_image(P);
    h.crash(P);

    let outs = h.boot(cfg.clone(), power_loss);
    let (redo, end, _) = recovered(&outs);
    assert_eq!(redo, Lsn(SEG), "redo from the initdb checkpoint");
    assert!(end >= flushed, "I7.1: recovered end {end} below the durable flush {flushed}");
    assert_eq!(end, lsns[3], "nothing beyond the fsync survived a power loss");
    assert!(acked.iter().all(|l| *l <= end), "an acknowledged commit was lost");
    for (i, lsn) in lsns.iter().enumerate() {
        let key = i as u64 + 1;
        assert_eq!(has_key(&h, P, key), *lsn <= end, "op {key} with commit end {lsn}, recovered end {end}");
    }
    assert!(outs.contains(&Output::Truncate { file: seg1(), len: end.0 % SEG }));
    h.complete_compute(P);
    assert_eq!(h.node(P).role(), Role::Recovering, "open only once the boot-time fsyncs are done");
    h.complete_all_io(P);
    assert_eq!(h.node(P).role(), Role::Primary);
    // New WAL continues right at the recovered end (after the end-of-recovery checkpoint
    // record, written meanwhile).
    let insert_at = h.node(P).status().insert_lsn;
    assert!(insert_at >= end && insert_at.0 - end.0 < 200, "{insert_at} after {end}");
    let outs = h.write(P, 7, vec![insert(7, 7007, 100)]);
    let writes = wal_writes(&outs);
    assert_eq!(writes.first().map(|w| (w.0, w.1)), Some((1, insert_at.0 % SEG)), "{writes:?}");

    // A crash of the server process alone keeps written-but-unfsynced WAL too (spec §7.1).
    let mut h = Harness::new();
    let outs = h.boot(cfg, process_crash);
    let (_, end, _) = recovered(&outs);
    assert_eq!(end, lsns[4]);
    assert!(has_key(&h, P, 5) && !has_key(&h, P, 6));
}

#[test]
fn end_of_recovery_checkpoint_makes_the_recovered_state_the_new_base() {
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    for op in 1..=3 {
        durable_commit(&mut h, op, op, 1, 100);
    }
    let image = h.crash_image(P);
    h.crash(P);
    let outs = h.boot(cfg.clone(), image);
    let (_, end, _) = recovered(&outs);
    let mut outs = h.complete_compute(P);
    outs.extend(h.complete_all_io(P));
    assert!(outs.iter().any(|o| matches!(o, Output::Write { file: FileId::Data(1), .. })), "{outs:?}");
    assert_eq!(checkpoints(&outs).iter().map(|c| c.0).collect::<Vec<_>>(), vec![end]);
    // Booting from the new image redoes from the end-of-recovery checkpoint.
    let image = h.crash_image(P);
    assert!(!image.files.contains_key(&FileId::Data(0)), "the old table image was removed");
    let store = h.node(P).store().clone();
    let mut h = Harness::new();
    let outs = h.boot(cfg, image);
    assert_eq!(recovered(&outs).0, end);
    assert_eq!(h.node(P).store(), &store);
}

fn three_durable_commits() -> (NodeConfig, DiskImage, Vec<Lsn>) {
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    // Op n writes keys 10n and 10n + 1.
    let lsns = (1..=3).map(|op| durable_commit(&mut h, op, op * 10, 2, 100)).collect();
    (cfg, h.crash_image(P), lsns)
}

fn assert_redo_stopped_before_last_commit(outs: &[Output], h: &Harness, last_start: Lsn) {
    let (_, end, _) = recovered(outs);
    assert_eq!(end, last_start, "redo stops at the last valid record");
    assert!(outs.contains(&Output::Truncate { file: seg1(), len: last_start.0 % SEG }), "{outs:?}");
    assert!([10, 11, 20, 21].iter().all(|k| has_key(h, P, *k)), "earlier commits survive");
    assert!(!has_key(h, P, 30) && !has_key(h, P, 31), "the transaction without a valid commit is gone");
}

#[test]
fn torn_last_record_stops_redo_and_truncates_the_segment() {
    let (cfg, mut image, lsns) = three_durable_commits();
    let records = records_in_segment_1(&image);
    let (last_start, last_end, last) = records.last().cloned().unwrap();
    assert_eq!(last_end, lsns[2]);
    assert!(matches!(last.body, RecordBody::Commit { .. }));
    // The power failed halfway through writing the last commit record.
    let cut = (last_start.0 + 20 - SEG) as usize;
    image.files.get_mut(&seg1()).unwrap().truncate(cut);
    let mut h = Harness::new();
    let outs = h.boot(cfg.clone(), image);
    assert_redo_stopped_before_last_commit(&outs, &h, last_start);
    // Nothing more is lost: the recovered node's own image recovers the same. Recovery ends
    // once redo and the boot-time fsyncs (SyncDataDirectory) are both done.
    h.complete_compute(P);
    h.complete_all_io(P);
    let op = durable_commit(&mut h, 9, 9, 1, 100);
    let image = h.crash_image(P);
    let mut h = Harness::new();
    let outs = h.boot(cfg, image);
    assert!(recovered(&outs).1 >= op);
    assert!(has_key(&h, P, 9) && has_key(&h, P, 10) && !has_key(&h, P, 30));
}

#[test]
fn corrupted_byte_in_the_last_record_stops_redo_there() {
    let (cfg, mut image, _) = three_durable_commits();
    let (last_start, _, _) = records_in_segment_1(&image).last().cloned().unwrap();
    let at = (last_start.0 + 26 - SEG) as usize; // inside the commit body
    let mut segment = image.read(seg1()).unwrap();
    segment[at] ^= 0x10;
    image.files.insert(seg1(), segment.into());
    let mut h = Harness::new();
    let outs = h.boot(cfg, image);
    assert_redo_stopped_before_last_commit(&outs, &h, last_start);
}

/// Primary and standby streaming; returns the harness with everything settled.
fn streaming_pair(tweak: impl FnOnce(&mut NodeConfig)) -> (Harness, NodeConfig) {
    let pcfg = cfg_with(small_segments);
    let image = fresh_image(&pcfg);
    let mut scfg = standby_cfg(S, NAMES);
    small_segments(&mut scfg);
    tweak(&mut scfg);
    let mut h = Harness::new();
    h.start(pcfg, image.clone());
    h.start(scfg.clone(), image);
    h.settle();
    (h, scfg)
}

#[test]
fn restarted_standby_resumes_streaming_from_its_recovered_end() {
    let (mut h, scfg) = streaming_pair(|_| {});
    for op in 1..=3 {
        h.write(P, op, vec![insert(op, op, 100)]);
        h.settle();
    }
    let flushed = h.node(S).status().flush_lsn;
    assert_eq!(flushed, h.node(P).status().flush_lsn);
    // Op 4 reaches the standby's OS cache but not its disk.
    h.write(P, 4, vec![insert(4, 4, 100)]);
    h.complete_all_io(P);
    h.deliver(P, S);
    h.complete_writes(S);
    assert!(h.node(S).status().write_lsn > flushed);
    let disk = h.crash(S);
    let outs = h.boot(scfg, disk.crash_image());
    let (_, end, _) = recovered(&outs);
    assert_eq!(end, flushed, "the standby recovers what it had flushed");
    assert!((1..=3).all(|k| has_key(&h, S, k)) && !has_key(&h, S, 4));
    // The boot-time fsync of pg_wal first: until it completes only WAL before the redo point
    // counts as flushed.
    h.complete_all_io(S);
    let outs = h.complete_compute(S);
    assert_eq!(start_replications(&outs), vec![(P, end, 1)]);
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(P).status().flush_lsn);
    assert_eq!(h.node(S).store(), h.node(P).store());
}

#[test]
fn restarted_standby_keeps_a_transaction_whose_commit_arrives_after_the_restart() {
    let (mut h, scfg) = streaming_pair(|_| {});
    // One transaction bigger than one XLogData message.
    let changes = (1..=60).map(|k| insert(k, k, 4000)).collect();
    h.write(P, 1, changes);
    h.complete_all_io(P);
    let mut data = h.take_sent(P, S);
    assert!(data.len() >= 2, "the transaction spans several messages");
    // Only the first message arrives and is flushed (and replayed as far as it goes).
    let first = data.remove(0);
    h.inject(P, S, first);
    h.complete_all_io(S);
    h.complete_compute(S);
    let flushed = h.node(S).status().flush_lsn;
    assert!(flushed < h.node(P).status().flush_lsn);
    let disk = h.crash(S);
    let outs = h.boot(scfg, disk.crash_image());
    let (_, end, _) = recovered(&outs);
    assert!(end <= flushed && end > Lsn(SEG));
    assert!(h.node(S).store().is_empty(), "rows of an uncommitted transaction are visible");
    h.complete_all_io(S);
    let outs = h.complete_compute(S);
    assert_eq!(start_replications(&outs), vec![(P, end, 1)]);
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(P).status().flush_lsn);
    assert_eq!(h.node(S).store().len(), 60, "rows streamed before the restart were lost");
    assert_eq!(h.node(S).store(), h.node(P).store());
}

/// A spread checkpoint (PostgreSQL's `BufferSync` paced by `IsCheckpointOnSchedule`) writes
/// its image back in pieces every 100 ms over `checkpoint_completion_target` x
/// `checkpoint_timeout`, fsyncs, and only then completes and removes old WAL.
#[test]
fn a_spread_checkpoint_writes_on_schedule_and_recycles_wal_when_it_ends() {
    let cfg = cfg_with(|c| {
        c.wal_segment_size_bytes = SEG;
        c.checkpoint_completion_target = 0.5;
    });
    let mut h = primary(&cfg);
    fill_to_segment(&mut h, 4, 1);
    h.fire(P, TimerId::Checkpoint);
    let started = h.now;
    let mut outs = h.complete_all_io(P);
    let (mut pieces, mut cost) = (Vec::new(), 0u64);
    while checkpoints(&outs).is_empty() {
        assert!(removed_segments(&outs).is_empty(), "PostgreSQL removes WAL at the end of the checkpoint");
        assert!(h.peer(P).disk.wal_segments().contains(&1));
        outs = h.fire(P, TimerId::CheckpointWrite);
        for o in &outs {
            if let Output::Write { file: FileId::Data(_), bytes, cost_bytes, .. } = o {
                assert!(bytes.is_empty(), "the image itself was written when the checkpoint began");
                pieces.push(*cost_bytes);
                cost += cost_bytes;
            }
        }
        outs.extend(h.complete_all_io(P));
    }
    let spread_ns = cfg.checkpoint_timeout_ns / 2;
    let took_ns = h.now.0 - started.0;
    assert!(took_ns + 100_000_000 >= spread_ns && took_ns <= spread_ns + 100_000_000, "took {took_ns} ns");
    assert!(pieces.len() >= 1000, "{} pieces", pieces.len());
    assert!(pieces.iter().all(|&p| p * 100 < cost), "no piece is a large share of the image");
    assert!(!removed_segments(&outs).is_empty());
    assert!(!h.peer(P).disk.wal_segments().contains(&1));
}

#[test]
fn checkpoint_removes_old_segments_and_its_image_recovers_everything() {
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    let keys = fill_to_segment(&mut h, 4, 1);
    let redo_expected = h.node(P).status().insert_lsn;
    let outs = h.fire(P, TimerId::Checkpoint);
    assert!(outs.iter().any(|o| matches!(o, Output::Write { file: FileId::Data(1), .. })));
    let outs = h.complete_checkpoint(P);
    let cps = checkpoints(&outs);
    assert_eq!(cps.len(), 1);
    let (redo, removed_below) = cps[0];
    assert_eq!(redo, redo_expected);
    assert_eq!(removed_below, redo.segment_start(SEG));
    assert_eq!(removed_segments(&outs), (1..redo.segment(SEG)).collect::<Vec<_>>());
    assert!(outs.contains(&Output::Remove { file: FileId::Data(0) }));
    assert_eq!(h.peer(P).disk.wal_segments(), vec![redo.segment(SEG)]);
    assert_eq!(h.node(P).status().wal_start_lsn, removed_below);
    // More commits after the checkpoint; then a power loss.
    let later = durable_commit(&mut h, 100, 100_000, 3, 100);
    let store = h.node(P).store().clone();
    let image = h.crash_image(P);
    let mut h = Harness::new();
    let outs = h.boot(cfg, image);
    let (rredo, end, _) = recovered(&outs);
    assert_eq!(rredo, redo);
    assert_eq!(end, later);
    assert_eq!(h.node(P).store(), &store);
    assert!(keys.iter().all(|k| has_key(&h, P, *k)));
}

#[test]
fn wal_volume_triggers_checkpoints_that_bound_the_wal_kept() {
    let cfg = cfg_with(|c| {
        small_segments(c);
        c.max_wal_size_bytes = 4 * SEG;
        c.checkpoint_completion_target = 0.9; // PostgreSQL's default: CheckPointSegments = 2
    });
    let cs = cfg.checkpoint_segments();
    assert_eq!(cs, 2);
    let mut h = primary(&cfg);
    let mut max_files = 0;
    let mut op = 1;
    while h.node(P).status().insert_lsn.segment(SEG) < 12 {
        durable_commit(&mut h, op, op * 10, 4, 4000);
        if h.timer(P, TimerId::CheckpointWrite).is_some() {
            // The checkpointer's next paced step: WAL volume puts it on schedule.
            h.fire(P, TimerId::CheckpointWrite);
            h.complete_all_io(P);
        }
        max_files = max_files.max(h.peer(P).disk.wal_segments().len());
        op += 1;
    }
    let cps = checkpoints(&h.peer(P).log);
    assert!(cps.len() >= 4, "checkpoints requested by WAL volume alone: {cps:?}");
    // PostgreSQL keeps about (2 + checkpoint_completion_target) x CheckPointSegments + 1.
    assert!(max_files as u64 <= 3 * cs + 1, "WAL kept grew to {max_files} segments");
    let store = h.node(P).store().clone();
    let image = h.crash_image(P);
    let mut h = Harness::new();
    h.boot(cfg, image);
    assert_eq!(h.node(P).store(), &store);
}

#[test]
fn wal_keep_size_keeps_segments_behind_the_current_one() {
    for (keep_segments, first_kept) in [(0u64, 6u64), (3, 3)] {
        let cfg = cfg_with(|c| {
            small_segments(c);
            c.wal_keep_size_bytes = keep_segments * SEG;
        });
        let mut h = primary(&cfg);
        fill_to_segment(&mut h, 6, 1);
        h.fire(P, TimerId::Checkpoint);
        let outs = h.complete_checkpoint(P);
        let current = h.node(P).status().insert_lsn.segment(SEG);
        assert_eq!(current, 6);
        assert_eq!(removed_segments(&outs), (1..first_kept).collect::<Vec<_>>(), "wal_keep_size {keep_segments}");
        assert_eq!(h.peer(P).disk.wal_segments(), (first_kept..=current).collect::<Vec<_>>());
    }
}

#[test]
fn a_standby_asking_for_a_removed_segment_gets_an_error() {
    let cfg = cfg_with(small_segments);
    let image = fresh_image(&cfg);
    let mut h = Harness::new();
    h.start(cfg, image.clone());
    let old_start = h.node(P).status().flush_lsn; // in segment 1
    fill_to_segment(&mut h, 3, 1);
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P);
    assert!(!h.peer(P).disk.has(seg1()));

    // A fake standby.
    let outs = h.inject(2, P, Message::StartReplication { start: old_start, timeline: 1 });
    let errors: Vec<String> = sends(&outs)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::Error { text } if to == 2 => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(errors, vec!["requested WAL segment 000000010000000000000001 has already been removed".to_string()]);
    assert_eq!(disconnects(&outs), vec![2]);
    assert!(h.node(P).pg_stat_replication().is_empty());

    // A real standby cloned before the checkpoint.
    let mut scfg = standby_cfg(S, NAMES);
    small_segments(&mut scfg);
    h.start(scfg, image);
    h.deliver(S, P);
    let outs = h.deliver(P, S);
    let reason = observations(&outs)
        .into_iter()
        .find_map(|o| match o {
            Observation::WalReceiverStopped { reason } => Some(reason),
            _ => None,
        })
        .expect("walreceiver stopped");
    assert!(reason.contains("has already been removed"), "{reason}");
}

#[test]
fn a_lagging_walsender_whose_wal_was_recycled_errors_instead_of_sending() {
    let cfg = cfg_with(|c| {
        small_segments(c);
        c.walsender_max_unacked_bytes = SEG / 2;
    });
    let mut h = primary(&cfg);
    let start = h.node(P).status().flush_lsn;
    h.inject(2, P, Message::StartReplication { start, timeline: 1 });
    let report =
        Message::StatusUpdate { write: start, flush: start, apply: start, send_time_ns: 0, reply_requested: false };
    h.inject(2, P, report.clone());
    fill_to_segment(&mut h, 4, 1);
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P);
    let sent = h.node(P).pg_stat_replication()[0].sent_lsn;
    assert!(sent < h.node(P).status().wal_start_lsn, "the standby's next WAL was recycled");
    h.take_sent(P, 2);
    // The standby catches up with what it was sent, so the walsender reads on.
    let report =
        Message::StatusUpdate { write: sent, flush: sent, apply: sent, send_time_ns: 0, reply_requested: false };
    let outs = h.inject(2, P, report);
    let sent: Vec<Message> = sends(&outs).into_iter().map(|s| s.1).collect();
    assert!(!sent.iter().any(|m| matches!(m, Message::XLogData { .. })), "sent WAL it no longer has");
    assert!(
        sent.iter().any(|m| matches!(m, Message::Error { text } if text.contains("has already been removed"))),
        "{sent:?}"
    );
    assert_eq!(disconnects(&outs), vec![2]);
}

#[test]
fn checkpoint_record_is_flushed_without_waiting_for_the_wal_writer() {
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    durable_commit(&mut h, 1, 1, 1, 100);
    // Checkpoint starts; a commit arrives while the table image is being written, so its fsync
    // round is in flight when the checkpoint record is inserted.
    h.fire(P, TimerId::Checkpoint);
    h.write(P, 2, vec![insert(2, 2, 100)]);
    let outs = h.complete_checkpoint(P);
    assert!(committed(&outs).iter().any(|a| a.0 == 2));
    let status = h.node(P).status();
    assert_eq!(status.flush_lsn, status.insert_lsn, "the checkpoint record was left unflushed");
    assert_eq!(checkpoints(&outs).len(), 1, "the checkpoint did not complete");
}

#[test]
fn standby_restartpoint_recycles_wal_and_its_image_recovers() {
    let (mut h, scfg) = streaming_pair(|_| {});
    let keys = fill_to_segment(&mut h, 4, 1);
    h.settle();
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P);
    h.settle();
    durable_commit(&mut h, 100, 100_000, 2, 100);
    h.settle();
    h.complete_checkpoint(S);
    h.settle();
    // The standby replayed the checkpoint record: a restartpoint with its own files.
    let standby_cps = checkpoints(&h.peer(S).log);
    let primary_cps = checkpoints(&h.peer(P).log);
    assert_eq!(standby_cps.len(), 1, "{standby_cps:?}");
    assert_eq!(standby_cps[0].0, primary_cps[0].0, "restartpoint at the checkpoint's redo");
    assert!(!h.peer(S).disk.has(seg1()), "the standby recycled old WAL");
    assert_eq!(h.node(S).store(), h.node(P).store());
    let disk = h.crash(S);
    let outs = h.boot(scfg, disk.crash_image());
    let (redo, _, _) = recovered(&outs);
    assert_eq!(redo, standby_cps[0].0);
    assert_eq!(h.node(S).store(), h.node(P).store());
    assert!(keys.iter().all(|k| has_key(&h, S, *k)));
    h.complete_compute(S);
    h.settle();
    assert_eq!(h.node(S).status().replay_lsn, h.node(P).status().flush_lsn);
}

#[test]
fn after_a_process_crash_recovered_wal_is_durable_before_it_is_streamed() {
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    let start = h.node(P).status().flush_lsn;
    for op in 1..=2 {
        durable_commit(&mut h, op, op, 1, 100);
    }
    // Op 3 is in the OS cache only when the server process dies.
    h.write(P, 3, vec![insert(3, 3, 100)]);
    let l3 = h.node(P).status().insert_lsn;
    h.complete_writes(P);
    let outs = h.restart_process(cfg.clone());
    assert_eq!(recovered(&outs).1, l3, "a process crash keeps written WAL");
    h.complete_all_io(P); // whatever recovery asked the disk for
    h.complete_compute(P);
    assert_eq!(h.node(P).role(), Role::Primary);
    // A standby connects at once and is sent everything the primary counts as flushed.
    let outs = h.inject(2, P, Message::StartReplication { start, timeline: 1 });
    let sent_end = sends(&outs)
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::XLogData { start, bytes, .. } => Some(Lsn(start.0 + bytes.len() as u64)),
            _ => None,
        })
        .max()
        .expect("WAL was sent");
    // What a power loss at this moment would leave.
    let mut after_power_loss = Harness::new();
    let durable_end = recovered(&after_power_loss.boot(cfg, h.crash_image(P))).1;
    assert!(sent_end <= durable_end, "streamed WAL up to {sent_end}, but only {durable_end} is durable");
}

#[test]
fn a_failed_wal_fsync_panics_and_acknowledges_nothing() {
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    h.write(P, 1, vec![insert(1, 1, 100)]);
    h.complete_writes(P);
    let failed = h.peer_mut(P).ios.pop_front().expect("the fsync");
    assert!(failed.is_fsync());
    let outs = h.step(P, Input::DiskFailed(failed.io()));
    assert!(observations(&outs).iter().any(|o| matches!(o, Observation::Panic { .. })), "{outs:?}");
    assert!(committed(&outs).is_empty());
    assert_eq!(h.node(P).role(), Role::Panicked);
    // A panicked server does nothing at all until it is restarted.
    assert!(h.write(P, 2, vec![insert(2, 2, 100)]).is_empty());
    // Restarted from its durable image, the unacknowledged commit is not there.
    let image = h.crash_image(P);
    let mut h = Harness::new();
    h.boot(cfg, image);
    assert!(!has_key(&h, P, 1));
}

#[test]
fn a_history_file_without_content_is_as_if_it_never_existed() {
    // PostgreSQL writes a history file under a temporary name, fsyncs and renames it, so it is
    // whole or absent. An empty one (its only fsync failed, or power was lost first) must not
    // make recovery look for WAL on a timeline that was never created (it panicked).
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    durable_commit(&mut h, 1, 1, 1, 100);
    let mut image = h.crash_image(P);
    image.files.insert(FileId::History(2), Vec::new().into());
    let mut h = Harness::new();
    let outs = h.boot(cfg, image);
    assert!(!outs.iter().any(|o| matches!(o, Output::Observe(Observation::Panic { .. }))), "{outs:?}");
    assert_eq!(h.node(P).timeline(), 1);
    assert!(has_key(&h, P, 1), "the commit on timeline 1 was recovered");
}

#[test]
fn a_new_timeline_segment_without_content_is_as_if_it_never_existed() {
    // Promotion installs the new timeline's first segment as a copy, fsynced then renamed
    // (XLogFileCopy): whole or absent. An empty one (power lost before its fsync) must not hide
    // the parent timeline's segment that holds the redo point (recovery panicked in truncate).
    use repsim_engine::timeline::{History, TimelineSwitch};
    let cfg = cfg_with(small_segments);
    let mut h = primary(&cfg);
    durable_commit(&mut h, 1, 1, 1, 100);
    let end = h.node(P).status().insert_lsn;
    let mut image = h.crash_image(P);
    let history = History { switches: vec![TimelineSwitch { parent: 1, switch: end }] };
    image.files.insert(FileId::History(2), history.encode().into());
    image.files.insert(FileId::WalSegment { timeline: 2, segno: end.segment(SEG) }, Vec::new().into());
    let mut h = Harness::new();
    let outs = h.boot(cfg, image);
    assert!(!outs.iter().any(|o| matches!(o, Output::Observe(Observation::Panic { .. }))), "{outs:?}");
    assert!(has_key(&h, P, 1), "the commit on timeline 1 was recovered");
}

/// Swarm seed 32059: a node cloned while its timeline's copy of the current segment was not yet
/// durable loads the segment from the older timeline's file. The WAL it writes next goes into
/// its own timeline's file at an offset, so boot first copies the segment's head there; without
/// it that file began with zeros, and a node cloned from it later held a broken segment.
#[test]
fn boot_on_a_segment_borrowed_from_an_older_timeline_copies_its_head_into_its_own_file() {
    let (cfg, mut image, lsns) = three_durable_commits();
    let history = repsim_engine::timeline::History::default().child(1, lsns[2]);
    image.files.insert(FileId::History(2), history.encode().into());
    let mut h = Harness::new();
    let outs = h.boot(cfg, image);
    let own = FileId::WalSegment { timeline: 2, segno: 1 };
    let head = outs.iter().find_map(|o| match o {
        Output::Write { file, offset, bytes, .. } if *file == own => Some((*offset, bytes.len() as u64)),
        _ => None,
    });
    assert_eq!(head, Some((0, lsns[2].0 - SEG)), "the head up to the recovered end, at offset 0: {outs:?}");
}
