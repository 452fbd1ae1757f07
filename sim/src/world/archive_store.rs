//! The WAL archive's object store (S3-like): what `archive_command` uploads, kept as each
//! segment's length and fingerprint, and its bytes when some node may restore them
//! (`restore_command`), for `retention` (the bytes share blocks with the nodes' disks while
//! those still hold the same WAL); and what each request costs (a round trip, `request_cost`,
//! the bytes at `bandwidth`). `archive_down` makes it refuse every request for a while.
//! Driven by `world/archive.rs`.

use std::collections::{BTreeMap, VecDeque};

use repsim_engine::wal::blocks::BlockStore;

use crate::world::chunks::ChunkedBytes;

use crate::scenario::model::ArchiveSpec;
use crate::world::dist::sample_ns;
use crate::world::rng::Rng;

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
    pub restores: u64,
    pub uploads: u64,
    /// `archive_command` runs that failed: the store down, or a different copy there.
    pub failed_requests: u64,
    pub bytes: u64,
}

impl ArchiveStore {
    pub fn new(spec: ArchiveSpec, rng: Rng, interner: BlockStore) -> ArchiveStore {
        ArchiveStore {
            spec,
            rng,
            down_until_ns: 0,
            segments: BTreeMap::new(),
            contents: BTreeMap::new(),
            archived_order: VecDeque::new(),
            interner,
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
        let transfer = (bytes as u128 * 1_000_000_000 / self.spec.bandwidth_bytes_per_sec.max(1) as u128) as u64;
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

    /// Deletes the bytes of segments archived longer than `retention` ago.
    fn expire(&mut self, now_ns: u64) {
        let horizon = now_ns.saturating_sub(self.spec.retention_ns);
        while self.archived_order.front().is_some_and(|(at, _)| *at < horizon) {
            let (_, key) = self.archived_order.pop_front().expect("checked front");
            self.contents.remove(&key);
        }
    }

    /// `restore_command` for `segno`: the copy of the newest of `timelines` (those of the
    /// restoring node's history that wrote part of the segment) the store holds.
    pub fn get(&mut self, timelines: std::ops::RangeInclusive<u32>, segno: u64) -> Option<Vec<u8>> {
        let (lo, hi) = timelines.into_inner();
        let (_, bytes) = self.contents.range((segno, lo)..=(segno, hi)).next_back()?;
        self.restores += 1;
        Some(bytes.to_vec())
    }

    /// A copy of segment `segno`, of any timeline, was archived.
    pub fn holds_segno(&self, segno: u64) -> bool {
        self.segments.range((segno, 0)..=(segno, u32::MAX)).next().is_some()
    }
}
