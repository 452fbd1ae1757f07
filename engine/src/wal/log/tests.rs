//! `WalLog`: records, pages, segments, receiving.

use super::*;
use crate::wal::record::{RecordBody, RowChange};

fn insert(write_id: u64) -> RecordBody {
    RecordBody::Row(RowChange::Insert { table: 1, key: write_id, write_id, value_len: 100 })
}

#[test]
fn records_chain_and_decode_in_order() {
    let mut log = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
    let mut starts = Vec::new();
    for id in 0..50 {
        starts.push(log.append(1, insert(id)));
    }
    let mut at = log.start();
    let mut prev = Lsn::INVALID;
    assert_eq!(starts[0].0, Lsn(log.start().0 + LONG_PAGE_HEADER_BYTES), "a segment starts with the long header");
    for (id, (start, end)) in starts.iter().enumerate() {
        let (record, decoded_start, decoded_end) = log.decode_at(at, prev, log.end()).unwrap();
        assert_eq!((decoded_start, decoded_end), (*start, *end));
        assert_eq!(record.body, insert(id as u64));
        prev = decoded_start;
        at = decoded_end;
    }
    assert_eq!(at, log.end());
}

/// Records continue across 8 KB pages after each page's header (`xlp_rem_len` bytes of
/// the record on it), and decode across them.
#[test]
fn records_continue_across_page_headers() {
    let big = |id: u64| RecordBody::Row(RowChange::Insert { table: 1, key: id, write_id: id, value_len: 20_000 });
    let mut log = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
    let (first, first_end) = log.append(1, big(1));
    // 40 + 20,048 record bytes cross two page boundaries: two 24-byte headers inside.
    assert_eq!(first_end.0 - first.0, record::align(24 + 24 + 20_000) + 2 * PAGE_HEADER_BYTES);
    let page2 = log.read(Lsn((1 << 20) + 8192), Lsn((1 << 20) + 8192 + 24)).unwrap();
    assert_eq!(u16::from_le_bytes([page2[2], page2[3]]), XLP_FIRST_IS_CONTRECORD);
    let rem_len = u32::from_le_bytes([page2[16], page2[17], page2[18], page2[19]]) as u64;
    assert_eq!(rem_len, record::align(24 + 24 + 20_000) - (8192 - 40), "what the first page did not hold");
    // Records of many sizes: none starts at a page boundary (a header is there), and
    // every one decodes, across whichever headers it spans.
    let mut appended = vec![(first, 1)];
    for id in 2..300u64 {
        let value_len = ((id * 7919) % 9000) as u32;
        let body = RecordBody::Row(RowChange::Insert { table: 1, key: id, write_id: id, value_len });
        appended.push((log.append(1, body).0, id));
    }
    assert!(appended.iter().all(|(start, _)| !start.0.is_multiple_of(8192)));
    let (mut at, mut prev, mut decoded) = (log.start(), Lsn::INVALID, Vec::new());
    while let Ok((record, start, end)) = log.decode_at(at, prev, log.end()) {
        if let RecordBody::Row(RowChange::Insert { write_id, .. }) = record.body {
            decoded.push((start, write_id));
        }
        (prev, at) = (start, end);
    }
    assert_eq!(at, log.end());
    assert_eq!(decoded, appended);
    // A copy that ends inside the first record's continuation does not decode yet.
    assert_eq!(log.decode_at(log.start(), Lsn::INVALID, Lsn(first.0 + 9000)).err(), Some(DecodeError::Torn));
}

#[test]
fn segments_are_removed_from_the_front_only() {
    let seg = 4096;
    let mut log = WalLog::new(seg, Lsn(seg), Lsn::INVALID);
    while log.end().0 < 5 * seg {
        log.append(1, insert(1));
    }
    let removed = log.remove_segments_before(Lsn(3 * seg));
    assert_eq!(removed, 1..3);
    assert_eq!(log.start(), Lsn(3 * seg));
    assert!(log.read(Lsn(2 * seg), Lsn(3 * seg)).is_none());
    assert!(log.read(Lsn(3 * seg), Lsn(3 * seg + 10)).is_some());
}

