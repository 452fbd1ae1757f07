//! The WAL archive's object store (S3-like): what `archive_command` uploads, kept as each
//! segment's length and fingerprint, and its bytes when some node may restore them
//! (`restore_command`), for `retention` (the bytes share blocks with the nodes' disks while
//! those still hold the same WAL); and what each request costs (a round trip, `request_cost`,
//! the bytes at `bandwidth`). `archive_down` makes it refuse every request for a while.
//! Driven by `world/archive.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use repsim_engine::wal::blocks::BlockStore;

use crate::world::chunks::ChunkedBytes;

use crate::scenario::model::ArchiveSpec;
use crate::world::dist::sample_ns;
use crate::world::rng::Rng;

pub struct ArchiveStore {
    spec: ArchiveSpec,
    rng: Rng,
    down_until_ns: u64,
    /// `(timeline, segno)` -> `(length, fingerprint)`.
    segments: BTreeMap<(u32, u64), (u64, u64)>,
    /// The bytes of segments archived within `retention`, oldest first by archive time.
    contents: BTreeMap<(u32, u64), ChunkedBytes>,
    archived_order: VecDeque<(u64, (u32, u64))>,
    interner: BlockStore,
    pub restores: u64,
    /// Segment numbers with a copy on any timeline.
    segnos: BTreeSet<u64>,
    pub uploads: u64,
    pub refused: u64,
    /// Uploads refused because a different copy of the segment was archived before.
    pub overwrites_refused: u64,
    pub bytes: u64,
}

impl ArchiveStore {
    pub fn new(spec: ArchiveSpec, rng: Rng, interner: BlockStore) -> ArchiveStore {
        ArchiveStore {
            contents: BTreeMap::new(),
            archived_order: VecDeque::new(),
            interner,
            restores: 0,
            spec,
            rng,
            down_until_ns: 0,
            segments: BTreeMap::new(),
            segnos: BTreeSet::new(),
            uploads: 0,
            refused: 0,
            overwrites_refused: 0,
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
        let transfer = (bytes as u128 * 1_000_000_000 / self.spec.bandwidth_bytes_per_sec.max(1) as u128) as u64;
        round_trip + self.spec.request_cost_ns + transfer
    }

    /// Stores a segment, unless a different copy of it is there: an `archive_command` must
    /// refuse to overwrite an archived file (PostgreSQL's documentation; `test ! -f` in its
    /// example) and succeed on an identical one. Two promotions that pick the same timeline
    /// number (no `restore_command` shows them the other's history file) collide here, and
    /// the second primary's archiving fails until an operator intervenes.
    pub fn put(&mut self, key: (u32, u64), len: u64, fingerprint: u64, content: Option<Vec<u8>>, now_ns: u64) -> bool {
        let (timeline, segno) = key;
        match self.segments.get(&(timeline, segno)) {
            Some(&held) if held != (len, fingerprint) => {
                self.refused += 1;
                self.overwrites_refused += 1;
                false
            }
            _ => {
                self.uploads += 1;
                self.bytes += len;
                self.segnos.insert(segno);
                self.segments.insert((timeline, segno), (len, fingerprint));
                if let Some(bytes) = content {
                    self.contents.insert(key, ChunkedBytes::from_vec(bytes, &self.interner));
                    self.archived_order.push_back((now_ns, key));
                }
                self.expire(now_ns);
                true
            }
        }
    }

    /// Deletes the bytes of segments archived longer than `retention` ago.
    fn expire(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(self.spec.retention_ns);
        while self.archived_order.front().is_some_and(|(at, _)| *at < horizon) {
            let (_, key) = self.archived_order.pop_front().expect("checked front");
            self.contents.remove(&key);
        }
    }

    /// `restore_command` for `segno` of timeline `timeline`: the copy on that timeline, else
    /// on the newest earlier one (a timeline's history starts as its parent's WAL).
    pub fn get(&mut self, timeline: u32, segno: u64) -> Option<Vec<u8>> {
        let (_, bytes) = self.contents.range((0, segno)..=(timeline, segno)).rev().find(|((_, s), _)| *s == segno)?;
        self.restores += 1;
        Some(bytes.to_vec())
    }

    pub fn holds_segno(&self, segno: u64) -> bool {
        self.segnos.contains(&segno)
    }

    pub fn segments(&self) -> usize {
        self.segments.len()
    }
}
