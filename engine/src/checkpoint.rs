//! Checkpoints (primary) and restartpoints (standby), `pg_control`, and WAL recycling
//! (PostgreSQL `CreateCheckPoint`, `CreateRestartPoint`, `KeepLogSeg`, `RemoveOldXlogFiles`).
//!
//! A checkpoint here writes the whole table image at once rather than spreading dirty-page
//! writes over `checkpoint_completion_target`; the WAL bounds are PostgreSQL's.

use crate::crc32c;
use crate::io::{FileId, Instant, Observation, Output, TimerId};
use crate::lsn::Lsn;
use crate::node::{IoPurpose, Node, Role};
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    #[default]
    Idle,
    /// Table image being written and fsynced.
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
    /// The next checkpoint is immediate (end of crash recovery), not spread.
    pub(crate) immediate: bool,
    /// A spread checkpoint finished writing before its spread would end: its WAL is recycled
    /// then (or once WAL volume catches up), from this redo point.
    deferred_redo: Option<Lsn>,
    pub completed: u64,
}

impl Node {
    pub(crate) fn on_checkpoint_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role == Role::Primary {
            self.request_checkpoint(now, out);
        }
        let at = Instant(now.0 + self.cfg.checkpoint_timeout_ns);
        out.push(Output::SetTimer { id: TimerId::Checkpoint, at });
    }

    /// `XLogCheckpointNeeded`: a checkpoint once `CheckPointSegments` of WAL were written
    /// since the last redo point.
    pub(crate) fn checkpoint_if_wal_volume(&mut self, now: Instant, out: &mut Vec<Output>) {
        let segment = self.cfg.wal_segment_size_bytes;
        if let Some(redo) = self.checkpointer.deferred_redo {
            // WAL volume ends a spread checkpoint early too (`IsCheckpointOnSchedule`).
            let target = self.cfg.checkpoint_completion_target * (self.cfg.checkpoint_segments() * segment) as f64;
            if self.wal.end().bytes_since(redo) as f64 >= target {
                self.deferred_recycle(out);
            }
        }
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
        if self.checkpointer.last.is_some_and(|c| c.checkpoint_lsn == self.wal.last_record_start()) {
            return; // nothing happened since the last checkpoint (PostgreSQL skips it too)
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
        self.checkpointer.next_data_file_id = control.data_file_id + 1;
        self.checkpointer.last_started = now;
        let file = FileId::Data(control.data_file_id);
        let bytes = self.store.to_data_file(control.redo);
        self.write_and_fsync(IoPurpose::Checkpoint, file, bytes, out);
        self.checkpointer.current = Some(control);
        self.checkpointer.phase = Phase::Data { pending: 2 };
    }

    pub(crate) fn on_checkpoint_io_done(&mut self, now: Instant, out: &mut Vec<Output>) {
        match self.checkpointer.phase {
            Phase::Data { pending } if pending > 1 => self.checkpointer.phase = Phase::Data { pending: pending - 1 },
            Phase::Data { .. } => self.after_data_written(now, out),
            Phase::Control { pending } if pending > 1 => {
                self.checkpointer.phase = Phase::Control { pending: pending - 1 }
            }
            Phase::Control { .. } => self.finish_checkpoint(now, out),
            Phase::Idle | Phase::RecordFlush { .. } => {}
        }
    }

    fn after_data_written(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut control = self.checkpointer.current.expect("checkpoint in progress");
        if self.role == Role::Primary {
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
        self.write_and_fsync(IoPurpose::Checkpoint, FileId::Control, control.encode(), out);
        self.checkpointer.phase = Phase::Control { pending: 2 };
    }

    /// The spread of the last checkpoint is over: recycle the WAL it made unnecessary.
    pub(crate) fn deferred_recycle(&mut self, out: &mut Vec<Output>) {
        if let Some(redo) = self.checkpointer.deferred_redo.take() {
            self.recycle_wal(redo, out);
        }
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
        // A checkpoint writes its pages at once here, where PostgreSQL spreads the writes over
        // checkpoint_completion_target x checkpoint_timeout (`IsCheckpointOnSchedule`) and
        // removes old WAL only at the end: the removal keeps PostgreSQL's timing. Crash
        // recovery's end-of-recovery checkpoint is immediate.
        let spread_ns = (self.cfg.checkpoint_completion_target * self.cfg.checkpoint_timeout_ns as f64) as u64;
        let due = Instant(self.checkpointer.last_started.0.saturating_add(spread_ns));
        let removed_below = if !std::mem::take(&mut self.checkpointer.immediate) && now < due {
            self.checkpointer.deferred_redo = Some(control.redo);
            out.push(Output::SetTimer { id: TimerId::Recycle, at: due });
            self.wal.start()
        } else {
            self.checkpointer.deferred_redo = None;
            self.recycle_wal(control.redo, out)
        };
        out.push(Output::Observe(Observation::Checkpoint { redo: control.redo, removed_below }));
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
            let text = "replication slot invalidated: wal_removed (max_slot_wal_keep_size exceeded)".to_string();
            out.push(Output::Observe(Observation::WalSenderError { standby, text }));
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
