//! The startup process: applies WAL in LSN order into the table store (standby replay and
//! crash-recovery redo share `apply_record`). A transaction's changes become visible together,
//! when its COMMIT record is applied; an ABORT, or WAL ending first, discards them.

use crate::io::{ComputeTask, Instant, Observation, Output, TimerId};
use crate::lsn::Lsn;
use crate::node::{Node, Role};
use crate::query::Resolution;
use crate::wal::record::{DecodeError, Record, RecordBody, RowChange};

/// Records replayed per unit of CPU work handed to the driver.
pub const REPLAY_BATCH_RECORDS: usize = 64;

#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// End of the last replayed record (`pg_last_wal_replay_lsn`).
    pub lsn: Lsn,
    /// Start of the last replayed record (the expected `prev` of the next).
    pub prev: Lsn,
    /// Primary-clock time of the last replayed COMMIT/ABORT (`pg_last_xact_replay_timestamp`).
    pub last_xact_timestamp_ns: Option<u64>,
    /// Row changes of transactions whose COMMIT has not been replayed yet.
    pending: PendingChanges,
    /// The highest xid replayed: a node that starts writing (end of crash recovery,
    /// promotion) assigns xids above it, as PostgreSQL's redo advances nextXid past every xid
    /// it replays (`AdvanceNextFullTransactionIdPastXid`). Reusing one would let a standby
    /// still holding a crashed transaction's rows apply them with a new transaction's commit.
    pub max_xid: u32,
    /// Records decoded and handed to the CPU, applied when it is done.
    batch: Vec<(Record, Lsn, Lsn)>,
    /// `recovery_min_apply_delay` holds replay at a commit until this time (our clock): the
    /// `RecoveryApplyDelay` wait event.
    pub apply_delay_until_ns: Option<u64>,
    batch_in_flight: bool,
    /// End of WAL found by crash recovery at boot.
    pub recovered_end: Lsn,
    /// Where the walreceiver's latest flushed chunk starts (`latestChunkStart`).
    pub(crate) latest_chunk_start: Lsn,
    /// `XLogReceiptTime`: when replay read a record of the latest chunk (our clock, ns); a
    /// cleanup's conflicts are resolved by this time plus `max_standby_streaming_delay`.
    pub(crate) receipt_time_ns: u64,
    /// Replay stopped before a cleanup record that conflicts with running queries.
    pub(crate) conflict: Option<crate::query::ConflictWait>,
}

/// What applying one record asks of the node.
pub(crate) enum Applied {
    Nothing,
    Commit { apply_feedback: bool },
    Checkpoint { redo: Lsn, redo_prev: Lsn, data_file_id: u64 },
}

impl Replay {
    /// Replay continues at `lsn` (after the record at `prev`). Transactions whose commit has
    /// not been replayed yet are kept: their commit may still follow.
    pub fn reset(&mut self, lsn: Lsn, prev: Lsn) {
        let pending = std::mem::take(&mut self.pending);
        let (latest_chunk_start, receipt_time_ns) = (self.latest_chunk_start, self.receipt_time_ns);
        *self = Replay {
            lsn,
            prev,
            pending,
            max_xid: self.max_xid,
            latest_chunk_start,
            receipt_time_ns,
            ..Replay::default()
        };
    }

    /// Applies one record to `store`.
    pub(crate) fn apply_record(&mut self, store: &mut crate::storage::Store, record: &Record) -> Applied {
        self.max_xid = self.max_xid.max(record.xid);
        match record.body {
            RecordBody::Row(change) => {
                self.pending.push(record.xid, change);
                Applied::Nothing
            }
            RecordBody::Commit { timestamp_ns, apply_feedback, origin } => {
                let origin = crate::storage::RowOrigin::of_commit(timestamp_ns, origin);
                self.pending.finish(record.xid, |change| store.apply_committed(change, origin));
                self.last_xact_timestamp_ns = Some(timestamp_ns);
                Applied::Commit { apply_feedback }
            }
            RecordBody::Abort { timestamp_ns } => {
                self.pending.finish(record.xid, |_| {});
                self.last_xact_timestamp_ns = Some(timestamp_ns);
                Applied::Nothing
            }
            RecordBody::Checkpoint { redo, redo_prev, data_file_id, .. } => {
                Applied::Checkpoint { redo, redo_prev, data_file_id }
            }
            // xlog_redo only checks the timelines it names against the history followed.
            RecordBody::EndOfRecovery { .. } | RecordBody::FullPageImage { .. } => Applied::Nothing,
            // Dead versions are not kept in the store; a standby's conflicts with the cleanup
            // were resolved before it was applied (`query.rs`).
            RecordBody::Prune { .. } | RecordBody::Switch => Applied::Nothing,
        }
    }

    /// Forgets transactions that never committed (end of recovery).
    pub(crate) fn discard_pending(&mut self) {
        self.pending.clear();
    }
}

/// Row changes per open transaction. Few transactions are open at once, so a list searched
/// by xid; a finished transaction's list is kept for reuse, so replay allocates nothing per
/// transaction once warm.
#[derive(Clone, Debug, Default)]
struct PendingChanges {
    open: Vec<(u32, Vec<RowChange>)>,
    spare: Vec<Vec<RowChange>>,
}

impl PendingChanges {
    fn push(&mut self, xid: u32, change: RowChange) {
        match self.open.iter_mut().find(|(open_xid, _)| *open_xid == xid) {
            Some((_, changes)) => changes.push(change),
            None => {
                let mut changes = self.spare.pop().unwrap_or_default();
                changes.push(change);
                self.open.push((xid, changes));
            }
        }
    }

