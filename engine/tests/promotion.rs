//! Promotion's end of recovery (PostgreSQL `StartupXLOG`, timeline.c `writeTimeLineHistory`):
//! the new timeline's history file is durable before any WAL is written on that timeline.

mod common;

use common::*;
use repsim_engine::config::SyncCommitLevel;
use repsim_engine::io::{Command, ErrorKind, FileId, Input, Observation, Output, Reply};
use repsim_engine::wal::record::RecordBody;
use repsim_engine::{Lsn, NodeId, Role};

const NAMES: &[&str] = &["p", "s1"];
const P: NodeId = 0;
const S: NodeId = 1;

/// A streaming pair with some committed WAL; then the standby is asked to promote and its
/// disk runs until the history file's fsync is the next operation.
fn promoting_standby() -> Harness {
    let pcfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    let image = fresh_image(&pcfg);
    let mut h = Harness::new();
    h.start(pcfg, image.clone());
    h.start(standby_cfg(S, NAMES), image);
    h.settle();
    for op in 1..=5 {
        h.write(P, op, vec![insert(op, op, 200)]);
        h.settle();
    }
    h.step(S, Input::Admin(Command::Promote));
    for _ in 0..10_000 {
        if matches!(h.peer(S).ios.front(), Some(PendingIo::Fsync { file: FileId::History(2), .. })) {
            return h;
        }
        if h.complete_next_io(S).is_none() {
            assert!(!h.peer(S).computes.is_empty(), "the promotion never fsynced its history file");
            h.complete_compute(S);
        }
    }
    panic!("the promotion never fsynced its history file");
}

fn wrote_on_timeline_2(outs: &[Output]) -> bool {
    outs.iter().any(|o| matches!(o, Output::Write { file: FileId::WalSegment { timeline: 2, .. }, .. }))
}

fn promoted(outs: &[Output]) -> bool {
    observations(outs).iter().any(|o| matches!(o, Observation::Promoted { .. }))
}

#[test]
fn the_timeline_switches_only_once_the_history_file_is_durable() {
    let mut h = promoting_standby();
    assert_eq!(h.node(S).role(), Role::Standby, "still in recovery while the history file is not durable");
    assert_eq!(h.node(S).timeline(), 1);
    assert!(!wrote_on_timeline_2(&h.peer(S).log), "WAL on the new timeline before its history file is durable");
    assert!(!promoted(&h.peer(S).log));
    let outs = h.complete_next_io(S).expect("the history fsync");
    assert!(promoted(&outs), "the fsync completes the promotion: {outs:?}");
    assert_eq!((h.node(S).role(), h.node(S).timeline()), (Role::Primary, 2));
    assert!(wrote_on_timeline_2(&outs));
}

#[test]
fn a_failed_history_fsync_panics_before_any_wal_on_the_new_timeline() {
    let mut h = promoting_standby();
    let io = h.peer_mut(S).ios.pop_front().expect("the history fsync").io();
    let outs = h.step(S, Input::DiskFailed(io));
    assert!(observations(&outs).iter().any(|o| matches!(o, Observation::Panic { .. })), "{outs:?}");
    assert!(!promoted(&h.peer(S).log));
    assert!(!wrote_on_timeline_2(&h.peer(S).log), "a restart would find new-timeline WAL without its history");
}

fn promotion_complete(outs: &[Output]) -> Option<u64> {
    observations(outs).iter().find_map(|o| match o {
        Observation::PromotionComplete { duration_ns, .. } => Some(*duration_ns),
        _ => None,
    })
}

fn refused_as_read_only(outs: &[Output]) -> bool {
    replies(outs).iter().any(|(_, r)| matches!(r, Reply::Error { kind: ErrorKind::ReadOnly, .. }))
}

/// Fast promotion (spec: `postgres-replication.md`, promotion; PostgreSQL's
/// `PerformRecoveryXLogAction` and `CreateEndOfRecoveryRecord` in xlog.c): after the timeline
/// switch the node writes an end-of-recovery record, flushes it and updates `pg_control`, and
/// only then accepts writes; the checkpoint comes after, requested and not waited for.
#[test]
fn writes_wait_for_the_end_of_recovery_record_and_pg_control_not_for_a_checkpoint() {
    let mut h = promoting_standby();
    h.advance(2_000_000);
    let mut outs = h.complete_next_io(S).expect("the history fsync");
    assert_eq!(h.node(S).role(), Role::Primary);
    let refused = h.write(S, 100, vec![insert(100, 100, 10)]);
    assert!(refused_as_read_only(&refused), "still in recovery after the switch: {refused:?}");
    let mut end_of_recovery_record = false;
    let mut control_written = false;
    let mut duration_ns = None;
    for _ in 0..100 {
        duration_ns = promotion_complete(&outs);
        for o in &outs {
            if let Output::Write { file, offset, bytes, .. } = o {
                let checkpoint = matches!(file, FileId::Data(_));
                assert!(!checkpoint || duration_ns.is_some(), "a checkpoint before writes are accepted: {o:?}");
                if matches!(file, FileId::WalSegment { timeline: 2, .. }) {
                    end_of_recovery_record |= decode_stream(bytes, Lsn(*offset)).iter().any(|(_, _, r)| {
                        matches!(r.body, RecordBody::EndOfRecovery { timeline: 2, prev_timeline: 1, .. })
                    });
                }
                control_written |= *file == FileId::Control;
            }
        }
        if duration_ns.is_some() {
            assert!(
                outs.iter().any(|o| matches!(o, Output::Write { file: FileId::Data(_), .. })),
                "the checkpoint is requested as writes are accepted: {outs:?}"
            );
            break;
        }
        h.advance(1_000_000);
        outs = h.complete_next_io(S).expect("the promotion's I/O continues");
    }
    let duration_ns = duration_ns.expect("the promotion completed");
    assert!(end_of_recovery_record, "the end-of-recovery record was written on timeline 2 before writes");
    assert!(control_written, "pg_control was updated before writes");
    assert!(duration_ns >= 3_000_000, "the history fsync, the record's flush and pg_control take time: {duration_ns}");
    let accepted = h.write(S, 101, vec![insert(101, 101, 10)]);
    assert!(!refused_as_read_only(&accepted), "writes are accepted once the promotion completed: {accepted:?}");
}
