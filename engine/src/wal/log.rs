//! The node's WAL as it stands in memory (PostgreSQL's WAL buffers plus the page cache over
//! `pg_wal`): the bytes `[start, end)`. Old segments are dropped from the front when a
//! checkpoint recycles them, so memory is bounded by WAL retention, not by run length; and the
//! bytes sit in LSN-aligned blocks shared through a [`BlockStore`], so the same WAL held by a
//! primary, its standbys and their disks is held once.
//!
//! WAL is written in 8 KB pages, each starting with a page header (`XLogPageHeaderData`, 24
//! bytes; the long form, 40 bytes, at a segment's start), so LSNs count header bytes too, as in
//! PostgreSQL (`XLogBytePosToRecPtr` in xlog.c). A record that does not fit in what is left of
//! a page continues after the next page's header (which says how many of its bytes remain,
//! `xlp_rem_len`). A page's header is written with the first record that starts on the page or
//! continues onto it, so a log may end exactly at a page boundary; a record position there
//! means the record after that page's header.

use std::collections::VecDeque;

use crate::lsn::Lsn;
use crate::wal::blocks::{Block, BlockStore, Piece, PieceBytes, BLOCK_BYTES};
use crate::wal::chunks::ChunkedBytes;
use crate::wal::record::{self, DecodeError, Record};

/// `XLOG_BLCKSZ`.
pub const WAL_PAGE_BYTES: u64 = 8192;
/// `SizeOfXLogShortPHD` and `SizeOfXLogLongPHD`.
pub const PAGE_HEADER_BYTES: u64 = 24;
pub const LONG_PAGE_HEADER_BYTES: u64 = 40;
/// `XLOG_PAGE_MAGIC` of PostgreSQL 16, and the header flags.
const PAGE_MAGIC: u16 = 0xD113;
const XLP_FIRST_IS_CONTRECORD: u16 = 0x0001;
const XLP_LONG_HEADER: u16 = 0x0002;

#[derive(Clone, Debug)]
pub struct WalLog {
    segment_size_bytes: u64,
    /// `BLOCK_BYTES`, or the segment size where that is smaller, so that blocks start at
    /// multiples of it like `start` does.
    block_bytes: usize,
    /// First byte still held. Always a segment start after recycling.
    start: Lsn,
    /// Full blocks from `start`.
    blocks: VecDeque<Block>,
    /// The bytes after the full blocks: fewer than `block_bytes` between calls.
    tail: Vec<u8>,
    /// Start LSN of the last record, the `prev` of the next one.
    last_record_start: Lsn,
    store: BlockStore,
    /// `WAL_PAGE_BYTES`, or the segment size where that is smaller (unit tests).
    page_bytes: u64,
    /// Start of the last "important" record (`XLogGetLastImportantRecPtr`): any but a segment
    /// switch, which an idle server's checkpoint and `archive_timeout` do not count as work.
    last_important_start: Lsn,
}

impl WalLog {
    /// An empty log whose first record will go at `start`, after a record at `last_record_start`.
    pub fn new(segment_size_bytes: u64, start: Lsn, last_record_start: Lsn) -> WalLog {
        WalLog::sharing(segment_size_bytes, start, last_record_start, BlockStore::default())
    }

    /// As [`WalLog::new`], finding equal full blocks in `store`.
    pub fn sharing(segment_size_bytes: u64, start: Lsn, last_record_start: Lsn, store: BlockStore) -> WalLog {
        assert!(segment_size_bytes.is_power_of_two());
        let block_bytes = BLOCK_BYTES.min(segment_size_bytes as usize);
        assert_eq!(start.0 % block_bytes as u64, 0, "a log starts at a block boundary");
        WalLog {
            segment_size_bytes,
            block_bytes,
            start,
            blocks: VecDeque::new(),
            tail: Vec::new(),
            last_record_start,
            store,
            page_bytes: WAL_PAGE_BYTES.min(segment_size_bytes),
            last_important_start: last_record_start,
        }
    }

