//! A client session and its one operation in flight.

use repsim_engine::NodeId;

use crate::world::workload::PlannedOp;

/// `InFlight::node` of an operation no server accepted.
pub const NO_NODE: NodeId = NodeId::MAX;

/// A client session and its one operation in flight.
#[derive(Default)]
pub struct Session {
    pub current: Option<InFlight>,
    /// The timeline and commit LSN of the session's last acknowledged write (read-your-writes
    /// by LSN); LSN 0 before the first.
    pub last_commit: (u32, repsim_engine::Lsn),
    /// `pin_after_write`: the session's reads go to the primary until then.
    pub pinned_until_ns: u64,
    /// The session has sent a write (for the `pooler_rules` oracle).
    pub wrote: bool,
    /// An operation of the session has been served through the pooler.
    pub pool_served: bool,
}

pub struct InFlight {
    pub planned: PlannedOp,
    pub node: NodeId,
    pub incarnation: u64,
    pub sent_ns: u64,
    /// When the request reached the server, and whether enough synchronous standbys were
    /// connected then (for `commits_release`).
    pub arrived_ns: u64,
    pub sync_ok_at_arrival: bool,
    /// It holds one of the pooler's server connections.
    pub pooled: bool,
}

impl InFlight {
    /// An operation no server accepted (refused, or given up while waiting for one).
    pub fn unsent(planned: PlannedOp, now_ns: u64) -> InFlight {
        InFlight {
            planned,
            node: NO_NODE,
            incarnation: 0,
            sent_ns: now_ns,
            arrived_ns: 0,
            sync_ok_at_arrival: false,
            pooled: false,
        }
    }
}
