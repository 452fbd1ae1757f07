//! Checkpoints (primary) and restartpoints (standby), `pg_control`, and WAL recycling
//! (PostgreSQL `CreateCheckPoint`, `CreateRestartPoint`, `KeepLogSeg`, `RemoveOldXlogFiles`).
//!
//! A checkpoint writes the whole table image (where PostgreSQL writes the pages dirtied since
//! the last one). A spread checkpoint (every one but the end of crash recovery's) paces that
//! work as PostgreSQL's `BufferSync` does (`CheckpointWriteDelay`, `IsCheckpointOnSchedule` in
//! checkpointer.c): every 100 ms it writes what its schedule says is due, the larger of the
//! share of `checkpoint_completion_target` x `checkpoint_timeout` elapsed and of the WAL
//! budget used, then fsyncs; so commits do not queue behind one image-sized write. The WAL
//! bounds are PostgreSQL's.

use crate::crc32c;
use crate::io::{FileId, Instant, Observation, Output, TimerId};
use crate::lsn::Lsn;
use crate::node::{IoPurpose, Node, Role};
use crate::storage::data_file_cost_bytes;
use crate::wal::record::RecordBody;

/// `pg_control`: where redo starts after a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlFile {
    pub checkpoint_lsn: Lsn,
    pub redo: Lsn,
    pub redo_prev: Lsn,
    pub timeline: u32,
    pub data_file_id: u64,
}

impl ControlFile {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(40);
        out.extend_from_slice(&self.checkpoint_lsn.0.to_le_bytes());
        out.extend_from_slice(&self.redo.0.to_le_bytes());
        out.extend_from_slice(&self.redo_prev.0.to_le_bytes());
        out.extend_from_slice(&self.timeline.to_le_bytes());
        out.extend_from_slice(&self.data_file_id.to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<ControlFile> {
        if bytes.len() != 40 {
            return None;
        }
        let (body, crc) = bytes.split_at(36);
        if crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        Some(ControlFile {
            checkpoint_lsn: Lsn(u64_at(0)),
            redo: Lsn(u64_at(8)),
            redo_prev: Lsn(u64_at(16)),
            timeline: u32::from_le_bytes(body[24..28].try_into().ok()?),
            data_file_id: u64_at(28),
        })
    }
}

/// A spread checkpoint's pause between paced writes (PostgreSQL sleeps 100 ms in
/// `CheckpointWriteDelay` while on schedule).
pub const CHECKPOINT_WRITE_DELAY_NS: u64 = 100_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Idle,
    /// Spread: the image is in the page cache; its rows' device work is written back a piece at
    /// a time, `written_bytes` of `total_bytes` so far.
    Writeback { written_bytes: u64, total_bytes: u64 },
    /// Table image being written and fsynced (`pending` of those left).
    Data { pending: u32 },
    /// Primary: the checkpoint record must be flushed before pg_control points at it.
    RecordFlush { record_end: Lsn },
    /// pg_control being written and fsynced.
    Control { pending: u32 },
}

#[derive(Clone, Debug, Default)]
pub struct Checkpointer {
    phase: Phase,
    /// The checkpoint in progress (its record LSN is filled in when known).
    current: Option<ControlFile>,
    /// The last completed one.
    pub last: Option<ControlFile>,
    pub next_data_file_id: u64,
    last_started: Instant,
    /// Another checkpoint was asked for while one ran.
    requested: bool,
    /// The next checkpoint is immediate (end of crash recovery), not spread; set while a
    /// spread one runs, it finishes that one at once (`ImmediateCheckpointRequested`).
    pub(crate) immediate: bool,
    pub completed: u64,
    /// `Command::Checkpoint` waits for the next checkpoint to complete.
    admin_waiting: bool,
    /// Each logical slot's `restart_lsn` as this checkpoint saved it (`write_control`). The
    /// disk completes in order, so that save is durable when the checkpoint ends and removes
    /// WAL: a slot holds WAL from this point, never from a newer position a crash would forget.
    /// (PostgreSQL gets the same by saving a logical slot whose `restart_lsn` moved before the
    /// new value counts, `LogicalConfirmReceivedLocation`.)
    slot_restarts_saved: std::collections::BTreeMap<String, Lsn>,
}