/// A stream asked for before `restore_command` brought the standby past (and recycled) that
/// position delivers bytes below what the log holds: they are dropped, the rest is taken.
#[test]
fn receive_drops_bytes_below_what_the_log_holds() {
    let seg = 4096;
    let mut upstream = WalLog::new(seg, Lsn(seg), Lsn::INVALID);
    while upstream.end().0 < 4 * seg {
        upstream.append(1, insert(1));
    }
    let mut standby = WalLog::new(seg, Lsn(seg), Lsn::INVALID);
    standby.receive(Lsn(seg), &upstream.read(Lsn(seg), Lsn(3 * seg)).unwrap()).unwrap();
    standby.remove_segments_before(Lsn(3 * seg));
    let late = upstream.read(Lsn(2 * seg), Lsn(3 * seg + 100)).unwrap();
    assert_eq!(standby.receive(Lsn(2 * seg), &late), Ok(()));
    assert_eq!(standby.end(), Lsn(3 * seg + 100));
    assert_eq!(standby.read(Lsn(3 * seg), Lsn(3 * seg + 100)), upstream.read(Lsn(3 * seg), Lsn(3 * seg + 100)));
    assert_eq!(standby.receive(Lsn(seg), &[1, 2, 3]), Ok(()), "wholly below: nothing to take");
}

#[test]
fn receive_rejects_different_bytes_for_the_same_position() {
    let mut upstream = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
    upstream.append(1, insert(1));
    upstream.append(1, insert(2));
    let mut standby = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
    let all = upstream.read(upstream.start(), upstream.end()).unwrap();
    standby.receive(upstream.start(), &all[..100]).unwrap();
    standby.receive(upstream.start(), &all).unwrap();
    assert_eq!(standby.end(), upstream.end());
    let mut wrong = all.clone();
    wrong[5] ^= 1;
    assert!(standby.receive(upstream.start(), &wrong).is_err());
}

#[test]
fn receive_accepts_a_chunk_wholly_inside_what_is_held() {
    // A restarted standby streams again from its flushed position, which after an unclean
    // stop lies below the end of the WAL it recovered: the first chunks only overlap.
    let mut upstream = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
    for i in 0..4 {
        upstream.append(1, insert(i));
    }
    let all = upstream.read(upstream.start(), upstream.end()).unwrap();
    let mut standby = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
    standby.receive(upstream.start(), &all).unwrap();
    let inner = Lsn(upstream.start().0 + 10);
    standby.receive(inner, &all[10..40]).unwrap();
    assert_eq!(standby.end(), upstream.end());
    let mut wrong = all[10..40].to_vec();
    wrong[0] ^= 1;
    assert!(standby.receive(inner, &wrong).is_err(), "differing bytes are still refused");
}

