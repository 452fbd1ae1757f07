//! Creating and dropping logical slots on a node (`slotfuncs.c`), and what
//! `pg_replication_slots` shows of them.

use crate::io::{Observation, Output};
use crate::logical::decode::DecodePoint;
use crate::logical::slot::LogicalSlot;
use crate::lsn::Lsn;
use crate::node::{Node, Role};

/// A row of `pg_replication_slots` for a logical slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogicalSlotRow {
    pub slot_name: String,
    pub restart_lsn: Lsn,
    pub confirmed_flush_lsn: Lsn,
    /// WAL the slot holds behind the insert position.
    pub retained_bytes: u64,
    pub failover: bool,
    /// `wal_status`: "reserved" while it holds its WAL, "lost" once invalidated.
    pub wal_status: &'static str,
}

impl Node {
    pub(crate) fn create_logical_slot(&mut self, name: &str, failover: bool, out: &mut Vec<Output>) {
        let note = |text: &str, out: &mut Vec<Output>| {
            out.push(Output::Observe(Observation::LogicalSlot { name: name.to_string(), text: text.to_string() }));
        };
        // PostgreSQL 16 also decodes on a standby; repsim's slots live on the primary.
        if self.role != Role::Primary {
            return note("refused: logical decoding runs on the primary here", out);
        }
        if self.logical_slots.contains_key(name) {
            return note("refused: a replication slot of this name already exists", out);
        }
        // Transactions here write their records and commit in one step, so the insert position
        // is a consistent point: no transaction is running across it (PostgreSQL waits for
        // those that are). The WAL before it is flushed first (the disk completes in order), so
        // a slot saved on disk never points past the WAL that survives a crash. The slot file's
        // own fsync follows; what must not outlive the slot waits for it
        // (`slot_file_durable_generation`).
        let at = DecodePoint { at: self.wal.end(), prev: self.wal.last_record_start() };
        self.flush_wal(out);
        self.logical_slots.insert(name.to_string(), LogicalSlot::create(name, at, failover));
        self.save_logical_slots(out);
        note("created", out);
    }

    pub(crate) fn drop_logical_slot(&mut self, name: &str, out: &mut Vec<Output>) {
        // A slot in use cannot be dropped (`ReplicationSlotAcquire`, nowait).
        if let Some(peer) = self.logical_senders.iter().find(|(_, s)| s.slot == name).map(|(p, _)| *p) {
            let text = format!("refused: replication slot \"{name}\" is active for the connection from node {peer}");
            out.push(Output::Observe(Observation::LogicalSlot { name: name.to_string(), text }));
            return;
        }
        let dropped = self.logical_slots.remove(name).is_some();
        if dropped {
            self.save_logical_slots(out);
        }
        let text = if dropped { "dropped" } else { "refused: no such slot" };
        out.push(Output::Observe(Observation::LogicalSlot { name: name.to_string(), text: text.to_string() }));
    }

    /// Writes the slots' state file (at creation, drop and every checkpoint), once any slot
    /// was ever saved here (generation 0: never): a node without logical slots writes nothing.
    pub(crate) fn save_logical_slots(&mut self, out: &mut Vec<Output>) {
        if self.logical_slots.is_empty() && self.slot_file_generation == 0 {
            return;
        }
        self.slot_file_generation += 1;
        let generation = self.slot_file_generation;
        let bytes = crate::logical::slot::encode_slots(generation, self.logical_slots.values());
        let file = crate::io::FileId::ReplSlots((generation % 2) as u8);
        let io = self.new_io(crate::node::IoPurpose::Meta);
        let cost_bytes = crate::io::file_cost_bytes(file, &bytes);
        out.push(Output::Write { io, file, offset: 0, bytes, cost_bytes });
        let io = self.new_io(crate::node::IoPurpose::SlotsSaved { generation });
        out.push(Output::Fsync { io, file });
    }

    /// `StartupReplicationSlots`: the newest slot state saved whole in `image`, if any.
    pub(crate) fn load_logical_slots(&mut self, image: &crate::io::DiskImage) {
        let Some((generation, slots)) = crate::logical::slot::newest_saved(&image.files) else { return };
        self.slot_file_generation = generation;
        self.slot_file_durable_generation = generation;
        self.logical_slots = slots.into_iter().map(|s| (s.name.clone(), s)).collect();
    }

    /// The logical rows of `pg_replication_slots`, by slot name.
    pub fn pg_replication_slots(&self) -> Vec<LogicalSlotRow> {
        let insert = self.wal.end();
        self.logical_slots
            .values()
            .map(|s| LogicalSlotRow {
                slot_name: s.name.clone(),
                restart_lsn: s.restart_lsn(),
                confirmed_flush_lsn: s.confirmed_flush_lsn,
                retained_bytes: if s.invalidated.is_some() { 0 } else { insert.bytes_since(s.restart_lsn()) },
                failover: s.failover,
                wal_status: if s.invalidated.is_some() { "lost" } else { "reserved" },
            })
            .collect()
    }
}

/// A fresh publisher's data directory with logical slots `names` already made, as
/// `CREATE SUBSCRIPTION` makes its slot (`create_slot = true`) on an empty database before any
/// client writes: each slot starts at the end of `initdb`'s WAL, so there is nothing to copy
/// first (no table synchronisation). Base backups leave the slot file out (standbys of this
/// cluster are cloned from [`crate::recovery::initdb`]'s image, without it).
/// `slots`: each slot's name and whether it is a failover slot.
pub fn initdb_with_logical_slots(cfg: &crate::config::NodeConfig, slots: &[(String, bool)]) -> crate::io::DiskImage {
    let mut image = crate::recovery::initdb(cfg);
    if slots.is_empty() {
        return image;
    }
    let control = image.read(crate::io::FileId::Control).and_then(|b| crate::checkpoint::ControlFile::decode(&b));
    let control = control.expect("initdb writes pg_control");
    let segment = image.files.iter().find_map(|(file, bytes)| match file {
        crate::io::FileId::WalSegment { segno, .. } => Some((*segno, bytes.len() as u64)),
        _ => None,
    });
    let (segno, len) = segment.expect("initdb writes one WAL segment");
    let end = Lsn(segno * cfg.wal_segment_size_bytes + len);
    let at = DecodePoint { at: end, prev: control.checkpoint_lsn };
    let slots: Vec<LogicalSlot> =
        slots.iter().map(|(name, failover)| LogicalSlot::create(name, at, *failover)).collect();
    // Generation 1 in the copy generation 1 goes to (`save_logical_slots`).
    let bytes = crate::logical::slot::encode_slots(1, slots.iter());
    image.files.insert(crate::io::FileId::ReplSlots(1), bytes.into());
    image
}
