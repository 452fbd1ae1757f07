//! Logical decoding: WAL read record by record and turned into committed transactions of row
//! changes, in commit order (PostgreSQL's `decode.c` and `reorderbuffer.c`). Changes are
//! held per transaction until its commit record, then emitted whole; an abort discards them.
//! A transaction whose commit lies at or before the point the consumer already confirmed is
//! decoded (to rebuild what was running) but not emitted (`SnapBuildXactNeedsSkip`), which is
//! what makes a restart from the slot's `restart_lsn` deliver each transaction exactly once.
//!
//! Not modelled: spilling or streaming transactions larger than `logical_decoding_work_mem`
//! (they are held whole here), catalog snapshots (the tables never change shape), two-phase
//! commit, and the `xl_running_xacts` records PostgreSQL restarts snapshot building from (the
//! slot keeps the first record of the oldest transaction still running instead, which is
//! where such a record would let decoding restart).

use std::collections::{BTreeMap, VecDeque};

use crate::lsn::Lsn;
use crate::wal::log::WalLog;
use crate::wal::record::{DecodeError, RecordBody, RowChange};

/// Which tables a publication covers (`CREATE PUBLICATION … FOR TABLE …` or `FOR ALL TABLES`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishedTables {
    All,
    Tables(Vec<u32>),
}

impl PublishedTables {
    /// Catalog tables (the replication origins) are never published.
    pub fn publishes(&self, table: u32) -> bool {
        if crate::logical::trigger::is_catalog(table) {
            return false;
        }
        match self {
            PublishedTables::All => true,
            PublishedTables::Tables(tables) => tables.contains(&table),
        }
    }
}

/// A publication's row filter (`WHERE (…)`), on the row's key: `key <op> value`, or
/// `key % modulus = remainder`. The key never changes in an update here, so an update is
/// published exactly when its row passes (PostgreSQL turns an update that moves a row in or
/// out of the filter into an insert or a delete).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowFilter {
    Less(u64),
    LessEq(u64),
    Greater(u64),
    GreaterEq(u64),
    Equal(u64),
    NotEqual(u64),
    Modulo { modulus: u64, remainder: u64 },
}

impl RowFilter {
    pub fn matches(self, key: u64) -> bool {
        match self {
            RowFilter::Less(v) => key < v,
            RowFilter::LessEq(v) => key <= v,
            RowFilter::Greater(v) => key > v,
            RowFilter::GreaterEq(v) => key >= v,
            RowFilter::Equal(v) => key == v,
            RowFilter::NotEqual(v) => key != v,
            RowFilter::Modulo { modulus, remainder } => key % modulus.max(1) == remainder,
        }
    }
}

/// The row filters of the tables some publications cover: a table listed by a publication
/// without a filter is published whole; otherwise a row passes any of its filters
/// (PostgreSQL ORs the filters of the publications that list a table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowFilters {
    /// (table, its filters), only for tables every covering publication filters.
    pub by_table: Vec<(u32, Vec<RowFilter>)>,
}

impl RowFilters {
    /// The filters of the publications named `chosen` among `publications`, as a walsender
    /// serving them applies them (and the checker expects them): per table listed, the OR of
    /// the covering publications' filters, or none if one covers it unfiltered.
    pub fn of(publications: &[crate::config::Publication], chosen: &[String]) -> RowFilters {
        let chosen: Vec<&crate::config::Publication> =
            publications.iter().filter(|p| chosen.contains(&p.name)).collect();
        let mut by_table: Vec<(u32, Vec<RowFilter>)> = Vec::new();
        let tables = chosen.iter().flat_map(|p| match &p.tables {
            PublishedTables::Tables(t) => t.clone(),
            PublishedTables::All => Vec::new(),
        });
        for table in tables {
            let covering = chosen.iter().filter(|p| p.tables.publishes(table));
            let filters: Option<Vec<_>> = covering.map(|p| p.row_filter).collect();
            if let (Some(filters), false) = (filters, by_table.iter().any(|(t, _)| *t == table)) {
                by_table.push((table, filters));
            }
        }
        RowFilters { by_table }
    }

    pub fn passes(&self, table: u32, key: u64) -> bool {
        match self.by_table.iter().find(|(t, _)| *t == table) {
            None => true,
            Some((_, filters)) => filters.iter().any(|f| f.matches(key)),
        }
    }
}