    /// The header length of the page starting at `page_start`.
    fn header_bytes(&self, page_start: u64) -> u64 {
        if page_start & (self.segment_size_bytes - 1) == 0 {
            LONG_PAGE_HEADER_BYTES
        } else {
            PAGE_HEADER_BYTES
        }
    }

    /// `at`'s offset within its WAL page. Pages and segments are powers of two (asserted in
    /// `sharing`): a mask, not a division, on every record appended and decoded.
    fn page_offset(&self, at: u64) -> u64 {
        at & (self.page_bytes - 1)
    }

    /// Where the page holding byte `at` ends.
    fn page_end(&self, at: u64) -> u64 {
        at - self.page_offset(at) + self.page_bytes
    }

    /// Where a record at position `at` starts: past the page header when `at` is a page start.
    pub fn record_start(&self, at: Lsn) -> Lsn {
        if self.page_offset(at.0) == 0 {
            Lsn(at.0 + self.header_bytes(at.0))
        } else {
            at
        }
    }

    /// The position `len` record bytes after `start` (a record start), skipping the headers of
    /// the pages it continues onto. A record that ends at a page boundary ends there.
    fn advance(&self, start: Lsn, len: u64) -> Lsn {
        let (mut at, mut left) = (start.0, len);
        loop {
            let page_end = self.page_end(at);
            if left <= page_end - at {
                return Lsn(at + left);
            }
            left -= page_end - at;
            at = page_end + self.header_bytes(page_end);
        }
    }

    /// Appends the header of the page starting at `page_start` (the log ends there); `rem_len`
    /// bytes of a record continue on it.
    fn push_page_header(&mut self, page_start: u64, rem_len: u64) {
        debug_assert_eq!(self.end().0, page_start);
        let long = self.header_bytes(page_start) == LONG_PAGE_HEADER_BYTES;
        let flags = if rem_len > 0 { XLP_FIRST_IS_CONTRECORD } else { 0 } | if long { XLP_LONG_HEADER } else { 0 };
        let mut header = [0u8; LONG_PAGE_HEADER_BYTES as usize];
        header[0..2].copy_from_slice(&PAGE_MAGIC.to_le_bytes());
        header[2..4].copy_from_slice(&flags.to_le_bytes());
        // xlp_tli (bytes 4..8) stays 0 here: a promoted node's first page would otherwise differ
        // from its old timeline's copy of it (simplification: PostgreSQL writes the TLI).
        header[8..16].copy_from_slice(&page_start.to_le_bytes());
        header[16..20].copy_from_slice(&(rem_len as u32).to_le_bytes());
        if long {
            // xlp_sysid stays 0; xlp_seg_size and xlp_xlog_blcksz.
            header[32..36].copy_from_slice(&(self.segment_size_bytes as u32).to_le_bytes());
            header[36..40].copy_from_slice(&(self.page_bytes as u32).to_le_bytes());
        }
        let len = self.header_bytes(page_start) as usize;
        self.tail.extend_from_slice(&header[..len]);
    }

    pub fn segment_size_bytes(&self) -> u64 {
        self.segment_size_bytes
    }

    pub fn start(&self) -> Lsn {
        self.start
    }

    /// One past the last byte held (the insert position on a primary).
    pub fn end(&self) -> Lsn {
        Lsn(self.tail_start().0 + self.tail.len() as u64)
    }

    fn tail_start(&self) -> Lsn {
        Lsn(self.start.0 + (self.blocks.len() * self.block_bytes) as u64)
    }

    pub fn last_record_start(&self) -> Lsn {
        self.last_record_start
    }

    /// Start of the last record that is not a segment switch.
    pub fn last_important_start(&self) -> Lsn {
        self.last_important_start
    }

