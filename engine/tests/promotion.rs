//! Promotion's end of recovery (PostgreSQL `StartupXLOG`, timeline.c `writeTimeLineHistory`):
//! the new timeline's history file is durable before any WAL is written on that timeline.

mod common;

use common::*;
use repsim_engine::config::SyncCommitLevel;
use repsim_engine::io::{Command, FileId, Input, Observation, Output};
use repsim_engine::{NodeId, Role};

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