/// One committed transaction as the output plugin sends it (pgoutput's BEGIN, its changes to
/// published tables in WAL order, COMMIT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedTxn {
    pub xid: u32,
    /// Start of the transaction's first record.
    pub first_lsn: Lsn,
    /// Start of its commit record (pgoutput's commit LSN).
    pub commit_lsn: Lsn,
    /// End of its commit record (`end_lsn`: what the subscriber confirms once applied).
    pub end_lsn: Lsn,
    /// The publisher's clock at commit (what last-writer-wins compares).
    pub commit_timestamp_ns: u64,
    pub changes: Vec<RowChange>,
}

#[derive(Debug)]
struct Running {
    first_lsn: Lsn,
    changes: Vec<RowChange>,
}

/// The transactions whose commit has not been decoded yet, by xid.
#[derive(Debug, Default)]
pub struct ReorderBuffer {
    running: BTreeMap<u32, Running>,
}

impl ReorderBuffer {
    /// Takes the record `[start, end)` of transaction `xid`; returns the transaction it
    /// commits, if it commits one that changed a published table after `skip_through`.
    pub fn record(
        &mut self,
        xid: u32,
        start: Lsn,
        end: Lsn,
        body: &RecordBody,
        skip_through: Lsn,
        tables: &PublishedTables,
    ) -> Option<DecodedTxn> {
        match body {
            RecordBody::Row(change) if xid != 0 => {
                let running = self.running.entry(xid).or_insert(Running { first_lsn: start, changes: Vec::new() });
                if tables.publishes(change.row().0) {
                    running.changes.push(*change);
                }
                None
            }
            RecordBody::Commit { timestamp_ns, .. } => {
                let running = self.running.remove(&xid)?;
                // pgoutput sends nothing for a transaction without published changes (PG 15+).
                (end > skip_through && !running.changes.is_empty()).then_some(DecodedTxn {
                    xid,
                    first_lsn: running.first_lsn,
                    commit_lsn: start,
                    end_lsn: end,
                    commit_timestamp_ns: *timestamp_ns,
                    changes: running.changes,
                })
            }
            RecordBody::Abort { .. } => {
                self.running.remove(&xid);
                None
            }
            // No transaction here spans a checkpoint (each writes its records and commits in
            // one step), so one still open at a checkpoint record was cut off by a crash and
            // will never commit: forget it, as `ReorderBufferAbortOld` does at the running-xacts
            // record every checkpoint logs.
            RecordBody::Checkpoint { .. } => {
                self.running.clear();
                None
            }
            _ => None,
        }
    }

    /// The first record of the oldest transaction still running: decoding that restarts
    /// later than this could not rebuild it.
    pub fn oldest_running_start(&self) -> Option<Lsn> {
        self.running.values().map(|r| r.first_lsn).min()
    }

    /// Changes held for running transactions (what `logical_decoding_work_mem` would bound).
    pub fn held_changes(&self) -> usize {
        self.running.values().map(|r| r.changes.len()).sum()
    }
}

/// A position in the WAL being decoded: the next record's start and its predecessor's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodePoint {
    pub at: Lsn,
    pub prev: Lsn,
}

/// A decoding session, as a logical walsender runs one for its slot: from a restart point, up
/// to whatever WAL is flushed, emitting transactions that commit after `skip_through`.
#[derive(Debug)]
pub struct Decoder {
    pub point: DecodePoint,
    pub skip_through: Lsn,
    pub tables: PublishedTables,
    /// `origin = none`: transactions applied from elsewhere are left out.
    pub origin_none: bool,
    /// The publications' row filters: changes to rows they leave out are not sent.
    pub row_filters: RowFilters,
    buffer: ReorderBuffer,
    /// Where each running transaction's first record sits, with its predecessor, so that the
    /// slot can restart there.
    restart_points: BTreeMap<Lsn, Lsn>,
    /// `(valid once confirmed through, restart point)`, oldest first: at each commit decoded,
    /// where decoding would have to restart to rebuild what was running then. The slot adopts
    /// one once its consumer confirms past it (`candidate_restart_valid` in `logical.c`).
    candidates: VecDeque<(Lsn, DecodePoint)>,
}

/// Candidates kept at most: a consumer that never confirms makes the decoder forget the newest
/// ones, which only keeps the slot's `restart_lsn` further back (more WAL held), never wrong.
const MAX_CANDIDATES: usize = 4096;

