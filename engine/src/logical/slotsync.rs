//! Failover slots (PostgreSQL 17, `slotsync.c`): a standby with `sync_replication_slots` runs
//! a slot sync worker that asks its primary for the logical slots created with
//! `failover = true` and keeps a copy of each, so that after a promotion a subscriber can go on
//! from the new primary. A copy moves only to positions this standby has flushed itself ("the
//! received slot sync LSN is ahead of the standby position": skipped until it catches up), and
//! only while the WAL from its `restart_lsn` is still here; slots gone from the primary are
//! dropped here. The copies are saved and hold WAL like any slot; a promotion leaves them in
//! place, usable.
//!
//! On the primary, `synchronized_standby_slots` names the physical slots (here, by standby
//! name) whose standbys must have flushed WAL before a logical walsender of a failover slot
//! sends what it decoded there (`StandbySlotsHaveCaughtup`): otherwise a subscriber may get
//! changes that the standby promoted next never had.

use crate::io::{Instant, NodeId, Observation, Output, TimerId};
use crate::logical::slot::LogicalSlot;
use crate::lsn::Lsn;
use crate::message::Message;
use crate::node::{Node, Role};

/// The worker's nap between rounds: PostgreSQL's starts at 200 ms
/// (`MIN_SLOTSYNC_WORKER_NAPTIME_MS`) and doubles while nothing changes, up to 30 s.
pub const MIN_NAPTIME_NS: u64 = 200_000_000;
pub const MAX_NAPTIME_NS: u64 = 30_000_000_000;

impl Node {
    /// A standby starts its slot sync worker (at boot, when configured).
    pub(crate) fn start_slot_sync(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.cfg.sync_replication_slots && self.role == Role::Standby {
            self.slot_sync_naptime_ns = MIN_NAPTIME_NS;
            out.push(Output::SetTimer { id: TimerId::SlotSync, at: Instant(now.0 + MIN_NAPTIME_NS) });
        }
    }

    /// One round: ask the upstream for its failover slots. The worker stops at promotion.
    pub(crate) fn on_slot_sync_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role != Role::Standby || !self.cfg.sync_replication_slots {
            return;
        }
        if let Some(upstream) = self.cfg.primary_conninfo {
            out.push(Output::Send { to: upstream, msg: Message::FetchFailoverSlots });
        }
        let at = Instant(now.0 + self.slot_sync_naptime_ns);
        out.push(Output::SetTimer { id: TimerId::SlotSync, at });
    }

    /// The primary answers with its valid failover slots (a standby upstream has none to give:
    /// slot sync from a cascading standby is not supported, as in PostgreSQL 17).
    pub(crate) fn on_fetch_failover_slots(&mut self, peer: NodeId, out: &mut Vec<Output>) {
        if self.role != Role::Primary {
            return;
        }
        let slots = self.logical_slots.values().filter(|s| s.failover && s.invalidated.is_none()).cloned().collect();
        out.push(Output::Send { to: peer, msg: Message::FailoverSlots { slots } });
    }

    /// The primary's failover slots: bring the copies here up to date.
    pub(crate) fn on_failover_slots(&mut self, from: NodeId, remote: Vec<LogicalSlot>, out: &mut Vec<Output>) {
        if self.role != Role::Standby || self.cfg.primary_conninfo != Some(from) {
            return;
        }
        let flushed = self.flusher.flushed;
        let oldest_held = self.wal.start();
        let mut changed = false;
        let gone: Vec<String> =
            self.logical_slots.keys().filter(|name| !remote.iter().any(|r| &r.name == *name)).cloned().collect();
        for name in gone {
            self.logical_slots.remove(&name);
            changed = true;
            out.push(Output::Observe(Observation::LogicalSlot { name, text: "dropped: gone from the primary".into() }));
        }
        for r in remote {
            // Ahead of what this standby holds durably: wait for it (`update_local_synced_slot`).
            if r.confirmed_flush_lsn > flushed || r.restart.at < oldest_held {
                continue;
            }
            match self.logical_slots.get_mut(&r.name) {
                Some(local) => {
                    if local.confirmed_flush_lsn != r.confirmed_flush_lsn || local.restart != r.restart {
                        local.confirm(r.confirmed_flush_lsn, Some(r.restart));
                        changed = true;
                    }
                }
                None => {
                    let text = format!("synchronized from the primary at {}", r.confirmed_flush_lsn);
                    out.push(Output::Observe(Observation::LogicalSlot { name: r.name.clone(), text }));
                    self.logical_slots.insert(r.name.clone(), LogicalSlot::create(&r.name, r.restart, true));
                    if let Some(s) = self.logical_slots.get_mut(&r.name) {
                        s.confirm(r.confirmed_flush_lsn, None);
                    }
                    changed = true;
                }
            }
        }
        self.slot_sync_naptime_ns = if changed {
            MIN_NAPTIME_NS
        } else {
            (self.slot_sync_naptime_ns * 2).clamp(MIN_NAPTIME_NS, MAX_NAPTIME_NS)
        };
        if changed {
            self.save_logical_slots(out);
        }
    }

    /// How far a logical walsender of slot `failover` may send: everything flushed here, and
    /// for a failover slot no further than every standby of `synchronized_standby_slots` has
    /// flushed (a listed standby without a slot holds it back entirely, as PostgreSQL waits).
    /// Its own name is passed over: after a failover the list may name the new primary, and no
    /// node has a slot for itself (an operator or the HA manager would edit the list;
    /// PostgreSQL would wait for the missing slot).
    pub(crate) fn logical_send_limit(&self, failover: bool) -> Lsn {
        let flushed = self.flusher.flushed;
        if !failover || self.cfg.synchronized_standby_slots.is_empty() {
            return flushed;
        }
        self.cfg
            .synchronized_standby_slots
            .iter()
            .filter(|name| **name != self.cfg.name)
            .map(|name| {
                let standby = self.cfg.cluster_names.iter().position(|n| n == name).map(|i| i as NodeId);
                standby.and_then(|s| self.slots.get(&s).copied()).unwrap_or(Lsn::INVALID)
            })
            .fold(flushed, Lsn::min)
    }
}

impl Node {
    /// The standbys of `synchronized_standby_slots` (its own name aside) that hold a failover
    /// slot's walsender back for good: no physical slot here (PostgreSQL warns that the slot
    /// "does not exist" and waits), or a slot behind the flushed WAL with no standby streaming
    /// to move it (one promoted elsewhere, or following another node).
    pub fn synchronized_standby_slots_stuck(&self) -> Vec<String> {
        let flushed = self.flusher.flushed;
        let stuck = |name: &String| {
            let Some(standby) = self.cfg.cluster_names.iter().position(|n| n == name).map(|i| i as NodeId) else {
                return true;
            };
            match self.slots.get(&standby) {
                None => true,
                Some(&restart) => restart < flushed && !self.walsenders.contains_key(&standby),
            }
        };
        self.cfg.synchronized_standby_slots.iter().filter(|n| **n != self.cfg.name && stuck(n)).cloned().collect()
    }
}
