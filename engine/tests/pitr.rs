//! Point-in-time recovery (`recovery.signal`, `restore_command`, `recovery_target_*`): a node
//! restored from a base backup replays archived WAL up to its target, or to the archive's end,
//! then promotes on a new timeline; an archive that ends before a time or LSN target stops it
//! with FATAL, as PostgreSQL 13+ does.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel, SECOND_NS};
use repsim_engine::io::{DiskImage, FileId, Input, Observation, Output};
use repsim_engine::pitr::RecoveryTarget;
use repsim_engine::{Lsn, NodeId, Role};

const NAMES: &[&str] = &["p", "r"];
const P: NodeId = 0;
const R: NodeId = 1;
const SEG: u64 = 64 * 1024;

/// One write a second (write `i` at `i` s) until the insert position is in segment 5. Returns
/// the primary's durable image (the archive: its whole segments) and, per write, its commit
/// time and the end of its WAL.
fn history(h: &mut Harness) -> (DiskImage, Vec<(u64, Lsn)>) {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.wal_segment_size_bytes = SEG;
    h.start(cfg, fresh_image(&restore_cfg(None)));
    let mut writes = Vec::new();
    let mut id = 1;
    while h.node(P).status().insert_lsn.segment(SEG) < 5 {
        h.set_time(repsim_engine::Instant(id * SECOND_NS));
        h.write(P, id, vec![insert(id, id, 3000)]);
        h.complete_all_io(P);
        writes.push((id * SECOND_NS, h.node(P).status().flush_lsn));
        id += 1;
    }
    (h.crash_image(P), writes)
}

fn restore_cfg(target: Option<RecoveryTarget>) -> NodeConfig {
    let mut cfg = standby_cfg(R, NAMES);
    cfg.wal_segment_size_bytes = SEG;
    cfg.primary_conninfo = None;
    cfg.restore_command = true;
    cfg.recovery_target = target;
    cfg
}

/// Boots the restored node from the base backup taken at time 0 and answers its
/// `restore_command`s from `archive` (whole segments only, as `archive_command` uploads them).
/// Returns the segments it restored.
fn restore(h: &mut Harness, archive: &DiskImage, target: RecoveryTarget) -> Vec<u64> {
    let backup = fresh_image(&restore_cfg(None));
    h.start(restore_cfg(Some(target)), backup);
    let mut restored = Vec::new();
    for answered in 0..100 {
        h.settle();
        let asked: Vec<(FileId, u32)> = h
            .peer(R)
            .log
            .iter()
            .filter_map(|o| match o {
                Output::RestoreSegment { file, timelines } => Some((*file, timelines[timelines.len() - 1])),
                _ => None,
            })
            .collect();
        let Some(&(file, oldest)) = asked.get(answered) else { break };
        assert_eq!(oldest, 1, "one timeline");
        let bytes = archive.files.get(&file).filter(|b| b.len() as u64 == SEG).map(|b| b.to_vec());
        if let (true, FileId::WalSegment { segno, .. }) = (bytes.is_some(), file) {
            restored.push(segno);
        }
        h.step(R, Input::Restored { file, bytes });
    }
    h.settle();
    restored
}

fn holds(h: &Harness, id: u64) -> bool {
    h.node(R).store().get(TABLE, id).is_some()
}

#[test]
fn restore_to_latest_replays_the_whole_archive_then_promotes() {
    let mut h = Harness::new();
    let (archive, writes) = history(&mut h);
    let restored = restore(&mut h, &archive, RecoveryTarget::Latest);
    assert_eq!(restored, vec![1, 2, 3, 4], "every whole segment, in order; segment 5 was never archived");
    assert_eq!(h.node(R).role(), Role::Primary, "the archive's end ends recovery");
    assert_eq!(h.node(R).timeline(), 2);
    let switch = h.node(R).timeline_history().end_of(1).expect("forked off timeline 1");
    assert!(switch.0 <= 5 * SEG && switch.0 > 4 * SEG - 4000, "ends in the archive's last segment: {switch}");
    for &(at_ns, end) in &writes {
        let id = at_ns / SECOND_NS;
        assert_eq!(holds(&h, id), end <= switch, "write {id} ending at {end}, switch {switch}");
    }
    assert!(h.node(R).status().insert_lsn > switch, "the end-of-recovery record on the new timeline");
}

