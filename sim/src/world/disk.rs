//! A node's disk: one FIFO queue of operations with write and fsync latency distributions and a
//! bandwidth. Bytes written are volatile (the OS page cache) until an fsync of their file
//! completes; a crash drops them, or with `torn_write_probability` keeps a random subset of
//! their 512-byte sectors (a torn write). Truncate and remove are durable at once.

use std::cell::Cell;
use std::collections::BTreeMap;

use repsim_engine::io::{DiskImage, FileId};
use repsim_engine::wal::blocks::BlockStore;
use repsim_engine::wal::chunks::ChunkedBytes;

use crate::check::oracle::WalFacts;
use crate::scenario::model::DiskSpec;
use crate::world::dist::{sample_ns, transfer_ns};
use crate::world::rng::Rng;

pub const SECTOR_BYTES: usize = 512;

#[derive(Clone, Debug)]
pub enum DiskOp {
    /// `cost_bytes`: the device work it stands for (`repsim_engine::io::Output::Write`).
    Write {
        file: FileId,
        offset: u64,
        bytes: Vec<u8>,
        cost_bytes: u64,
    },
    Fsync {
        file: FileId,
    },
}

#[derive(Clone, Debug, Default)]
struct File {
    durable: ChunkedBytes,
    /// Completed but unsynced writes, in completion order.
    volatile: Vec<(u64, Vec<u8>)>,
}

impl File {
    /// The page cache reaches the disk: unsynced writes become durable, in order. Drained, not
    /// taken: the list keeps its capacity for the next writes.
    fn sync(&mut self, interner: &BlockStore) {
        for (offset, bytes) in self.volatile.drain(..) {
            self.durable.write_at(offset as usize, &bytes, interner);
        }
    }
}

pub struct Disk {
    spec: DiskSpec,
    /// Full chunks of file contents, shared with the other disks of the world.
    interner: BlockStore,
    files: BTreeMap<FileId, File>,
    /// Operations issued, not completed, in order: completion time, the op, and whether it
    /// fails (`fsync_error`).
    queue: std::collections::VecDeque<(u64, DiskOp, bool)>,
    /// `fsync_error`: the next fsync submitted fails.
    fail_next_fsync: bool,
    free_at_ns: u64,
    /// Latencies are multiplied by this until `slow_until_ns`.
    slow_factor: f64,
    slow_until_ns: u64,
    rng: Rng,
    pub bytes_written: u64,
    pub fsyncs: u64,
    /// `wal_extent`'s last answer. The oracles ask after every WAL message and commit, and
    /// walking the segment files each time was 3 % of a loaded run's instructions: the answer
    /// is kept exact as WAL writes and fsyncs complete (each only moves an end forward) and
    /// dropped on anything else that changes the files.
    wal_extent_memo: Cell<Option<WalExtentMemo>>,
}

/// What `wal_extent` was asked, and its answer.
#[derive(Clone, Copy, Debug)]
struct WalExtentMemo {
    segment_size_bytes: u64,
    max_timeline: u32,
    facts: WalFacts,
}

fn files_of(image: DiskImage, interner: &BlockStore) -> BTreeMap<FileId, File> {
    image
        .files
        .into_iter()
        .map(|(id, bytes)| (id, File { durable: bytes.share_full(interner), volatile: Vec::new() }))
        .collect()
}

impl Disk {
    pub fn new(spec: DiskSpec, image: DiskImage, rng: Rng, interner: BlockStore) -> Disk {
        let files = files_of(image, &interner);
        Disk {
            spec,
            interner,
            files,
            queue: Default::default(),
            fail_next_fsync: false,
            free_at_ns: 0,
            slow_factor: 1.0,
            slow_until_ns: 0,
            rng,
            bytes_written: 0,
            fsyncs: 0,
            wal_extent_memo: Cell::new(None),
        }
    }

    /// `file` now holds bytes durably up to `durable_end` and in the page cache up to
    /// `written_end` (offsets in the file).
    fn wal_extended(&self, file: FileId, durable_end: u64, written_end: u64) {
        let Some(mut memo) = self.wal_extent_memo.get() else { return };
        let FileId::WalSegment { timeline, segno } = file else { return };
        if timeline > memo.max_timeline {
            return;
        }
        let base = segno * memo.segment_size_bytes;
        memo.facts.durable_end = memo.facts.durable_end.max(base + durable_end);
        memo.facts.written_end = memo.facts.written_end.max(base + written_end.max(durable_end));
        self.wal_extent_memo.set(Some(memo));
    }

