//! Trigger-based change capture, as SymmetricDS does it: no decoding, no slot. A trigger on
//! each captured table inserts, in the writing transaction, a row describing the change into a
//! change table (`sym_data`), numbered from a sequence (`data_id`). A router on the target side
//! polls that table every `poll_interval` for rows after the last it loaded, at most
//! `batch_rows` at a time, loads them in one local transaction together with its progress, and
//! reports back once that is flushed; the source then purges what was loaded (SymmetricDS's
//! purge job, done here at once).
//!
//! The change row's columns are held as rows of three catalog tables keyed by `data_id`:
//! [`CHANGE_TABLE`] (`row_data`: the new value, with the bytes of the other columns),
//! [`CHANGE_KEYS_TABLE`] (`pk_data` and `event_type`: which row, how changed) and
//! [`CHANGE_TIMES_TABLE`] (`create_time`). The sequence's last value is row 0 of
//! [`CHANGE_KEYS_TABLE`]. Every byte is WAL-logged and replicated to standbys like any table.
//!
//! Not modelled: SymmetricDS's data gaps (a `data_id` taken by a transaction that commits after
//! a later one; here a transaction logs and commits in one step, so ids commit in order), and
//! the separate routing and push jobs (one `poll_interval` stands for both).

use crate::io::{Instant, NodeId, Observation, Output, TimerId};
use crate::logical::apply::{origin_key, ApplyState, ORIGIN_TABLE};
use crate::lsn::Lsn;
use crate::message::Message;
use crate::node::{Node, Role};
use crate::wal::record::{CommitOrigin, RowChange};

/// `sym_data.row_data`, keyed by `data_id`.
pub const CHANGE_TABLE: u32 = u32::MAX - 2;
/// `sym_data.pk_data` and `event_type`, keyed by `data_id`; row 0 holds the sequence.
pub const CHANGE_KEYS_TABLE: u32 = u32::MAX - 3;
/// `sym_data.create_time`, keyed by `data_id`.
pub const CHANGE_TIMES_TABLE: u32 = u32::MAX - 4;
const SEQUENCE_KEY: u64 = 0;

/// Whether `table` is one of the engine's catalog tables (replication origins, skips, change
/// capture).
pub fn is_catalog(table: u32) -> bool {
    table >= crate::logical::apply::SKIP_TABLE
}

/// `sym_data`'s other columns (table name, channel, trigger history, transaction id, source
/// node, external data): bytes a captured change costs beyond its new value.
pub const ROW_OVERHEAD_BYTES: u32 = 120;

/// How a trigger subscription polls: `(poll_interval_ns, batch_rows)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polling {
    pub poll_interval_ns: u64,
    pub batch_rows: u32,
}

/// One captured change, as the router reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapturedChange {
    pub data_id: u64,
    pub change: RowChange,
    /// The source's clock when the trigger fired (the transaction's commit, here).
    pub created_ns: u64,
}

/// `event_type` (I, U, D), the table and the key in one word: the kind in the top 2 bits, the
/// table in the next 14, the key in the low 48 (the workload's keys are far below).
fn pack(change: &RowChange) -> u64 {
    let (table, key) = change.row();
    let kind = match change {
        RowChange::Insert { .. } => 0,
        RowChange::Update { .. } => 1,
        RowChange::Delete { .. } => 2,
    };
    assert!(table < (1 << 14) && key < (1 << 48), "captured row ({table}, {key}) out of range");
    (kind << 62) | (u64::from(table) << 48) | key
}

fn unpack(packed: u64, write_id: u64, row_len: u32) -> RowChange {
    let table = ((packed >> 48) & ((1 << 14) - 1)) as u32;
    let key = packed & ((1 << 48) - 1);
    let value_len = row_len.saturating_sub(ROW_OVERHEAD_BYTES);
    match packed >> 62 {
        0 => RowChange::Insert { table, key, write_id, value_len },
        1 => RowChange::Update { table, key, write_id, value_len },
        _ => RowChange::Delete { table, key },
    }
}

impl Node {
    /// The capture triggers of a transaction's changes: their change rows and the sequence's
    /// new value, appended to the same transaction.
    pub(crate) fn capture_changes(&self, now: Instant, changes: &mut Vec<RowChange>) {
        let Some(tables) = &self.cfg.trigger_capture else { return };
        let captured: Vec<RowChange> = changes.iter().filter(|c| tables.publishes(c.row().0)).copied().collect();
        if captured.is_empty() {
            return;
        }
        let mut data_id = self.store.get(CHANGE_KEYS_TABLE, SEQUENCE_KEY).map_or(0, |v| v.write_id);
        for change in captured {
            data_id += 1;
            let (write_id, len) = change.value().map_or((0, 0), |v| (v.write_id, v.len));
            let row_len = len + ROW_OVERHEAD_BYTES;
            changes.push(RowChange::Insert { table: CHANGE_TABLE, key: data_id, write_id, value_len: row_len });
            changes.push(RowChange::Insert {
                table: CHANGE_KEYS_TABLE,
                key: data_id,
                write_id: pack(&change),
                value_len: 8,
            });
            changes.push(RowChange::Insert { table: CHANGE_TIMES_TABLE, key: data_id, write_id: now.0, value_len: 8 });
        }
        changes.push(RowChange::Update {
            table: CHANGE_KEYS_TABLE,
            key: SEQUENCE_KEY,
            write_id: data_id,
            value_len: 8,
        });
    }