    /// Hands `xid`'s changes to `apply` in the order they were logged, and forgets them.
    fn finish(&mut self, xid: u32, mut apply: impl FnMut(&RowChange)) {
        let Some(i) = self.open.iter().position(|(open_xid, _)| *open_xid == xid) else { return };
        let (_, mut changes) = self.open.swap_remove(i);
        changes.iter().for_each(&mut apply);
        changes.clear();
        self.spare.push(changes);
    }

    fn clear(&mut self) {
        while let Some((_, mut changes)) = self.open.pop() {
            changes.clear();
            self.spare.push(changes);
        }
    }
}

impl Node {
    /// When `recovery_min_apply_delay` lets replay go on (this node's clock), while it holds
    /// replay at a commit.
    pub fn apply_delay_until_ns(&self) -> Option<u64> {
        self.replay.apply_delay_until_ns
    }

    /// Decodes the next batch of flushed WAL and hands its replay cost to the CPU.
    pub(crate) fn kick_replay(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role != Role::Standby || self.replay.batch_in_flight || self.replay_held_by_conflict(now) {
            return;
        }
        let limit = self.flusher.flushed;
        let delay_ns = self.cfg.recovery_min_apply_delay_ns;
        self.replay.apply_delay_until_ns = None;
        let (mut at, mut prev) = (self.replay.lsn, self.replay.prev);
        let mut batch = std::mem::take(&mut self.replay.batch);
        batch.clear();
        while batch.len() < REPLAY_BATCH_RECORDS && at < limit && !self.restorer.target_reached {
            match self.wal.decode_at(at, prev, limit) {
                Ok((record, start, end)) => {
                    if self.recovery_stops_before(&record) {
                        self.restorer.target_reached = true;
                        break;
                    }
                    if start >= self.replay.latest_chunk_start {
                        self.replay.receipt_time_ns = now.0;
                    }
                    if let RecordBody::Commit { timestamp_ns, .. } = record.body {
                        // recovery_min_apply_delay: commits wait until our clock passes
                        // their (primary-clock) timestamp plus the delay.
                        // Promotion ends the wait.
                        if delay_ns > 0 && !self.promote_requested && now.0 < timestamp_ns + delay_ns {
                            self.replay.apply_delay_until_ns = Some(timestamp_ns + delay_ns);
                            out.push(Output::SetTimer {
                                id: TimerId::ApplyDelay,
                                at: Instant(timestamp_ns + delay_ns),
                            });
                            break;
                        }
                    }
                    batch.push((record, start, end));
                    prev = start;
                    at = end;
                    self.restorer.target_reached = self.recovery_stops_after(start);
                }
                // Flushed WAL may end mid-record: wait for the rest.
                Err(DecodeError::Torn) => break,
                Err(DecodeError::Invalid(why)) => {
                    // Only a timeline number created twice gets here (spec I1.2, I1.4): an
                    // upstream on "the same" timeline sent WAL that continues another history.
                    // PostgreSQL's startup process logs it and asks for the WAL again, and
                    // finds the same bytes each time: replay stays stuck here (xlogrecovery.c,
                    // `ReadRecord` in standby mode).
                    let reason = format!("invalid record at {at} in received WAL: {why}");
                    self.stop_walreceiver(now, reason, out);
                    break;
                }
            }
        }
        if !batch.is_empty() {
            out.push(Output::Compute(ComputeTask::Replay { records: batch.len() as u64 }));
            self.replay.batch_in_flight = true;
        }
        self.replay.batch = batch;
        self.stop_at_recovery_target(now, out);
    }

    pub(crate) fn finish_replay_batch(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.replay.batch_in_flight = false;
        if self.role != Role::Standby {
            return;
        }
        let batch = std::mem::take(&mut self.replay.batch);
        let mut force_reply = false;
        for (record, start, end) in &batch {
            if let RecordBody::Prune { conflict_horizon_xid, .. } = record.body {
                if let Resolution::Wait = self.resolve_snapshot_conflict(now, conflict_horizon_xid, out) {
                    break; // replay stops before it; the rest of the batch is read again
                }
                out.push(Output::Observe(Observation::CleanupReplayed { horizon_xid: conflict_horizon_xid }));
            }
            match self.replay.apply_record(&mut self.store, record) {
                Applied::Nothing => {}
                Applied::Commit { apply_feedback } => force_reply |= apply_feedback,
                Applied::Checkpoint { redo, redo_prev, data_file_id } => {
                    self.request_restartpoint(now, redo, redo_prev, data_file_id, *start, out)
                }
            }
            self.replay.prev = *start;
            self.replay.lsn = *end;
            self.wal.note_record_start(*start);
        }
        self.replay.batch = batch;
        // The startup process reports apply at once after a remote_apply commit, and whenever
        // it catches up with flushed WAL (spec §2.4).
        if force_reply || self.replay.lsn == self.flusher.flushed {
            self.send_status(now, false, out);
        }
        self.release_waiting_reads(now, out);
        self.kick_replay(now, out);
        self.maybe_finish_promotion(now, out);
    }

    pub(crate) fn replay_busy(&self) -> bool {
        self.replay.batch_in_flight
    }

    /// A complete record is flushed beyond what has been replayed.
    pub(crate) fn replay_has_more(&self) -> bool {
        let limit = self.flusher.flushed;
        !self.restorer.target_reached
            && self.replay.lsn < limit
            && self.wal.decode_at(self.replay.lsn, self.replay.prev, limit).is_ok()
    }
}
