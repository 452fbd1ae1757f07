//! The node's WAL as it stands in memory (PostgreSQL's WAL buffers plus the page cache over
//! `pg_wal`): the bytes `[start, end)`. Old segments are dropped from the front when a
//! checkpoint recycles them, so memory is bounded by WAL retention, not by run length.

use crate::lsn::Lsn;
use crate::wal::record::{self, DecodeError, Record};

#[derive(Clone, Debug)]
pub struct WalLog {
    segment_size_bytes: u64,
    /// First byte still held. Always a segment start after recycling.
    start: Lsn,
    bytes: Vec<u8>,
    /// Start LSN of the last record, the `prev` of the next one.
    last_record_start: Lsn,
}

impl WalLog {
    /// An empty log whose first record will go at `start`, after a record at `last_record_start`.
    pub fn new(segment_size_bytes: u64, start: Lsn, last_record_start: Lsn) -> WalLog {
        assert!(segment_size_bytes.is_power_of_two());
        WalLog { segment_size_bytes, start, bytes: Vec::new(), last_record_start }
    }

    pub fn segment_size_bytes(&self) -> u64 {
        self.segment_size_bytes
    }

    pub fn start(&self) -> Lsn {
        self.start
    }

    /// One past the last byte held (the insert position on a primary).
    pub fn end(&self) -> Lsn {
        Lsn(self.start.0 + self.bytes.len() as u64)
    }

    pub fn last_record_start(&self) -> Lsn {
        self.last_record_start
    }

    /// Appends a record; returns `(start, end)` of it.
    pub fn append(&mut self, xid: u32, body: record::RecordBody) -> (Lsn, Lsn) {
        let start = self.end();
        let record = Record { xid, prev: self.last_record_start, body };
        let len = record::encode(&record, &mut self.bytes);
        self.last_record_start = start;
        (start, Lsn(start.0 + len))
    }

    /// Appends raw bytes received from upstream at `at`, which must be our end. Bytes we
    /// already hold are compared instead (PostgreSQL re-receives identical bytes after a
    /// reconnect); a mismatch is reported, never silently overwritten.
    pub fn receive(&mut self, at: Lsn, data: &[u8]) -> Result<(), Lsn> {
        assert!(at >= self.start, "received WAL below what we hold");
        let end = self.end();
        let overlap = end.0.saturating_sub(at.0).min(data.len() as u64) as usize;
        if overlap > 0 {
            let offset = (at.0 - self.start.0) as usize;
            if self.bytes[offset..offset + overlap] != data[..overlap] {
                return Err(at);
            }
        }
        // Data may lie wholly inside what we hold (a restarted standby streams again from its
        // flushed position, below the end of the WAL it recovered); it may not start past it.
        assert!(at <= end, "gap in received WAL: {} bytes at {at}, but WAL ends at {end}", data.len());
        self.bytes.extend_from_slice(&data[overlap..]);
        Ok(())
    }

    /// After receiving, records are recognised by decoding; `note_record_start` keeps the prev
    /// pointer right for a standby that is later promoted or decodes further.
    pub fn note_record_start(&mut self, start: Lsn) {
        self.last_record_start = start;
    }

    /// The bytes `[from, to)`, or `None` if `from` was already recycled.
    pub fn read(&self, from: Lsn, to: Lsn) -> Option<&[u8]> {
        if from < self.start || to > self.end() || from > to {
            return None;
        }
        let a = (from.0 - self.start.0) as usize;
        let b = (to.0 - self.start.0) as usize;
        Some(&self.bytes[a..b])
    }

    /// Decodes the record starting at `at` whose predecessor starts at `prev`, looking no
    /// further than `limit` (e.g. the flush LSN). Returns the record and its end.
    pub fn decode_at(&self, at: Lsn, prev: Lsn, limit: Lsn) -> Result<(Record, Lsn), DecodeError> {
        let limit = limit.min(self.end());
        let bytes = self.read(at, limit.max(at)).ok_or(DecodeError::Invalid("WAL recycled"))?;
        let (record, len) = record::decode(bytes, prev)?;
        Ok((record, Lsn(at.0 + len)))
    }

    /// Drops every byte at or after `end` (end of recovery: a torn or invalid tail).
    pub fn truncate(&mut self, end: Lsn, last_record_start: Lsn) {
        assert!(end >= self.start && end <= self.end());
        self.bytes.truncate((end.0 - self.start.0) as usize);
        self.last_record_start = last_record_start;
    }

    /// Forgets whole segments below `keep_from` (a segment start). Returns the removed segment
    /// numbers.
    pub fn remove_segments_before(&mut self, keep_from: Lsn) -> std::ops::Range<u64> {
        assert_eq!(keep_from.0 % self.segment_size_bytes, 0);
        let first = self.start.segment(self.segment_size_bytes);
        let keep_from = keep_from.min(self.end().segment_start(self.segment_size_bytes));
        if keep_from <= self.start {
            return first..first;
        }
        let drop_bytes = (keep_from.0 - self.start.0) as usize;
        self.bytes.drain(..drop_bytes);
        self.start = keep_from;
        first..keep_from.segment(self.segment_size_bytes)
    }

    /// Splits `[from, to)` at segment boundaries: `(segno, offset_in_segment, from, to)`.
    pub fn segment_pieces(&self, from: Lsn, to: Lsn) -> Vec<(u64, u64, Lsn, Lsn)> {
        let mut pieces = Vec::new();
        let mut at = from;
        while at < to {
            let segno = at.segment(self.segment_size_bytes);
            let seg_end = Lsn((segno + 1) * self.segment_size_bytes);
            let piece_end = to.min(seg_end);
            pieces.push((segno, at.0 - segno * self.segment_size_bytes, at, piece_end));
            at = piece_end;
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
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
        for (id, (start, end)) in starts.iter().enumerate() {
            assert_eq!(at, *start);
            let (record, decoded_end) = log.decode_at(at, prev, log.end()).unwrap();
            assert_eq!(decoded_end, *end);
            assert_eq!(record.body, insert(id as u64));
            prev = at;
            at = decoded_end;
        }
        assert_eq!(at, log.end());
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

    #[test]
    fn receive_rejects_different_bytes_for_the_same_position() {
        let mut upstream = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
        upstream.append(1, insert(1));
        upstream.append(1, insert(2));
        let mut standby = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
        let all = upstream.read(upstream.start(), upstream.end()).unwrap().to_vec();
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
        let all = upstream.read(upstream.start(), upstream.end()).unwrap().to_vec();
        let mut standby = WalLog::new(1 << 20, Lsn(1 << 20), Lsn::INVALID);
        standby.receive(upstream.start(), &all).unwrap();
        let inner = Lsn(upstream.start().0 + 10);
        standby.receive(inner, &all[10..40]).unwrap();
        assert_eq!(standby.end(), upstream.end());
        let mut wrong = all[10..40].to_vec();
        wrong[0] ^= 1;
        assert!(standby.receive(inner, &wrong).is_err(), "differing bytes are still refused");
    }
}
