//! Start-up: `initdb`, and crash recovery from the durable disk image (PostgreSQL
//! `StartupXLOG`): redo from the last checkpoint's redo point to the last valid record.

use crate::checkpoint::ControlFile;
use crate::config::NodeConfig;
use crate::io::{ComputeTask, DiskImage, FileId, Instant, Observation, Output, TimerId};
use crate::lsn::Lsn;
use crate::node::{Node, Role};
use crate::storage::Store;
use crate::timeline::History;
use crate::wal::log::WalLog;
use crate::wal::record::RecordBody;

/// A fresh cluster's data directory: one checkpoint at the start of segment 1 and an empty
/// table image. Standbys of a fresh cluster boot from a copy of it (a base backup at time 0).
pub fn initdb(cfg: &NodeConfig) -> DiskImage {
    let segment = cfg.wal_segment_size_bytes;
    let redo = Lsn(segment);
    let mut wal = WalLog::new(segment, redo, Lsn::INVALID);
    let body = RecordBody::Checkpoint { redo, redo_prev: Lsn::INVALID, timeline: 1, data_file_id: 0 };
    let (checkpoint_lsn, end) = wal.append(0, body);
    let control = ControlFile { checkpoint_lsn, redo, redo_prev: Lsn::INVALID, timeline: 1, data_file_id: 0 };
    let mut image = DiskImage::default();
    let wal_bytes = wal.read(redo, end).expect("just written");
    image.files.insert(FileId::WalSegment { timeline: 1, segno: redo.segment(segment) }, wal_bytes.into());
    image.files.insert(FileId::Data(0), Store::default().to_data_file(redo).into());
    image.files.insert(FileId::Control, control.encode().into());
    image
}

impl Node {
    fn panic_at_boot(&mut self, reason: String, out: &mut Vec<Output>) {
        self.role = Role::Panicked;
        out.push(Output::Observe(Observation::Panic { reason }));
    }

    pub(crate) fn boot(&mut self, _now: Instant, image: DiskImage, out: &mut Vec<Output>) {
        assert_eq!(self.role, Role::Down, "a node boots once; a restart is a new Node");
        self.role = Role::Recovering;
        let Some(control) = image.read(FileId::Control).and_then(|b| ControlFile::decode(&b)) else {
            return self.panic_at_boot("could not read pg_control: invalid checksum or missing".into(), out);
        };
        let data = image.read(FileId::Data(control.data_file_id)).and_then(|b| Store::from_data_file(&b));
        let Some((store, data_redo)) = data else {
            return self.panic_at_boot(
                format!("could not read data file {} of the last checkpoint", control.data_file_id),
                out,
            );
        };
        assert_eq!(data_redo, control.redo, "data file and pg_control disagree");
        self.store = store;
        if self.cfg.track_commit_timestamp {
            self.store.track_commit_timestamps();
        }
        self.load_logical_slots(&image);
        self.pick_latest_timeline(&image, control.timeline);
        let (wal, files) = self.load_wal(&image, control.redo);
        self.wal = wal;
        if control.redo < self.wal.start() || control.redo > self.wal.end() {
            return self.panic_at_boot(format!("could not locate a valid checkpoint record at {}", control.redo), out);
        }
        let (end, prev, records, durable) = self.redo(control.redo, control.redo_prev, control.checkpoint_lsn);
        self.wal.truncate(end, prev);
        self.drop_wal_beyond(&image, &files, end, out);
        self.start_own_segment_if_borrowed(&files, end, out);
        for file in image.files.keys() {
            if let FileId::Data(id) = file {
                self.checkpointer.next_data_file_id = self.checkpointer.next_data_file_id.max(id + 1);
                if *id != control.data_file_id {
                    out.push(Output::Remove { file: *file }); // an unfinished checkpoint's image
                }
            }
        }
        self.checkpointer.last = Some(control);
        self.replay.reset(end, prev);
        self.replay.recovered_end = end;
        self.sync_wal_at_boot(durable, end, &files, out);
        out.push(Output::Observe(Observation::Recovered { redo: control.redo, end, records }));
        self.recovery_records = records;
        out.push(Output::Compute(ComputeTask::Recovery { records }));
    }

    /// `recovery_target_timeline = latest`: the newest timeline with a history file, else the
    /// one in pg_control.
    fn pick_latest_timeline(&mut self, image: &DiskImage, control_timeline: u32) {
        // PostgreSQL writes a history file under a temporary name, fsyncs it and renames it
        // (`writeTimeLineHistory`), so a history file is whole or absent. One without its
        // content (its only fsync failed, or power was lost first) never existed.
        let whole = |t: u32, bytes: &crate::wal::chunks::ChunkedBytes| {
            t <= 1 || History::decode(&bytes.to_vec()).is_some_and(|h| !h.switches.is_empty())
        };
        let latest = image
            .files
            .iter()
            .filter_map(|(f, bytes)| if let FileId::History(t) = f { whole(*t, bytes).then_some(*t) } else { None })
            .max()
            .unwrap_or(1)
            .max(control_timeline);
        self.timeline = latest;
        self.history = image.read(FileId::History(latest)).and_then(|b| History::decode(&b)).unwrap_or_default();
    }

