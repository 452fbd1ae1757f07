//! The archiver (`archive_mode = on`; PostgreSQL's `pgarch.c`): on a primary, every WAL
//! segment, once complete and flushed (`XLogArchiveNotifySeg` after the segment's fsync in
//! `XLogWrite` marks it `.ready`), is handed to `archive_command` in segment order, one at a
//! time. The driver runs the command ([`crate::io::Output::ArchiveSegment`]) and says whether
//! it succeeded ([`crate::io::Input::ArchiveDone`]). A failed segment is retried after 1 s, three
//! times (`NUM_ARCHIVE_RETRIES`); then the archiver sleeps until the next segment is ready or
//! 60 s pass (`PGARCH_AUTOWAKE_INTERVAL`), and tries again. A segment is recycled by a
//! checkpoint only once it is archived (`XLogArchiveCheckDone`), so while the archive is
//! unreachable `pg_wal` grows.
//!
//! Simplifications: the `.ready`/`.done` status files are not kept on disk, so a primary that
//! restarts archives again every segment it still holds (`archive_command` must accept an
//! identical copy, as PostgreSQL's documentation requires); a promoted standby archives from
//! the segment holding its timeline switch (its copy on the new timeline), and the old
//! timeline's partial segment is not archived (`.partial`); standbys do not archive
//! (`archive_mode = always` is not modelled).

use std::collections::VecDeque;

use crate::io::{FileId, Instant, Output, TimerId};
use crate::lsn::Lsn;
use crate::node::{Node, Role};

/// `NUM_ARCHIVE_RETRIES`, and the sleep between them.
pub const ARCHIVE_RETRIES: u32 = 3;
pub const ARCHIVE_RETRY_DELAY_NS: u64 = 1_000_000_000;
/// `PGARCH_AUTOWAKE_INTERVAL`: the archiver's sleep after a failed round.
pub const ARCHIVE_AUTOWAKE_NS: u64 = 60_000_000_000;

#[derive(Clone, Debug, Default)]
pub struct Archiver {
    /// The oldest segment not archived yet; `None` while this node does not archive.
    pub next_segno: Option<u64>,
    /// The segment `archive_command` is running for.
    in_flight: Option<u64>,
    failures_in_a_row: u32,
    /// Sleeping after a failure until then (`None`: awake).
    sleeping_until: Option<Instant>,
    /// Segments below this were complete when the archiver last looked (its wake-up signal).
    complete_below: u64,
    /// Segments not archived yet, with when WAL first went into them (the archive lag in time
    /// is the oldest one's age: how old the oldest WAL missing from the archive is). The last
    /// is the segment WAL goes into now, and since when (the last segment switch): it is never
    /// archived yet. Bounded by the segments `pg_wal` holds.
    opened_at: VecDeque<(u64, u64)>,
    /// `pg_stat_archiver`.
    pub archived_count: u64,
    pub failed_count: u64,
    pub last_archived: Option<(FileId, u64)>,
    pub last_failed: Option<(FileId, u64)>,
}

impl Node {
    /// This node now writes WAL as a primary: archive from segment `from_segno` on.
    pub(crate) fn start_archiving(&mut self, now: Instant, from_segno: u64, out: &mut Vec<Output>) {
        if !self.cfg.archive_mode {
            return;
        }
        self.archiver.next_segno = Some(from_segno);
        if self.cfg.archive_timeout_ns > 0 {
            out.push(Output::SetTimer {
                id: TimerId::ArchiveTimeout,
                at: Instant(now.0 + self.cfg.archive_timeout_ns),
            });
        }
        self.archive_next(now, out);
    }

    /// Notes when the insert position entered its segment (the last switch, natural or forced).
    fn note_current_segment(&mut self, now: Instant) -> (u64, u64) {
        let segno = self.wal.end().0 / self.cfg.wal_segment_size_bytes;
        match self.archiver.opened_at.back() {
            Some(&(seen, since)) if seen == segno => (seen, since),
            _ => {
                self.archiver.opened_at.push_back((segno, now.0));
                (segno, now.0)
            }
        }
    }

    /// `CheckArchiveTimeout` (checkpointer.c): once `archive_timeout` has passed since the last
    /// segment switch and WAL was written since, `RequestXLogSwitch`: the segment is closed
    /// early (full length: the rest is zeros) so that it can be archived.
    pub(crate) fn check_archive_timeout(&mut self, now: Instant, out: &mut Vec<Output>) {
        let timeout_ns = self.cfg.archive_timeout_ns;
        if timeout_ns == 0 || self.role != Role::Primary || self.end_of_recovery.is_some() {
            return;
        }
        let (_, since) = self.note_current_segment(now);
        let mut next_check = since + timeout_ns;
        if now.0 >= next_check {
            self.switch_wal(now, out);
            next_check = now.0 + timeout_ns;
        }
        out.push(Output::SetTimer { id: TimerId::ArchiveTimeout, at: Instant(next_check) });
    }

