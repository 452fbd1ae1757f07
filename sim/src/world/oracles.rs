//! Feeding the god's-eye oracles (`check::oracle`) at the instant things happen: the facts
//! come from the world's disks and the nodes' tables, the rules from `check/`.

use repsim_engine::config::SyncCommitLevel;
use repsim_engine::io::{Promise, Reply};
use repsim_engine::message::Message;
use repsim_engine::{Lsn, NodeId, Role};

use crate::check::history::{Op, INSERT_TABLE};
use crate::check::oracle::syncrep::{audit, Candidate};
use crate::check::oracle::{promotion, reports, WalFacts};
use crate::world::World;

impl World {
    /// `node`'s WAL on its disk, over the timelines up to `max_timeline`.
    pub(crate) fn wal_facts(&self, node: NodeId, max_timeline: u32) -> WalFacts {
        let segment = self.scenario.replication.wal_segment_size_bytes;
        self.nodes[node as usize].disk.wal_extent(segment, max_timeline)
    }

    /// A node sends `msg`: a standby's status update must be honest, and a primary's WAL
    /// must be durable on its own disk first.
    pub(crate) fn audit_send(&mut self, node: NodeId, msg: &Message) {
        // A subscriber's status updates report the publisher's LSNs, not its own WAL.
        let Some(engine) = self.nodes[node as usize].engine.as_ref().filter(|_| !self.nodes[node as usize].subscriber)
        else {
            return;
        };
        let timeline = engine.timeline();
        let finding = match msg {
            // A primary's status updates are its apply workers', in the publisher's LSNs (a
            // master of `[multi_master]` is the cluster's primary and subscribes too).
            Message::StatusUpdate { write, flush, apply, .. } if engine.role() == Role::Standby => {
                reports::status_update(*write, *flush, *apply, self.wal_facts(node, timeline))
            }
            // A cascading standby's walsender, too, sends only what its disk holds durably.
            Message::XLogData { start, bytes, .. } if matches!(engine.role(), Role::Primary | Role::Standby) => {
                reports::wal_sent(Lsn(start.0 + bytes.len() as u64), self.wal_facts(node, timeline))
            }
            _ => None,
        };
        if let Some(text) = finding {
            let name = self.nodes[node as usize].name.clone();
            self.live.record("honest_reports", self.now_ns, || format!("{name} {text}"));
        }
    }

    /// `node` answers `session`: a read on a primary must not return a write still waiting
    /// there (`check::oracle::visibility`); any answer ends the session's wait.
    pub(crate) fn audit_visibility(&mut self, node: NodeId, session: u32, reply: &Reply) {
        if let Reply::Read { value: Some(value), .. } = reply {
            let slot = &self.nodes[node as usize];
            if slot.engine.as_ref().is_some_and(|e| e.role() == Role::Primary) {
                let finding = self.waiting_writes.read_returned(node, slot.incarnation, value.write_id, self.now_ns);
                if let Some(text) = finding {
                    let name = slot.name.clone();
                    self.live.record("waiting_commits_hidden", self.now_ns, || format!("{name}: {text}"));
                }
            }
        }
        self.waiting_writes.replied(session);
        self.running_queries.answered(node, session);
    }

    /// `node` replayed a cleanup up to `horizon_xid`: no query whose snapshot may see the
    /// removed versions may still run there (`check::oracle::snapshots`).
    pub(crate) fn audit_cleanup(&mut self, node: NodeId, horizon_xid: u32) {
        let slot = &self.nodes[node as usize];
        if let Some(text) = self.running_queries.cleanup_replayed(node, slot.incarnation, horizon_xid, self.now_ns) {
            let name = slot.name.clone();
            self.live.record("recovery_conflicts_resolved", self.now_ns, || format!("{name}: {text}"));
        }
    }

    /// A commit is acknowledged under `promise`: the WAL is durable on the primary, and the
    /// standbys `synchronous_standby_names` requires hold it at the promised level, judged
    /// by the reference model of `check::oracle::syncrep`.
    pub(crate) fn audit_commit(&mut self, node: NodeId, session: u32, commit_lsn: Lsn, promise: &Promise) {
        for text in self.broken_promises(node, session, commit_lsn, promise.level) {
            self.live.record("promise_audit", self.now_ns, || text);
        }
    }

