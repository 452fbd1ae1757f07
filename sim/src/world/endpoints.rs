//! Managed-service endpoints' state (`[endpoints]`, spec ha-and-routing §5.3): the writer
//! record and its history, each client's cached answers and open connections, and what they
//! measured. `world/resolve.rs` drives them from the client path.

use repsim_engine::NodeId;

use crate::scenario::model::EndpointsSpec;
use crate::world::rng::Rng;

/// One client's view of one endpoint: its cached answer and its open connection.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClientEnd {
    /// The address, and when it was resolved.
    pub cached: Option<(NodeId, u64)>,
    /// The node and incarnation connected to.
    pub connection: Option<(NodeId, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Writer,
    Reader,
}

/// What the endpoints measured (bounded: counters and the record's changes).
#[derive(Clone, Debug, Default)]
pub struct EndpointStats {
    /// When the writer record changed, and to which node.
    pub flips: Vec<(u64, NodeId)>,
    pub dns_queries: u64,
    pub connects: u64,
    /// Operations through the writer endpoint sent to a node the record no longer names.
    pub stale_writer_ops: u64,
    /// The last of them (for how long clients kept the old address after the last flip).
    pub last_stale_writer_op_ns: Option<u64>,
    pub writer_errors: u64,
    pub reader_errors: u64,
}

pub struct Endpoints {
    pub spec: EndpointsSpec,
    /// The writer record's answer now, and the change under way (node, when it lands).
    pub writer_record: NodeId,
    pub(crate) pending: Option<NodeId>,
    pub(crate) clients: Vec<[ClientEnd; 2]>,
    pub(crate) rng: Rng,
    pub stats: EndpointStats,
    /// Every answer the writer record gave, from when (for the oracle; one per flip).
    pub(crate) history: Vec<(u64, NodeId)>,
}

impl Endpoints {
    pub fn new(spec: EndpointsSpec, primary: NodeId, sessions: usize, rng: Rng) -> Endpoints {
        Endpoints {
            spec,
            writer_record: primary,
            pending: None,
            clients: vec![[ClientEnd::default(); 2]; sessions],
            rng,
            stats: EndpointStats::default(),
            history: vec![(0, primary)],
        }
    }

    /// Whether the writer record answered `node` at some instant in `[from_ns, to_ns]`.
    pub(crate) fn writer_answered(&self, node: NodeId, from_ns: u64, to_ns: u64) -> bool {
        self.history.iter().enumerate().any(|(i, &(since, answer))| {
            let until = self.history.get(i + 1).map_or(u64::MAX, |next| next.0);
            answer == node && since <= to_ns && until >= from_ns
        })
    }
}