    /// The files changed in a way that may move an end back.
    fn forget_wal_extent(&self) {
        self.wal_extent_memo.set(None);
    }

    /// An operation is still queued (for the end-of-run checker).
    pub fn is_busy(&self) -> bool {
        !self.queue.is_empty()
    }

    /// `fsync_error`: the next fsync submitted fails.
    pub fn fail_next_fsync(&mut self) {
        self.fail_next_fsync = true;
    }

    /// Settle: the disk's faults end, a slow spell and an `fsync_error` not yet fired alike
    /// (swarm seed 7831: one armed at 17 s fired at the checkpoint's fsync 40 s later, a second
    /// before the end, and the primary was still in crash recovery when the run ended).
    pub fn heal(&mut self) {
        self.slow(1.0, 0);
        self.fail_next_fsync = false;
    }

    pub fn slow(&mut self, factor: f64, until_ns: u64) {
        self.slow_factor = factor;
        self.slow_until_ns = until_ns;
    }

    /// Queues an operation; returns when it completes.
    pub fn submit(&mut self, now_ns: u64, op: DiskOp) -> u64 {
        let (latency_ns, bytes) = match &op {
            DiskOp::Write { cost_bytes, .. } => (sample_ns(&self.spec.write, &mut self.rng), *cost_bytes),
            DiskOp::Fsync { .. } => (sample_ns(&self.spec.fsync, &mut self.rng), 0),
        };
        let fails = matches!(op, DiskOp::Fsync { .. }) && std::mem::take(&mut self.fail_next_fsync);
        let start = now_ns.max(self.free_at_ns);
        let transfer_ns = transfer_ns(bytes, self.spec.bandwidth_bytes_per_sec);
        // A slow window stretches only the part of an operation inside it: work done at
        // 1/factor speed until the window ends, at full speed after. (Saturating: the
        // scenario's bounds keep runs far from u64 time.)
        let work_ns = latency_ns.saturating_add(transfer_ns) as f64;
        let done = if start < self.slow_until_ns {
            let window_ns = (self.slow_until_ns - start) as f64;
            if work_ns * self.slow_factor <= window_ns {
                start.saturating_add((work_ns * self.slow_factor) as u64)
            } else {
                self.slow_until_ns.saturating_add((work_ns - window_ns / self.slow_factor) as u64)
            }
        } else {
            start.saturating_add(work_ns as u64)
        };
        self.free_at_ns = done;
        self.queue.push_back((done, op, fails));
        done
    }

    /// The oldest queued operation completes (the caller schedules completions in order).
    /// Returns false if it failed: a failed fsync loses the file's unsynced bytes, as Linux
    /// drops the dirty pages after reporting EIO.
    pub fn complete_next(&mut self) -> bool {
        let Some((_, op, fails)) = self.queue.pop_front() else {
            return true;
        };
        if fails {
            if let DiskOp::Fsync { file } = op {
                if let Some(f) = self.files.get_mut(&file) {
                    f.volatile.clear();
                }
                self.forget_wal_extent();
            }
            return false;
        }
        match op {
            DiskOp::Write { file, offset, bytes, cost_bytes } => {
                self.bytes_written += cost_bytes;
                let end = offset + bytes.len() as u64;
                self.files.entry(file).or_default().volatile.push((offset, bytes));
                // A segment file counts as durable to its start (`walk_wal_extent`), even new.
                self.wal_extended(file, 0, end);
            }
            DiskOp::Fsync { file } => {
                self.fsyncs += 1;
                // fsync of a file that does not exist (removed meanwhile) does nothing.
                if let Some(f) = self.files.get_mut(&file) {
                    f.sync(&self.interner);
                    let durable_len = f.durable.len() as u64;
                    self.wal_extended(file, durable_len, durable_len);
                }
            }
        }
        true
    }

