//! The DCS: an etcd stand-in. A linearizable key-value store (one node, so every operation is
//! applied in arrival order) with TTL leases and compare-and-set, reachable over the simulated
//! network, so it can be partitioned away or killed.
//!
//! Left out: etcd's Raft group (a single member cannot lose quorum, only be unreachable or
//! down) and the re-arming of every lease's TTL when etcd elects a new leader; here leases run
//! on the DCS's own clock, down or not.

use std::collections::BTreeMap;

use repsim_engine::ha::{ClusterView, DcsOp, DcsResult, MemberState, Switchover, SyncKey};
use repsim_engine::timeline::History;
use repsim_engine::Lsn;

#[derive(Default)]
pub struct Dcs {
    leader: Option<(String, u64)>,
    members: BTreeMap<String, (MemberState, u64)>,
    sync: Option<SyncKey>,
    sync_revision: u64,
    optime: Lsn,
    timeline: u32,
    history: History,
    switchover: Option<Switchover>,
    pub up: bool,
    ttl_ns: u64,
    /// Who held the leader key when it was last looked at (for watch notifications).
    last_leader: Option<String>,
}

impl Dcs {
    pub fn new(ttl_ns: u64, initial_leader: Option<String>, now_ns: u64) -> Dcs {
        Dcs {
            leader: initial_leader.clone().map(|name| (name, now_ns + ttl_ns)),
            timeline: 1,
            up: true,
            ttl_ns,
            last_leader: initial_leader,
            ..Dcs::default()
        }
    }

    fn expire(&mut self, now_ns: u64) {
        if self.leader.as_ref().is_some_and(|(_, until)| now_ns >= *until) {
            self.leader = None;
        }
        self.members.retain(|_, (_, until)| now_ns < *until);
    }

    /// The leader key's holder now (expired keys removed).
    pub fn leader(&mut self, now_ns: u64) -> Option<String> {
        self.expire(now_ns);
        self.leader.as_ref().map(|(name, _)| name.clone())
    }

    /// Whether the leader key changed since the last call (the watch fires).
    pub fn leader_changed(&mut self, now_ns: u64) -> bool {
        let now = self.leader(now_ns);
        let changed = now != self.last_leader;
        self.last_leader = now;
        changed
    }

    /// When the current leader key expires, if there is one.
    pub fn leader_expiry_ns(&self) -> Option<u64> {
        self.leader.as_ref().map(|(_, until)| *until)
    }

    /// The `sync` key's members (Patroni's REST API checks a switchover candidate against it).
    pub fn sync_standbys(&self) -> &[String] {
        self.sync.as_ref().map_or(&[], |s| s.standbys.as_slice())
    }

    pub fn set_switchover(&mut self, from: String, to: String) {
        self.switchover = Some(Switchover { from, to });
    }

    pub fn view(&mut self, now_ns: u64) -> ClusterView {
        self.expire(now_ns);
        ClusterView {
            leader: self.leader.as_ref().map(|(n, _)| n.clone()),
            members: self.members.iter().map(|(k, (m, _))| (k.clone(), m.clone())).collect(),
            sync: self.sync.clone(),
            sync_revision: self.sync_revision,
            optime: self.optime,
            timeline: self.timeline,
            history: self.history.clone(),
            switchover: self.switchover.clone(),
        }
    }

    /// Applies one request from member `from`, atomically.
    pub fn apply(&mut self, now_ns: u64, from: &str, op: DcsOp) -> DcsResult {
        self.expire(now_ns);
        let until = now_ns + self.ttl_ns;
        match op {
            DcsOp::Read => DcsResult::View(self.view(now_ns)),
            DcsOp::AcquireLeader => match &self.leader {
                None => {
                    self.leader = Some((from.to_string(), until));
                    DcsResult::Ok
                }
                Some(_) => DcsResult::Rejected,
            },
            DcsOp::RenewLeader => match &mut self.leader {
                Some((name, expiry)) if name == from => {
                    *expiry = until;
                    DcsResult::Ok
                }
                _ => DcsResult::Rejected,
            },
            DcsOp::ReleaseLeader => {
                if self.leader.as_ref().is_some_and(|(name, _)| name == from) {
                    self.leader = None;
                }
                DcsResult::Ok
            }
            DcsOp::PutMember(state) => {
                self.members.insert(from.to_string(), (state, until));
                DcsResult::Ok
            }
            DcsOp::PutStatus { optime, timeline, history } => {
                // Only the leader writes status (Patroni writes it after a successful renewal).
                if self.leader.as_ref().is_some_and(|(name, _)| name == from) {
                    self.optime = optime;
                    if timeline >= self.timeline {
                        self.timeline = timeline;
                        self.history = history;
                    }
                }
                DcsResult::Ok
            }
            DcsOp::CasSync { revision, value } => {
                if revision != self.sync_revision {
                    return DcsResult::Rejected;
                }
                self.sync = value;
                self.sync_revision += 1;
                DcsResult::Ok
            }
            DcsOp::ClearSwitchover => {
                self.switchover = None;
                DcsResult::Ok
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_at_a_time_and_leases_expire() {
        let mut dcs = Dcs::new(30, None, 0);
        assert_eq!(dcs.apply(0, "a", DcsOp::AcquireLeader), DcsResult::Ok);
        assert_eq!(dcs.apply(1, "b", DcsOp::AcquireLeader), DcsResult::Rejected);
        assert_eq!(dcs.apply(2, "b", DcsOp::RenewLeader), DcsResult::Rejected);
        assert_eq!(dcs.apply(20, "a", DcsOp::RenewLeader), DcsResult::Ok);
        assert_eq!(dcs.leader(49), Some("a".into()));
        assert_eq!(dcs.leader(50), None);
        assert_eq!(dcs.apply(51, "b", DcsOp::AcquireLeader), DcsResult::Ok);
        assert_eq!(dcs.apply(52, "a", DcsOp::RenewLeader), DcsResult::Rejected);
    }

    #[test]
    fn sync_key_is_compare_and_set_on_its_revision() {
        let mut dcs = Dcs::new(30, Some("a".into()), 0);
        let key = |s: &str| Some(SyncKey { leader: "a".into(), standbys: vec![s.into()] });
        assert_eq!(dcs.apply(0, "a", DcsOp::CasSync { revision: 0, value: key("b") }), DcsResult::Ok);
        assert_eq!(dcs.apply(0, "a", DcsOp::CasSync { revision: 0, value: key("c") }), DcsResult::Rejected);
        assert_eq!(dcs.view(0).sync, key("b"));
        assert_eq!(dcs.view(0).sync_revision, 1);
    }
}
