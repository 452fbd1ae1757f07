//! A logical replication slot (PostgreSQL's `slot.c` and `logical.c`): what its consumer has
//! confirmed (`confirmed_flush_lsn`) and where decoding must restart to deliver everything
//! after that again (`restart_lsn`). The slot holds WAL back to `restart_lsn` whether or not a
//! consumer is connected, which is why an abandoned slot fills a primary's disk;
//! `max_slot_wal_keep_size` invalidates it instead (`wal_status = lost`).
//!
//! Slots are saved (`SaveSlotToPath`) when created or dropped and at every checkpoint
//! (`CheckPointReplicationSlots`), and read back at startup (`StartupReplicationSlots`): after a
//! crash a slot's positions are those of the last save, so a subscriber may be sent again what
//! it had already confirmed since, which its replication origin skips.

use crate::crc32c;
use crate::logical::decode::DecodePoint;
use crate::lsn::Lsn;
use crate::wal::chunks::ChunkedBytes;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalSlot {
    pub name: String,
    /// `restart_lsn`, with the start of the record before it (decoding checks the chain).
    pub restart: DecodePoint,
    pub confirmed_flush_lsn: Lsn,
    /// Synchronised to standbys (`failover = true`, PostgreSQL 17's slot sync).
    pub failover: bool,
    /// Why the slot can no longer be used (`invalidation_reason`), if it cannot.
    pub invalidated: Option<&'static str>,
}

impl LogicalSlot {
    /// `CREATE_REPLICATION_SLOT … LOGICAL` at a moment with no transaction running (the
    /// consistent point; PostgreSQL waits for running transactions to finish first): decoding
    /// starts at `at`, and nothing committed before it is ever sent.
    pub fn create(name: &str, at: DecodePoint, failover: bool) -> LogicalSlot {
        LogicalSlot { name: name.to_string(), restart: at, confirmed_flush_lsn: at.at, failover, invalidated: None }
    }

    pub fn restart_lsn(&self) -> Lsn {
        self.restart.at
    }

    /// The consumer reported `flush_lsn` (its flush position from a status update):
    /// `confirmed_flush_lsn` only moves forward, and `restart_lsn` moves to `restart` when the
    /// decoder says that confirmation made it safe.
    pub fn confirm(&mut self, flush_lsn: Lsn, restart: Option<DecodePoint>) {
        if flush_lsn > self.confirmed_flush_lsn {
            self.confirmed_flush_lsn = flush_lsn;
        }
        if let Some(restart) = restart.filter(|r| r.at > self.restart.at) {
            self.restart = restart;
        }
    }

    /// Invalidates the slot if it holds more than `max_keep_bytes` of WAL behind `insert_lsn`
    /// (`InvalidatePossiblyObsoleteSlot`, reason `wal_removed`). Returns whether it did now.
    pub fn invalidate_if_behind(&mut self, insert_lsn: Lsn, max_keep_bytes: Option<u64>) -> bool {
        let Some(limit) = max_keep_bytes else { return false };
        if self.invalidated.is_some() || insert_lsn.bytes_since(self.restart.at) <= limit {
            return false;
        }
        self.invalidated = Some("wal_removed");
        true
    }
}

/// The state file of a node's logical slots: the length of what follows, each slot's fields,
/// then a CRC-32C of them. A file rewritten shorter keeps its old tail on a disk that does not
/// truncate, so the length says where the state ends.
pub fn encode_slots<'a>(generation: u64, slots: impl Iterator<Item = &'a LogicalSlot>) -> Vec<u8> {
    let mut out = generation.to_le_bytes().to_vec();
    for s in slots {
        out.extend((s.name.len() as u32).to_le_bytes());
        out.extend(s.name.as_bytes());
        for lsn in [s.restart.at, s.restart.prev, s.confirmed_flush_lsn] {
            out.extend(lsn.0.to_le_bytes());
        }
        out.push(u8::from(s.failover) | (u8::from(s.invalidated.is_some()) << 1));
    }
    let crc = crc32c::finish(crc32c::update(crc32c::start(), &out));
    out.extend(crc.to_le_bytes());
    let mut file = (out.len() as u32 - 4).to_le_bytes().to_vec();
    file.extend(out);
    file
}

/// The generation and slots of a state file, or `None` if it does not check out.
pub fn decode_slots(bytes: &[u8]) -> Option<(u64, Vec<LogicalSlot>)> {
    let len = u32::from_le_bytes(bytes.get(..4)?.try_into().expect("four bytes")) as usize;
    let (body, crc) = bytes.get(4..4 + len + 4)?.split_at(len);
    if crc32c::finish(crc32c::update(crc32c::start(), body)).to_le_bytes() != crc {
        return None;
    }
    let mut slots = Vec::new();
    let generation = u64::from_le_bytes(body.get(..8)?.try_into().expect("eight bytes"));
    let mut at = 8;
    let mut take = |n: usize| -> Option<&[u8]> {
        let piece = body.get(at..at + n)?;
        at += n;
        Some(piece)
    };
    let u64_at = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("eight bytes"));
    while let Some(len) = take(4) {
        let len = u32::from_le_bytes(len.try_into().expect("four bytes")) as usize;
        let name = String::from_utf8(take(len)?.to_vec()).ok()?;
        let (restart_at, restart_prev, confirmed) = (u64_at(take(8)?), u64_at(take(8)?), u64_at(take(8)?));
        let flags = take(1)?[0];
        slots.push(LogicalSlot {
            name,
            restart: DecodePoint { at: Lsn(restart_at), prev: Lsn(restart_prev) },
            confirmed_flush_lsn: Lsn(confirmed),
            failover: flags & 1 != 0,
            invalidated: (flags & 2 != 0).then_some("wal_removed"),
        });
    }
    Some((generation, slots))
}

/// The newest state among a node's two slot files that checks out (none: no slot was ever
/// saved whole, as a slot whose first save failed never existed).
pub fn newest_saved(
    files: &std::collections::BTreeMap<crate::io::FileId, ChunkedBytes>,
) -> Option<(u64, Vec<LogicalSlot>)> {
    (0..2u8)
        .filter_map(|copy| files.get(&crate::io::FileId::ReplSlots(copy)).and_then(|b| decode_slots(&b.to_vec())))
        .max_by_key(|(generation, _)| *generation)
}
