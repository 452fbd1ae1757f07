//! The streaming replication protocol (PostgreSQL's CopyData messages, spec §2.2) and the
//! connection handshake, as values. `wire_bytes` is what the network charges for each.

use crate::lsn::Lsn;

/// Local-clock nanoseconds of the node that stamped the message.
pub type TimestampNs = u64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Walreceiver → walsender: `START_REPLICATION PHYSICAL X/Y TIMELINE t`, after
    /// `IDENTIFY_SYSTEM` (folded in: one round trip).
    StartReplication { start: Lsn, timeline: u32 },
    /// Walsender → walreceiver: the stream is open (stands in for CopyBothResponse). Carries
    /// the server's timeline and history (`TIMELINE_HISTORY`), so a standby can cross to it.
    StreamStart { timeline: u32, history: crate::timeline::History },
    /// Walsender → walreceiver: an error, after which the server closes the connection.
    Error { text: String },
    /// `w`: WAL bytes `[start, start + bytes.len())`; `wal_end` is the sender's send limit.
    XLogData { start: Lsn, wal_end: Lsn, send_time_ns: TimestampNs, bytes: Vec<u8> },
    /// `k`: keepalive.
    Keepalive { wal_end: Lsn, send_time_ns: TimestampNs, reply_requested: bool },
    /// `r`: standby status update.
    StatusUpdate { write: Lsn, flush: Lsn, apply: Lsn, send_time_ns: TimestampNs, reply_requested: bool },
    /// `h`: hot standby feedback, the standby's oldest `xmin` (0 clears it).
    HotStandbyFeedback { xmin: u32, send_time_ns: TimestampNs },
    /// Apply worker → walsender: `START_REPLICATION SLOT slot LOGICAL start (proto_version
    /// '4', publication_names …, origin 'none')`.
    /// `stream`: which of the worker's connections this is (a socket of its own in
    /// PostgreSQL; the walsender tags what it sends with it, so the worker never applies what
    /// an earlier stream still had in flight).
    StartLogicalReplication { slot: String, start: Lsn, publications: Vec<String>, origin_none: bool, stream: u64 },
    /// Subscriber → publisher, for a new subscription: `CREATE_REPLICATION_SLOT slot LOGICAL
    /// pgoutput (FAILOVER failover, SNAPSHOT 'use')` and the `COPY` of the tables
    /// `publications` cover in that snapshot, folded into one request.
    CreateSubscriptionSlot { slot: String, failover: bool, publications: Vec<String> },
    /// Publisher → subscriber: the slot is made at `consistent_point`; the published rows as of
    /// it, `(table, key, value)`.
    InitialCopy { consistent_point: Lsn, rows: Vec<(u32, u64, crate::storage::Value)> },
    /// Slot sync worker → primary: the `failover` logical slots, please
    /// (`pg_replication_slots WHERE failover AND NOT temporary`).
    FetchFailoverSlots,
    /// Primary → slot sync worker: its valid failover slots.
    FailoverSlots { slots: Vec<crate::logical::slot::LogicalSlot> },
    /// Walsender → apply worker: one committed transaction as pgoutput sends it (BEGIN, its
    /// changes, COMMIT, each in a `w` message); `wal_end` is the sender's flushed end.
    LogicalTxn { txn: crate::logical::decode::DecodedTxn, wal_end: Lsn, send_time_ns: TimestampNs, stream: u64 },
    /// Apply worker → walsender: the worker's stream `stream` ended (its connection closed).
    /// Sent instead of closing the connection when another stream shares it (see
    /// `logical/sender.rs`, `Node::shares_connection`).
    EndLogicalStream { stream: u64 },
    /// Walsender → apply worker: `k`, a keepalive on a logical stream: the walsender has
    /// decoded everything through `wal_end` and sent what of it was published.
    LogicalKeepalive { wal_end: Lsn, send_time_ns: TimestampNs, stream: u64 },
    /// Trigger capture's router → source: the change rows after `after`, at most `max_rows`.
    PollChanges { after: u64, max_rows: u32 },
    /// Source → router: those rows, in `data_id` order; `more`: the batch is full.
    ChangeBatch { rows: Vec<crate::logical::trigger::CapturedChange>, more: bool },
    /// Router → source: everything through `through` is loaded and flushed at the target.
    ChangesLoaded { through: u64 },
}

