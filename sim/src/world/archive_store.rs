//! The WAL archive's object store (S3-like): what `archive_command` uploads, kept as each
//! segment's length and fingerprint, and its bytes when some node may restore them
//! (`restore_command`), for `retention` (the bytes share blocks with the nodes' disks while
//! those still hold the same WAL); and what each request costs (a round trip, `request_cost`,
//! the bytes at `bandwidth`). `archive_down` makes it refuse every request for a while.
//! Driven by `world/archive.rs`.

use std::collections::{BTreeMap, VecDeque};

use repsim_engine::io::DiskImage;
use repsim_engine::wal::blocks::BlockStore;
use repsim_engine::{Lsn, NodeId};

use repsim_engine::wal::chunks::ChunkedBytes;

use crate::scenario::model::ArchiveSpec;
use crate::world::dist::{sample_ns, transfer_ns};
use crate::world::rng::Rng;

/// A base backup in the store: the image to restore and what it is.
#[derive(Clone, Debug)]
pub struct BaseBackup {
    pub from: NodeId,
    /// When it was taken (the snapshot) and when its upload finished.
    pub started_ns: u64,
    pub finished_ns: u64,
    pub timeline: u32,
    /// The checkpoint's redo point it starts from, its segment, and the end of the WAL it holds.
    pub start_lsn: Lsn,
    pub start_segno: u64,
    pub stop_lsn: Lsn,
    pub bytes: u64,
    pub image: DiskImage,
}

pub struct ArchiveStore {
    spec: ArchiveSpec,
    rng: Rng,
    down_until_ns: u64,
    /// `(segno, timeline)` -> `(length, fingerprint)`: a segment's copies next to each other.
    segments: BTreeMap<(u64, u32), (u64, u64)>,
    /// The bytes of segments archived within `retention`, and the order they came in.
    contents: BTreeMap<(u64, u32), ChunkedBytes>,
    archived_order: VecDeque<(u64, (u64, u32))>,
    interner: BlockStore,
    /// Segments' bytes are kept (a standby may restore them, or a `restore` may run).
    pub keeps_contents: bool,
    /// The kept base backups, oldest first (at most `keep_backups`).
    backups: VecDeque<BaseBackup>,
    /// Each timeline's history file (PostgreSQL archives it at the promotion that starts the
    /// timeline), encoded.
    histories: BTreeMap<u32, Vec<u8>>,
    pub backups_taken: u64,
    pub backup_bytes: u64,
    pub backup_duration_max_ns: u64,
    pub restores: u64,
    pub uploads: u64,
    /// `archive_command` runs that failed: the store down, or a different copy there.
    pub failed_requests: u64,
    pub bytes: u64,
}

impl ArchiveStore {
    pub fn new(spec: ArchiveSpec, rng: Rng, interner: BlockStore, keeps_contents: bool) -> ArchiveStore {
        ArchiveStore {
            keeps_contents,
            spec,
            rng,
            down_until_ns: 0,
            segments: BTreeMap::new(),
            contents: BTreeMap::new(),
            archived_order: VecDeque::new(),
            interner,
            backups: VecDeque::new(),
            histories: BTreeMap::new(),
            backups_taken: 0,
            backup_bytes: 0,
            backup_duration_max_ns: 0,
            restores: 0,
            uploads: 0,
            failed_requests: 0,
            bytes: 0,
        }
    }

    pub fn is_down(&self, now_ns: u64) -> bool {
        now_ns < self.down_until_ns
    }

    pub fn take_down(&mut self, until_ns: u64) {
        self.down_until_ns = self.down_until_ns.max(until_ns);
    }

    /// How long a request carrying `bytes` takes: a round trip, the request cost, the bytes.
    pub fn request_ns(&mut self, bytes: u64) -> u64 {
        let round_trip = sample_ns(&self.spec.latency, &mut self.rng) + sample_ns(&self.spec.latency, &mut self.rng);
        let transfer = transfer_ns(bytes, self.spec.bandwidth_bytes_per_sec);
        round_trip + self.spec.request_cost_ns + transfer
    }

    /// Stores segment `segno` of `timeline`, unless a different copy of it is there: an
    /// `archive_command` must refuse to overwrite an archived file (PostgreSQL's
    /// documentation; `test ! -f` in its example) and succeed on an identical one. Two
    /// promotions that pick the same timeline number (no `restore_command` shows them the
    /// other's history file) collide here, and the second primary's archiving fails until an
    /// operator intervenes.
    pub fn put(
        &mut self,
        (timeline, segno): (u32, u64),
        len: u64,
        fingerprint: u64,
        content: Option<Vec<u8>>,
        now_ns: u64,
    ) -> bool {
        let key = (segno, timeline);
        if self.segments.get(&key).is_some_and(|&held| held != (len, fingerprint)) {
            self.failed_requests += 1;
            return false;
        }
        self.uploads += 1;
        self.bytes += len;
        self.segments.insert(key, (len, fingerprint));
        if let Some(bytes) = content {
            self.contents.insert(key, ChunkedBytes::from_vec(bytes, &self.interner));
            self.archived_order.push_back((now_ns, key));
        }
        self.expire(now_ns);
        true
    }

    /// Deletes the bytes of segments archived longer than `retention` ago, except WAL a kept
    /// base backup needs (from the oldest one's start on).
    fn expire(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(self.spec.retention_ns);
        let needed_from = self.backups.front().map_or(u64::MAX, |b| b.start_segno);
        let expired = |&(at, (segno, _)): &(u64, (u64, u32))| at < horizon && segno < needed_from;
        while self.archived_order.front().is_some_and(expired) {
            let (_, key) = self.archived_order.pop_front().expect("checked front");
            self.contents.remove(&key);
        }
    }