    /// `RequestXLogSwitch` (`pg_switch_wal()`, `archive_timeout`, and `pg_backup_stop` on a
    /// primary): the current segment is closed early if an important record went into it.
    /// That is `CheckArchiveTimeout`'s rule (`XLogGetLastImportantRecPtr() > last switch`: a
    /// checkpoint of an idle server after a switch is skipped, so switches do not feed on
    /// themselves: swarm seeds 668, 1122, 1209 with 64 MB segments); `pg_switch_wal` switches
    /// after any record, which differs only for a segment of unimportant records.
    pub(crate) fn switch_wal(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role != Role::Primary || self.end_of_recovery.is_some() {
            return;
        }
        let segno = self.wal.end().0 / self.cfg.wal_segment_size_bytes;
        if self.wal.last_important_start().0 < segno * self.cfg.wal_segment_size_bytes {
            return;
        }
        if self.cfg.archive_mode {
            self.note_current_segment(now);
            self.archiver.opened_at.push_back((segno + 1, now.0));
        }
        self.wal.switch_segment();
        self.flush_wal(out);
    }

    /// The segment file holding `segno` on our history: the newest timeline that covers part of
    /// it (a new timeline's first segment is a copy of its parent's prefix).
    pub(crate) fn archive_file(&self, segno: u64) -> FileId {
        let segment = self.cfg.wal_segment_size_bytes;
        let seg_end = Lsn((segno + 1) * segment);
        let mut timeline = self.timeline;
        for s in self.history.switches.iter().rev() {
            if s.switch < seg_end {
                break;
            }
            timeline = s.parent;
        }
        FileId::WalSegment { timeline, segno }
    }

    /// Runs `archive_command` for the next segment if it is ready and nothing is running.
    pub(crate) fn archive_next(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.archiver.next_segno.is_some() {
            self.note_current_segment(now);
        }
        let segment = self.cfg.wal_segment_size_bytes;
        let complete_below = self.flusher.flushed.0 / segment;
        let a = &mut self.archiver;
        let Some(next) = a.next_segno else { return };
        if complete_below > a.complete_below {
            // A new segment is ready: PgArchWakeup ends the long sleep, not a retry's.
            a.complete_below = complete_below;
            if a.failures_in_a_row == 0 {
                a.sleeping_until = None;
            }
        }
        if a.in_flight.is_some() || a.sleeping_until.is_some_and(|t| now < t) || self.role != Role::Primary {
            return;
        }
        a.sleeping_until = None;
        // Segments recycled before archiving began here are not ours to archive.
        let next = next.max(self.wal.start().0 / segment);
        a.next_segno = Some(next);
        while a.opened_at.front().is_some_and(|(segno, _)| *segno < next) {
            a.opened_at.pop_front();
        }
        if next >= complete_below {
            return;
        }
        a.in_flight = Some(next);
        out.push(Output::ArchiveSegment { file: self.archive_file(next) });
    }

    /// `archive_command` ended for `file`.
    pub(crate) fn on_archive_done(&mut self, now: Instant, file: FileId, ok: bool, out: &mut Vec<Output>) {
        let FileId::WalSegment { segno, .. } = file else { return };
        let a = &mut self.archiver;
        if a.in_flight != Some(segno) {
            return;
        }
        a.in_flight = None;
        if ok {
            a.archived_count += 1;
            a.last_archived = Some((file, now.0));
            a.next_segno = Some(segno + 1);
            a.failures_in_a_row = 0;
        } else {
            a.failed_count += 1;
            a.last_failed = Some((file, now.0));
            a.failures_in_a_row += 1;
            let sleep_ns = if a.failures_in_a_row < ARCHIVE_RETRIES {
                ARCHIVE_RETRY_DELAY_NS
            } else {
                a.failures_in_a_row = 0;
                ARCHIVE_AUTOWAKE_NS
            };
            let at = Instant(now.0 + sleep_ns);
            a.sleeping_until = Some(at);
            out.push(Output::SetTimer { id: TimerId::Archiver, at });
        }
        self.archive_next(now, out);
    }

    /// The archive's progress without `pg_stat_archiver`'s file names (sampled every second):
    /// the oldest segment not archived yet (`None`: this node does not archive), and when WAL
    /// first went into it.
    pub fn archive_progress(&self) -> (Option<u64>, Option<u64>) {
        let next = self.archiver.next_segno.filter(|_| self.cfg.archive_mode);
        (next, self.archiver.opened_at.front().map(|(_, at)| *at))
    }

    /// The first segment a checkpoint must keep for the archiver (`u64::MAX`: none).
    pub(crate) fn archive_keep_segno(&self) -> u64 {
        match self.archiver.next_segno {
            Some(next) if self.cfg.archive_mode => next,
            _ => u64::MAX,
        }
    }
}
