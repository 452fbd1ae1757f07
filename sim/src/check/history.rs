//! What clients saw. Kept compact: every acknowledged insert with the promise it carried
//! (needed to count lost writes exactly; the `Ledger` spills them to a file, so memory stays
//! flat), and counts of everything else.

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

pub use crate::check::ledger::{AckedWrite, Ledger};

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

pub use crate::scenario::logical::{INSERT_TABLE, REGISTER_TABLE};

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
