//! WAL record encoding (PostgreSQL `xlogrecord.h`, simplified bodies).
//!
//! Header, 24 bytes little-endian: `tot_len` u32 (header included), `xid` u32, `prev` u64 (start
//! LSN of the previous record), `info` u8 (record kind), `rmid` u8 (resource manager), 2 pad
//! bytes, `crc` u32 (CRC-32C over the body, then the first 20 header bytes). Records start
//! 8-byte aligned; the padding after a record is zero. Row values are materialised from the
//! write id, so every byte that is charged to the network and the disk exists and is checksummed.

use crate::crc32c;
use crate::lsn::Lsn;
use crate::storage::Value;

pub const HEADER_BYTES: u64 = 24;
pub const ALIGN_BYTES: u64 = 8;
/// Sanity bound on one record's length: anything larger is garbage (end of WAL).
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

const RM_XLOG: u8 = 0;
const RM_XACT: u8 = 1;
const RM_HEAP2: u8 = 9;
const RM_HEAP: u8 = 10;

/// A row change. The value is identified by the write that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowChange {
    Insert { table: u32, key: u64, write_id: u64, value_len: u32 },
    Update { table: u32, key: u64, write_id: u64, value_len: u32 },
    Delete { table: u32, key: u64 },
}

impl RowChange {
    /// The row it changes: `(table, key)`.
    pub fn row(&self) -> (u32, u64) {
        match *self {
            RowChange::Insert { table, key, .. }
            | RowChange::Update { table, key, .. }
            | RowChange::Delete { table, key } => (table, key),
        }
    }

    /// The row's value after it (`None`: a delete).
    pub fn value(&self) -> Option<Value> {
        match *self {
            RowChange::Insert { write_id, value_len, .. } | RowChange::Update { write_id, value_len, .. } => {
                Some(Value { write_id, len: value_len })
            }
            RowChange::Delete { .. } => None,
        }
    }

