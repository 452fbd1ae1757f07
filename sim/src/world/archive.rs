//! The WAL archive (issue 13): the world runs `archive_command` for a node, uploading the
//! segment file from its disk to the object store (`world/archive_store.rs`), and answers
//! the node when the upload ends.
//!
//! Two live oracles: `archive_identical` (what `archive_command` uploads is the whole segment,
//! byte-identical to the WAL its primary wrote there) and
//! `archived_before_recycled` (a primary removes a segment it archives only once a copy is in
//! the store).

use repsim_engine::io::{FileId, Input};
use repsim_engine::NodeId;

use crate::world::event::EventKind;
use crate::world::World;

fn fingerprint(bytes: &[u8]) -> u64 {
    repsim_engine::fingerprint::fold_bytes(repsim_engine::fingerprint::FINGERPRINT_START, bytes)
}

impl World {
    /// `node` runs `archive_command` for `file`: it reads the file and uploads it.
    pub(crate) fn run_archive_command(&mut self, node: NodeId, file: FileId) {
        let incarnation = self.nodes[node as usize].incarnation;
        let FileId::WalSegment { timeline, segno } = file else { return };
        self.nodes[node as usize].first_archived_segno.get_or_insert(segno);
        let done = |ok| EventKind::Input { node, incarnation, input: Input::ArchiveDone { file, ok } };
        let Some(bytes) = self.nodes[node as usize].disk.page_cache_view(file) else {
            // cp: cannot stat: No such file or directory.
            self.archive.failed_requests += 1;
            return self.schedule(self.now_ns, done(false));
        };
        self.audit_archived_bytes(node, segno, &bytes);
        if self.archive.is_down(self.now_ns) {
            self.archive.failed_requests += 1;
            let at = self.now_ns + self.archive.request_ns(0);
            return self.schedule(at, done(false));
        }
        let len = bytes.len() as u64;
        let at = self.now_ns + self.archive.request_ns(len);
        let print = fingerprint(&bytes);
        // The bytes are kept only where a standby may restore them.
        let content = self.archive.keeps_contents.then_some(bytes);
        self.schedule(
            at,
            EventKind::ArchiveUploaded { node, incarnation, timeline, segno, len, fingerprint: print, content },
        );
    }

    /// An upload finished: stored, unless the store went down meanwhile.
    pub(crate) fn archive_uploaded(
        &mut self,
        (node, incarnation): (NodeId, u64),
        file: (u32, u64),
        (len, print): (u64, u64),
        content: Option<Vec<u8>>,
    ) {
        let (timeline, segno) = file;
        let ok = if self.archive.is_down(self.now_ns) {
            self.archive.failed_requests += 1;
            false
        } else {
            self.archive.put(file, len, print, content, self.now_ns)
        };
        let input = Input::ArchiveDone { file: FileId::WalSegment { timeline, segno }, ok };
        self.schedule(self.now_ns, EventKind::Input { node, incarnation, input });
    }

    /// `node` runs `restore_command` for `file`: the archive's copy, after a request, or
    /// nothing (not archived, retention expired it, or the store is down).
    pub(crate) fn run_restore_command(&mut self, node: NodeId, file: FileId, timelines: &[u32]) {
        let incarnation = self.nodes[node as usize].incarnation;
        let FileId::WalSegment { timeline, segno } = file else { return };
        let down = self.archive.is_down(self.now_ns);
        let found = if down { None } else { self.archive.get(timelines, segno) };
        self.note_restore_request(node, segno, found.as_ref().map(|(t, _)| *t), down);
        let at = self.now_ns + self.archive.request_ns(found.as_ref().map_or(0, |(_, b)| b.len() as u64));
        // The answer names the timeline of the copy found.
        let (timeline, bytes) = found.map_or((timeline, None), |(t, b)| (t, Some(b)));
        let input = Input::Restored { file: FileId::WalSegment { timeline, segno }, bytes };
        self.schedule(at, EventKind::Input { node, incarnation, input });
    }

    /// What `archive_command` read must be the whole segment, as the node's WAL has it.
    fn audit_archived_bytes(&mut self, node: NodeId, segno: u64, bytes: &[u8]) {
        let segment = self.scenario.replication.wal_segment_size_bytes;
        let Some(engine) = self.nodes[node as usize].engine.as_ref() else { return };
        let (from, to) = (repsim_engine::Lsn(segno * segment), repsim_engine::Lsn((segno + 1) * segment));
        let finding = if bytes.len() as u64 != segment {
            Some(format!("archived segment {segno} with {} of its {segment} bytes", bytes.len()))
        } else if let Some(pieces) = engine.wal_pieces(from, to) {
            let mut at = 0;
            let mut differs = false;
            for piece in pieces {
                differs |= *piece.bytes() != bytes[at..at + piece.len()];
                at += piece.len();
            }
            differs.then(|| format!("archived segment {segno} differs from the WAL its primary wrote there"))
        } else {
            None
        };
        if let Some(text) = finding {
            let name = self.nodes[node as usize].name.clone();
            self.live.record("archive_identical", self.now_ns, || format!("{name}: {text}"));
        }
    }

    /// Once a second: how far the archive is behind `primary`, and how much `pg_wal` it holds.
    pub(crate) fn sample_archive(&mut self, primary: usize) {
        if !self.scenario.replication.archive_mode {
            return;
        }
        let Some(engine) = self.nodes[primary].engine.as_ref() else { return };
        let (Some(next), oldest_since_ns) = engine.archive_progress() else { return };
        let segment = self.scenario.replication.wal_segment_size_bytes;
        let status = engine.status();
        let lag_bytes = status.flush_lsn.0.saturating_sub(next * segment);
        let lag_ns =
            oldest_since_ns.map_or(0, |since| self.nodes[primary].clock.local(self.now_ns).saturating_sub(since));
        self.metrics.archive_lag.sample(self.now_ns, lag_bytes, [None, None, Some(lag_ns)]);
        let held = status.insert_lsn.0.saturating_sub(status.wal_start_lsn.0);
        self.metrics.pg_wal_max_bytes = self.metrics.pg_wal_max_bytes.max(held);
    }

    /// `node` removes a WAL segment file: if it archives that segment, a copy must be stored.
    pub(crate) fn audit_wal_removal(&mut self, node: NodeId, file: FileId) {
        let FileId::WalSegment { segno, .. } = file else { return };
        let slot = &self.nodes[node as usize];
        // The node's logical slots as its disk has them (`slot_wal_kept`). Not while it recovers:
        // the segments crash recovery removes then lie past the end of its valid WAL, which no
        // slot needs.
        let recovering = slot.engine.as_ref().is_some_and(|e| e.role() == repsim_engine::Role::Recovering);
        if let Some((_, saved)) = slot.disk.durable_slot_state().filter(|_| !recovering) {
            let segment_bytes = self.scenario.replication.wal_segment_size_bytes;
            if let Some(text) = crate::check::oracle::slots::slot_wal_kept(&slot.name, &saved, segno, segment_bytes) {
                self.live.record("slot_wal_kept", self.now_ns, || text);
            }
        }
        let slot = &self.nodes[node as usize];
        let archives_it = slot.first_archived_segno.is_some_and(|first| segno >= first);
        if archives_it && !self.archive.holds_segno(segno) {
            let name = slot.name.clone();
            self.live.record("archived_before_recycled", self.now_ns, || {
                format!("{name} removed WAL segment {segno} before it was archived")
            });
        }
    }
}
