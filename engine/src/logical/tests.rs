//! Logical decoding and slots against a reference: the committed transactions with published
//! changes, in commit order.

use super::decode::{DecodePoint, DecodedTxn, Decoder, PublishedTables};
use super::slot::LogicalSlot;
use crate::lsn::Lsn;
use crate::wal::log::WalLog;
use crate::wal::record::{RecordBody, RowChange};

const SEGMENT_BYTES: u64 = 1 << 20;

fn insert(table: u32, write_id: u64) -> RecordBody {
    RecordBody::Row(RowChange::Insert { table, key: write_id, write_id, value_len: 40 })
}

fn commit(ts: u64) -> RecordBody {
    RecordBody::Commit { timestamp_ns: ts, apply_feedback: false, origin: None }
}

fn empty_log() -> WalLog {
    WalLog::new(SEGMENT_BYTES, Lsn(SEGMENT_BYTES), Lsn::INVALID)
}

fn start_of(log: &WalLog) -> DecodePoint {
    DecodePoint { at: log.end(), prev: log.last_record_start() }
}

#[test]
fn interleaved_transactions_come_out_whole_in_commit_order_and_filtered() {
    let mut log = empty_log();
    let start = start_of(&log);
    log.append(7, insert(1, 1));
    log.append(8, insert(2, 2));
    log.append(7, insert(3, 3)); // an unpublished table
    log.append(9, insert(3, 4)); // a transaction with only unpublished changes
    log.append(8, commit(100));
    log.append(10, insert(1, 5));
    log.append(10, RecordBody::Abort { timestamp_ns: 110 });
    log.append(9, commit(120));
    log.append(0, RecordBody::Prune { conflict_horizon_xid: 1, removed: 3 });
    log.append(7, insert(1, 6));
    let (commit_7, end_7) = log.append(7, commit(130));
    let mut decoder = Decoder::new(start, Lsn::INVALID, PublishedTables::Tables(vec![1, 2]));
    let txns = decoder.decode(&log, log.end(), 1000).unwrap();
    let summary: Vec<(u32, Vec<u64>, u64)> = txns
        .iter()
        .map(|t| (t.xid, t.changes.iter().map(|c| c.value().unwrap().write_id).collect(), t.commit_timestamp_ns))
        .collect();
    assert_eq!(summary, vec![(8, vec![2], 100), (7, vec![1, 6], 130)]);
    assert_eq!((txns[1].commit_lsn, txns[1].end_lsn), (commit_7, end_7));
    assert_eq!(txns[1].first_lsn, Lsn(SEGMENT_BYTES + crate::wal::log::LONG_PAGE_HEADER_BYTES));
    assert_eq!(decoder.held_changes(), 0);
}

#[test]
fn a_slot_holds_wal_for_a_running_transaction_and_is_invalidated_past_the_limit() {
    let mut log = empty_log();
    let mut slot = LogicalSlot::create("sub", start_of(&log), false);
    let mut decoder = Decoder::new(slot.restart, slot.confirmed_flush_lsn, PublishedTables::All);
    let (long_first, _) = log.append(5, insert(1, 1));
    log.append(6, insert(1, 2));
    let (_, end_6) = log.append(6, commit(10));
    let txns = decoder.decode(&log, log.end(), 100).unwrap();
    assert_eq!(txns.len(), 1);
    slot.confirm(end_6, decoder.confirmed(end_6));
    assert_eq!(slot.confirmed_flush_lsn, end_6);
    assert_eq!(slot.restart_lsn(), long_first, "xid 5 is still running: decoding must restart at its first record");
    let (_, end_5) = log.append(5, commit(20));
    decoder.decode(&log, log.end(), 100).unwrap();
    slot.confirm(end_5, decoder.confirmed(end_5));
    assert_eq!(slot.restart_lsn(), end_5, "nothing runs: the slot restarts where it confirmed");
    // A consumer that stops confirming: the slot holds WAL until the limit invalidates it.
    for id in 0..2000 {
        log.append(100 + id, insert(1, 100 + u64::from(id)));
        log.append(100 + id, commit(30));
    }
    assert!(!slot.invalidate_if_behind(log.end(), None), "max_slot_wal_keep_size = -1 never invalidates");
    assert!(!slot.invalidate_if_behind(log.end(), Some(SEGMENT_BYTES)));
    assert!(slot.invalidate_if_behind(log.end(), Some(4096)));
    assert_eq!(slot.invalidated, Some("wal_removed"));
    assert!(!slot.invalidate_if_behind(log.end(), Some(4096)), "once");
}

struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Random interleavings of transactions, decoded in random steps by a consumer that confirms
/// late and restarts from the slot at random: every committed transaction with published
/// changes is delivered exactly once past what was confirmed, whole, in commit order.
#[test]
fn restarts_from_the_slot_deliver_each_transaction_exactly_once() {
    let mut restarts = 0;
    for seed in 1..=40u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut log = empty_log();
        let tables = PublishedTables::Tables(vec![1, 2]);
        let mut slot = LogicalSlot::create("sub", start_of(&log), false);
        let mut reference: Vec<(u32, Vec<RowChange>)> = Vec::new();
        let mut open: Vec<(u32, Vec<RowChange>)> = Vec::new();
        let (mut next_xid, mut next_write) = (1u32, 1u64);
        for _ in 0..600 {
            match rng.below(10) {
                0..=1 if open.len() < 5 => {
                    open.push((next_xid, Vec::new()));
                    next_xid += 1;
                }
                2..=6 if !open.is_empty() => {
                    let i = rng.below(open.len() as u64) as usize;
                    let body = insert(1 + rng.below(3) as u32, next_write);
                    next_write += 1;
                    log.append(open[i].0, body);
                    if let RecordBody::Row(change) = body {
                        open[i].1.extend(tables.publishes(change.row().0).then_some(change));
                    }
                }
                7..=8 if !open.is_empty() => {
                    let (xid, changes) = open.remove(rng.below(open.len() as u64) as usize);
                    log.append(xid, commit(u64::from(xid)));
                    if !changes.is_empty() {
                        reference.push((xid, changes));
                    }
                }
                9 if !open.is_empty() => {
                    let (xid, _) = open.remove(rng.below(open.len() as u64) as usize);
                    log.append(xid, RecordBody::Abort { timestamp_ns: 0 });
                }
                _ => {}
            }
        }
        // The consumer: what it applied, and the end of the last transaction it confirmed.
        let mut applied: Vec<DecodedTxn> = Vec::new();
        let mut decoder = Decoder::new(slot.restart, slot.confirmed_flush_lsn, tables.clone());
        let mut limit = log.start();
        while decoder.point.at < log.end() {
            limit = Lsn((limit.0 + rng.below(3000)).min(log.end().0));
            applied.extend(decoder.decode(&log, limit, 1 + rng.below(30) as usize).unwrap());
            if rng.below(3) == 0 {
                if let Some(last) = applied.last() {
                    // Confirms what it applied, sometimes only an earlier transaction.
                    let back = rng.below(3) as usize;
                    let lsn = applied[applied.len().saturating_sub(1 + back)].end_lsn.min(last.end_lsn);
                    slot.confirm(lsn, decoder.confirmed(lsn));
                }
            }
            if rng.below(12) == 0 {
                // The connection drops: the consumer keeps what it confirmed (its replication
                // origin), and decoding starts over from the slot.
                applied.retain(|t| t.end_lsn <= slot.confirmed_flush_lsn);
                decoder = Decoder::new(slot.restart, slot.confirmed_flush_lsn, tables.clone());
                limit = Lsn(limit.0.max(decoder.point.at.0));
                restarts += 1;
            }
        }
        let got: Vec<(u32, Vec<RowChange>)> = applied.into_iter().map(|t| (t.xid, t.changes)).collect();
        assert_eq!(got, reference, "seed {seed}");
        assert!(slot.restart_lsn() <= slot.confirmed_flush_lsn);
    }
    assert!(restarts > 40, "only {restarts} restarts in 40 runs");
}

#[test]
fn the_slot_state_file_round_trips_and_a_damaged_one_is_refused() {
    let a = LogicalSlot::create("orders_sub", DecodePoint { at: Lsn(5000), prev: Lsn(4900) }, true);
    let mut b = LogicalSlot::create("cdc", DecodePoint { at: Lsn(6000), prev: Lsn(5950) }, false);
    b.confirm(Lsn(7000), Some(DecodePoint { at: Lsn(6500), prev: Lsn(6400) }));
    b.invalidated = Some("wal_removed");
    let bytes = super::slot::encode_slots(7, [&a, &b].into_iter());
    assert_eq!(super::slot::decode_slots(&bytes), Some((7, vec![a, b.clone()])));
    for i in [0, 7, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[i] ^= 0x10;
        assert_eq!(super::slot::decode_slots(&damaged), None, "byte {i} flipped");
    }
    assert_eq!(super::slot::decode_slots(&super::slot::encode_slots(1, std::iter::empty())), Some((1, vec![])));
    // Rewritten shorter over the old file (a drop): the old tail is ignored.
    let mut rewritten = bytes.clone();
    let shorter = super::slot::encode_slots(9, [&b].into_iter());
    rewritten[..shorter.len()].copy_from_slice(&shorter);
    assert_eq!(super::slot::decode_slots(&rewritten), Some((9, vec![b.clone()])));
    // Of two copies the newest whole one counts; a damaged newer one leaves the older.
    let mut files = std::collections::BTreeMap::new();
    files.insert(crate::io::FileId::ReplSlots(1), bytes.clone().into());
    files.insert(crate::io::FileId::ReplSlots(0), shorter.clone().into());
    assert_eq!(super::slot::newest_saved(&files).map(|(g, _)| g), Some(9));
    files.insert(crate::io::FileId::ReplSlots(0), shorter[..shorter.len() - 1].to_vec().into());
    assert_eq!(super::slot::newest_saved(&files).map(|(g, _)| g), Some(7));
}