/// Records of every size cross block boundaries: each decodes whole, reads of any range
/// equal the bytes appended, truncating inside a full block keeps its prefix, and a second
/// log with the same store holds the same full blocks, not copies.
#[test]
fn records_across_blocks_decode_read_truncate_and_share() {
    let store = BlockStore::default();
    let seg = 1 << 24;
    let mut log = WalLog::sharing(seg, Lsn(seg), Lsn::INVALID, store.clone());
    let mut plain = Vec::new();
    let mut records = Vec::new();
    for id in 0..3000u64 {
        let body =
            RecordBody::Row(RowChange::Insert { table: 1, key: id, write_id: id, value_len: (id * 37 % 900) as u32 });
        let (start, end) = log.append(2, body);
        records.push((start, end, body));
    }
    log.read_into(log.start(), log.end(), &mut plain);
    assert!(log.end().0 - log.start().0 > 4 * BLOCK_BYTES as u64, "the test crosses blocks");
    let mut prev = Lsn::INVALID;
    for (start, end, body) in &records {
        let (record, _, decoded_end) = log.decode_at(*start, prev, log.end()).unwrap();
        assert_eq!((&record.body, decoded_end), (body, *end));
        prev = *start;
    }
    for (a, b) in [(0usize, 10usize), (65_530, 65_550), (1000, 200_000), (0, plain.len())] {
        let got = log.read(Lsn(seg + a as u64), Lsn(seg + b as u64)).unwrap();
        assert_eq!(got, plain[a..b]);
    }
    let mut standby = WalLog::sharing(seg, Lsn(seg), Lsn::INVALID, store.clone());
    for piece in plain.chunks(7777) {
        let end = standby.end();
        standby.receive(end, piece).unwrap();
    }
    let full = plain.len() / BLOCK_BYTES;
    assert_eq!(store.live_blocks().0, full, "the standby's blocks are the primary's");
    let (cut, cut_prev) = (records[1500].0, records[1499].0);
    standby.truncate(cut, cut_prev);
    assert_eq!(standby.end(), cut);
    assert_eq!(standby.read(standby.start(), cut).unwrap(), plain[..(cut.0 - seg) as usize]);
    let (record, _, _) = standby.decode_at(cut_prev, records[1498].0, cut).unwrap();
    assert_eq!(record.body, records[1499].2);
}

#[test]
fn segments_smaller_than_a_block_still_recycle_whole() {
    let seg = 4096;
    let mut log = WalLog::new(seg, Lsn(seg), Lsn::INVALID);
    while log.end().0 < 40 * seg {
        log.append(1, insert(1));
    }
    let before = log.read(Lsn(20 * seg), log.end()).unwrap();
    assert_eq!(log.remove_segments_before(Lsn(20 * seg)), 1..20);
    assert_eq!(log.read(Lsn(20 * seg), log.end()).unwrap(), before);
}

/// A WAL file loaded from a disk's chunks gives the log the file's full blocks themselves, and
/// the log then reads and decodes as the one that wrote it.
#[test]
fn loading_a_file_takes_its_full_blocks_without_copying() {
    let store = BlockStore::default();
    let segment = 1u64 << 20;
    let mut written = WalLog::sharing(segment, Lsn(segment), Lsn::INVALID, store.clone());
    let mut starts = Vec::new();
    while written.end().0 < segment + 3 * BLOCK_BYTES as u64 + 5000 {
        starts.push(written.append(1, insert(starts.len() as u64)).0);
    }
    let file_bytes = written.read(Lsn(segment), written.end()).unwrap();
    let file = ChunkedBytes::from_vec(file_bytes.clone(), &store);
    // A copy that is not shared loads the same bytes through the copying path.
    for source in [file.clone(), ChunkedBytes::from(file_bytes.clone())] {
        let mut loaded = WalLog::sharing(segment, Lsn(segment), Lsn::INVALID, BlockStore::default());
        loaded.load(Lsn(segment), &source, source.len() - 100);
        assert_eq!(loaded.end(), Lsn(written.end().0 - 100));
        assert_eq!(loaded.read(Lsn(segment), loaded.end()).unwrap(), file_bytes[..file_bytes.len() - 100]);
        let (mut at, mut prev) = (Lsn(segment + LONG_PAGE_HEADER_BYTES), Lsn::INVALID);
        for start in starts.iter().take(starts.len() - 1) {
            let (_, decoded_start, end) = loaded.decode_at(at, prev, loaded.end()).unwrap();
            assert_eq!(decoded_start, *start);
            (prev, at) = (decoded_start, end);
        }
    }
    let mut loaded = WalLog::sharing(segment, Lsn(segment), Lsn::INVALID, BlockStore::default());
    loaded.load(Lsn(segment), &file, file.len());
    let theirs: Vec<&Block> = written.full_blocks().collect();
    let ours: Vec<&Block> = loaded.full_blocks().collect();
    assert_eq!(ours.len(), 3);
    assert!(ours.iter().zip(&theirs).all(|(a, b)| a.same(b)), "the loaded blocks are the written ones");
}