#[test]
fn restore_to_a_time_stops_before_the_first_commit_after_it() {
    let mut h = Harness::new();
    let (archive, writes) = history(&mut h);
    let half = writes.len() / 2;
    let ((target_ns, target_end), (_, next_end)) = (writes[half], writes[half + 1]);
    restore(&mut h, &archive, RecoveryTarget::TimeNs(target_ns));
    assert_eq!(h.node(R).role(), Role::Primary);
    let switch = h.node(R).timeline_history().end_of(1).expect("promoted");
    // The new timeline starts where the first commit after the target starts: its row
    // changes were replayed, and are discarded with the transaction that never committed.
    assert!(target_end < switch && switch < next_end, "{target_end} < {switch} < {next_end}");
    for &(at_ns, _) in &writes {
        let id = at_ns / SECOND_NS;
        assert_eq!(holds(&h, id), at_ns <= target_ns, "write {id}");
    }
    assert!(
        h.peer(R).log.iter().any(|o| matches!(o, Output::Observe(Observation::RecoveryTargetReached { .. }))),
        "reported"
    );
}

#[test]
fn restore_to_an_lsn_stops_after_the_record_at_it() {
    let mut h = Harness::new();
    let (archive, writes) = history(&mut h);
    let (_, target) = writes[3];
    restore(&mut h, &archive, RecoveryTarget::Lsn(target));
    let switch = h.node(R).timeline_history().end_of(1).expect("promoted");
    assert!(switch > target, "the record starting at the target is replayed: {switch} vs {target}");
    assert!(holds(&h, 4), "write 4 ends at the target");
    assert!(!holds(&h, 6), "a later write is not replayed");
}

#[test]
fn an_archive_that_ends_before_the_target_stops_recovery_with_fatal() {
    let mut h = Harness::new();
    let (archive, writes) = history(&mut h);
    let after_everything = writes.last().expect("writes").0 + 3600 * SECOND_NS;
    restore(&mut h, &archive, RecoveryTarget::TimeNs(after_everything));
    assert_eq!(h.node(R).role(), Role::Panicked, "no promotion short of the target");
    let fatal =
        h.peer(R).log.iter().any(|o| matches!(o, Output::Observe(Observation::RecoveryTargetNotReached { .. })));
    assert!(fatal, "FATAL names the reason");
}

fn checkpoint_done(outs: &[Output]) -> bool {
    outs.iter().any(|o| matches!(o, Output::Observe(Observation::CheckpointRequestDone)))
}

/// What a base backup asks of the node it copies: `pg_backup_start(fast => true)` waits for
/// an immediate checkpoint (none is needed if nothing happened since the last one), and
/// `pg_backup_stop` switches to a new segment if WAL went into the current one.
#[test]
fn a_backup_checkpoint_is_reported_when_done_and_a_wal_switch_closes_a_written_segment() {
    let mut cfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    cfg.wal_segment_size_bytes = SEG;
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    h.write(P, 1, vec![insert(1, 1, 100)]);
    h.complete_all_io(P);
    let outs = h.step(P, Input::Admin(repsim_engine::io::Command::Checkpoint));
    assert!(!checkpoint_done(&outs), "the checkpoint has to be written first");
    let outs = h.complete_checkpoint(P);
    assert!(checkpoint_done(&outs), "reported when it completes");
    assert_eq!(h.node(P).status().checkpoints, 1);
    let outs = h.step(P, Input::Admin(repsim_engine::io::Command::Checkpoint));
    assert!(checkpoint_done(&outs), "nothing happened since: done at once");

    h.write(P, 2, vec![insert(2, 2, 100)]);
    h.step(P, Input::Admin(repsim_engine::io::Command::SwitchWal));
    assert_eq!(h.node(P).status().insert_lsn, Lsn(2 * SEG), "the segment is closed");
    h.complete_all_io(P);
    h.step(P, Input::Admin(repsim_engine::io::Command::SwitchWal));
    assert_eq!(h.node(P).status().insert_lsn, Lsn(2 * SEG), "an empty segment is not switched");
}

/// The record at or past an LSN target is the last one the archive holds (a `pg_switch_wal`
/// closed the segment): recovery stops after it and promotes (`recoveryStopsAfter`), rather
/// than waiting for a later record and ending with FATAL.
#[test]
fn an_lsn_target_on_the_archives_last_record_is_reached() {
    let mut h = Harness::new();
    history(&mut h);
    let switch_record = h.node(P).status().insert_lsn;
    h.step(P, Input::Admin(repsim_engine::io::Command::SwitchWal));
    h.complete_all_io(P);
    assert_eq!(h.node(P).status().insert_lsn, Lsn(6 * SEG), "segment 5 is closed: the archive holds it whole");
    let archive = h.crash_image(P);
    let restored = restore(&mut h, &archive, RecoveryTarget::Lsn(switch_record));
    assert_eq!(restored, vec![1, 2, 3, 4, 5]);
    assert_eq!(h.node(R).role(), Role::Primary, "the target is reached, no FATAL");
    let switch = h.node(R).timeline_history().end_of(1).expect("promoted");
    assert_eq!(switch, Lsn(6 * SEG), "stopped after the switch record, which ends the segment");
}