    /// Full blocks at the front of the tail become shared blocks.
    fn seal(&mut self) {
        while self.tail.len() >= self.block_bytes {
            let block = self.store.share(&self.tail[..self.block_bytes]);
            self.blocks.push_back(block);
            self.tail.drain(..self.block_bytes);
        }
    }

    fn push_bytes(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (self.block_bytes - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.seal();
        }
    }

    /// Appends a record (after a page header where it starts or continues on a new page);
    /// returns `(start, end)` of it.
    pub fn append(&mut self, xid: u32, body: record::RecordBody) -> (Lsn, Lsn) {
        let mut at = self.end().0;
        if self.page_offset(at) == 0 {
            self.push_page_header(at, 0);
            at = self.end().0;
        }
        let start = Lsn(at);
        if body != record::RecordBody::Switch {
            self.last_important_start = start;
        }
        let record = Record { xid, prev: self.last_record_start, body };
        let encoded_from = self.tail.len();
        let len = record::encode(&record, &mut self.tail);
        let page_end = self.page_end(at);
        if at + len > page_end {
            // The record continues on the next pages: put their headers in.
            let mut rest = self.tail.split_off(encoded_from + (page_end - at) as usize);
            let mut page_start = page_end;
            while !rest.is_empty() {
                self.push_page_header(page_start, rest.len() as u64);
                let room = (page_start + self.page_bytes - self.end().0) as usize;
                let after = rest.split_off(room.min(rest.len()));
                self.tail.extend_from_slice(&rest);
                rest = after;
                page_start += self.page_bytes;
            }
        }
        self.seal();
        self.last_record_start = start;
        let end = self.advance(start, len);
        debug_assert_eq!(end, self.end());
        (start, end)
    }

    /// Appends raw bytes received from upstream at `at`, which must be our end. Bytes we
    /// already hold are compared instead (PostgreSQL re-receives identical bytes after a
    /// reconnect); a mismatch is reported, never silently overwritten.
    pub fn receive(&mut self, at: Lsn, data: &[u8]) -> Result<(), Lsn> {
        // Bytes below what we hold were held, replayed and recycled: a stream asked for before
        // `restore_command` brought the standby further can still deliver them (swarm seed
        // 9206). They are dropped, as a walreceiver overwrites a recycled segment file and
        // replay never reads it again.
        let (at, data) = if at < self.start {
            let skip = (self.start.0 - at.0) as usize;
            if skip >= data.len() {
                return Ok(());
            }
            (self.start, &data[skip..])
        } else {
            (at, data)
        };
        let end = self.end();
        let overlap = end.0.saturating_sub(at.0).min(data.len() as u64) as usize;
        if overlap > 0 {
            let held = self.pieces(at, Lsn(at.0 + overlap as u64)).expect("overlap is held");
            let mut offset = 0;
            for piece in held {
                if *piece.bytes() != data[offset..offset + piece.len()] {
                    return Err(at);
                }
                offset += piece.len();
            }
        }
        // Data may lie wholly inside what we hold (a restarted standby streams again from its
        // flushed position, below the end of the WAL it recovered); it may not start past it.
        assert!(at <= end, "gap in received WAL: {} bytes at {at}, but WAL ends at {end}", data.len());
        self.push_bytes(&data[overlap..]);
        Ok(())
    }

    /// Appends the first `len` bytes of a WAL file at the end of the log, as crash recovery
    /// reads `pg_wal`: a full shared chunk that starts a block of the log becomes that block as
    /// it is, without copying it or searching for an equal one (a restart read back every
    /// segment kept: 5 % of a loaded failover run, most of it page faults).
    pub fn load(&mut self, at: Lsn, file: &ChunkedBytes, len: usize) {
        assert_eq!(at, self.end(), "a loaded file continues the log");
        let mut left = len;
        for piece in file.pieces() {
            if left == 0 {
                break;
            }
            match piece {
                Piece::Block(block, range)
                    if self.tail.is_empty() && range.len() == self.block_bytes && left >= self.block_bytes =>
                {
                    self.blocks.push_back(block.clone());
                    left -= self.block_bytes;
                }
                piece => {
                    let n = piece.len().min(left);
                    self.push_bytes(&piece.bytes()[..n]);
                    left -= n;
                }
            }
        }
    }

