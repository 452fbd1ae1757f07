//! `recovery_conflicts_resolved`: a hot standby never replays a cleanup while a query whose
//! snapshot may see the removed row versions is still running there (spec §4.3, I4.4;
//! `ResolveRecoveryConflictWithSnapshot` in src/backend/storage/ipc/standby.c). Replay may
//! wait for the query, or cancel it, but it must do one of the two before it goes on: a query
//! that outlived the cleanup would read rows that are gone.
//!
//! The facts: a query runs from the instant its node took its snapshot until that node
//! answers it (the world sees the answer leave); the snapshot's `xmin` and the cleanup's
//! conflict horizon are transaction ids, which only the engine assigns, so they come from its
//! observations. A query conflicts with a cleanup whose horizon is at or after its `xmin`.
//! Queries are per node incarnation: a crash ends them.

use std::collections::BTreeMap;

use repsim_engine::NodeId;

#[derive(Clone, Copy, Debug)]
struct Query {
    node: NodeId,
    incarnation: u64,
    xmin: u32,
    since_ns: u64,
}

/// Queries past their snapshot, by session (one operation each, so bounded by the sessions).
#[derive(Clone, Debug, Default)]
pub struct RunningQueries {
    by_session: BTreeMap<u32, (u64, Query)>,
}

impl RunningQueries {
    /// `node` took the snapshot of `session`'s query `op_id`.
    pub fn started(&mut self, node: NodeId, incarnation: u64, session: u32, op_id: u64, xmin: u32, now_ns: u64) {
        self.by_session.insert(session, (op_id, Query { node, incarnation, xmin, since_ns: now_ns }));
    }

    /// `node` answered `session` (the query ended, or was cancelled).
    pub fn answered(&mut self, node: NodeId, session: u32) {
        if self.by_session.get(&session).is_some_and(|(_, q)| q.node == node) {
            self.by_session.remove(&session);
        }
    }

    /// `node` replayed a cleanup removing versions up to `horizon_xid`: the violation, if a
    /// query there may still see them.
    pub fn cleanup_replayed(&self, node: NodeId, incarnation: u64, horizon_xid: u32, now_ns: u64) -> Option<String> {
        let (session, (op_id, q)) = self
            .by_session
            .iter()
            .find(|(_, (_, q))| q.node == node && q.incarnation == incarnation && q.xmin <= horizon_xid)?;
        Some(format!(
            "replay removed row versions up to xid {horizon_xid} while session {session}'s query (op {op_id}, \
             snapshot xmin {}) had run {:.3} s and was neither finished nor cancelled",
            q.xmin,
            now_ns.saturating_sub(q.since_ns) as f64 / 1e9
        ))
    }

    pub fn len(&self) -> usize {
        self.by_session.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_session.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_running_query_on_that_node_incarnation_with_xmin_at_or_before_the_horizon_is_a_violation() {
        let mut q = RunningQueries::default();
        q.started(1, 1, 7, 70, 100, 0);
        assert!(q.cleanup_replayed(1, 1, 99, 5).is_none(), "horizon before the snapshot's xmin");
        assert!(q.cleanup_replayed(1, 1, 100, 5).is_some_and(|t| t.contains("xmin 100")));
        assert!(q.cleanup_replayed(2, 1, 200, 5).is_none(), "another node");
        assert!(q.cleanup_replayed(1, 2, 200, 5).is_none(), "after a restart the query is gone");
        q.answered(2, 7);
        assert_eq!(q.len(), 1, "another node's answer does not end it");
        q.answered(1, 7);
        assert!(q.cleanup_replayed(1, 1, 200, 5).is_none(), "answered: over");
        assert!(q.is_empty());
    }
}