    /// Which file holds segment `segno`: the newest timeline of our history that covers part of
    /// the segment and has a file for it (a new timeline's first segment copies its parent's
    /// prefix, so it is preferred).
    fn segment_file(&self, image: &DiskImage, segno: u64) -> Option<FileId> {
        self.segment_writers(segno)
            .into_iter()
            .map(|timeline| FileId::WalSegment { timeline, segno })
            // PostgreSQL installs a new timeline's first segment by copying it to a temporary
            // file, fsyncing and renaming it (`XLogFileCopy`, `durable_rename`): it is whole or
            // absent. One with no durable content (power lost before its fsync) never existed.
            .find(|file| image.files.get(file).is_some_and(|bytes| !bytes.is_empty()))
    }

    /// The timelines of our history that wrote part of segment `segno`, newest first (the
    /// order `XLogFileReadAnyTLI` tries them in).
    pub(crate) fn segment_writers(&self, segno: u64) -> Vec<u32> {
        let segment = self.cfg.wal_segment_size_bytes;
        let (seg_start, seg_end) = (Lsn(segno * segment), Lsn((segno + 1) * segment));
        let ranges: Vec<_> = self.timeline_ranges().collect();
        ranges.iter().rev().filter(|(_, from, to)| *from < seg_end && *to > seg_start).map(|(tli, _, _)| *tli).collect()
    }