    /// `restore_command` for `segno`: the copy of the first of `timelines` (those of the
    /// restoring node's history that wrote part of the segment, newest first) the store holds.
    /// Returns the copy's timeline and bytes.
    pub fn get(&mut self, timelines: &[u32], segno: u64) -> Option<(u32, Vec<u8>)> {
        let (timeline, bytes) =
            timelines.iter().find_map(|&t| self.contents.get(&(segno, t)).map(|bytes| (t, bytes)))?;
        self.restores += 1;
        Some((timeline, bytes.to_vec()))
    }

    /// A base backup finished uploading: kept, and the oldest beyond `keep_backups` deleted with
    /// the WAL only it needed (WAL-G `delete retain N`).
    pub fn add_backup(&mut self, backup: BaseBackup) {
        self.backups_taken += 1;
        self.backup_bytes += backup.bytes;
        self.backup_duration_max_ns = self.backup_duration_max_ns.max(backup.finished_ns - backup.started_ns);
        self.backups.push_back(backup);
        while self.backups.len() > self.spec.keep_backups as usize {
            self.backups.pop_front();
        }
        let needed_from = self.backups.front().map_or(0, |b| b.start_segno);
        self.contents.retain(|&(segno, _), _| segno >= needed_from);
        self.archived_order.retain(|(_, (segno, _))| *segno >= needed_from);
    }

    /// The newest kept backup a restore to `fits` can start from.
    pub fn pick_backup(&self, fits: impl Fn(&BaseBackup) -> bool) -> Option<&BaseBackup> {
        self.backups.iter().rev().find(|b| fits(b))
    }

    pub fn backups(&self) -> impl Iterator<Item = &BaseBackup> {
        self.backups.iter()
    }

    pub fn note_history(&mut self, timeline: u32, encode: impl FnOnce() -> Vec<u8>) {
        if timeline > 1 {
            self.histories.entry(timeline).or_insert_with(encode);
        }
    }

    /// The newest timeline's history file whose history continues timeline `timeline` past
    /// `from` (a backup's checkpoint), as `recovery_target_timeline = latest` finds it.
    pub fn newest_history_from(&self, timeline: u32, from: Lsn) -> Option<(u32, &[u8])> {
        let continues = |bytes: &[u8]| {
            repsim_engine::timeline::History::decode(bytes)
                .is_some_and(|h| h.end_of(timeline).is_some_and(|s| s >= from))
        };
        self.histories.iter().rev().find(|(t, b)| **t == timeline || continues(b)).map(|(t, b)| (*t, b.as_slice()))
    }

    /// A copy of segment `segno`, of any timeline, was archived.
    pub fn holds_segno(&self, segno: u64) -> bool {
        self.segments.range((segno, 0)..=(segno, u32::MAX)).next().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Dist;

    const SEG: u64 = 1024;

    fn store(keep_backups: u32, retention_ns: u64) -> ArchiveStore {
        let spec = ArchiveSpec {
            latency: Dist::Constant { value_ns: 1 },
            bandwidth_bytes_per_sec: 1 << 30,
            request_cost_ns: 0,
            retention_ns,
            backup_interval_ns: 0,
            keep_backups,
        };
        ArchiveStore::new(spec, crate::world::rng::stream(1, "archive"), BlockStore::default(), true)
    }

    fn backup(start_segno: u64, at_ns: u64) -> BaseBackup {
        BaseBackup {
            from: 0,
            started_ns: at_ns,
            finished_ns: at_ns,
            timeline: 1,
            start_lsn: Lsn(start_segno * SEG),
            start_segno,
            stop_lsn: Lsn(start_segno * SEG + 10),
            bytes: 100,
            image: DiskImage::default(),
        }
    }

    fn archive(s: &mut ArchiveStore, segnos: std::ops::Range<u64>, at_ns: u64) {
        for segno in segnos {
            assert!(s.put((1, segno), SEG, segno, Some(vec![segno as u8; SEG as usize]), at_ns));
        }
    }

    #[test]
    fn keep_backups_deletes_the_oldest_backup_and_the_wal_only_it_needed() {
        let mut s = store(2, u64::MAX);
        archive(&mut s, 1..10, 0);
        for (start, at) in [(2, 10), (5, 20), (8, 30)] {
            s.add_backup(backup(start, at));
        }
        let kept: Vec<u64> = s.backups().map(|b| b.start_segno).collect();
        assert_eq!(kept, vec![5, 8], "two kept, the oldest deleted");
        assert!(s.get(&[1], 4).is_none(), "WAL before the oldest kept backup is deleted");
        assert_eq!(s.get(&[1], 5).map(|(t, b)| (t, b[0])), Some((1, 5)), "its own WAL is kept");
        let whole_from = |s: &mut ArchiveStore, from: u64| (from..).find(|&segno| s.get(&[1], segno).is_none());
        assert_eq!(whole_from(&mut s, 5), Some(10), "the chain from the oldest backup is whole");
        assert_eq!(s.pick_backup(|b| b.started_ns <= 25).map(|b| b.start_segno), Some(5));
    }

    #[test]
    fn time_retention_spares_the_wal_a_kept_backup_needs() {
        let mut s = store(2, 100);
        archive(&mut s, 1..6, 0);
        s.add_backup(backup(3, 0));
        archive(&mut s, 6..7, 1_000);
        assert!(s.get(&[1], 2).is_none(), "older than retention and before every backup: deleted");
        assert!(s.get(&[1], 3).is_some(), "older than retention, but the backup needs it");
        assert_eq!((3..).find(|&segno| s.get(&[1], segno).is_none()), Some(7));
    }
}
