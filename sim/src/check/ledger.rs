//! The checker's ledger of acknowledged writes: every one, with the promise it carried, so that
//! lost writes are counted exactly at the end of a run. It grows with the writes of a run, so it
//! is held compactly (varint deltas) and spilled to a temporary file a megabyte at a time: a
//! long run's memory stays flat (issue 11), and reading it back is one pass at the end.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use repsim_engine::config::SyncCommitLevel;
use repsim_engine::{Lsn, NodeId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckedWrite {
    pub write_id: u64,
    pub commit_lsn: Lsn,
    pub level: SyncCommitLevel,
    /// The node that acknowledged it.
    pub node: NodeId,
    /// Bit i set: standby i had confirmed it (the promise's `confirmed_by`).
    pub confirmed_by_mask: u64,
    /// Acknowledged on a deposed primary's dead branch.
    pub split_brain: bool,
    /// When the primary released the commit (sent the acknowledgement).
    pub acked_at_ns: u64,
    /// When the commit request reached the primary (at most `acked_at_ns`): a confirming
    /// standby's loss from then on may break a `remote_write` promise before the ack.
    pub arrived_at_ns: u64,
    /// The timeline of the node that acknowledged it.
    pub timeline: u32,
}

/// The acknowledged writes, in the order they were recorded, each stored as varint deltas from
/// the one before (about 12 bytes where an `AckedWrite` takes 56). Every `SPILL_BYTES` of them
/// go to a temporary file, so that memory stays flat however long the run.
#[derive(Default)]
pub struct Ledger {
    /// The newest writes, not yet spilled: whole entries.
    bytes: Vec<u8>,
    spill: Option<Spill>,
    len: usize,
    last: Option<AckedWrite>,
}

/// Entries held before they are written out: 1 MiB, about 90,000 writes.
pub const SPILL_BYTES: usize = 1 << 20;
/// The longest entry: seven varints of at most ten bytes and a flags byte.
const MAX_ENTRY_BYTES: usize = 7 * 10 + 1;
/// The most a ledger holds in memory where it can spill.
pub const MAX_HELD_BYTES: usize = SPILL_BYTES + MAX_ENTRY_BYTES;

/// The older entries, in a file nobody else opens (unlinked at once where the platform allows,
/// removed on drop otherwise), as runs of whole entries.
struct Spill {
    file: File,
    path: Option<PathBuf>,
    run_lengths: Vec<u32>,
}

impl Drop for Spill {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Spill {
    fn create() -> std::io::Result<Spill> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("repsim-ledger-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        // Unix lets an open file outlive its name: nothing is left behind even on a crash.
        let path = if cfg!(unix) && std::fs::remove_file(&path).is_ok() { None } else { Some(path) };
        Ok(Spill { file, path, run_lengths: Vec::new() })
    }

    fn append(&mut self, run: &[u8]) -> std::io::Result<()> {
        (&self.file).seek(SeekFrom::End(0))?;
        (&self.file).write_all(run)?;
        self.run_lengths.push(u32::try_from(run.len()).expect("a run is about SPILL_BYTES"));
        Ok(())
    }

    /// Run `i` read back.
    fn run(&self, i: usize) -> Vec<u8> {
        let offset: u64 = self.run_lengths[..i].iter().map(|&n| u64::from(n)).sum();
        let mut run = vec![0; self.run_lengths[i] as usize];
        (&self.file)
            .seek(SeekFrom::Start(offset))
            .and_then(|_| (&self.file).read_exact(&mut run))
            .unwrap_or_else(|e| panic!("the ledger's spill file could not be read back: {e}"));
        run
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

/// The difference `b - a` as a zigzag varint value (small either way).
fn zigzag(a: u64, b: u64) -> u64 {
    let d = b.wrapping_sub(a) as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(a: u64, z: u64) -> u64 {
    let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
    a.wrapping_add(d as u64)
}

const ZERO: AckedWrite = AckedWrite {
    write_id: 0,
    commit_lsn: Lsn(0),
    level: SyncCommitLevel::Off,
    node: 0,
    confirmed_by_mask: 0,
    split_brain: false,
    acked_at_ns: 0,
    arrived_at_ns: 0,
    timeline: 0,
};

impl Ledger {
    pub fn push(&mut self, w: AckedWrite) {
        let p = self.last.unwrap_or(ZERO);
        if self.bytes.capacity() == 0 {
            // Allocated once at its full size: a buffer that doubled past `SPILL_BYTES` would
            // hold twice what it needs.
            self.bytes.reserve_exact(MAX_HELD_BYTES);
        }
        let out = &mut self.bytes;
        put_varint(out, zigzag(p.write_id, w.write_id));
        put_varint(out, zigzag(p.commit_lsn.0, w.commit_lsn.0));
        put_varint(out, zigzag(p.acked_at_ns, w.acked_at_ns));
        debug_assert!(w.arrived_at_ns <= w.acked_at_ns, "a commit is acknowledged after it arrives");
        put_varint(out, w.acked_at_ns - w.arrived_at_ns.min(w.acked_at_ns));
        put_varint(out, w.confirmed_by_mask);
        put_varint(out, u64::from(w.node));
        put_varint(out, u64::from(w.timeline));
        let level = SyncCommitLevel::ALL.iter().position(|l| *l == w.level).expect("a level") as u8;
        out.push(level | (u8::from(w.split_brain) << 3));
        self.last = Some(w);
        self.len += 1;
        if self.bytes.len() >= SPILL_BYTES {
            self.spill_held();
        }
    }

    /// Writes the held entries out. Where no file can be written the ledger keeps them in
    /// memory, as it did before it could spill: the checks are the same either way.
    fn spill_held(&mut self) {
        if self.spill.is_none() {
            self.spill = Spill::create().ok();
        }
        let Some(spill) = &mut self.spill else { return };
        if spill.append(&self.bytes).is_ok() {
            self.bytes.clear();
        } else {
            // Whatever reached the file past its last whole run is never read: runs are counted.
            self.spill = None;
        }
    }

    /// Bytes held in memory (at most `MAX_HELD_BYTES` where a file can be written).
    pub fn held_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every write, in the order recorded.
    pub fn iter(&self) -> impl Iterator<Item = AckedWrite> + '_ {
        let spilled_runs = self.spill.as_ref().map_or(0, |s| s.run_lengths.len());
        let runs = (0..spilled_runs)
            .map(|i| Cow::Owned(self.spill.as_ref().expect("spilled runs").run(i)))
            .chain(std::iter::once(Cow::Borrowed(&self.bytes[..])));
        // Decoded one entry at a time: a run decoded whole into a vector was up to
        // `SPILL_BYTES` of entries held (and its pages touched) per pass.
        let (mut runs, mut run, mut at, mut p) = (runs, Cow::Borrowed(&[][..]), 0, ZERO);
        std::iter::from_fn(move || {
            while at >= run.len() {
                run = runs.next()?;
                at = 0;
            }
            p = decode(&run, &mut at, p);
            Some(p)
        })
    }
}

/// The entry at `at`, whose predecessor was `p`.
fn decode(b: &[u8], at: &mut usize, p: AckedWrite) -> AckedWrite {
    let write_id = unzigzag(p.write_id, get_varint(b, at));
    let commit_lsn = Lsn(unzigzag(p.commit_lsn.0, get_varint(b, at)));
    let acked_at_ns = unzigzag(p.acked_at_ns, get_varint(b, at));
    let arrived_at_ns = acked_at_ns - get_varint(b, at);
    let confirmed_by_mask = get_varint(b, at);
    let node = get_varint(b, at) as NodeId;
    let timeline = get_varint(b, at) as u32;
    let flags = b[*at];
    *at += 1;
    AckedWrite {
        write_id,
        commit_lsn,
        level: SyncCommitLevel::ALL[(flags & 0x7) as usize],
        node,
        confirmed_by_mask,
        split_brain: flags & 0x8 != 0,
        acked_at_ns,
        arrived_at_ns,
        timeline,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ledger gives back exactly what was pushed, in order, whatever the deltas' signs.
    #[test]
    fn the_ledger_round_trips_every_field() {
        let mut ledger = Ledger::default();
        let mut written = Vec::new();
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let w = AckedWrite {
                write_id: next() % 1_000_000,
                commit_lsn: Lsn(next() >> (next() % 64)),
                level: SyncCommitLevel::ALL[(next() % 5) as usize],
                node: (next() % 9) as NodeId,
                confirmed_by_mask: next() >> (next() % 64),
                split_brain: next() % 2 == 0,
                acked_at_ns: 0,
                arrived_at_ns: 0,
                timeline: (next() % 7) as u32,
            };
            let w = AckedWrite { acked_at_ns: next() >> 1, ..w };
            let w = AckedWrite { arrived_at_ns: w.acked_at_ns - next() % (w.acked_at_ns + 1), ..w };
            ledger.push(w);
            written.push(w);
        }
        assert_eq!(ledger.len(), written.len());
        assert_eq!(ledger.iter().collect::<Vec<_>>(), written);
    }

    /// A ledger of many megabytes holds at most one in memory, and reads back whole, in order,
    /// across the runs it spilled.
    #[test]
    fn a_long_ledger_spills_and_reads_back_in_order() {
        let mut ledger = Ledger::default();
        let write = |i: u64| AckedWrite {
            write_id: i * 3 + i % 7,
            commit_lsn: Lsn((1 << 30) | (i * 211)),
            level: SyncCommitLevel::ALL[(i % 5) as usize],
            node: (i % 3) as NodeId,
            confirmed_by_mask: i % 4,
            split_brain: i % 11 == 3,
            acked_at_ns: i * 1_000_003,
            arrived_at_ns: i * 1_000_003 - i % 500,
            timeline: 1 + (i / 100_000) as u32,
        };
        let n = 600_000;
        for i in 0..n {
            ledger.push(write(i));
            assert!(ledger.held_bytes() <= MAX_HELD_BYTES, "{} bytes held at write {i}", ledger.held_bytes());
        }
        assert!(ledger.spill.as_ref().is_some_and(|s| s.run_lengths.len() >= 3), "the test spills several runs");
        assert_eq!(ledger.len(), n as usize);
        let mut count = 0;
        for (i, w) in ledger.iter().enumerate() {
            assert_eq!(w, write(i as u64), "write {i}");
            count += 1;
        }
        assert_eq!(count, n as usize);
        assert_eq!(ledger.iter().count(), n as usize, "a second pass reads the same");
    }
}