    /// The router's query: `SELECT … FROM sym_data WHERE data_id > after ORDER BY data_id
    /// LIMIT max_rows`.
    pub(crate) fn on_poll_changes(&mut self, peer: NodeId, after: u64, max_rows: u32, out: &mut Vec<Output>) {
        if self.role != Role::Primary {
            let text = "cannot read the change table: the node is in recovery".to_string();
            return out.push(Output::Send { to: peer, msg: Message::Error { text } });
        }
        let mut rows = Vec::new();
        for (data_id, value) in self.store.table(CHANGE_TABLE).skip_while(|(id, _)| *id <= after) {
            if rows.len() == max_rows as usize {
                break;
            }
            let keys = self.store.get(CHANGE_KEYS_TABLE, data_id).map_or(0, |v| v.write_id);
            let created_ns = self.store.get(CHANGE_TIMES_TABLE, data_id).map_or(0, |v| v.write_id);
            rows.push(CapturedChange { data_id, change: unpack(keys, value.write_id, value.len), created_ns });
        }
        let more = rows.len() == max_rows as usize;
        out.push(Output::Send { to: peer, msg: Message::ChangeBatch { rows, more } });
    }

    /// The target loaded and flushed everything through `through`: purge it.
    pub(crate) fn on_changes_loaded(&mut self, now: Instant, through: u64, out: &mut Vec<Output>) {
        if self.role != Role::Primary {
            return;
        }
        let ids: Vec<u64> = self.store.table(CHANGE_TABLE).map(|(id, _)| id).take_while(|id| *id <= through).collect();
        if ids.is_empty() {
            return;
        }
        let tables = [CHANGE_TABLE, CHANGE_KEYS_TABLE, CHANGE_TIMES_TABLE];
        let deletes: Vec<RowChange> =
            ids.iter().flat_map(|&key| tables.map(|table| RowChange::Delete { table, key })).collect();
        self.apply_logical_transaction(now, &deletes, None, out);
    }

    /// The router asks for the next batch.
    pub(crate) fn poll_changes(&mut self, publisher: NodeId, out: &mut Vec<Output>) {
        let Some(worker) = self.apply_workers.get(&publisher) else { return };
        let Some(polling) = worker.subscription.trigger else { return };
        if worker.state != ApplyState::Streaming {
            return;
        }
        let msg = Message::PollChanges { after: worker.applied_remote_lsn.0, max_rows: polling.batch_rows };
        out.push(Output::Send { to: publisher, msg });
    }

    /// A batch from the source: loaded in one local transaction with the router's progress
    /// (SymmetricDS's default conflict handling, `fallback`: an insert of a row that exists
    /// updates it, an update of a missing row inserts it); then the next poll, at once if the
    /// batch was full.
    pub(crate) fn on_change_batch(
        &mut self,
        now: Instant,
        publisher: NodeId,
        rows: Vec<CapturedChange>,
        more: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(worker) = self.apply_workers.get(&publisher) else { return };
        let Some(polling) = worker.subscription.trigger else { return };
        if worker.state != ApplyState::Streaming {
            return;
        }
        let applied = worker.applied_remote_lsn.0;
        let rows: Vec<CapturedChange> = rows.into_iter().filter(|r| r.data_id > applied).collect();
        if let Some(last) = rows.last().map(|r| r.data_id) {
            let name = worker.subscription.name.clone();
            let mut changes: Vec<RowChange> = rows
                .iter()
                .filter(
                    |r| !matches!(r.change, RowChange::Delete { table, key } if self.store.get(table, key).is_none()),
                )
                .map(|r| r.change)
                .collect();
            changes.push(RowChange::Update {
                table: ORIGIN_TABLE,
                key: origin_key(&name),
                write_id: last,
                value_len: 8,
            });
            let origin = CommitOrigin { node: publisher, lsn: Lsn(last), timestamp_ns: rows[0].created_ns };
            let commit_end = self.apply_logical_transaction(now, &changes, Some(origin), out);
            let worker = self.apply_workers.get_mut(&publisher).expect("checked above");
            worker.applied_remote_lsn = Lsn(last);
            worker.note_applied(commit_end, Lsn(last));
            // One observation per source transaction (its rows share a create time).
            let mut previous = None;
            for row in rows.iter().filter(|r| previous.replace(r.created_ns) != Some(r.created_ns)) {
                out.push(Output::Observe(Observation::LogicalApplied {
                    publisher,
                    remote_end_lsn: Lsn(row.data_id),
                    local_end_lsn: commit_end,
                    commit_timestamp_ns: row.created_ns,
                    applied_at_ns: now.0,
                }));
            }
            self.report_apply_progress(now, publisher, out);
        }
        if more {
            return self.poll_changes(publisher, out);
        }
        out.push(Output::SetTimer {
            id: TimerId::TriggerPoll(publisher),
            at: Instant(now.0 + polling.poll_interval_ns),
        });
    }
}
