//! Logical slots on a primary: an abandoned slot holds WAL through checkpoints, as PostgreSQL's
//! do (the classic full-disk outage), until `max_slot_wal_keep_size` invalidates it; dropping
//! it lets the next checkpoint recycle.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel};
use repsim_engine::io::{Command, FileId, Input, Observation, Output, TimerId};
use repsim_engine::NodeId;

const P: NodeId = 0;
const SEG: u64 = 64 * 1024;

fn small_primary(max_slot_wal_keep_size_bytes: Option<u64>) -> Harness {
    let mut cfg: NodeConfig = primary_cfg(&["p"], SyncCommitLevel::Local, "");
    cfg.wal_segment_size_bytes = SEG;
    cfg.checkpoint_completion_target = 0.0;
    cfg.max_slot_wal_keep_size_bytes = max_slot_wal_keep_size_bytes;
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    h
}

fn fill_to_segment(h: &mut Harness, segno: u64, op: &mut u64) {
    while h.node(P).status().insert_lsn.segment(SEG) < segno {
        h.write(P, *op, (0..4).map(|k| insert(*op * 10 + k, *op * 10 + k, 4000)).collect());
        h.complete_all_io(P);
        *op += 1;
    }
}

fn checkpoint(h: &mut Harness) -> Vec<u64> {
    h.fire(P, TimerId::Checkpoint);
    h.complete_checkpoint(P)
        .iter()
        .filter_map(|o| match o {
            Output::Remove { file: FileId::WalSegment { segno, .. } } => Some(*segno),
            _ => None,
        })
        .collect()
}

fn slot_notes(outs: &[Output]) -> Vec<String> {
    observations(outs)
        .into_iter()
        .filter_map(|o| match o {
            Observation::LogicalSlot { name, text } => Some(format!("{name}: {text}")),
            _ => None,
        })
        .collect()
}

#[test]
fn an_abandoned_logical_slot_holds_wal_until_it_is_dropped() {
    let mut h = small_primary(None);
    let mut op = 1;
    fill_to_segment(&mut h, 2, &mut op);
    let outs = h.step(P, Input::Admin(Command::CreateLogicalSlot { name: "cdc".into(), failover: false }));
    assert_eq!(slot_notes(&outs), vec!["cdc: created"]);
    let created_at = h.node(P).status().insert_lsn;
    fill_to_segment(&mut h, 7, &mut op);
    assert!(checkpoint(&mut h).iter().all(|&s| s < created_at.segment(SEG)), "the slot's WAL is kept");
    let rows = h.node(P).pg_replication_slots();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].restart_lsn, rows[0].confirmed_flush_lsn, rows[0].wal_status),
        (created_at, created_at, "reserved")
    );
    assert!(rows[0].retained_bytes > 4 * SEG, "{} bytes retained", rows[0].retained_bytes);
    let again = h.step(P, Input::Admin(Command::CreateLogicalSlot { name: "cdc".into(), failover: true }));
    assert_eq!(slot_notes(&again), vec!["cdc: refused: a replication slot of this name already exists"]);
    let dropped = h.step(P, Input::Admin(Command::DropLogicalSlot { name: "cdc".into() }));
    assert_eq!(slot_notes(&dropped), vec!["cdc: dropped"]);
    // (An idle server skips its checkpoint: write something first.)
    fill_to_segment(&mut h, 8, &mut op);
    let removed = checkpoint(&mut h);
    assert!(removed.contains(&created_at.segment(SEG)), "dropped: its segments go ({removed:?})");
}

#[test]
fn max_slot_wal_keep_size_invalidates_a_slot_that_falls_behind() {
    let mut h = small_primary(Some(2 * SEG));
    let mut op = 1;
    let outs = h.step(P, Input::Admin(Command::CreateLogicalSlot { name: "cdc".into(), failover: false }));
    assert_eq!(slot_notes(&outs), vec!["cdc: created"]);
    let created_at = h.node(P).status().insert_lsn;
    fill_to_segment(&mut h, 6, &mut op);
    h.fire(P, TimerId::Checkpoint);
    let outs = h.complete_checkpoint(P);
    assert_eq!(slot_notes(&outs), vec!["cdc: invalidated: wal_removed (max_slot_wal_keep_size exceeded)"]);
    let removed: Vec<u64> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Remove { file: FileId::WalSegment { segno, .. } } => Some(*segno),
            _ => None,
        })
        .collect();
    assert!(removed.contains(&created_at.segment(SEG)), "invalidated: it holds nothing ({removed:?})");
    let rows = h.node(P).pg_replication_slots();
    assert_eq!((rows[0].wal_status, rows[0].retained_bytes), ("lost", 0));
}