    /// After receiving, records are recognised by decoding; `note_record_start` keeps the prev
    /// pointer right for a standby that is later promoted or decodes further.
    pub fn note_record_start(&mut self, start: Lsn) {
        self.last_record_start = start;
        self.last_important_start = start;
    }

    /// The bytes `[from, to)` in pieces that each lie within one block (two logs' pieces of the
    /// same range line up), or `None` if `from` was already recycled or `to` is not written.
    pub fn pieces(&self, from: Lsn, to: Lsn) -> Option<impl Iterator<Item = Piece<'_>> + '_> {
        if from < self.start || to > self.end() || from > to {
            return None;
        }
        let bb = self.block_bytes as u64;
        let tail_start = self.tail_start();
        let mut at = from;
        Some(std::iter::from_fn(move || {
            if at >= to {
                return None;
            }
            let piece = if at >= tail_start {
                let a = (at.0 - tail_start.0) as usize;
                Piece::Borrowed(&self.tail[a..(to.0 - tail_start.0) as usize])
            } else {
                // Blocks are a power of two long (a shift, not a division).
                let index = ((at.0 - self.start.0) >> bb.trailing_zeros()) as usize;
                let block_start = self.start.0 + index as u64 * bb;
                let a = (at.0 - block_start) as usize;
                let b = (to.0.min(block_start + bb) - block_start) as usize;
                Piece::Block(&self.blocks[index], a..b)
            };
            at = Lsn(at.0 + piece.len() as u64);
            Some(piece)
        }))
    }

