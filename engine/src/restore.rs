//! `restore_command` on a standby (spec §4.1, the WAL source loop of `WaitForWALToBecomeAvailable`
//! in xlogrecovery.c): when streaming fails (the upstream is down, or it has removed the segment
//! the standby needs), the startup process fetches the next segment from the archive
//! ([`crate::io::Output::RestoreSegment`], answered by [`crate::io::Input::Restored`]) and replays
//! it, then the next, until the archive has no more; then it tries streaming again, from the
//! position the archive brought it to.
//!
//! Simplification: a restored segment is kept in `pg_wal` like streamed WAL (PostgreSQL restores
//! into a temporary file and removes it after replay), so the standby's WAL stays one
//! contiguous log that it can stream on from and serve to cascaded standbys.

use crate::io::{FileId, Instant, Output};
use crate::node::{Node, Role};

#[derive(Clone, Debug, Default)]
pub struct Restorer {
    /// The segment `restore_command` is running for.
    in_flight: Option<u64>,
    /// Targeted recovery (`pitr.rs`) reached its target: replay and restores stop.
    pub(crate) target_reached: bool,
}

impl Node {
    /// Streaming is not available: with `restore_command`, ask the archive for the segment that
    /// holds the next WAL byte we need.
    pub(crate) fn try_restore(&mut self, out: &mut Vec<Output>) {
        let busy = self.restorer.in_flight.is_some() || self.restorer.target_reached || self.promote_requested;
        if !self.cfg.restore_command || self.role != Role::Standby || busy {
            return;
        }
        let segno = self.wal.end().0 / self.cfg.wal_segment_size_bytes;
        self.restorer.in_flight = Some(segno);
        let timelines = self.segment_writers(segno);
        let timeline = timelines.first().copied().unwrap_or(self.timeline);
        out.push(Output::RestoreSegment { file: FileId::WalSegment { timeline, segno }, timelines });
    }

    /// `restore_command` ended: the segment's bytes and the timeline of the copy found, or
    /// `None` (not in the archive, or the archive unreachable).
    pub(crate) fn on_restored(&mut self, now: Instant, file: FileId, bytes: Option<Vec<u8>>, out: &mut Vec<Output>) {
        let FileId::WalSegment { segno, timeline: copy_timeline } = file else { return };
        if self.restorer.in_flight != Some(segno) {
            return;
        }
        self.restorer.in_flight = None;
        if self.promote_requested || self.restorer.target_reached {
            return; // recovery is ending: nothing more is read
        }
        let segment = self.cfg.wal_segment_size_bytes;
        let (seg_start, end) = (segno * segment, self.wal.end());
        // A copy is good only up to where its timeline ends in our history: past the switch,
        // an older timeline's copy holds WAL of a history we do not follow (PostgreSQL rejects
        // those pages by their header's timeline, "out-of-sequence timeline ID").
        let ours = self.history.contains(copy_timeline, self.timeline);
        let usable_end =
            self.history.end_of(copy_timeline).map_or(seg_start + segment, |s| s.0.min(seg_start + segment));
        let usable = |b: &Vec<u8>| b.len() as u64 == segment && ours && end.0 < usable_end;
        let Some(bytes) = bytes.filter(usable) else {
            // Back to streaming (a standby's walreceiver retry is already due); with no stream,
            // in targeted recovery, the archive's end is the end of recovery.
            return self.archive_exhausted(now, out);
        };
        if self.role != Role::Standby || end.0 < seg_start || end.0 >= seg_start + segment {
            return; // streaming brought us past it meanwhile
        }
        if self.wal.receive(end, &bytes[(end.0 - seg_start) as usize..(usable_end - seg_start) as usize]).is_err() {
            let reason = format!("restored segment {segno} differs from local WAL");
            return self.stop_walreceiver(now, reason, out);
        }
        self.write_wal(out);
        self.try_restore(out);
    }
}