    /// The write that produced the row's new value (`None` for a delete).
    pub fn write_id(&self) -> Option<u64> {
        self.value().map(|v| v.write_id)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordBody {
    Row(RowChange),
    /// `timestamp_ns` is the primary's clock at commit; `apply_feedback` asks the standby to
    /// report apply immediately (set when the committer used `remote_apply`). `origin`: the
    /// transaction was applied by a subscription (`xl_origin`, present when a replication
    /// origin is set up in the session).
    Commit {
        timestamp_ns: u64,
        apply_feedback: bool,
        origin: Option<CommitOrigin>,
    },
    Abort {
        timestamp_ns: u64,
    },
    /// An online checkpoint: redo from `redo`, table image in data file `data_file_id`.
    /// `redo_prev` is the start of the record before `redo` (the first record redo reads is
    /// checked against it).
    Checkpoint {
        redo: Lsn,
        redo_prev: Lsn,
        timeline: u32,
        data_file_id: u64,
    },
    /// A full-page image of heap page `page` of `table` (`full_page_writes`, `engine/src/fpw.rs`):
    /// `image_len` bytes, logged before the first change to the page after a redo point.
    /// PostgreSQL attaches it to that change's record; here it is a record of its own (a
    /// record header instead of a block header). Replay does nothing with it.
    FullPageImage {
        table: u32,
        page: u64,
        image_len: u32,
    },
    /// Dead row versions removed on the primary (`XLOG_HEAP2_PRUNE`, `engine/src/prune.rs`):
    /// `removed` line pointers (2 bytes each in the record) whose newest `xmax` is
    /// `conflict_horizon_xid` (`snapshotConflictHorizon`). A hot standby resolves its conflicts
    /// with running queries before replaying it. Written outside any transaction (xid 0).
    Prune {
        conflict_horizon_xid: u32,
        removed: u32,
    },
    /// `XLOG_SWITCH` (`archive_timeout` or `pg_switch_wal()`): the rest of this segment is
    /// unused and the next record starts the next segment. Written outside any transaction.
    Switch,
    /// A promotion ended recovery without a checkpoint (`XLOG_END_OF_RECOVERY`, written by
    /// `CreateEndOfRecoveryRecord` in xlog.c): the new timeline, the one it left, and the
    /// promoted node's clock. Replay does nothing with it.
    EndOfRecovery {
        timeline: u32,
        prev_timeline: u32,
        timestamp_ns: u64,
    },
}

/// A commit's replication origin (`xl_xact_origin`): the node the transaction was first
/// committed on, where its commit record ends there, and that node's commit timestamp
/// (which `pg_commit_ts` keeps for the applied transaction, not the local clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitOrigin {
    pub node: u32,
    pub lsn: Lsn,
    pub timestamp_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub xid: u32,
    pub prev: Lsn,
    pub body: RecordBody,
}

/// Why bytes at a position are not a record. Both end redo, as in PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the header or the declared length: the WAL ends mid-record.
    Torn,
    /// Length, kind, prev-pointer or CRC do not check out.
    Invalid(&'static str),
}

fn kind_codes(body: &RecordBody) -> (u8, u8) {
    match body {
        RecordBody::Row(RowChange::Insert { .. }) => (RM_HEAP, 0x00),
        RecordBody::Row(RowChange::Update { .. }) => (RM_HEAP, 0x20),
        RecordBody::Row(RowChange::Delete { .. }) => (RM_HEAP, 0x10),
        // XACT_XINFO_HAS_ORIGIN: the origin follows the commit's fields.
        RecordBody::Commit { origin: None, .. } => (RM_XACT, 0x00),
        RecordBody::Commit { origin: Some(_), .. } => (RM_XACT, 0x80),
        RecordBody::Abort { .. } => (RM_XACT, 0x20),
        RecordBody::Checkpoint { .. } => (RM_XLOG, 0x10),
        RecordBody::EndOfRecovery { .. } => (RM_XLOG, 0x90),
        RecordBody::FullPageImage { .. } => (RM_XLOG, 0xB0),
        RecordBody::Prune { .. } => (RM_HEAP2, 0x10),
        RecordBody::Switch => (RM_XLOG, 0x40),
    }
}

/// Deterministic content of a value: every byte depends on the write id and its offset.
pub fn value_byte(write_id: u64, offset: u32) -> u8 {
    (write_id.rotate_left(offset % 64) as u8) ^ (offset as u8)
}

/// Appends `value_byte(write_id, 0..len)` to `out` (every row's value is in the WAL: made a
/// byte at a time, it was 3 % of a loaded run's instructions). The bytes repeat every 256 (the
/// rotation every 64 offsets, the offset's low byte every 256): one period is made eight
/// bytes at a time, the rest copied from what is already there.
fn extend_value_bytes(out: &mut Vec<u8>, write_id: u64, len: u32) {
    const PERIOD: usize = 256;
    let start = out.len();
    let len = len as usize;
    out.reserve(len);
    // Byte i is the low byte of the id rotated by i % 64 (a table of the 64 rotations) xor
    // i's low byte. Eight offsets from a multiple of eight differ only in their low three
    // bits, so their low bytes are one word (no carry between its bytes).
    let mut rotated = [0u8; 64];
    for (r, byte) in rotated.iter_mut().enumerate() {
        *byte = write_id.rotate_left(r as u32) as u8;
    }
    let first = len.min(PERIOD);
    let mut period = [0u8; PERIOD];
    for (word_index, word) in period[..first.next_multiple_of(8)].chunks_exact_mut(8).enumerate() {
        let i = word_index * 8;
        let offsets = i as u64 * 0x0101_0101_0101_0101 + 0x0706_0504_0302_0100;
        let table: [u8; 8] = rotated[i % 64..i % 64 + 8].try_into().expect("eight bytes");
        word.copy_from_slice(&(u64::from_le_bytes(table) ^ offsets).to_le_bytes());
    }
    out.extend_from_slice(&period[..first]);
    while out.len() - start < len {
        // A whole number of periods is made: copying it continues the pattern.
        let made = out.len() - start;
        out.extend_from_within(start..start + made.min(len - made));
    }
}

fn encode_body(body: &RecordBody, out: &mut Vec<u8>) {
    match *body {
        RecordBody::Row(RowChange::Insert { table, key, write_id, value_len })
        | RecordBody::Row(RowChange::Update { table, key, write_id, value_len }) => {
            out.extend_from_slice(&table.to_le_bytes());
            out.extend_from_slice(&key.to_le_bytes());
            out.extend_from_slice(&write_id.to_le_bytes());
            out.extend_from_slice(&value_len.to_le_bytes());
            extend_value_bytes(out, write_id, value_len);
        }
        RecordBody::Row(RowChange::Delete { table, key }) => {
            out.extend_from_slice(&table.to_le_bytes());
            out.extend_from_slice(&key.to_le_bytes());
        }
        RecordBody::Commit { timestamp_ns, apply_feedback, origin } => {
            out.extend_from_slice(&timestamp_ns.to_le_bytes());
            out.push(apply_feedback as u8);
            if let Some(o) = origin {
                out.extend_from_slice(&o.node.to_le_bytes());
                out.extend_from_slice(&o.lsn.0.to_le_bytes());
                out.extend_from_slice(&o.timestamp_ns.to_le_bytes());
            }
        }
        RecordBody::Abort { timestamp_ns } => out.extend_from_slice(&timestamp_ns.to_le_bytes()),
        RecordBody::Checkpoint { redo, redo_prev, timeline, data_file_id } => {
            out.extend_from_slice(&redo.0.to_le_bytes());
            out.extend_from_slice(&redo_prev.0.to_le_bytes());
            out.extend_from_slice(&timeline.to_le_bytes());
            out.extend_from_slice(&data_file_id.to_le_bytes());
        }
        RecordBody::FullPageImage { table, page, image_len } => {
            out.extend_from_slice(&table.to_le_bytes());
            out.extend_from_slice(&page.to_le_bytes());
            out.extend_from_slice(&image_len.to_le_bytes());
            extend_value_bytes(out, page, image_len);
        }
        RecordBody::Prune { conflict_horizon_xid, removed } => {
            out.extend_from_slice(&conflict_horizon_xid.to_le_bytes());
            out.extend_from_slice(&removed.to_le_bytes());
            out.extend((0..removed * 2).map(|i| value_byte(u64::from(conflict_horizon_xid), i)));
        }
        RecordBody::Switch => {}
        RecordBody::EndOfRecovery { timeline, prev_timeline, timestamp_ns } => {
            out.extend_from_slice(&timestamp_ns.to_le_bytes());
            out.extend_from_slice(&timeline.to_le_bytes());
            out.extend_from_slice(&prev_timeline.to_le_bytes());
        }
    }
}

/// Appends the record, aligned, to `out`. Returns the number of bytes appended.
pub fn encode(record: &Record, out: &mut Vec<u8>) -> u64 {
    let start = out.len();
    out.resize(start + HEADER_BYTES as usize, 0);
    encode_body(&record.body, out);
    let tot_len = (out.len() - start) as u32;
    let (rmid, info) = kind_codes(&record.body);
    let header = &mut out[start..start + HEADER_BYTES as usize];
    header[0..4].copy_from_slice(&tot_len.to_le_bytes());
    header[4..8].copy_from_slice(&record.xid.to_le_bytes());
    header[8..16].copy_from_slice(&record.prev.0.to_le_bytes());
    header[16] = info;
    header[17] = rmid;
    let crc = crc32c::update(crc32c::start(), &out[start + HEADER_BYTES as usize..]);
    let crc = crc32c::finish(crc32c::update(crc, &out[start..start + 20]));
    out[start + 20..start + 24].copy_from_slice(&crc.to_le_bytes());
    let aligned = align(tot_len as u64) as usize;
    out.resize(start + aligned, 0);
    aligned as u64
}

pub fn align(len: u64) -> u64 {
    len.div_ceil(ALIGN_BYTES) * ALIGN_BYTES
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Decodes the record at the start of `bytes`, whose predecessor must start at `expected_prev`.
/// Returns the record and its aligned length.
pub fn decode(bytes: &[u8], expected_prev: Lsn) -> Result<(Record, u64), DecodeError> {
    if (bytes.len() as u64) < HEADER_BYTES {
        return Err(DecodeError::Torn);
    }
    let tot_len = u32_at(bytes, 0) as u64;
    if !(HEADER_BYTES..=MAX_RECORD_BYTES).contains(&tot_len) {
        return Err(DecodeError::Invalid("record length out of range"));
    }
    if (bytes.len() as u64) < tot_len {
        return Err(DecodeError::Torn);
    }
    let stored_crc = u32_at(bytes, 20);
    let crc = crc32c::update(crc32c::start(), &bytes[HEADER_BYTES as usize..tot_len as usize]);
    if crc32c::finish(crc32c::update(crc, &bytes[..20])) != stored_crc {
        return Err(DecodeError::Invalid("incorrect resource manager data checksum"));
    }
    let prev = Lsn(u64_at(bytes, 8));
    if prev != expected_prev {
        return Err(DecodeError::Invalid("record with incorrect prev-link"));
    }
    let xid = u32_at(bytes, 4);
    let body = decode_body(bytes[17], bytes[16], &bytes[HEADER_BYTES as usize..tot_len as usize])?;
    Ok((Record { xid, prev, body }, align(tot_len)))
}

fn decode_body(rmid: u8, info: u8, b: &[u8]) -> Result<RecordBody, DecodeError> {
    let need = |len: usize| {
        if b.len() >= len {
            Ok(())
        } else {
            Err(DecodeError::Invalid("short body"))
        }
    };
    let row = |b: &[u8]| -> Result<(u32, u64, u64, u32), DecodeError> {
        need(24)?;
        let value_len = u32_at(b, 20);
        if b.len() != 24 + value_len as usize {
            return Err(DecodeError::Invalid("row value length mismatch"));
        }
        Ok((u32_at(b, 0), u64_at(b, 4), u64_at(b, 12), value_len))
    };
    match (rmid, info) {
        (RM_HEAP, 0x00) => {
            let (table, key, write_id, value_len) = row(b)?;
            Ok(RecordBody::Row(RowChange::Insert { table, key, write_id, value_len }))
        }
        (RM_HEAP, 0x20) => {
            let (table, key, write_id, value_len) = row(b)?;
            Ok(RecordBody::Row(RowChange::Update { table, key, write_id, value_len }))
        }
        (RM_HEAP, 0x10) => {
            need(12)?;
            Ok(RecordBody::Row(RowChange::Delete { table: u32_at(b, 0), key: u64_at(b, 4) }))
        }
        (RM_XACT, 0x00) => {
            need(9)?;
            Ok(RecordBody::Commit { timestamp_ns: u64_at(b, 0), apply_feedback: b[8] != 0, origin: None })
        }
        (RM_XACT, 0x80) => {
            need(29)?;
            let origin = CommitOrigin { node: u32_at(b, 9), lsn: Lsn(u64_at(b, 13)), timestamp_ns: u64_at(b, 21) };
            Ok(RecordBody::Commit { timestamp_ns: u64_at(b, 0), apply_feedback: b[8] != 0, origin: Some(origin) })
        }
        (RM_XACT, 0x20) => {
            need(8)?;
            Ok(RecordBody::Abort { timestamp_ns: u64_at(b, 0) })
        }
        (RM_XLOG, 0x10) => {
            need(28)?;
            Ok(RecordBody::Checkpoint {
                redo: Lsn(u64_at(b, 0)),
                redo_prev: Lsn(u64_at(b, 8)),
                timeline: u32_at(b, 16),
                data_file_id: u64_at(b, 20),
            })
        }
        (RM_XLOG, 0xB0) => {
            need(16)?;
            let image_len = u32_at(b, 12);
            if b.len() != 16 + image_len as usize {
                return Err(DecodeError::Invalid("page image length mismatch"));
            }
            Ok(RecordBody::FullPageImage { table: u32_at(b, 0), page: u64_at(b, 4), image_len })
        }
        (RM_HEAP2, 0x10) => {
            need(8)?;
            let removed = u32_at(b, 4);
            if b.len() as u64 != 8 + 2 * u64::from(removed) {
                return Err(DecodeError::Invalid("prune offsets length mismatch"));
            }
            Ok(RecordBody::Prune { conflict_horizon_xid: u32_at(b, 0), removed })
        }
        (RM_XLOG, 0x40) => Ok(RecordBody::Switch),
        (RM_XLOG, 0x90) => {
            need(16)?;
            Ok(RecordBody::EndOfRecovery {
                timestamp_ns: u64_at(b, 0),
                timeline: u32_at(b, 8),
                prev_timeline: u32_at(b, 12),
            })
        }
        _ => Err(DecodeError::Invalid("invalid resource manager ID")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The copied periods are the bytes `value_byte` gives, at every length around a period.
    #[test]
    fn value_bytes_made_by_copying_periods_are_value_byte() {
        for id in [0, 1, 0xDEAD_BEEF_1234_5678, u64::MAX, 1 << 63] {
            for len in [0, 1, 7, 8, 9, 63, 64, 100, 255, 256, 257, 511, 512, 1000, 8192, 10_001] {
                let mut out = vec![7u8; 3];
                extend_value_bytes(&mut out, id, len);
                let expected: Vec<u8> = (0..len).map(|i| value_byte(id, i)).collect();
                assert_eq!(&out[..3], &[7, 7, 7], "what was there stays");
                assert_eq!(&out[3..], &expected[..], "id {id:#x}, length {len}");
            }
        }
    }

    fn sample() -> Vec<Record> {
        vec![
            Record {
                xid: 7,
                prev: Lsn(100),
                body: RecordBody::Row(RowChange::Insert { table: 1, key: 9, write_id: 42, value_len: 37 }),
            },
            Record { xid: 7, prev: Lsn(200), body: RecordBody::Row(RowChange::Delete { table: 2, key: 3 }) },
            Record {
                xid: 7,
                prev: Lsn(300),
                body: RecordBody::Commit { timestamp_ns: 5, apply_feedback: true, origin: None },
            },
            Record {
                xid: 8,
                prev: Lsn(350),
                body: RecordBody::Commit {
                    timestamp_ns: 6,
                    apply_feedback: false,
                    origin: Some(CommitOrigin { node: 3, lsn: Lsn(0x1234), timestamp_ns: 99 }),
                },
            },
            Record {
                xid: 0,
                prev: Lsn(400),
                body: RecordBody::Checkpoint { redo: Lsn(77), redo_prev: Lsn(70), timeline: 1, data_file_id: 3 },
            },
            Record {
                xid: 0,
                prev: Lsn(500),
                body: RecordBody::EndOfRecovery { timeline: 2, prev_timeline: 1, timestamp_ns: 9 },
            },
            Record { xid: 8, prev: Lsn(600), body: RecordBody::FullPageImage { table: 2, page: 7, image_len: 300 } },
            Record { xid: 8, prev: Lsn(700), body: RecordBody::FullPageImage { table: 2, page: 8, image_len: 0 } },
            Record { xid: 0, prev: Lsn(800), body: RecordBody::Prune { conflict_horizon_xid: 41, removed: 3 } },
            Record { xid: 0, prev: Lsn(900), body: RecordBody::Switch },
        ]
    }

    #[test]
    fn round_trip_every_kind() {
        for record in sample() {
            let mut bytes = Vec::new();
            let len = encode(&record, &mut bytes);
            assert_eq!(len % ALIGN_BYTES, 0);
            assert_eq!(len, bytes.len() as u64);
            let (decoded, decoded_len) = decode(&bytes, record.prev).expect("decodes");
            assert_eq!(decoded, record);
            assert_eq!(decoded_len, len);
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let record = sample()[0];
        let mut bytes = Vec::new();
        let len = encode(&record, &mut bytes) as usize;
        let tot_len = u32_at(&bytes, 0) as usize;
        for byte in 0..tot_len {
            for bit in 0..8 {
                let mut corrupt = bytes[..len].to_vec();
                corrupt[byte] ^= 1 << bit;
                assert!(decode(&corrupt, record.prev).is_err(), "flip at byte {byte} bit {bit} accepted");
            }
        }
    }

    #[test]
    fn torn_tail_is_detected_at_every_cut() {
        let record = sample()[0];
        let mut bytes = Vec::new();
        encode(&record, &mut bytes);
        let tot_len = u32_at(&bytes, 0) as usize;
        for cut in 0..tot_len {
            assert!(decode(&bytes[..cut], record.prev).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn wrong_prev_link_is_rejected() {
        let record = sample()[1];
        let mut bytes = Vec::new();
        encode(&record, &mut bytes);
        assert_eq!(decode(&bytes, Lsn(201)), Err(DecodeError::Invalid("record with incorrect prev-link")));
    }
}
