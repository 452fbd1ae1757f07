//! The application side's read routing, and reads that wait for replay on a standby.
//!
//! Routers (spec ha-and-routing §5): `primary` (everything to the primary); `replica` (every read
//! to a standby, round robin, as the Django router in the seed document does); `round_robin`
//! (reads across every node); `read_your_writes` (a session reads from a standby only once its
//! replay LSN has reached the session's last commit LSN, waiting up to a bound, else from the
//! primary); `lag_aware` (PgPool-II: skip standbys whose lag exceeds `delay_threshold`);
//! `pin_after_write` (django-multidb-router's `PinningRouterMiddleware`: after a write, the
//! session's reads go to the primary for `pin_duration`, 15 s by default there, then to a
//! replica: read-your-writes only while replication lag stays below the pin).

use crate::io::{ClientId, ErrorKind, Instant, Output, Reply, TimerId};
use crate::lsn::Lsn;
use crate::node::{Node, Role};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouterKind {
    Primary,
    Replica,
    RoundRobin,
    ReadYourWrites,
    LagAware,
    PinAfterWrite,
}

impl RouterKind {
    pub const ALL: [RouterKind; 6] = [
        RouterKind::Primary,
        RouterKind::Replica,
        RouterKind::RoundRobin,
        RouterKind::ReadYourWrites,
        RouterKind::LagAware,
        RouterKind::PinAfterWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouterKind::Primary => "primary",
            RouterKind::Replica => "replica",
            RouterKind::RoundRobin => "round_robin",
            RouterKind::ReadYourWrites => "read_your_writes",
            RouterKind::LagAware => "lag_aware",
            RouterKind::PinAfterWrite => "pin_after_write",
        }
    }

    pub fn parse(text: &str) -> Option<RouterKind> {
        RouterKind::ALL.into_iter().find(|r| r.name() == text)
    }

    /// Whether a session never reads older data than it wrote (checked by `read_your_writes`).
    pub fn promises_read_your_writes(self) -> bool {
        matches!(self, RouterKind::Primary | RouterKind::ReadYourWrites)
    }

    /// Whether a session never reads older data than it read before (`monotonic_reads`).
    pub fn promises_monotonic_reads(self) -> bool {
        matches!(self, RouterKind::Primary)
    }
}

/// A read waiting on a standby for replay to reach `min_lsn`.
#[derive(Clone, Debug)]
pub(crate) struct WaitingRead {
    pub client: ClientId,
    pub op_id: u64,
    pub table: u32,
    pub key: u64,
    pub duration_ns: u64,
    pub min_timeline: u32,
    pub min_lsn: Lsn,
    pub deadline: Instant,
}

impl Node {
    /// A read that must see at least `min_lsn`: answered at once if replay is there, else held
    /// until it is or `wait_ns` passes (then refused as too stale, so the client can go to the
    /// primary).
    pub(crate) fn read_after(
        &mut self,
        now: Instant,
        read: (ClientId, u64, u32, u64, u64),
        (min_timeline, min_lsn): (u32, Lsn),
        wait_ns: u64,
        out: &mut Vec<Output>,
    ) {
        let (client, op_id, table, key, duration_ns) = read;
        if let Some(seen) = self.seen_through(min_timeline, min_lsn) {
            let reply = Reply::Read { value: self.visible_value(table, key), read_lsn: seen };
            return self.answer_read(now, (client, op_id), reply, duration_ns, out);
        }
        let deadline = Instant(now.0 + wait_ns);
        let waiting = WaitingRead { client, op_id, table, key, duration_ns, min_timeline, min_lsn, deadline };
        self.waiting_reads.push(waiting);
        self.arm_read_wait(out);
    }

    /// What a read here sees, if that includes WAL position `lsn` of `timeline`: the position
    /// is ours when `timeline` is our timeline, or an ancestor we left at or after `lsn` (our
    /// history names only ancestors). `Lsn::INVALID`: the session has not written yet.
    fn seen_through(&self, timeline: u32, lsn: Lsn) -> Option<Lsn> {
        let seen = if self.role == Role::Primary { self.wal.end() } else { self.replay.lsn };
        let on_our_history = lsn == Lsn::INVALID
            || timeline == self.timeline
            || self.history.end_of(timeline).is_some_and(|switch| switch >= lsn);
        (seen >= lsn && on_our_history).then_some(seen)
    }

    fn arm_read_wait(&self, out: &mut Vec<Output>) {
        if let Some(at) = self.waiting_reads.iter().map(|r| r.deadline).min() {
            out.push(Output::SetTimer { id: TimerId::ReadWait, at });
        }
    }

    /// Replay advanced, or the wait timer fired: answer what can be answered.
    pub(crate) fn release_waiting_reads(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.waiting_reads.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for read in std::mem::take(&mut self.waiting_reads) {
            if let Some(seen) = self.seen_through(read.min_timeline, read.min_lsn) {
                let reply = Reply::Read { value: self.visible_value(read.table, read.key), read_lsn: seen };
                self.answer_read(now, (read.client, read.op_id), reply, read.duration_ns, out);
            } else if now >= read.deadline {
                let reply =
                    Reply::Error { kind: ErrorKind::TooStale, message: "replay has not reached the session's LSN" };
                out.push(Output::Reply { client: read.client, op_id: read.op_id, reply });
            } else {
                still.push(read);
            }
        }
        self.waiting_reads = still;
        self.arm_read_wait(out);
    }
}