    /// Each timeline of our history and the WAL it wrote, `[from, to)`, oldest first.
    pub(crate) fn timeline_ranges(&self) -> impl Iterator<Item = (u32, Lsn, Lsn)> + '_ {
        let starts = std::iter::once(Lsn(0)).chain(self.history.switches.iter().map(|s| s.switch));
        let timelines = self.history.switches.iter().map(|s| (s.parent, s.switch));
        let timelines = timelines.chain(std::iter::once((self.timeline, Lsn(u64::MAX))));
        starts.zip(timelines).map(|(from, (tli, to))| (tli, from, to))
    }

    /// After an unclean stop, WAL the OS still held may not be durable: PostgreSQL fsyncs the
    /// data directory before redo (`SyncDataDirectory`). Until those fsyncs complete, only WAL
    /// up to the checkpoint record counts as flushed (and may be streamed or acknowledged).
    fn sync_wal_at_boot(&mut self, durable: Lsn, end: Lsn, files: &[FileId], out: &mut Vec<Output>) {
        self.flusher.reset_to(end);
        if files.is_empty() || end <= durable {
            return;
        }
        self.flusher.flushed = durable;
        for &file in files {
            let io = self.new_io(crate::node::IoPurpose::WalFsync { end });
            out.push(Output::Fsync { io, file });
        }
        self.flusher.fsync_in_flight = Some((end, files.len() as u32));
    }

    /// The WAL segments from the redo point's segment on, as long as they are contiguous, and
    /// the file each came from.
    fn load_wal(&self, image: &DiskImage, redo: Lsn) -> (WalLog, Vec<FileId>) {
        let segment = self.cfg.wal_segment_size_bytes;
        // Older whole segments still in pg_wal (kept for wal_keep_size or slots) stay readable
        // by walsenders after a restart, as they are in PostgreSQL.
        let mut first = redo.segment(segment);
        while first > 1 && self.segment_file(image, first - 1).is_some_and(|f| image.files[&f].len() as u64 >= segment)
        {
            first -= 1;
        }
        let mut wal = WalLog::sharing(segment, Lsn(first * segment), Lsn::INVALID, self.blocks.clone());
        let mut files = Vec::new();
        let mut segno = first;
        while let Some(file) = self.segment_file(image, segno) {
            let bytes = &image.files[&file];
            let len = bytes.len().min(segment as usize);
            wal.load(Lsn(segno * segment), bytes, len);
            files.push(file);
            if (len as u64) < segment {
                break;
            }
            segno += 1;
        }
        (wal, files)
    }

    /// Replays every valid record from `redo`; returns the end of the last valid record, its
    /// start and how many records were redone.
    /// Also returns the end of the checkpoint record: WAL up to there was fsynced before
    /// pg_control pointed at it, so it is known to be durable.
    fn redo(&mut self, redo: Lsn, redo_prev: Lsn, checkpoint_lsn: Lsn) -> (Lsn, Lsn, u64, Lsn) {
        let (mut at, mut prev, mut records) = (redo, redo_prev, 0u64);
        let mut durable = redo;
        let end = self.wal.end();
        while let Ok((record, start, record_end)) = self.wal.decode_at(at, prev, end) {
            // A restored node that restarts recovers to its target again, not past it.
            if self.recovery_stops_before(&record) {
                self.restorer.target_reached = true;
                break;
            }
            self.replay.apply_record(&mut self.store, &record);
            records += 1;
            if start == checkpoint_lsn {
                durable = record_end;
            }
            prev = start;
            at = record_end;
            if self.recovery_stops_after(start) {
                self.restorer.target_reached = true;
                break;
            }
        }
        // A primary's WAL ends here: a transaction without its commit record never committed.
        // A standby's WAL continues from upstream, where that commit may still arrive, so its
        // changes are kept for replay to apply then.
        if self.configured_role() == Role::Primary {
            self.replay.discard_pending();
        }
        (at, prev, records, durable.min(at))
    }

    /// Cuts the WAL file holding `end` there and removes later ones, so a torn or stale tail
    /// can never be read as records later. (PostgreSQL zero-fills the rest of the page and
    /// relies on page headers; truncating has the same effect.)
    /// The segment holding `end` was loaded from an older timeline's file (a standby cloned, or
    /// a node restarted, before its timeline's own copy of the segment was durable): WAL
    /// received or written next goes into the current timeline's file at `end`'s offset, so
    /// that file first gets the segment's head up to `end`. PostgreSQL gets the same by
    /// streaming from the segment's start (`RequestXLogStreaming`); without it the file began
    /// with zeros, and a node cloned from it later held a broken segment (swarm seed 32059).
    fn start_own_segment_if_borrowed(&mut self, loaded: &[FileId], end: Lsn, out: &mut Vec<Output>) {
        let segment = self.cfg.wal_segment_size_bytes;
        let end_segno = end.segment(segment);
        let borrowed = loaded.iter().any(
            |f| matches!(*f, FileId::WalSegment { timeline, segno } if segno == end_segno && timeline != self.timeline),
        );
        if borrowed && !end.0.is_multiple_of(segment) {
            self.start_timeline_file(end, out);
        }
    }

    fn drop_wal_beyond(&self, image: &DiskImage, loaded: &[FileId], end: Lsn, out: &mut Vec<Output>) {
        let segment = self.cfg.wal_segment_size_bytes;
        let end_seg = end.segment(segment);
        for file in image.files.keys() {
            if let FileId::WalSegment { segno, .. } = *file {
                if segno == end_seg && loaded.contains(file) {
                    out.push(Output::Truncate { file: *file, len: end.0 % segment });
                } else if segno > end_seg {
                    out.push(Output::Remove { file: *file });
                }
            }
        }
    }

    /// Redo's CPU time has passed: open for business in the configured role.
    /// PostgreSQL fsyncs the data directory before redo (`SyncDataDirectory` in
    /// `StartupXLOG`), so a server never opens, streams or reports positions on WAL that is not
    /// yet durable: recovery ends once redo and the boot-time fsyncs are both done.
    pub(crate) fn finish_recovery(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role != Role::Recovering {
            return;
        }
        self.redo_done = true;
        if self.flusher.fsync_in_flight.is_some() {
            return; // `on_wal_fsynced` finishes recovery
        }
        self.role = self.configured_role();
        out.push(Output::SetTimer { id: TimerId::Checkpoint, at: Instant(now.0 + self.cfg.checkpoint_timeout_ns) });
        match self.role {
            Role::Primary => {
                self.next_xid_past_replayed();
                let oldest_held = self.wal.start().0 / self.cfg.wal_segment_size_bytes;
                self.start_archiving(now, oldest_held, out);
                out.push(Output::SetTimer {
                    id: TimerId::WalWriter,
                    at: Instant(now.0 + self.cfg.wal_writer_delay_ns),
                });
                if self.recovery_records > 1 {
                    // The end-of-recovery checkpoint (PostgreSQL requests one after crash redo,
                    // CHECKPOINT_IMMEDIATE).
                    self.checkpointer.immediate = true;
                    self.request_checkpoint(now, out);
                }
                self.start_apply_workers(out);
            }
            Role::Standby => {
                self.start_walreceiver(now, out);
                self.start_slot_sync(now, out);
                if self.cfg.primary_conninfo.is_none() {
                    // No stream to wait for: the WAL source loop starts with the archive.
                    self.try_restore(out);
                }
                self.kick_replay(now, out);
            }
            _ => {}
        }
    }
}
