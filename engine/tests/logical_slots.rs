//! Logical slots on a primary: an abandoned slot holds WAL through checkpoints, as PostgreSQL's
//! do (the classic full-disk outage), until `max_slot_wal_keep_size` invalidates it; dropping
//! it lets the next checkpoint recycle. And the logical walsender that streams from a slot:
//! flushed commits of published tables, resumed after what the subscriber confirmed.

mod common;

use common::*;
use repsim_engine::config::{NodeConfig, SyncCommitLevel};
use repsim_engine::io::{Command, FileId, Input, Observation, Output, TimerId};
use repsim_engine::message::Message;
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
    assert!(
        removed.iter().all(|&s| s < created_at.segment(SEG)),
        "the invalidation is saved before the slot's WAL goes ({removed:?})"
    );
    // The next checkpoint, once the saved state says the slot is invalid, removes it.
    fill_to_segment(&mut h, 7, &mut op);
    assert!(checkpoint(&mut h).contains(&created_at.segment(SEG)), "invalidated: it holds nothing");
    let rows = h.node(P).pg_replication_slots();
    assert_eq!((rows[0].wal_status, rows[0].retained_bytes), ("lost", 0));
}

// ----- the logical walsender ---------------------------------------------------------------

const SUB: NodeId = 5;

fn publishing_primary() -> Harness {
    use repsim_engine::config::Publication;
    use repsim_engine::logical::decode::PublishedTables;
    let mut cfg: NodeConfig = primary_cfg(&["p"], SyncCommitLevel::Local, "");
    cfg.publications =
        vec![Publication { name: "orders".into(), tables: PublishedTables::Tables(vec![TABLE]), row_filter: None }];
    let mut h = Harness::new();
    h.start(cfg.clone(), fresh_image(&cfg));
    h.step(P, Input::Admin(Command::CreateLogicalSlot { name: "sub".into(), failover: false }));
    h
}

fn start_logical(
    h: &mut Harness,
    from: NodeId,
    slot: &str,
    start: repsim_engine::Lsn,
    publication: &str,
) -> Vec<Output> {
    let msg = Message::StartLogicalReplication {
        slot: slot.into(),
        start,
        publications: vec![publication.into()],
        origin_none: false,
        stream: 1,
    };
    h.inject(from, P, msg)
}

/// Write ids of the transactions sent to `to`, and the end LSN of the last one.
fn received(h: &mut Harness, to: NodeId) -> (Vec<Vec<u64>>, repsim_engine::Lsn) {
    let mut txns = Vec::new();
    let mut end = repsim_engine::Lsn::INVALID;
    for msg in h.take_sent(P, to) {
        if let Message::LogicalTxn { txn, .. } = msg {
            txns.push(txn.changes.iter().map(|c| c.value().map_or(0, |v| v.write_id)).collect());
            end = txn.end_lsn;
        }
    }
    (txns, end)
}

fn status(flush: repsim_engine::Lsn) -> Message {
    Message::StatusUpdate { write: flush, flush, apply: flush, send_time_ns: 0, reply_requested: false }
}

#[test]
fn the_logical_walsender_streams_flushed_commits_and_resumes_after_what_was_confirmed() {
    let mut h = publishing_primary();
    let start = h.node(P).status().insert_lsn;
    start_logical(&mut h, SUB, "sub", start, "orders");
    // Two transactions, each sent once flushed.
    let mut txns = Vec::new();
    let mut end_2 = start;
    for op in 1..=2u64 {
        h.write(P, op, vec![insert(op, op * 100, 50), insert(op + 10, op * 100 + 1, 50)]);
        assert!(received(&mut h, SUB).0.is_empty(), "nothing is sent before it is flushed");
        h.complete_all_io(P);
        let (sent, end) = received(&mut h, SUB);
        txns.extend(sent);
        end_2 = end;
    }
    assert_eq!(txns, vec![vec![100, 101], vec![200, 201]]);
    // The subscriber confirms the first only, then the connection drops; a third commits.
    let confirmed = h.node(P).pg_replication_slots()[0].confirmed_flush_lsn;
    assert_eq!(confirmed, start, "nothing confirmed yet");
    h.write(P, 3, vec![insert(3, 300, 50)]);
    h.complete_all_io(P);
    let (third, end_3) = received(&mut h, SUB);
    assert_eq!(third, vec![vec![300]]);
    h.inject(SUB, P, status(end_2));
    assert_eq!(h.node(P).pg_replication_slots()[0].confirmed_flush_lsn, end_2);
    h.step(P, Input::ConnectionLost { peer: SUB });
    // Reconnecting from an older position still resumes after what the slot confirmed.
    start_logical(&mut h, SUB, "sub", start, "orders");
    let (again, end) = received(&mut h, SUB);
    assert_eq!((again, end), (vec![vec![300]], end_3), "exactly the unconfirmed transaction again");
    h.inject(SUB, P, status(end_3));
    let row = &h.node(P).pg_replication_slots()[0];
    assert_eq!((row.confirmed_flush_lsn, row.restart_lsn), (end_3, end_3), "nothing running: restart moves up");
}

#[test]
fn the_logical_walsender_refuses_what_postgres_refuses() {
    let mut h = publishing_primary();
    let at = h.node(P).status().insert_lsn;
    let error_of = |outs: &[Output]| {
        outs.iter()
            .find_map(|o| match o {
                Output::Send { msg: Message::Error { text }, .. } => Some(text.clone()),
                _ => None,
            })
            .unwrap_or_default()
    };
    let outs = start_logical(&mut h, SUB, "nope", at, "orders");
    assert_eq!(error_of(&outs), "replication slot \"nope\" does not exist");
    let outs = start_logical(&mut h, SUB, "sub", at, "payments");
    assert_eq!(error_of(&outs), "publication \"payments\" does not exist");
    assert_eq!(error_of(&start_logical(&mut h, SUB, "sub", at, "orders")), "");
    let outs = start_logical(&mut h, SUB + 1, "sub", at, "orders");
    assert_eq!(error_of(&outs), "replication slot \"sub\" is active for the connection from node 5");
}