    /// The full blocks held (to count how many holders share them).
    pub fn full_blocks(&self) -> impl Iterator<Item = &Block> + '_ {
        self.blocks.iter()
    }

    /// The bytes `[from, to)` appended to `out`; false (and nothing appended) if not all held.
    pub fn read_into(&self, from: Lsn, to: Lsn, out: &mut Vec<u8>) -> bool {
        let Some(pieces) = self.pieces(from, to) else { return false };
        out.reserve((to.0 - from.0) as usize);
        for piece in pieces {
            out.extend_from_slice(&piece.bytes());
        }
        true
    }

    /// The bytes `[from, to)` as one vector, or `None` if not all held.
    pub fn read(&self, from: Lsn, to: Lsn) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        self.read_into(from, to, &mut out).then_some(out)
    }

    /// `[from, to)` without copying when it lies in one block; gathered otherwise.
    fn contiguous(&self, from: Lsn, to: Lsn) -> Option<PieceBytes<'_>> {
        let mut pieces = self.pieces(from, to)?;
        let Some(first) = pieces.next() else { return Some(PieceBytes::Borrowed(&[])) };
        if first.len() as u64 == to.0 - from.0 {
            return Some(first.bytes());
        }
        let mut gathered = first.bytes().to_vec();
        for piece in pieces {
            gathered.extend_from_slice(&piece.bytes());
        }
        Some(PieceBytes::Owned(gathered))
    }

    /// `XLOG_SWITCH`: appends the switch record and fills the rest of the segment with zeros
    /// (`XLogWrite` zero-fills a switched segment's unused pages, headers left out here);
    /// returns the record's start and the next segment's start, where WAL continues.
    pub fn switch_segment(&mut self) -> (Lsn, Lsn) {
        let (start, end) = self.append(0, record::RecordBody::Switch);
        let next = Lsn(end.0.div_ceil(self.segment_size_bytes) * self.segment_size_bytes);
        self.push_bytes(&vec![0u8; (next.0 - end.0) as usize]);
        (start, next)
    }

    /// Where WAL continues after a record that ends at `end`: the next segment after a switch.
    fn after(&self, record: &Record, end: Lsn) -> Lsn {
        match record.body {
            record::RecordBody::Switch => Lsn(end.0.div_ceil(self.segment_size_bytes) * self.segment_size_bytes),
            _ => end,
        }
    }

    /// Decodes the record at position `at` (past the page header if `at` is a page start)
    /// whose predecessor starts at `prev`, looking no further than `limit` (e.g. the flush
    /// LSN). Returns the record, its start and its end.
    pub fn decode_at(&self, at: Lsn, prev: Lsn, limit: Lsn) -> Result<(Record, Lsn, Lsn), DecodeError> {
        let start = self.record_start(at);
        let limit = limit.min(self.end());
        if limit <= start {
            return Err(DecodeError::Torn);
        }
        let page_end = self.page_end(start.0);
        let in_page = Lsn(limit.0.min(page_end));
        let bytes = self.contiguous(start, in_page).ok_or(DecodeError::Invalid("WAL recycled"))?;
        // The record's end: past a switch's zero-filled rest of segment, which must be there too.
        let decoded = |(record, len): (Record, u64)| {
            let end = self.after(&record, self.advance(start, len));
            if end > limit {
                Err(DecodeError::Torn)
            } else {
                Ok((record, start, end))
            }
        };
        match record::decode(&bytes, prev) {
            Err(DecodeError::Torn) if in_page < limit => {}
            result => return result.and_then(decoded),
        }
        // The record continues on later pages: gather its bytes without their headers.
        let mut gathered = bytes.to_vec();
        let mut page_start = page_end;
        loop {
            let from = page_start + self.header_bytes(page_start);
            if from >= limit.0 {
                return Err(DecodeError::Torn);
            }
            let to = limit.0.min(page_start + self.page_bytes);
            if !self.read_into(Lsn(from), Lsn(to), &mut gathered) {
                return Err(DecodeError::Invalid("WAL recycled"));
            }
            match record::decode(&gathered, prev) {
                Err(DecodeError::Torn) if to < limit.0 => page_start += self.page_bytes,
                result => return result.and_then(decoded),
            }
        }
    }

    /// Drops every byte at or after `end` (end of recovery: a torn or invalid tail).
    pub fn truncate(&mut self, end: Lsn, last_record_start: Lsn) {
        assert!(end >= self.start && end <= self.end());
        let keep = (end.0 - self.start.0) as usize;
        let full = keep / self.block_bytes;
        if full < self.blocks.len() {
            self.tail = self.blocks[full].bytes()[..keep % self.block_bytes].to_vec();
            self.blocks.truncate(full);
        } else {
            self.tail.truncate(keep - full * self.block_bytes);
        }
        self.last_record_start = last_record_start;
        self.last_important_start = last_record_start;
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
        let drop_blocks = ((keep_from.0 - self.start.0) / self.block_bytes as u64) as usize;
        assert!(drop_blocks <= self.blocks.len(), "a segment below the end is in full blocks");
        self.blocks.drain(..drop_blocks);
        self.start = keep_from;
        first..keep_from.segment(self.segment_size_bytes)
    }

    /// Splits `[from, to)` at segment boundaries: `(segno, offset_in_segment, from, to)`.
    pub fn segment_pieces(&self, from: Lsn, to: Lsn) -> impl Iterator<Item = (u64, u64, Lsn, Lsn)> {
        let segment_size_bytes = self.segment_size_bytes;
        let mut at = from;
        std::iter::from_fn(move || {
            if at >= to {
                return None;
            }
            let segno = at.segment(segment_size_bytes);
            let piece_end = to.min(Lsn((segno + 1) * segment_size_bytes));
            let piece = (segno, at.0 - segno * segment_size_bytes, at, piece_end);
            at = piece_end;
            Some(piece)
        })
    }
}

#[cfg(test)]
mod tests;