    /// God's view of the WAL on this disk, for the live oracles: the end of the WAL the OS
    /// holds (written, possibly volatile) and of the WAL that survives power loss (durable),
    /// over the segment files of timelines up to `max_timeline`.
    pub fn wal_extent(&self, segment_size_bytes: u64, max_timeline: u32) -> WalFacts {
        if let Some(memo) = self.wal_extent_memo.get() {
            if (memo.segment_size_bytes, memo.max_timeline) == (segment_size_bytes, max_timeline) {
                debug_assert_eq!(memo.facts, self.walk_wal_extent(segment_size_bytes, max_timeline));
                return memo.facts;
            }
        }
        let facts = self.walk_wal_extent(segment_size_bytes, max_timeline);
        self.wal_extent_memo.set(Some(WalExtentMemo { segment_size_bytes, max_timeline, facts }));
        facts
    }

    fn walk_wal_extent(&self, segment_size_bytes: u64, max_timeline: u32) -> WalFacts {
        let mut extent = WalFacts::default();
        // FileId orders WAL segments together, after Control and Data and before History.
        let segments = FileId::WalSegment { timeline: 0, segno: 0 }..FileId::History(0);
        for (id, file) in self.files.range(segments) {
            let FileId::WalSegment { timeline, segno } = *id else { continue };
            if timeline > max_timeline {
                continue;
            }
            let base = segno * segment_size_bytes;
            let durable = base + file.durable.len() as u64;
            let written =
                file.volatile.iter().map(|(offset, bytes)| base + offset + bytes.len() as u64).max().unwrap_or(0);
            extent.durable_end = extent.durable_end.max(durable);
            extent.written_end = extent.written_end.max(durable).max(written);
        }
        extent
    }

    pub fn truncate(&mut self, file: FileId, len: u64) {
        self.forget_wal_extent();
        if let Some(f) = self.files.get_mut(&file) {
            f.sync(&self.interner);
            f.durable.truncate(len as usize);
        }
    }

    pub fn remove(&mut self, file: FileId) {
        self.forget_wal_extent();
        self.files.remove(&file);
    }

    /// Power loss: queued operations vanish; unsynced bytes are lost, or torn.
    pub fn crash(&mut self) {
        self.forget_wal_extent();
        self.queue.clear();
        self.free_at_ns = 0;
        let p = self.spec.torn_write_probability;
        for f in self.files.values_mut() {
            for (offset, bytes) in std::mem::take(&mut f.volatile) {
                if p <= 0.0 {
                    continue;
                }
                for (i, sector) in bytes.chunks(SECTOR_BYTES).enumerate() {
                    if self.rng.chance(p) {
                        f.durable.write_at(offset as usize + i * SECTOR_BYTES, sector, &self.interner);
                    }
                }
            }
        }
        self.files.retain(|_, f| !f.durable.is_empty());
    }

    /// The process stopped but the host stays up: the page cache is intact and will reach the
    /// disk, so unsynced writes count as durable.
    pub fn stop_process(&mut self) {
        self.forget_wal_extent();
        self.queue.clear();
        for f in self.files.values_mut() {
            f.sync(&self.interner);
        }
    }

    /// A rewind or clone replaced the data directory.
    pub fn replace_image(&mut self, image: DiskImage) {
        self.forget_wal_extent();
        self.queue.clear();
        self.files = files_of(image, &self.interner);
    }

    /// `file` as a process reading it sees it (durable bytes with unsynced writes over them).
    pub fn page_cache_view(&self, file: FileId) -> Option<Vec<u8>> {
        let f = self.files.get(&file)?;
        let mut bytes = f.durable.to_vec();
        for (offset, data) in &f.volatile {
            let end = *offset as usize + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[*offset as usize..end].copy_from_slice(data);
        }
        Some(bytes)
    }

    /// The logical slots saved whole on this disk (the newest of the two state files).
    pub fn durable_slot_state(&self) -> Option<(u64, Vec<repsim_engine::logical::slot::LogicalSlot>)> {
        let files = (0..2u8)
            .map(FileId::ReplSlots)
            .filter_map(|id| self.files.get(&id).map(|f| (id, f.durable.clone())))
            .collect();
        repsim_engine::logical::slot::newest_saved(&files)
    }

    /// What survives a crash right now.
    pub fn durable_image(&self) -> DiskImage {
        DiskImage { files: self.files.iter().map(|(id, f)| (*id, f.durable.clone())).collect() }
    }

