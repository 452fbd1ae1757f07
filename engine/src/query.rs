//! Read queries that run for a while, and replay's conflicts with them on a hot standby
//! (spec §4.3; `ResolveRecoveryConflictWithSnapshot` and `GetStandbyLimitTime` in
//! src/backend/storage/ipc/standby.c).
//!
//! A query takes its snapshot when it starts and answers from it when it ends; meanwhile its
//! snapshot's `xmin` keeps the row versions it may see. On a primary that only holds back
//! cleanup (`prune.rs`). On a standby, replay of a cleanup record whose conflict horizon is at
//! or after a running query's `xmin` must not proceed while that query runs: the startup
//! process waits until the WAL's receipt time plus `max_standby_streaming_delay` (30 s; -1
//! waits forever, 0 cancels at once), then cancels the queries still in the way with
//! "canceling statement due to conflict with recovery" (SQLSTATE 40001). The wait is one
//! budget counted from receipt, not per query: a standby already behind cancels sooner.
//! With `hot_standby_feedback` the standby reports its oldest `xmin` to the primary every
//! `wal_receiver_status_interval`, so the primary keeps the versions instead (bloat there).

use crate::io::{ClientId, ErrorKind, Instant, Observation, Output, Reply, TimerId};
use crate::node::{Node, Role};

/// A query past its snapshot, answering at `ends_at`.
#[derive(Clone, Debug)]
pub(crate) struct RunningQuery {
    pub client: ClientId,
    pub op_id: u64,
    pub xmin: u32,
    pub ends_at: Instant,
    pub reply: Reply,
}

/// Replay stopped before a cleanup record that conflicts with running queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConflictWait {
    pub horizon_xid: u32,
    /// When replay first reached the record.
    pub since: Instant,
    /// When the queries in the way are cancelled (`None`: `max_standby_streaming_delay = -1`).
    pub limit: Option<Instant>,
}

/// What replay may do with a cleanup record.
pub(crate) enum Resolution {
    Proceed,
    Wait,
}

impl Node {
    /// The `xmin` a snapshot taken here now gets: the next xid on a primary, the xid after the
    /// newest replayed on a standby (simplified `KnownAssignedXids`: a transaction's WAL is
    /// inserted whole, so replay has no long-running transaction in progress).
    pub(crate) fn snapshot_xmin(&self) -> u32 {
        match self.role {
            Role::Primary => self.next_xid,
            _ => self.replay.max_xid.wrapping_add(1).max(1),
        }
    }

    /// The oldest `xmin` anything here holds: a new snapshot's, running queries', and the
    /// `hot_standby_feedback` reported by our standbys (walsenders, slots). On a primary it is
    /// the cleanup horizon; a standby reports it upstream (PostgreSQL's
    /// `GetOldestTransactionIdConsideredRunning` family).
    pub(crate) fn oldest_xmin(&self) -> u32 {
        let queries = self.queries.iter().map(|q| q.xmin);
        let senders = self.walsenders.values().filter_map(|s| s.feedback_xmin);
        let slots = self.slot_xmins.values().copied();
        queries.chain(senders).chain(slots).fold(self.snapshot_xmin(), u32::min)
    }

    /// Answers a read: at once, or after `duration_ns` from a snapshot taken now.
    pub(crate) fn answer_read(
        &mut self,
        now: Instant,
        (client, op_id): (ClientId, u64),
        reply: Reply,
        duration_ns: u64,
        out: &mut Vec<Output>,
    ) {
        if duration_ns == 0 {
            return out.push(Output::Reply { client, op_id, reply });
        }
        let xmin = self.snapshot_xmin();
        out.push(Output::Observe(Observation::QuerySnapshot { client, op_id, xmin }));
        let ends_at = Instant(now.0.saturating_add(duration_ns));
        self.queries.push(RunningQuery { client, op_id, xmin, ends_at, reply });
        self.arm_query_timer(out);
    }

    fn arm_query_timer(&self, out: &mut Vec<Output>) {
        if let Some(at) = self.queries.iter().map(|q| q.ends_at).min() {
            out.push(Output::SetTimer { id: TimerId::QueryEnd, at });
        }
    }

    /// Queries whose time is up answer; replay waiting for them may go on.
    pub(crate) fn finish_queries(&mut self, now: Instant, out: &mut Vec<Output>) {
        let mut i = 0;
        while i < self.queries.len() {
            if self.queries[i].ends_at <= now {
                let q = self.queries.swap_remove(i);
                out.push(Output::Reply { client: q.client, op_id: q.op_id, reply: q.reply });
            } else {
                i += 1;
            }
        }
        self.arm_query_timer(out);
        self.kick_replay(now, out);
    }

    /// Replay reached a cleanup record with conflict horizon `horizon_xid` (the standby limit
    /// timer also lands here, through `kick_replay`).
    pub(crate) fn resolve_snapshot_conflict(
        &mut self,
        now: Instant,
        horizon_xid: u32,
        out: &mut Vec<Output>,
    ) -> Resolution {
        let conflicting = self.queries.iter().any(|q| q.xmin <= horizon_xid);
        let wait = match self.replay.conflict {
            Some(wait) if wait.horizon_xid == horizon_xid => wait,
            _ => ConflictWait { horizon_xid, since: now, limit: self.standby_limit_time() },
        };
        if !conflicting {
            self.end_conflict_wait(now, wait, 0, out);
            return Resolution::Proceed;
        }
        if wait.limit.is_some_and(|limit| now >= limit) {
            let mut cancelled = 0;
            let mut i = 0;
            while i < self.queries.len() {
                if self.queries[i].xmin <= horizon_xid {
                    let q = self.queries.swap_remove(i);
                    let reply = Reply::Error {
                        kind: ErrorKind::RecoveryConflict,
                        message: "canceling statement due to conflict with recovery",
                    };
                    out.push(Output::Reply { client: q.client, op_id: q.op_id, reply });
                    cancelled += 1;
                } else {
                    i += 1;
                }
            }
            self.arm_query_timer(out);
            self.end_conflict_wait(now, wait, cancelled, out);
            return Resolution::Proceed;
        }
        if let Some(at) = wait.limit {
            out.push(Output::SetTimer { id: TimerId::StandbyLimit, at });
        }
        self.replay.conflict = Some(wait);
        Resolution::Wait
    }

    fn end_conflict_wait(&mut self, now: Instant, wait: ConflictWait, cancelled: u32, out: &mut Vec<Output>) {
        self.replay.conflict = None;
        let waited_ns = now.0.saturating_sub(wait.since.0);
        if waited_ns > 0 || cancelled > 0 {
            out.push(Output::Observe(Observation::RecoveryConflict { waited_ns, cancelled }));
        }
    }

    /// `GetStandbyLimitTime`: the WAL's receipt time plus `max_standby_streaming_delay`.
    fn standby_limit_time(&self) -> Option<Instant> {
        let delay_ns = self.cfg.max_standby_streaming_delay_ns?;
        Some(Instant(self.replay.receipt_time_ns.saturating_add(delay_ns)))
    }

    /// Whether replay must not start another batch: it waits on a conflict nothing resolved.
    pub(crate) fn replay_held_by_conflict(&self, now: Instant) -> bool {
        let Some(wait) = self.replay.conflict else { return false };
        let conflicting = self.queries.iter().any(|q| q.xmin <= wait.horizon_xid);
        conflicting && wait.limit.is_none_or(|limit| now < limit)
    }
}
