//! Writing and fsyncing WAL (PostgreSQL's `XLogWrite`/`XLogFlush` and the WAL writer).
//!
//! One fsync round is in flight at a time (the WALWriteLock); commits that arrive meanwhile
//! share the next round: group commit.

use crate::io::{FileId, Instant, Observation, Output, TimerId};
use crate::lsn::Lsn;
use crate::node::{IoPurpose, Node, Role};

#[derive(Clone, Debug, Default)]
pub struct WalFlusher {
    /// Writes have been issued up to here.
    pub write_requested: Lsn,
    /// Written to the OS (survives a process crash, not a node crash).
    pub written: Lsn,
    /// Fsynced: durable.
    pub flushed: Lsn,
    /// The end of the fsync round in flight and its outstanding fsyncs.
    pub fsync_in_flight: Option<(Lsn, u32)>,
}

impl WalFlusher {
    pub fn reset_to(&mut self, lsn: Lsn) {
        *self = WalFlusher { write_requested: lsn, written: lsn, flushed: lsn, fsync_in_flight: None };
    }
}

impl Node {
    /// Issues writes for every WAL byte not yet handed to the OS.
    pub(crate) fn write_wal(&mut self, out: &mut Vec<Output>) {
        let end = self.wal.end();
        if end <= self.flusher.write_requested {
            return;
        }
        let pieces = self.wal.segment_pieces(self.flusher.write_requested, end);
        for (segno, offset, from, to) in pieces {
            let bytes = self.wal.read(from, to).expect("unwritten WAL is in memory");
            let io = self.new_io(IoPurpose::WalWrite { end: to });
            let file = FileId::WalSegment { timeline: self.timeline, segno };
            let cost_bytes = bytes.len() as u64;
            out.push(Output::Write { io, file, offset, bytes, cost_bytes });
        }
        self.flusher.write_requested = end;
    }

    /// Writes and fsyncs WAL up to the current insert position, unless a round is in flight
    /// (then the caller's commit rides on the next round).
    pub(crate) fn flush_wal(&mut self, out: &mut Vec<Output>) {
        self.write_wal(out);
        self.start_fsync_round(out);
    }

    fn start_fsync_round(&mut self, out: &mut Vec<Output>) {
        let target = self.flusher.write_requested;
        if self.flusher.fsync_in_flight.is_some() || target <= self.flusher.flushed {
            return;
        }
        let segment = self.wal.segment_size_bytes();
        let first = self.flusher.flushed.segment(segment);
        let last = Lsn(target.0 - 1).segment(segment);
        for segno in first..=last {
            let io = self.new_io(IoPurpose::WalFsync { end: target });
            out.push(Output::Fsync { io, file: FileId::WalSegment { timeline: self.timeline, segno } });
        }
        self.flusher.fsync_in_flight = Some((target, (last - first + 1) as u32));
    }

    pub(crate) fn on_wal_written(&mut self, now: Instant, end: Lsn, out: &mut Vec<Output>) {
        if end > self.flusher.written {
            self.flusher.written = end;
        }
        if self.role == Role::Standby {
            self.receiver_wal_written(now, out);
        }
    }

    pub(crate) fn on_wal_fsynced(&mut self, now: Instant, end: Lsn, out: &mut Vec<Output>) {
        let Some((target, pending)) = self.flusher.fsync_in_flight else {
            return;
        };
        debug_assert_eq!(target, end);
        if pending > 1 {
            self.flusher.fsync_in_flight = Some((target, pending - 1));
            return;
        }
        self.flusher.fsync_in_flight = None;
        // The fsync covers the writes issued before it; the disk completes them in order.
        debug_assert!(self.flusher.written >= target, "fsync completed before its writes");
        let durable = target;
        if durable > self.flusher.flushed {
            self.replay.latest_chunk_start = self.flusher.flushed;
            self.flusher.flushed = durable;
            out.push(Output::Observe(Observation::Flushed { lsn: durable }));
        }
        match self.role {
            Role::Primary => self.on_primary_flushed(now, out),
            Role::Standby => self.receiver_wal_flushed(now, out),
            Role::Recovering if self.redo_done => return self.finish_recovery(now, out),
            _ => {}
        }
        self.checkpoint_after_flush(now, out);
        self.end_of_recovery_after_flush(now, out);
        // Group commit: whatever was written meanwhile goes in the next round.
        if self.role == Role::Primary
            && (self.commits.has_local_waiters()
                || self.checkpoint_waits_for_flush()
                || self.end_of_recovery_waits_for_flush())
        {
            self.flush_wal(out);
        } else if self.role == Role::Standby {
            self.start_fsync_round(out);
        }
    }

    /// The WAL writer (`wal_writer_delay`): flushes what asynchronous commits left behind.
    pub(crate) fn on_wal_writer_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role != Role::Primary {
            return;
        }
        self.flush_wal(out);
        out.push(Output::SetTimer { id: TimerId::WalWriter, at: Instant(now.0 + self.cfg.wal_writer_delay_ns) });
    }

    /// `wal_writer_flush_after`: the WAL writer flushes early once this much is unflushed.
    pub(crate) fn maybe_flush_after(&mut self, out: &mut Vec<Output>) {
        if self.wal.end().bytes_since(self.flusher.flushed) >= self.cfg.wal_writer_flush_after_bytes {
            self.flush_wal(out);
        }
    }
}
