//! `statement_timeout` for a commit waiting for synchronous standbys.
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

use crate::config::SyncCommitLevel;
use crate::io::{Instant, Output, Promise, TimerId};
use crate::node::Node;

impl Node {
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
                let promise = Promise { level: SyncCommitLevel::Local, confirmed_by: Vec::new(), wait_cancelled: true };
                out.push(self.release_with(&waiter, promise));
            }
        }
        let next = self.commits.remote.iter().filter_map(|q| q.front().and_then(|w| w.deadline)).min();
        if let Some(at) = next {
            out.push(Output::SetTimer { id: TimerId::StatementTimeout, at });
        }
    }
}
