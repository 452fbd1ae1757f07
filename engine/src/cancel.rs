//! `statement_timeout`, and the client's cancel request, for a commit waiting for synchronous
//! standbys (and the cancel request for a read query).
//!
//! PostgreSQL's `SyncRepWaitForLSN` (src/backend/replication/syncrep.c) checks for a query
//! cancel while it waits. A statement timeout (or `pg_cancel_backend`, or the client's cancel
//! request) sets it; the backend then stops waiting, warns "canceling wait for synchronous
//! replication due to user request" with the detail "The transaction has already committed
//! locally, but might not have been replicated to the standby.", and COMMIT returns success.
//! The transaction is durable on the primary only, and becomes visible to other sessions. The
//! local flush before it (`XLogFlush`) is not interruptible, so a timeout that expires during
//! the flush cancels the wait as soon as the wait starts.
//!
//! Here the timeout counts from the moment the transaction reaches the engine (its statements
//! and COMMIT arrive whole), as `statement_timeout` counts from the statement's start.

use crate::commit::Waiter;
use crate::config::SyncCommitLevel;
use crate::io::{ClientId, ErrorKind, Instant, Output, Promise, Reply, TimerId};
use crate::node::Node;

impl Node {
    /// A wait for standbys ends early: the commit is reported, durable on this node only.
    pub(crate) fn release_cancelled(&mut self, waiter: &Waiter) -> Output {
        let promise = Promise { level: SyncCommitLevel::Local, confirmed_by: Vec::new(), wait_cancelled: true };
        self.release_with(waiter, promise)
    }

    /// The client's cancel request for `op_id` (`StatementCancelHandler` sets
    /// `QueryCancelPending`; the backend acts on it at its next `CHECK_FOR_INTERRUPTS`).
    pub(crate) fn cancel_request(&mut self, now: Instant, client: ClientId, op_id: u64, out: &mut Vec<Output>) {
        let ours = |c: ClientId, o: u64| c == client && o == op_id;
        for kind in 0..self.commits.remote.len() {
            if let Some(at) = self.commits.remote[kind].iter().position(|w| ours(w.client, w.op_id)) {
                let waiter = self.commits.remote[kind].remove(at).expect("found");
                return out.push(self.release_cancelled(&waiter));
            }
        }
        if let Some(waiter) = self.commits.local.iter_mut().find(|w| ours(w.client, w.op_id)) {
            // XLogFlush does not check for interrupts: the wait for standbys that follows does.
            waiter.cancel_requested = true;
            return;
        }
        let reply = Reply::Error { kind: ErrorKind::QueryCanceled, message: "canceling statement due to user request" };
        if let Some(at) = self.queries.iter().position(|q| ours(q.client, q.op_id)) {
            self.queries.swap_remove(at);
            out.push(Output::Reply { client, op_id, reply });
            // Replay may have waited for this query.
            return self.kick_replay(now, out);
        }
        if let Some(at) = self.waiting_reads.iter().position(|r| ours(r.client, r.op_id)) {
            self.waiting_reads.swap_remove(at);
            out.push(Output::Reply { client, op_id, reply });
        }
        // Otherwise the statement already ended: the signal finds nothing to cancel.
    }

    /// Ends every wait for standbys whose statement timeout has expired, then arms the timer
    /// for the next one. Deadlines grow with the commit LSN within each queue (one timeout per
    /// node, commits queued in LSN order), so only queue fronts can expire.
    pub(crate) fn cancel_expired_waits(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.cfg.statement_timeout_ns == 0 {
            return;
        }
        for kind in 0..self.commits.remote.len() {
            while self.commits.remote[kind].front().is_some_and(|w| w.deadline.is_some_and(|d| d <= now)) {
                let waiter = self.commits.remote[kind].pop_front().expect("checked front");
                out.push(self.release_cancelled(&waiter));
            }
        }
        let next = self.commits.remote.iter().filter_map(|q| q.front().and_then(|w| w.deadline)).min();
        if let Some(at) = next {
            out.push(Output::SetTimer { id: TimerId::StatementTimeout, at });
        }
    }
}