    /// The full chunks of every file, as shared blocks (to count how many holders share them).
    pub fn shared_blocks(&self) -> impl Iterator<Item = &repsim_engine::wal::blocks::Block> + '_ {
        self.files.values().flat_map(|f| f.durable.shared_blocks())
    }

    /// Nothing is held durably (a spare never cloned).
    pub fn holds_nothing(&self) -> bool {
        self.files.values().all(|f| f.durable.is_empty())
    }

    /// Bytes the server would hold durably: a checkpoint's data file counts every row
    /// (`io::file_cost_bytes`), however compactly the simulation keeps it.
    pub fn durable_bytes(&self) -> u64 {
        self.files.iter().map(|(id, f)| repsim_engine::io::chunked_file_cost_bytes(*id, &f.durable)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Dist;
    use crate::world::rng::stream;

    fn disk(torn: f64) -> Disk {
        let spec = DiskSpec {
            write: Dist::Constant { value_ns: 10 },
            fsync: Dist::Constant { value_ns: 1000 },
            bandwidth_bytes_per_sec: 1_000_000_000,
            torn_write_probability: torn,
        };
        Disk::new(spec, DiskImage::default(), stream(1, "disk"), Default::default())
    }

    const F: FileId = FileId::WalSegment { timeline: 1, segno: 1 };

    #[test]
    fn only_fsynced_bytes_survive_a_crash() {
        let mut d = disk(0.0);
        let t1 = d.submit(0, DiskOp::Write { file: F, offset: 0, bytes: vec![1; 100], cost_bytes: 100 });
        let t2 = d.submit(0, DiskOp::Fsync { file: F });
        assert!(t2 > t1);
        d.complete_next();
        d.complete_next();
        d.submit(t2, DiskOp::Write { file: F, offset: 100, bytes: vec![2; 100], cost_bytes: 100 });
        d.complete_next();
        d.crash();
        assert_eq!(d.durable_image().read(F), Some(vec![1; 100]));
    }

    /// A checkpoint's data file of 1,000 inserted rows is held in a few dozen bytes, but the disk
    /// reports what a server would store: every row.
    #[test]
    fn durable_bytes_count_every_row_of_a_data_file() {
        use repsim_engine::storage::Store;
        use repsim_engine::wal::record::RowChange;
        let mut store = Store::default();
        for key in 1..=1000 {
            store.apply(&RowChange::Insert { table: 1, key, write_id: key, value_len: 100 });
        }
        let file = store.to_data_file(repsim_engine::Lsn(4096));
        assert!(file.len() < 100, "the compact image is {} bytes", file.len());
        let mut image = DiskImage::default();
        image.files.insert(FileId::Data(1), file.into());
        image.files.insert(F, vec![3; 500].into());
        let spec = DiskSpec {
            write: Dist::Constant { value_ns: 10 },
            fsync: Dist::Constant { value_ns: 1000 },
            bandwidth_bytes_per_sec: 1_000_000_000,
            torn_write_probability: 0.0,
        };
        let d = Disk::new(spec, image, stream(1, "disk"), Default::default());
        assert_eq!(d.durable_bytes(), 16 + 1000 * 24 + 4 + 500);
    }

    #[test]
    fn torn_writes_keep_whole_sectors_only() {
        let mut d = disk(0.5);
        d.submit(
            0,
            DiskOp::Write {
                file: F,
                offset: 0,
                bytes: vec![7; 64 * SECTOR_BYTES],
                cost_bytes: (64 * SECTOR_BYTES) as u64,
            },
        );
        d.complete_next();
        d.crash();
        let survived = d.durable_image().read(F).unwrap_or_default();
        assert!(survived.len().is_multiple_of(SECTOR_BYTES));
        let kept = survived.chunks(SECTOR_BYTES).filter(|s| s[0] == 7).count();
        assert!(kept > 0 && kept < 64, "kept {kept} of 64 sectors");
        assert!(survived.chunks(SECTOR_BYTES).all(|s| s.iter().all(|&b| b == s[0])));
    }

    #[test]
    fn operations_complete_in_order_and_slow_windows_stretch_them() {
        let mut d = disk(0.0);
        let a = d.submit(0, DiskOp::Fsync { file: F });
        d.slow(10.0, 1_000_000);
        let b = d.submit(0, DiskOp::Fsync { file: F });
        assert_eq!(a, 1000);
        assert_eq!(b, 1000 + 10_000);
    }
}