    /// What `audit_commit` finds, borrowing the world (nothing is copied unless it is broken).
    fn broken_promises(&self, node: NodeId, session: u32, commit_lsn: Lsn, level: SyncCommitLevel) -> Vec<String> {
        let mut found = Vec::new();
        let Some(engine) = self.nodes[node as usize].engine.as_ref() else { return found };
        let timeline = engine.timeline();
        let name = &self.nodes[node as usize].name;
        if level >= SyncCommitLevel::Local {
            let own = self.wal_facts(node, timeline);
            if commit_lsn.0 > own.durable_end {
                found.push(format!(
                    "{name} acknowledged a commit at {commit_lsn} under {} with its WAL durable only to {}",
                    level.name(),
                    Lsn(own.durable_end)
                ));
            }
        }
        let names = &engine.config().synchronous_standby_names;
        if level < SyncCommitLevel::RemoteWrite || names.is_empty() {
            return found;
        }
        let flight = self.sessions.get(session as usize).and_then(|s| s.current.as_ref());
        let write_id = match flight.map(|f| &f.planned.op) {
            Some(Op::Write { write_id, .. }) => *write_id,
            _ => return found,
        };
        // A standby that lost power (or its disk) while this commit was in flight may have
        // held it and lost it since: the promise is judged where it could still be checked.
        let since_ns = flight.map_or(self.now_ns, |f| f.arrived_ns);
        let lost_since = |times: &[u64]| times.iter().any(|&t| t >= since_ns);
        let candidates: Vec<Candidate> = engine
            .walsender_peers()
            .map(|(standby, name, eligible)| {
                let slot = &self.nodes[standby as usize];
                let wal = self.wal_facts(standby, timeline);
                let holds = lost_since(&slot.disk_losses_ns)
                    || match level {
                        SyncCommitLevel::RemoteWrite => {
                            wal.written_end >= commit_lsn.0
                                || lost_since(&slot.power_losses_ns)
                                || lost_since(&slot.cache_losses_ns)
                        }
                        SyncCommitLevel::On => wal.durable_end >= commit_lsn.0,
                        _ => match slot.engine.as_ref().filter(|e| e.role() == Role::Standby) {
                            Some(e) => e.store().get(INSERT_TABLE, write_id).is_some(),
                            // Down or restarting: it replays the commit from its durable WAL.
                            None => wal.durable_end >= commit_lsn.0,
                        },
                    };
                Candidate { name, eligible, holds }
            })
            .chain(engine.logical_sender_peers().map(|(subscriber, name, eligible)| {
                let durable = level >= SyncCommitLevel::On;
                let holds = lost_since(&self.nodes[subscriber as usize].disk_losses_ns)
                    || self.subscriber_holds(subscriber, commit_lsn, durable);
                Candidate { name, eligible, holds }
            }))
            .collect();
        if let Err(why) = audit(names, &candidates) {
            found.push(format!(
                "{name} acknowledged write {write_id} at {commit_lsn} under {} ({}): {why}",
                level.name(),
                names.names.join(", ")
            ));
        }
        found
    }

    /// `node`, a primary, lost its memory (power loss, after the disk dropped unsynced bytes;
    /// or a PANIC, after a failed fsync dropped a file's dirty pages): WAL past its durable
    /// end existed nowhere else (a walsender sends only flushed WAL).
    pub(crate) fn note_lost_wal(&mut self, node: NodeId) {
        // A subscriber's own WAL is no part of the physical cluster's history.
        let Some(engine) = self.nodes[node as usize].engine.as_ref().filter(|_| !self.nodes[node as usize].subscriber)
        else {
            return;
        };
        if !matches!(engine.role(), Role::Primary | Role::Panicked) {
            return;
        }
        let timeline = engine.timeline();
        let end = self.wal_facts(node, timeline).written_end;
        self.lost_wal.push(promotion::LostWal { node, timeline, end, at_ns: self.now_ns });
    }

    /// `node` was promoted off `from_timeline`: it replayed every commit its disk held (up to
    /// `stopped_at`, a recovery target's stop), and under `synchronous_mode` it holds every
    /// synchronously confirmed commit.
    pub(crate) fn audit_promotion(&mut self, node: NodeId, from_timeline: u32, by_ha: bool, stopped_at: Option<Lsn>) {
        let Some(engine) = self.nodes[node as usize].engine.as_ref() else { return };
        if self.timelines_created_twice().contains(&from_timeline) {
            // Two promotions made this timeline number (spec I1.2, I1.4): a write another node
            // acknowledged "on it" may be on the other one, which this node never followed.
            return;
        }
        let durable_end = self.wal_facts(node, from_timeline).durable_end.min(stopped_at.map_or(u64::MAX, |l| l.0));
        let name = self.nodes[node as usize].name.clone();
        let store = engine.store();
        if let Some(text) =
            promotion::unreplayed(&self.history, node, from_timeline, durable_end, store, &self.lost_wal)
        {
            self.live.record("promotion_replayed", self.now_ns, || format!("{name} {text}"));
        }
        // Patroni promotes only a member of the `sync` key; an operator's pg_promote of any
        // other standby loses synchronously confirmed commits in PostgreSQL too.
        if by_ha && self.ha.as_ref().is_some_and(|h| h.spec.synchronous_mode) {
            if let Some(text) =
                promotion::missing_sync_commits(&self.history, node, from_timeline, store, &self.lost_wal)
            {
                self.live.record("sync_promotion", self.now_ns, || format!("{name} {text}"));
            }
        }
    }
}