impl Node {
    pub(crate) fn on_checkpoint_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role == Role::Primary {
            self.request_checkpoint(now, out);
        }
        let at = Instant(now.0 + self.cfg.checkpoint_timeout_ns);
        out.push(Output::SetTimer { id: TimerId::Checkpoint, at });
    }

    /// `Command::Checkpoint`: an immediate checkpoint, reported when it completes. One that
    /// is skipped (nothing important happened since the last) is done at once; on a standby
    /// the last restartpoint stands for it.
    pub(crate) fn admin_checkpoint(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role == Role::Primary {
            self.checkpointer.admin_waiting = true;
            self.checkpointer.immediate = true;
            self.request_checkpoint(now, out);
            if self.checkpointer.phase != Phase::Idle || self.checkpointer.requested {
                return;
            }
            self.checkpointer.admin_waiting = false;
            self.checkpointer.immediate = false;
        }
        out.push(Output::Observe(Observation::CheckpointRequestDone));
    }

    /// `XLogCheckpointNeeded`: a checkpoint once `CheckPointSegments` of WAL were written
    /// since the last redo point.
    pub(crate) fn checkpoint_if_wal_volume(&mut self, now: Instant, out: &mut Vec<Output>) {
        let segment = self.cfg.wal_segment_size_bytes;
        // PostgreSQL moves RedoRecPtr when a checkpoint starts, and asks for the next one when a
        // *finished* segment reaches CheckPointSegments past it (`XLogCheckpointNeeded` with
        // the segment just filled): finished >= redo_seg + CheckPointSegments - 1.
        let redo = self.checkpointer.current.or(self.checkpointer.last).map(|c| c.redo);
        let redo_seg = redo.map_or(0, |r| r.segment(segment));
        if self.wal.end().segment(segment) >= redo_seg + self.cfg.checkpoint_segments() {
            self.request_checkpoint(now, out);
        }
    }

    pub(crate) fn request_checkpoint(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.checkpointer.phase != Phase::Idle {
            self.checkpointer.requested = true;
            return;
        }
        let redo = self.wal.end();
        if self.checkpointer.last.is_some_and(|c| c.checkpoint_lsn == self.wal.last_important_start()) {
            // Nothing happened since the last checkpoint but, perhaps, a segment switch:
            // PostgreSQL skips it too (`CreateCheckPoint`, `GetLastImportantRecPtr`).
            return;
        }
        let data_file_id = self.checkpointer.next_data_file_id;
        let control = ControlFile {
            checkpoint_lsn: Lsn::INVALID,
            redo,
            redo_prev: self.wal.last_record_start(),
            timeline: self.timeline,
            data_file_id,
        };
        self.begin_checkpoint(now, control, out);
    }

    /// Standby: a replayed checkpoint record becomes a restartpoint.
    pub(crate) fn request_restartpoint(
        &mut self,
        now: Instant,
        redo: Lsn,
        redo_prev: Lsn,
        data_file_id: u64,
        record_start: Lsn,
        out: &mut Vec<Output>,
    ) {
        if self.checkpointer.phase != Phase::Idle {
            return; // PostgreSQL also skips a restartpoint while one runs
        }
        let control = ControlFile {
            checkpoint_lsn: record_start,
            redo,
            redo_prev,
            timeline: self.timeline,
            data_file_id: data_file_id.max(self.checkpointer.next_data_file_id),
        };
        self.begin_checkpoint(now, control, out);
    }

    fn begin_checkpoint(&mut self, now: Instant, control: ControlFile, out: &mut Vec<Output>) {
        if self.role == Role::Primary {
            // RedoRecPtr moves: every page is imaged again on its next change.
            self.full_page_writes.redo_moved();
        }
        self.checkpointer.next_data_file_id = control.data_file_id + 1;
        self.checkpointer.last_started = now;
        self.checkpointer.current = Some(control);
        let file = FileId::Data(control.data_file_id);
        let bytes = self.store.to_data_file(control.redo);
        if std::mem::take(&mut self.checkpointer.immediate) {
            self.write_and_fsync(IoPurpose::Checkpoint, file, bytes, out);
            self.checkpointer.phase = Phase::Data { pending: 2 };
            return;
        }
        // The image enters the page cache now; the device work of its rows is paid as the
        // schedule writes them back.
        let total_bytes = data_file_cost_bytes(&bytes);
        let io = self.new_io(IoPurpose::Meta);
        out.push(Output::Write { io, file, offset: 0, cost_bytes: 0, bytes });
        self.checkpointer.phase = Phase::Writeback { written_bytes: 0, total_bytes };
        self.checkpoint_write(now, out);
    }

    /// A spread checkpoint's paced step (`TimerId::CheckpointWrite`): write back what is due,
    /// then sleep 100 ms, or fsync once everything is written.
    pub(crate) fn checkpoint_write(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Phase::Writeback { written_bytes, total_bytes } = self.checkpointer.phase else { return };
        let control = self.checkpointer.current.expect("checkpoint in progress");
        let file = FileId::Data(control.data_file_id);
        let due_bytes = if self.checkpointer.immediate {
            total_bytes
        } else {
            // IsCheckpointOnSchedule: progress x completion_target must keep up with both the
            // time elapsed (of checkpoint_timeout) and the WAL written (of max_wal_size's
            // segments) since the checkpoint began; replay's position on a standby.
            let target = self.cfg.checkpoint_completion_target.max(0.01);
            let elapsed_time = now.0.saturating_sub(self.checkpointer.last_started.0) as f64
                / self.cfg.checkpoint_timeout_ns.max(1) as f64;
            let position = if self.role == Role::Primary { self.wal.end() } else { self.replay.lsn };
            let budget = (self.cfg.checkpoint_segments() * self.cfg.wal_segment_size_bytes).max(1);
            let elapsed_wal = position.bytes_since(control.redo) as f64 / budget as f64;
            let due = (elapsed_time.max(elapsed_wal) / target).min(1.0);
            ((total_bytes as f64 * due) as u64).max(written_bytes)
        };
        if due_bytes > written_bytes {
            let io = self.new_io(IoPurpose::Meta);
            out.push(Output::Write { io, file, offset: 0, bytes: Vec::new(), cost_bytes: due_bytes - written_bytes });
        }
        if due_bytes >= total_bytes {
            let io = self.new_io(IoPurpose::Checkpoint);
            out.push(Output::Fsync { io, file });
            self.checkpointer.phase = Phase::Data { pending: 1 };
            self.checkpointer.immediate = false;
        } else {
            self.checkpointer.phase = Phase::Writeback { written_bytes: due_bytes, total_bytes };
            out.push(Output::SetTimer { id: TimerId::CheckpointWrite, at: Instant(now.0 + CHECKPOINT_WRITE_DELAY_NS) });
        }
    }

    pub(crate) fn on_checkpoint_io_done(&mut self, now: Instant, out: &mut Vec<Output>) {
        match self.checkpointer.phase {
            Phase::Data { pending } if pending > 1 => self.checkpointer.phase = Phase::Data { pending: pending - 1 },
            Phase::Data { .. } => self.after_data_written(now, out),
            Phase::Control { pending } if pending > 1 => {
                self.checkpointer.phase = Phase::Control { pending: pending - 1 }
            }
            Phase::Control { .. } => self.finish_checkpoint(now, out),
            Phase::Idle | Phase::Writeback { .. } | Phase::RecordFlush { .. } => {}
        }
    }

    fn after_data_written(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut control = self.checkpointer.current.expect("checkpoint in progress");
        let restartpoint = control.checkpoint_lsn.is_valid();
        if restartpoint && self.role != Role::Standby {
            // A restartpoint that ends after a promotion leaves pg_control alone (PostgreSQL's
            // CreateRestartPoint updates it only while still in archive recovery); the
            // checkpoint requested at the promotion comes next.
            self.checkpointer.current = None;
            self.checkpointer.phase = Phase::Idle;
            out.push(Output::Remove { file: FileId::Data(control.data_file_id) });
            if std::mem::take(&mut self.checkpointer.requested) {
                self.request_checkpoint(now, out);
            }
            return;
        }
        if !restartpoint {
            let body = RecordBody::Checkpoint {
                redo: control.redo,
                redo_prev: control.redo_prev,
                timeline: control.timeline,
                data_file_id: control.data_file_id,
            };
            let (start, end) = self.wal.append(0, body);
            control.checkpoint_lsn = start;
            self.checkpointer.current = Some(control);
            self.checkpointer.phase = Phase::RecordFlush { record_end: end };
            self.flush_wal(out);
            self.checkpoint_after_flush(now, out);
        } else {
            self.write_control(out);
        }
    }

    /// A checkpoint record waits to be flushed (PostgreSQL's checkpointer calls `XLogFlush` on
    /// it itself rather than waiting for the WAL writer).
    pub(crate) fn checkpoint_waits_for_flush(&self) -> bool {
        matches!(self.checkpointer.phase, Phase::RecordFlush { record_end } if self.flusher.flushed < record_end)
    }

    /// Called after every WAL flush: a checkpoint waiting for its record continues.
    pub(crate) fn checkpoint_after_flush(&mut self, _now: Instant, out: &mut Vec<Output>) {
        if let Phase::RecordFlush { record_end } = self.checkpointer.phase {
            if self.flusher.flushed >= record_end {
                self.write_control(out);
            }
        }
    }

    fn write_control(&mut self, out: &mut Vec<Output>) {
        let control = self.checkpointer.current.expect("checkpoint in progress");
        // `CheckPointReplicationSlots`, before the checkpoint is durable.
        self.save_logical_slots(out);
        self.checkpointer.slot_restarts_saved =
            self.logical_slots.values().map(|s| (s.name.clone(), s.restart_lsn())).collect();
        self.write_and_fsync(IoPurpose::Checkpoint, FileId::Control, control.encode(), out);
        self.checkpointer.phase = Phase::Control { pending: 2 };
    }

    fn finish_checkpoint(&mut self, now: Instant, out: &mut Vec<Output>) {
        let control = self.checkpointer.current.take().expect("checkpoint in progress");
        if let Some(previous) = self.checkpointer.last {
            if previous.data_file_id != control.data_file_id {
                out.push(Output::Remove { file: FileId::Data(previous.data_file_id) });
            }
        }
        self.checkpointer.last = Some(control);
        self.checkpointer.phase = Phase::Idle;
        self.checkpointer.completed += 1;
        // Old WAL goes at the end of the checkpoint, which a spread one reaches at the end of
        // its schedule.
        let removed_below = self.recycle_wal(control.redo, out);
        out.push(Output::Observe(Observation::Checkpoint { redo: control.redo, removed_below }));
        if std::mem::take(&mut self.checkpointer.admin_waiting) {
            out.push(Output::Observe(Observation::CheckpointRequestDone));
        }
        if std::mem::take(&mut self.checkpointer.requested) {
            self.request_checkpoint(now, out);
        }
    }

    /// `KeepLogSeg` + `RemoveOldXlogFiles`: keep the segment of the redo point, and
    /// `wal_keep_size` behind the current position; remove whole segments below.
    fn recycle_wal(&mut self, redo: Lsn, out: &mut Vec<Output>) -> Lsn {
        let segment = self.cfg.wal_segment_size_bytes;
        let current = match self.role {
            Role::Primary => self.wal.end(),
            _ => self.replay.lsn,
        };
        let current_seg = current.segment(segment);
        let mut keep_seg = redo.segment(segment);
        let keep_segments = self.cfg.wal_keep_size_bytes / segment;
        if keep_segments > 0 {
            keep_seg = keep_seg.min(current_seg.saturating_sub(keep_segments).max(1));
        }
        // A standby never removes WAL it has not replayed, nor WAL it has not flushed.
        keep_seg = keep_seg.min(self.replay_or_insert_floor().segment(segment));
        keep_seg = self.keep_for_slots(keep_seg, current, out);
        // `XLogArchiveCheckDone`: a segment not archived yet stays.
        keep_seg = keep_seg.min(self.archive_keep_segno());
        let removed = self.wal.remove_segments_before(Lsn(keep_seg * segment));
        for segno in removed {
            // Old segments may belong to any timeline of our history.
            for timeline in 1..=self.timeline {
                out.push(Output::Remove { file: FileId::WalSegment { timeline, segno } });
            }
        }
        self.wal.start()
    }

    /// Slots hold WAL back to their `restart_lsn`, bounded by `max_slot_wal_keep_size`; a slot
    /// that falls further behind is invalidated (`wal_removed`) and holds nothing.
    fn keep_for_slots(&mut self, keep_seg: u64, current: Lsn, out: &mut Vec<Output>) -> u64 {
        let segment = self.cfg.wal_segment_size_bytes;
        let limit = self.cfg.max_slot_wal_keep_size_bytes;
        let mut invalidated = Vec::new();
        let mut keep = keep_seg;
        for (&standby, &restart) in &self.slots {
            if limit.is_some_and(|cap| current.bytes_since(restart) > cap) {
                invalidated.push(standby);
            } else {
                keep = keep.min(restart.segment(segment));
            }
        }
        for standby in invalidated {
            self.slots.remove(&standby);
            self.slot_xmins.remove(&standby);
            let text = "replication slot invalidated: wal_removed (max_slot_wal_keep_size exceeded)".to_string();
            out.push(Output::Observe(Observation::WalSenderError { standby, text }));
        }
        // Logical slots hold WAL the same way, inactive or not; an invalidated one is kept (its
        // subscriber gets an error) but holds nothing (`InvalidatePossiblyObsoleteSlot`).
        // PostgreSQL saves the invalidation before it removes the WAL; here the save is a disk
        // write like any other, so the slot still holds its WAL through this checkpoint and
        // the next one removes it, once the saved state says it is invalid.
        let mut invalidated_now = false;
        let saved = &self.checkpointer.slot_restarts_saved;
        for slot in self.logical_slots.values_mut() {
            let just_invalidated = slot.invalidate_if_behind(current, limit);
            if just_invalidated {
                let text = "invalidated: wal_removed (max_slot_wal_keep_size exceeded)".to_string();
                out.push(Output::Observe(Observation::LogicalSlot { name: slot.name.clone(), text }));
                invalidated_now = true;
            }
            if just_invalidated || slot.invalidated.is_none() {
                // A slot made since this checkpoint's save holds from its own position.
                let held = saved.get(&slot.name).map_or(slot.restart_lsn(), |&s| s.min(slot.restart_lsn()));
                keep = keep.min(held.segment(segment));
            }
        }
        if invalidated_now {
            self.save_logical_slots(out);
        }
        keep
    }

    fn replay_or_insert_floor(&self) -> Lsn {
        match self.role {
            Role::Primary => self.flusher.flushed,
            _ => self.replay.lsn.min(self.flusher.flushed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_file_round_trips_and_rejects_corruption() {
        let control = ControlFile {
            checkpoint_lsn: Lsn(5000),
            redo: Lsn(4000),
            redo_prev: Lsn(3900),
            timeline: 1,
            data_file_id: 7,
        };
        let bytes = control.encode();
        assert_eq!(ControlFile::decode(&bytes), Some(control));
        let mut bad = bytes.clone();
        bad[3] ^= 1;
        assert_eq!(ControlFile::decode(&bad), None);
    }
}