impl Decoder {
    pub fn new(restart: DecodePoint, skip_through: Lsn, tables: PublishedTables) -> Decoder {
        Decoder {
            point: restart,
            skip_through,
            tables,
            origin_none: false,
            row_filters: RowFilters::default(),
            buffer: ReorderBuffer::default(),
            restart_points: BTreeMap::new(),
            candidates: VecDeque::new(),
        }
    }

    /// Decodes records up to `limit` (the flushed end of WAL), at most `max_records` of them;
    /// returns the transactions committed meanwhile, in commit order. Stops early at a record
    /// not yet whole; an invalid record or recycled WAL is an error.
    pub fn decode(&mut self, wal: &WalLog, limit: Lsn, max_records: usize) -> Result<Vec<DecodedTxn>, DecodeError> {
        let mut out = Vec::new();
        for _ in 0..max_records {
            if self.point.at >= limit {
                break;
            }
            let (record, start, end) = match wal.decode_at(self.point.at, self.point.prev, limit) {
                Ok(decoded) => decoded,
                Err(DecodeError::Torn) => break,
                Err(e) => return Err(e),
            };
            let opens = matches!(record.body, RecordBody::Row(_)) && record.xid != 0;
            if opens && !self.buffer.running.contains_key(&record.xid) {
                self.restart_points.insert(start, self.point.prev);
            }
            let first_before = self.buffer.running.get(&record.xid).map(|r| r.first_lsn);
            // Under `origin = none`, a transaction a subscription applied here is not sent
            // (`pgoutput_origin_filter`).
            let applied_here = matches!(record.body, RecordBody::Commit { origin: Some(_), .. });
            let txn = self.buffer.record(record.xid, start, end, &record.body, self.skip_through, &self.tables);
            if let Some(mut txn) = txn.filter(|_| !(self.origin_none && applied_here)) {
                if !self.row_filters.by_table.is_empty() {
                    txn.changes.retain(|c| self.row_filters.passes(c.row().0, c.row().1));
                }
                // A transaction left with no change is not sent (PG 15+).
                if !txn.changes.is_empty() {
                    out.push(txn);
                }
            }
            if let (Some(first), false) = (first_before, self.buffer.running.contains_key(&record.xid)) {
                self.restart_points.remove(&first);
            }
            if self.buffer.running.is_empty() {
                self.restart_points.clear();
            }
            self.point = DecodePoint { at: end, prev: start };
            if matches!(record.body, RecordBody::Commit { .. } | RecordBody::Abort { .. }) {
                let restart = self.restart_point();
                if self.candidates.back().is_none_or(|(_, last)| *last != restart)
                    && self.candidates.len() < MAX_CANDIDATES
                {
                    self.candidates.push_back((end, restart));
                }
            }
        }
        Ok(out)
    }

    /// Where decoding would restart now: the first record of the oldest running transaction,
    /// or the decoder's position.
    fn restart_point(&self) -> DecodePoint {
        match self.restart_points.iter().next() {
            Some((&at, &prev)) => DecodePoint { at, prev },
            None => self.point,
        }
    }

    /// The consumer confirmed everything through `lsn`: the newest restart point that
    /// confirmation makes safe, if it moved.
    pub fn confirmed(&mut self, lsn: Lsn) -> Option<DecodePoint> {
        let mut adopted = None;
        while let Some(&(valid_at, restart)) = self.candidates.front() {
            if valid_at > lsn {
                break;
            }
            adopted = Some(restart);
            self.candidates.pop_front();
        }
        adopted
    }

    pub fn held_changes(&self) -> usize {
        self.buffer.held_changes()
    }
}

#[cfg(test)]
mod row_filter_tests {
    use super::{RowFilter, RowFilters};

    #[test]
    fn filters_match_keys_and_combine_per_table_with_or() {
        assert!(RowFilter::Less(5).matches(4) && !RowFilter::Less(5).matches(5));
        assert!(RowFilter::Modulo { modulus: 4, remainder: 1 }.matches(9));
        assert!(!RowFilter::Modulo { modulus: 4, remainder: 1 }.matches(8));
        let filters = RowFilters { by_table: vec![(2, vec![RowFilter::Less(10), RowFilter::Equal(50)])] };
        assert!(filters.passes(2, 3) && filters.passes(2, 50) && !filters.passes(2, 20));
        assert!(filters.passes(1, 20), "a table without filters is published whole");
    }
}
