//! `waiting_commits_hidden`: a read served by a primary never returns a write whose commit
//! that primary has not released yet. PostgreSQL keeps a committing transaction in the proc
//! array until its wait for the local flush and the synchronous standbys ends, and every other
//! snapshot treats it as running (spec I3.3; `CommitTransaction` in
//! src/backend/access/transam/xact.c). A primary that showed it early would let a read return
//! data a failover can still lose, under any `synchronous_commit`.
//!
//! The world's facts, not the engine's: a write is waiting from the instant its request is
//! handed to a node until that node answers it; a read's reply carries the write id it saw.
//! A crash ends the wait (recovery finds the commit in the node's own WAL: visible, as in
//! PostgreSQL), so waits are per node incarnation. Standbys are not judged: hot standby shows
//! what replay applied, which may be a commit the primary still hides.

use std::collections::BTreeMap;

use repsim_engine::NodeId;

#[derive(Clone, Copy, Debug)]
struct Waiting {
    node: NodeId,
    incarnation: u64,
    session: u32,
    op_id: u64,
    since_ns: u64,
}

/// The writes handed to a node and not yet answered. Bounded: one operation per session.
#[derive(Clone, Debug, Default)]
pub struct WaitingWrites {
    by_write: BTreeMap<u64, Waiting>,
    /// Per session (by index), its waiting write ids; the vectors are reused.
    by_session: Vec<Vec<u64>>,
}

impl WaitingWrites {
    /// `session`'s operation `op_id`, writing `write_ids`, reaches `node`.
    pub fn arrived(
        &mut self,
        session: u32,
        op_id: u64,
        node: NodeId,
        incarnation: u64,
        write_ids: impl Iterator<Item = u64>,
        now_ns: u64,
    ) {
        self.replied(session);
        let index = session as usize;
        if self.by_session.len() <= index {
            self.by_session.resize_with(index + 1, Vec::new);
        }
        for id in write_ids {
            self.by_write.insert(id, Waiting { node, incarnation, session, op_id, since_ns: now_ns });
            self.by_session[index].push(id);
        }
    }

    /// A node answered `session` (committed, rolled back or failed): its writes wait no more.
    pub fn replied(&mut self, session: u32) {
        let Some(ids) = self.by_session.get_mut(session as usize) else { return };
        for id in ids.drain(..) {
            self.by_write.remove(&id);
        }
    }

    /// `node` (incarnation `incarnation`, running as primary) answers a read with `write_id`:
    /// the violation, if that write is still waiting on it.
    pub fn read_returned(&self, node: NodeId, incarnation: u64, write_id: u64, now_ns: u64) -> Option<String> {
        let w = self.by_write.get(&write_id).filter(|w| w.node == node && w.incarnation == incarnation)?;
        Some(format!(
            "a read returned write {write_id} (session {} op {}), whose commit has waited {:.3} ms and was not released",
            w.session,
            w.op_id,
            now_ns.saturating_sub(w.since_ns) as f64 / 1e6
        ))
    }

    pub fn len(&self) -> usize {
        self.by_write.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_write.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_write_still_waiting_on_the_same_node_incarnation_is_a_violation() {
        let mut w = WaitingWrites::default();
        w.arrived(3, 10, 0, 1, [42].into_iter(), 1_000);
        assert!(w.read_returned(0, 1, 42, 2_000_000).is_some_and(|t| t.contains("write 42")));
        assert!(w.read_returned(1, 1, 42, 2_000_000).is_none(), "another node (a standby replayed it)");
        assert!(w.read_returned(0, 2, 42, 2_000_000).is_none(), "after a restart: recovered, visible");
        assert!(w.read_returned(0, 1, 7, 2_000_000).is_none(), "another write");
        w.replied(3);
        assert!(w.read_returned(0, 1, 42, 3_000_000).is_none(), "released");
        assert!(w.is_empty());
    }

    #[test]
    fn a_session_holds_one_operation() {
        let mut w = WaitingWrites::default();
        w.arrived(1, 10, 0, 1, [5].into_iter(), 0);
        w.arrived(1, 11, 0, 1, [6, 7].into_iter(), 0);
        assert_eq!(w.len(), 2, "the earlier operation was given up on");
        assert!(w.read_returned(0, 1, 5, 0).is_none());
    }
}
