//! `archive_mode` (PostgreSQL's `pgarch.c`): completed, flushed segments go to
//! `archive_command` in order, one at a time; failures retry after 1 s three times, then the
//! archiver sleeps 60 s; a checkpoint recycles only archived segments.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel, SECOND_NS};
use repsim_engine::io::{FileId, Input, Output, TimerId};
use repsim_engine::NodeId;

const NAMES: &[&str] = &["p", "s1"];
const P: NodeId = 0;
const SEG: u64 = 64 * 1024;

/// A booted primary with 64 KB segments and unspread checkpoints, `tweak`ed.
fn small_segment_primary(tweak: impl FnOnce(&mut NodeConfig)) -> (Harness, NodeConfig) {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.wal_segment_size_bytes = SEG;
    cfg.checkpoint_completion_target = 0.0;
    tweak(&mut cfg);
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    (h, cfg)
}

fn archiving_primary() -> (Harness, NodeConfig) {
    small_segment_primary(|c| c.archive_mode = true)
}

/// Segments 1 to 4 archived, the insert position in segment 6, then a checkpoint after
/// `checkpoint_timeout`: it may recycle what was archived.
fn archive_four_then_checkpoint(h: &mut Harness, op: &mut u64) {
    for segno in 1..=4 {
        done(h, segno, true);
    }
    fill_to_segment(h, 6, op);
    h.advance(301 * SECOND_NS);
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P);
}

fn archive_requests(outs: &[Output]) -> Vec<u64> {
    outs.iter()
        .filter_map(|o| match o {
            Output::ArchiveSegment { file: FileId::WalSegment { segno, .. } } => Some(*segno),
            _ => None,
        })
        .collect()
}

/// Writes durable transactions until the insert position is in segment `segno`; returns the
/// archive requests they caused.
fn fill_to_segment(h: &mut Harness, segno: u64, op: &mut u64) -> Vec<u64> {
    let mut asked = Vec::new();
    while h.node(P).status().insert_lsn.segment(SEG) < segno {
        let changes = (0..4).map(|k| insert(*op * 10 + k, *op * 10 + k, 4000)).collect();
        asked.extend(archive_requests(&h.write(P, *op, changes)));
        asked.extend(archive_requests(&h.complete_all_io(P)));
        *op += 1;
    }
    asked
}

fn done(h: &mut Harness, segno: u64, ok: bool) -> Vec<Output> {
    h.step(P, Input::ArchiveDone { file: FileId::WalSegment { timeline: 1, segno }, ok })
}

#[test]
fn completed_segments_are_archived_in_order_one_at_a_time() {
    let (mut h, _) = archiving_primary();
    let mut op = 1;
    assert_eq!(fill_to_segment(&mut h, 4, &mut op), vec![1], "segment 1 once flushed; nothing else while it runs");
    assert_eq!(archive_requests(&done(&mut h, 1, true)), vec![2]);
    assert_eq!(archive_requests(&done(&mut h, 2, true)), vec![3]);
    assert_eq!(archive_requests(&done(&mut h, 3, true)), Vec::<u64>::new(), "segment 4 is not complete");
    let a = h.node(P).pg_stat_archiver();
    assert_eq!((a.archived_count, a.failed_count, a.next_segno), (3, 0, Some(4)));
    assert_eq!(a.last_archived_wal.as_deref(), Some("000000010000000000000003"));
    assert_eq!(fill_to_segment(&mut h, 5, &mut op), vec![4], "the next completed segment wakes the archiver");
}

#[test]
fn a_failing_archive_keeps_its_wal_retries_then_sleeps_a_minute() {
    let (mut h, _) = archiving_primary();
    let mut op = 1;
    fill_to_segment(&mut h, 4, &mut op);
    let start = h.now;
    for attempt in 1..=3u64 {
        let outs = done(&mut h, 1, false);
        assert!(archive_requests(&outs).is_empty());
        let wake = h.timer(P, TimerId::Archiver).expect("sleeps");
        let sleep = if attempt < 3 { SECOND_NS } else { 60 * SECOND_NS };
        assert_eq!(wake.0, h.now.0 + sleep, "attempt {attempt}");
        if attempt < 3 {
            assert_eq!(archive_requests(&h.fire(P, TimerId::Archiver)), vec![1], "retried");
        }
    }
    assert_eq!(h.node(P).pg_stat_archiver().failed_count, 3);
    // A newly completed segment ends the long sleep.
    assert_eq!(fill_to_segment(&mut h, 5, &mut op), vec![1]);
    assert!(h.now.0 < start.0 + 60 * SECOND_NS);
    // A checkpoint while segment 1 is still not archived recycles nothing.
    done(&mut h, 1, false);
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P);
    assert_eq!(h.node(P).status().wal_start_lsn.segment(SEG), 1, "pg_wal keeps the unarchived segment");
    h.fire(P, TimerId::Archiver);
    archive_four_then_checkpoint(&mut h, &mut op);
    let start_seg = h.node(P).status().wal_start_lsn.segment(SEG);
    let insert_seg = h.node(P).status().insert_lsn.segment(SEG);
    assert!(
        start_seg >= 4,
        "archived segments are recycled: {start_seg} (insert in {insert_seg}, {:?})",
        h.node(P).pg_stat_archiver()
    );
}