/// pgoutput's message sizes: BEGIN (`B`, final LSN, commit time, xid), COMMIT (`C`, flags,
/// commit LSN, end LSN, commit time), and a change: `I`/`U`/`D`, relation id, tuple kind, the
/// column count, then the key and value columns as text (kind byte, length, bytes).
fn pgoutput_bytes(txn: &crate::logical::decode::DecodedTxn) -> u64 {
    use crate::wal::record::RowChange;
    const PER_MESSAGE: u64 = FRAME_BYTES + 24;
    let change = |c: &RowChange| match c {
        RowChange::Insert { value_len, .. } | RowChange::Update { value_len, .. } => 21 + 5 + u64::from(*value_len),
        RowChange::Delete { .. } => 21,
    };
    (PER_MESSAGE + 21) + (PER_MESSAGE + 26) + txn.changes.iter().map(|c| PER_MESSAGE + change(c)).sum::<u64>()
}

/// CopyData framing: 1 type byte + 4 length bytes + 1 sub-type byte.
const FRAME_BYTES: u64 = 6;

impl Message {
    /// Bytes on the wire, PostgreSQL's field sizes.
    pub fn wire_bytes(&self) -> u64 {
        match self {
            Message::StartReplication { .. } => 64,
            Message::StreamStart { history, .. } => FRAME_BYTES + 8 + history.encode().len() as u64,
            Message::Error { text } => FRAME_BYTES + 32 + text.len() as u64,
            Message::XLogData { bytes, .. } => FRAME_BYTES + 24 + bytes.len() as u64,
            Message::Keepalive { .. } | Message::LogicalKeepalive { .. } => FRAME_BYTES + 17,
            Message::EndLogicalStream { .. } => FRAME_BYTES + 8,
            Message::StatusUpdate { .. } => FRAME_BYTES + 33,
            Message::HotStandbyFeedback { .. } => FRAME_BYTES + 24,
            Message::StartLogicalReplication { slot, publications, origin_none, .. } => {
                let origin = if *origin_none { 14 } else { 0 };
                96 + origin + slot.len() as u64 + publications.iter().map(|p| p.len() as u64 + 3).sum::<u64>()
            }
            Message::LogicalTxn { txn, .. } => pgoutput_bytes(txn),
            Message::FetchFailoverSlots => 160,
            Message::CreateSubscriptionSlot { slot, publications, .. } => {
                128 + slot.len() as u64 + publications.iter().map(|p| p.len() as u64 + 3).sum::<u64>()
            }
            // COPY's text rows: the key and the value, each with its length.
            Message::InitialCopy { rows, .. } => {
                FRAME_BYTES + 16 + rows.iter().map(|(_, _, v)| FRAME_BYTES + 8 + 21 + u64::from(v.len)).sum::<u64>()
            }
            // The query's text, and a result row per change: sym_data's columns as text.
            Message::PollChanges { .. } => 180,
            Message::ChangeBatch { rows, .. } => {
                FRAME_BYTES
                    + 64
                    + rows
                        .iter()
                        .map(|r| {
                            let value = r.change.value().map_or(0, |v| u64::from(v.len));
                            FRAME_BYTES + 48 + value + u64::from(crate::logical::trigger::ROW_OVERHEAD_BYTES)
                        })
                        .sum::<u64>()
            }
            Message::ChangesLoaded { .. } => 120,
            // A row per slot: name, plugin, positions, flags.
            Message::FailoverSlots { slots } => {
                FRAME_BYTES + slots.iter().map(|s| 64 + s.name.len() as u64).sum::<u64>()
            }
        }
    }

    /// A short name for traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::StartReplication { .. } => "start_replication",
            Message::StreamStart { .. } => "stream_start",
            Message::Error { .. } => "error",
            Message::XLogData { .. } => "xlogdata",
            Message::Keepalive { .. } => "keepalive",
            Message::StatusUpdate { .. } => "status",
            Message::HotStandbyFeedback { .. } => "hs_feedback",
            Message::StartLogicalReplication { .. } => "start_logical",
            Message::LogicalTxn { .. } => "logical_txn",
            Message::LogicalKeepalive { .. } => "logical_keepalive",
            Message::EndLogicalStream { .. } => "end_logical_stream",
            Message::FetchFailoverSlots => "fetch_failover_slots",
            Message::CreateSubscriptionSlot { .. } => "create_subscription_slot",
            Message::InitialCopy { .. } => "initial_copy",
            Message::FailoverSlots { .. } => "failover_slots",
            Message::PollChanges { .. } => "poll_changes",
            Message::ChangeBatch { .. } => "change_batch",
            Message::ChangesLoaded { .. } => "changes_loaded",
        }
    }
}
