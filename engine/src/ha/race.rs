//! The leader race when the key is free (spec ha-and-routing §1.6): the candidate rules, the
//! probes of the other members, and taking the key if nobody is healthier.

use super::*;

impl HaAgent {
    /// §1.6 checks 2–9; the probes (check 10) follow.
    pub(super) fn race(&mut self, now: Instant, pg: &PgState, out: &mut Vec<HaOutput>) {
        let me = self.cfg.name.clone();
        let reason = self.candidate_check(pg).err();
        if let Some(reason) = reason {
            out.push(HaOutput::Event(format!("not a candidate: {reason}")));
            step_down(pg, out);
            if pg.role == PgRole::Stopped && !self.needs_reinit {
                out.push(HaOutput::Pg(PgAction::StartStandby { upstream: None }));
            }
            return self.publish(now, pg, out);
        }
        let request = self.next_request;
        self.next_request += 1;
        // §1.6 check 10 (Patroni's `_is_healthiest_node`): only members registered in the DCS,
        // without `nofailover`; a spare never started, or a member whose key expired, is not
        // asked (and so not waited for).
        let others: Vec<NodeId> = self
            .view
            .members
            .values()
            .filter(|m| m.name != me && !m.nofailover)
            .filter_map(|m| self.node_of(&m.name))
            .collect();
        if others.is_empty() {
            self.step = Step::Probing { request, deadline: now, replies: Vec::new() };
            return self.finish_race(now, pg, out);
        }
        for to in others {
            out.push(HaOutput::Probe { request, to });
        }
        let deadline = Instant(now.0 + PROBE_TIMEOUT_NS);
        out.push(HaOutput::SetTimer { at: deadline });
        self.step = Step::Probing { request, deadline, replies: Vec::new() };
    }

    fn candidate_check(&self, pg: &PgState) -> Result<(), String> {
        let me = &self.cfg.name;
        if pg.role == PgRole::Stopped {
            return Err("PostgreSQL is not running".into());
        }
        if self.needs_reinit {
            return Err("needs reinit".into());
        }
        if pg.role == PgRole::Primary && pg.timeline < self.view.timeline {
            return Err("running as primary on an old timeline".into());
        }
        // §1.6: `nofailover` (check 3) comes before the manual path (check 4): a switchover
        // never promotes a member that may not be promoted.
        if self.cfg.nofailover || self.cfg.failover_priority <= 0 {
            return Err("nofailover".into());
        }
        // Under synchronous_mode only the sync key's members (and the former leader) may race,
        // a switchover's target included: Patroni's `is_healthiest_node` checks this before the
        // switchover path ("When doing a switchover in synchronous mode only synchronous nodes
        // and former leader are allowed to race", patroni/ha.py). Swarm seed 11716 promoted a
        // stale switchover's async target and lost 314 writes a synchronous standby confirmed.
        if self.cfg.synchronous_mode {
            if let Some(sync) = &self.view.sync {
                if sync.leader != *me && !sync.standbys.contains(me) {
                    return Err("not named in the sync key".into());
                }
            }
        }
        if self.view.switchover.as_ref().is_some_and(|s| s.to == *me) {
            return Ok(()); // the switchover candidate races with the lag check disabled
        }
        let lag = self.view.optime.bytes_since(pg.wal_position);
        if pg.role != PgRole::Primary && lag > self.cfg.maximum_lag_on_failover_bytes {
            return Err(format!("{lag} bytes behind the last known leader position"));
        }
        Ok(())
    }

    /// Check 10: the probes are in (or timed out); take the key if nobody is healthier.
    pub(super) fn finish_race(&mut self, now: Instant, pg: &PgState, out: &mut Vec<HaOutput>) {
        let Step::Probing { replies, .. } = std::mem::replace(&mut self.step, Step::Idle) else { return };
        let me = self.member_state(pg);
        let former_leader = self.view.sync.as_ref().map(|s| s.leader.clone());
        let switchover_to_me = self.view.switchover.as_ref().is_some_and(|s| s.to == me.name);
        let sync_members = self.view.sync.as_ref().map(|s| s.standbys.clone());
        // A switchover to someone else: yield to it while it answers as a running member that
        // may be promoted; if it is dead or `nofailover`, race as usual (Patroni
        // `manual_failover_process_no_leader`).
        if let Some(candidate) = self.view.switchover.as_ref().map(|s| s.to.clone()).filter(|to| *to != me.name) {
            // Under synchronous_mode a target outside the sync key may not race: do not wait
            // for it.
            let in_sync = !self.cfg.synchronous_mode
                || self.view.sync.as_ref().is_none_or(|s| s.leader == candidate || s.standbys.contains(&candidate));
            let promotable =
                |r: &MemberState| in_sync && r.role != PgRole::Stopped && !r.nofailover && r.failover_priority > 0;
            if replies.iter().any(|r| r.name == candidate && promotable(r)) {
                out.push(HaOutput::Event(format!("not a candidate: switchover to {candidate}")));
                return self.publish(now, pg, out);
            }
        }
        let healthier = replies.iter().find(|other| {
            if other.role == PgRole::Primary {
                return true; // "primary still alive"
            }
            if switchover_to_me || other.role == PgRole::Stopped || other.nofailover {
                return false;
            }
            let ignored = self.cfg.synchronous_mode && former_leader.as_deref() == Some(other.name.as_str());
            if self.cfg.synchronous_mode {
                if let Some(members) = &sync_members {
                    if !members.contains(&other.name) {
                        return false;
                    }
                }
            }
            if ignored {
                return false;
            }
            other.wal_position > me.wal_position
                || (other.wal_position == me.wal_position && other.failover_priority > me.failover_priority)
        });
        if let Some(other) = healthier {
            out.push(HaOutput::Event(format!("not the healthiest: {} is at {}", other.name, other.wal_position)));
            step_down(pg, out);
            return self.publish(now, pg, out);
        }
        self.send(now, DcsOp::AcquireLeader, out);
    }
}