#[test]
fn without_archive_mode_nothing_is_archived_and_wal_is_recycled() {
    let (mut h, _) = small_segment_primary(|_| {});
    let mut op = 1;
    assert!(fill_to_segment(&mut h, 4, &mut op).is_empty());
    assert_eq!(h.node(P).pg_stat_archiver().next_segno, None);
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P);
    assert!(h.node(P).status().wal_start_lsn.segment(SEG) >= 3);
}

/// `restore_command`: a standby whose upstream has recycled the WAL it needs restores segment
/// after segment from the archive, then streams the rest.
#[test]
fn a_standby_restores_recycled_segments_from_the_archive_then_streams() {
    let (mut h, pcfg) = archiving_primary();
    let initdb = fresh_image(&pcfg);
    let mut op = 1;
    fill_to_segment(&mut h, 5, &mut op);
    // The archive: what the primary's disk held before it recycled it.
    let archive = h.crash_image(P);
    archive_four_then_checkpoint(&mut h, &mut op);
    assert!(h.node(P).status().wal_start_lsn.segment(SEG) > 1, "segment 1 is recycled on the primary");

    let mut scfg = standby_cfg(1, NAMES);
    scfg.wal_segment_size_bytes = SEG;
    scfg.restore_command = true;
    h.start(scfg, initdb);
    let mut restored = Vec::new();
    for _ in 0..100 {
        h.settle();
        let asked: Vec<FileId> = h
            .peer(1)
            .log
            .iter()
            .filter_map(|o| match o {
                Output::RestoreSegment { file, .. } => Some(*file),
                _ => None,
            })
            .collect();
        let Some(&file) = asked.get(restored.len()) else { break };
        let bytes = archive.files.get(&file).filter(|b| b.len() as u64 == SEG).map(|b| b.to_vec());
        restored.push((file, bytes.is_some()));
        h.step(1, Input::Restored { file, bytes });
    }
    let segnos: Vec<(u64, bool)> = restored
        .iter()
        .map(|(f, ok)| match f {
            FileId::WalSegment { segno, .. } => (*segno, *ok),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(&segnos[..4], &[(1, true), (2, true), (3, true), (4, true)], "{segnos:?}");
    assert!(!segnos[4].1, "the archive has no more: back to streaming");
    // The walreceiver retries, from where the archive brought the standby.
    h.fire(1, TimerId::WalReceiver);
    h.settle();
    assert_eq!(h.node(1).status().replay_lsn, h.node(P).status().flush_lsn, "caught up by streaming");
}

/// `archive_timeout`: a segment with WAL in it is switched once the timeout has passed since
/// the last switch (XLOG_SWITCH, the rest of it zeros), completes, and is archived; an idle
/// segment is not; a standby replays across the switch.
#[test]
fn archive_timeout_closes_a_segment_early_so_it_is_archived() {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.wal_segment_size_bytes = SEG;
    cfg.archive_mode = true;
    cfg.archive_timeout_ns = 60 * SECOND_NS;
    let image = fresh_image(&cfg);
    let mut scfg = standby_cfg(1, NAMES);
    scfg.wal_segment_size_bytes = SEG;
    let mut h = Harness::new();
    h.start(cfg, image.clone());
    h.start(scfg, image);
    h.settle();
    h.write(P, 1, vec![insert(1, 1, 100)]);
    h.settle();
    let before = h.node(P).status().insert_lsn;
    assert_eq!(before.segment(SEG), 1, "well inside segment 1");
    let outs = h.fire(P, TimerId::ArchiveTimeout);
    assert_eq!(h.node(P).status().insert_lsn.0, 2 * SEG, "switched: WAL continues at segment 2");
    let mut asked = archive_requests(&outs);
    asked.extend(archive_requests(&h.complete_all_io(P)));
    assert_eq!(asked, vec![1], "the switched segment is complete once flushed");
    h.settle();
    assert_eq!(h.node(1).status().replay_lsn.0, 2 * SEG, "the standby replays across the switch");
    h.write(P, 2, vec![insert(2, 2, 100)]);
    h.settle();
    assert!(h.node(1).store().get(TABLE, 2).is_some(), "and what follows it");
    // Nothing written since the switch except this record: one more minute switches again; a
    // minute with nothing written does not.
    done(&mut h, 1, true);
    h.fire(P, TimerId::ArchiveTimeout);
    let after = h.node(P).status().insert_lsn;
    assert_eq!(after.0, 3 * SEG);
    h.fire(P, TimerId::ArchiveTimeout);
    assert_eq!(h.node(P).status().insert_lsn, after, "an idle segment is not switched");
}
