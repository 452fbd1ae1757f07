//! The events of the world's one queue, and which of them a paused node holds back.

use repsim_engine::io::{IoId, TimerId};
use repsim_engine::{Input, NodeId};

use crate::check::history::Outcome;
use crate::world::session::{Session, NO_NODE};
use crate::world::wire::Packet;

#[derive(Debug)]
pub enum EventKind {
    /// An input for a node incarnation, its CPU time already paid.
    Input {
        node: NodeId,
        incarnation: u64,
        input: Input,
    },
    Timer {
        node: NodeId,
        incarnation: u64,
        id: TimerId,
        generation: u64,
    },
    /// A message from `from` on connection `epoch`, read by `node` after the CPU it took.
    Received {
        from: NodeId,
        node: NodeId,
        epoch: u64,
        incarnation: u64,
        input: Input,
    },
    DiskDone {
        node: NodeId,
        incarnation: u64,
        io: IoId,
    },
    Arrive {
        from: NodeId,
        to: NodeId,
        epoch: u64,
        packet: Packet,
        /// Taken in by a paused host's kernel (socket buffer) before the process stopped
        /// reading: the sender losing its connection since does not take it back.
        buffered: bool,
    },
    /// A client request reaches a node.
    RequestArrives {
        session: u32,
        /// The operation it carries: a request held back (by a pause) past its operation's
        /// end is dropped.
        op_id: u64,
    },
    /// An `archive_command` upload finished (stored unless the store went down meanwhile).
    ArchiveUploaded {
        node: NodeId,
        incarnation: u64,
        timeline: u32,
        segno: u64,
        len: u64,
        fingerprint: u64,
        /// The bytes, kept where a standby may restore them.
        content: Option<Vec<u8>>,
    },
    /// A client gives up waiting for its operation (`[workload] cancel_after`) and sends a
    /// cancel request.
    CancelDue {
        session: u32,
        op_id: u64,
    },
    /// A reply (or a connection failure) reaches a client.
    ReplyArrives {
        session: u32,
        op_id: u64,
        outcome: Outcome,
    },
    OpenArrival,
    SessionReady {
        session: u32,
    },
    Fault {
        index: usize,
    },
    Sample,
    Settle,
    /// An HA agent's timer.
    HaTick {
        node: NodeId,
        incarnation: u64,
    },
    /// The leader key may have expired: fire the DCS watch if it did.
    DcsExpiry,
    /// HAProxy's health check round.
    ProxyCheck,
    /// PgBouncer's `query_wait_timeout` for a client waiting for a server connection.
    PoolWaitTimeout {
        session: u32,
        op_id: u64,
        /// When that wait began (a retry of the operation waits on a timer of its own).
        since_ns: u64,
    },
    /// PgPool-II's streaming-replication delay check (`sr_check_period`).
    PgpoolCheck,
    /// The writer endpoint's DNS record is repointed at `node` (`[endpoints] update_delay`).
    EndpointUpdate {
        node: NodeId,
    },
    /// A pg_rewind or base backup finished copying.
    DataCopied {
        node: NodeId,
        incarnation: u64,
        image: Box<repsim_engine::io::DiskImage>,
        upstream: NodeId,
    },
    /// `[archive] backup_interval`: time for the next base backup.
    BackupDue,
    /// `[[logical.subscriptions]]` entry `index` with an `at`: `CREATE SUBSCRIPTION` now.
    CreateSubscription {
        index: usize,
    },
    /// A base backup's upload finished (stored unless the store went down meanwhile).
    BackupUploaded {
        backup: Box<crate::world::archive_store::BaseBackup>,
    },
    /// A restore's download of its base backup finished (`ok`), or was refused and is retried.
    BackupFetched {
        node: NodeId,
        incarnation: u64,
        image: Box<repsim_engine::io::DiskImage>,
        bytes: u64,
        target: crate::scenario::model::RestoreTarget,
        ok: bool,
    },
    /// A paused node resumes.
    /// PostgreSQL restarts after a PANIC (`restart_after_crash`, or systemd); with `[ha]`
    /// the agent restarts it instead.
    RestartAfterPanic {
        node: NodeId,
        incarnation: u64,
    },
    Resume {
        node: NodeId,
    },
}

/// The node whose processes an event needs, if a `pause` can hold it back.
pub(crate) fn paused_target(kind: &EventKind, sessions: &[Session]) -> Option<NodeId> {
    match kind {
        EventKind::Input { node, .. }
        | EventKind::Received { node, .. }
        | EventKind::Timer { node, .. }
        | EventKind::DiskDone { node, .. }
        | EventKind::HaTick { node, .. } => Some(*node),
        EventKind::Arrive { to, .. } => Some(*to),
        EventKind::RequestArrives { session, .. } => {
            sessions[*session as usize].current.as_ref().map(|f| f.node).filter(|n| *n != NO_NODE)
        }
        _ => None,
    }
}
