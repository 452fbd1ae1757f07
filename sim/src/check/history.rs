//! What clients saw. Kept compact: every acknowledged insert with the promise it carried
//! (needed to count lost writes exactly), and counts of everything else. Memory grows with
//! acknowledged writes (about 12 bytes each, `Ledger`), not with events.

use repsim_engine::config::SyncCommitLevel;
use repsim_engine::io::Promise;
use repsim_engine::storage::Value;
use repsim_engine::{Lsn, NodeId};

use repsim_engine::io::Request;
use repsim_engine::wal::record::RowChange;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Committed {
        commit_lsn: Lsn,
        promise: Promise,
        /// Acknowledged by a node on a timeline that another node had already forked off:
        /// a write on a deposed primary's dead branch.
        split_brain: bool,
        /// When the primary released the commit (sent the acknowledgement).
        released_at_ns: u64,
        /// The timeline of the node that acknowledged it.
        timeline: u32,
    },
    RolledBack,
    Read {
        value: Option<Value>,
        read_lsn: Lsn,
    },
    /// Refused or errored: the operation certainly did not commit.
    Failed,
    /// The connection died with the operation in flight: it may or may not have committed.
    Indeterminate,
    /// A read-your-writes read whose standby did not replay far enough in time (retried on
    /// the primary, never recorded).
    TooStale,
}

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
/// the one before (about 12 bytes where an `AckedWrite` takes 56): the ledger grows with every
/// write of a run, so its size per write is what a long run pays.
#[derive(Default)]
pub struct Ledger {
    bytes: Vec<u8>,
    len: usize,
    last: Option<AckedWrite>,
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
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every write, in the order recorded.
    pub fn iter(&self) -> impl Iterator<Item = AckedWrite> + '_ {
        let mut at = 0;
        let mut p = ZERO;
        std::iter::from_fn(move || {
            if at >= self.bytes.len() {
                return None;
            }
            let b = &self.bytes;
            let write_id = unzigzag(p.write_id, get_varint(b, &mut at));
            let commit_lsn = Lsn(unzigzag(p.commit_lsn.0, get_varint(b, &mut at)));
            let acked_at_ns = unzigzag(p.acked_at_ns, get_varint(b, &mut at));
            let arrived_at_ns = acked_at_ns - get_varint(b, &mut at);
            let confirmed_by_mask = get_varint(b, &mut at);
            let node = get_varint(b, &mut at) as NodeId;
            let timeline = get_varint(b, &mut at) as u32;
            let flags = b[at];
            at += 1;
            let level = SyncCommitLevel::ALL[(flags & 0x7) as usize];
            p = AckedWrite {
                write_id,
                commit_lsn,
                level,
                node,
                confirmed_by_mask,
                split_brain: flags & 0x8 != 0,
                acked_at_ns,
                arrived_at_ns,
                timeline,
            };
            Some(p)
        })
    }
}

#[derive(Default)]
pub struct History {
    pub acked_writes: Ledger,
    pub indeterminate_writes: u64,
    pub split_brain_writes: u64,
}

impl History {
    /// `arrived_ns`: when the request reached `node` (0 if it never did).
    pub fn record(&mut self, op: &Op, node: NodeId, arrived_ns: u64, outcome: &Outcome) {
        match (op, outcome) {
            (
                Op::Write { write_id, .. },
                Outcome::Committed { commit_lsn, promise, split_brain, released_at_ns, timeline },
            ) => {
                self.split_brain_writes += *split_brain as u64;
                self.acked_writes.push(AckedWrite {
                    write_id: *write_id,
                    commit_lsn: *commit_lsn,
                    level: promise.level,
                    node,
                    confirmed_by_mask: promise.confirmed_by.iter().fold(0, |m, n| m | 1u64 << (n % 64)),
                    split_brain: *split_brain,
                    acked_at_ns: *released_at_ns,
                    arrived_at_ns: if arrived_ns == 0 { *released_at_ns } else { arrived_ns.min(*released_at_ns) },
                    timeline: *timeline,
                });
            }
            (Op::Write { .. }, Outcome::Indeterminate) => self.indeterminate_writes += 1,
            _ => {}
        }
    }
}

/// Table of unique inserts, one row per write: loss is checked against it.
pub const INSERT_TABLE: u32 = 1;

/// Table of registers updated by writes and read by reads.
pub const REGISTER_TABLE: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Write { write_id: u64, key: u64, commit: bool },
    Read { key: u64 },
}

impl Op {
    pub fn request(&self, value_size_bytes: u32) -> Request {
        match *self {
            Op::Write { write_id, key, commit } => Request::Write {
                changes: vec![
                    RowChange::Insert { table: INSERT_TABLE, key: write_id, write_id, value_len: value_size_bytes },
                    RowChange::Update { table: REGISTER_TABLE, key, write_id, value_len: value_size_bytes },
                ],
                commit,
                synchronous_commit: None,
            },
            Op::Read { key } => Request::Read { table: REGISTER_TABLE, key, duration_ns: 0 },
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(self, Op::Write { .. })
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
}
