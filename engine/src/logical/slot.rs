//! A logical replication slot (PostgreSQL's `slot.c` and `logical.c`): what its consumer has
//! confirmed (`confirmed_flush_lsn`) and where decoding must restart to deliver everything
//! after that again (`restart_lsn`). The slot holds WAL back to `restart_lsn` whether or not a
//! consumer is connected, which is why an abandoned slot fills a primary's disk;
//! `max_slot_wal_keep_size` invalidates it instead (`wal_status = lost`).

use crate::logical::decode::DecodePoint;
use crate::lsn::Lsn;

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
