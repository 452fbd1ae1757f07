//! Holding the key: promote, act on a planned switchover, and manage synchronous replication
//! under `synchronous_mode` (spec ha-and-routing §2.2).

use super::*;

impl HaAgent {
    /// The key is mine this cycle: be primary, act on a switchover, manage sync replication.
    pub(super) fn lead(&mut self, now: Instant, pg: &PgState, out: &mut Vec<HaOutput>) {
        // Patroni runs `process_manual_failover_from_leader` before `enforce_primary_role`: a
        // leader that is still a replica hands over to a switchover candidate it can hand over
        // to instead of promoting first (nor, under synchronous_mode, emptying the sync key for
        // a promotion it will not make).
        let hands_over = self.view.switchover.as_ref().is_some_and(|s| {
            s.from == self.cfg.name
                && self.may_promote(&s.to)
                && self.sync_allows(&s.to)
                && pg.standbys.iter().any(|r| r.name == s.to && r.streaming)
        });
        if pg.role == PgRole::Replica && self.cfg.synchronous_mode && !hands_over {
            // §2.2: every promotion attempt first writes sync = {leader: me, sync_standby: none}.
            self.after_acquire = true;
            self.todo.push_back(DcsOp::PutStatus {
                optime: pg.flush,
                timeline: pg.timeline,
                history: pg.history.clone(),
            });
            let value = Some(SyncKey { leader: self.cfg.name.clone(), standbys: Vec::new() });
            return self.send(now, DcsOp::CasSync { revision: self.view.sync_revision, value }, out);
        }
        if pg.role == PgRole::Replica && !hands_over {
            out.push(HaOutput::Event("promoting (leader key held)".into()));
            out.push(HaOutput::Pg(PgAction::Promote));
        }
        if let Some(switchover) = self.view.switchover.clone() {
            if switchover.from == self.cfg.name && !self.switchover_stopping && !self.may_promote(&switchover.to) {
                // §1.7 `is_failover_possible`: a `nofailover` candidate is refused, and the
                // leader deletes the key (Patroni: "failover is not possible").
                out.push(HaOutput::Event(format!("switchover to {}: not possible, it is nofailover", switchover.to)));
                self.todo.push_back(DcsOp::ClearSwitchover);
            } else if switchover.from == self.cfg.name && !self.switchover_stopping && !self.sync_allows(&switchover.to)
            {
                // Under synchronous_mode only a synchronous standby may take over: Patroni's
                // leader deletes a switchover key it cannot honour
                // (`process_manual_failover_from_leader`).
                out.push(HaOutput::Event(format!(
                    "switchover to {}: not possible, it is not synchronous",
                    switchover.to
                )));
                self.todo.push_back(DcsOp::ClearSwitchover);
            } else if switchover.from == self.cfg.name && self.switchover_possible(&switchover, pg) {
                if !self.switchover_stopping {
                    self.switchover_stopping = true;
                    out.push(HaOutput::Event(format!("switchover to {}: stopping", switchover.to)));
                    out.push(HaOutput::Pg(PgAction::GracefulStop));
                }
                if pg.shutdown_complete || pg.role == PgRole::Stopped {
                    let status =
                        DcsOp::PutStatus { optime: pg.flush, timeline: pg.timeline, history: pg.history.clone() };
                    self.todo.push_back(status);
                    self.todo.push_back(DcsOp::ReleaseLeader);
                    return self.next_write(now, out);
                }
                return self.end_cycle(now, out);
            }
        }
        if self.cfg.synchronous_mode && pg.role == PgRole::Primary {
            self.manage_sync(pg, out);
        }
        self.todo.push_back(DcsOp::PutStatus { optime: pg.flush, timeline: pg.timeline, history: pg.history.clone() });
        self.publish(now, pg, out);
    }

    /// What `name` publishes lets it be promoted (no `nofailover`, `failover_priority` > 0).
    fn may_promote(&self, name: &str) -> bool {
        self.view.members.get(name).is_none_or(|m| !m.nofailover && m.failover_priority > 0)
    }

    /// Outside synchronous_mode anyone; in it, a member of the sync key.
    fn sync_allows(&self, name: &str) -> bool {
        !self.cfg.synchronous_mode || self.view.sync.as_ref().is_some_and(|s| s.standbys.iter().any(|n| n == name))
    }

    fn switchover_possible(&self, switchover: &Switchover, pg: &PgState) -> bool {
        let streaming = pg.standbys.iter().any(|s| s.name == switchover.to && s.streaming);
        (streaming && self.sync_allows(&switchover.to)) || self.switchover_stopping
    }

    /// §2.2: keep `sync` a subset of the confirmed synchronous standbys. Shrink `sync` first,
    /// change `synchronous_standby_names`, and publish a new standby in `sync` only once it is
    /// confirmed (reported `sync` with a flush at or past our flush when the setting changed).
    fn manage_sync(&mut self, pg: &PgState, out: &mut Vec<HaOutput>) {
        let me = self.cfg.name.clone();
        let streaming = |name: &str| pg.standbys.iter().find(|s| s.name == name && s.streaming);
        let current: Vec<String> = self.view.sync.as_ref().map(|s| s.standbys.clone()).unwrap_or_default();
        let confirmed = |name: &str| streaming(name).is_some_and(|s| s.sync_state == "sync");
        let still: Vec<String> = current.iter().filter(|n| confirmed(n)).cloned().collect();
        let sync_is_mine = self.view.sync.as_ref().is_some_and(|s| s.leader == me);
        let mut revision = self.view.sync_revision;
        if still != current || !sync_is_mine {
            self.todo.push_back(DcsOp::CasSync {
                revision,
                value: Some(SyncKey { leader: me.clone(), standbys: still.clone() }),
            });
            revision += 1;
        }
        let picked = still.first().cloned().or_else(|| {
            let mut rows: Vec<&StandbyRow> = pg.standbys.iter().filter(|s| s.streaming).collect();
            // Patroni sorts by (sync_state, lsn) descending: the standby already synchronous
            // stays picked while it catches up, instead of flapping to whichever is ahead.
            rows.sort_by(|a, b| b.sync_state.cmp(a.sync_state).then(b.flush.cmp(&a.flush)).then(a.name.cmp(&b.name)));
            rows.first().map(|s| s.name.clone())
        });
        let wanted = match &picked {
            Some(name) => {
                SyncStandbyNames { method: SyncMethod::Priority, num_sync: 1, names: vec![name.to_lowercase()] }
            }
            None if self.cfg.synchronous_mode_strict => star(),
            None => SyncStandbyNames::empty(),
        };
        if wanted != pg.synchronous_standby_names {
            if still != current || !sync_is_mine {
                // Shrink `sync` first; PostgreSQL changes only once that CAS succeeded.
                self.ssn_after_cas = Some((wanted, picked.clone()));
            } else {
                out.push(HaOutput::Pg(PgAction::SetSyncStandbyNames(wanted)));
                self.sync_change = picked.clone().map(|p| (p, pg.flush));
            }
            self.recheck_soon = picked.is_some();
            return;
        }
        let Some(name) = picked else { return };
        if still.contains(&name) {
            return;
        }
        match self.sync_change.clone() {
            Some((changed_for, flush_at_change)) if changed_for == name => {
                let caught_up = streaming(&name).is_some_and(|s| s.sync_state == "sync" && s.flush >= flush_at_change);
                if caught_up {
                    self.todo.push_back(DcsOp::CasSync {
                        revision,
                        value: Some(SyncKey { leader: me, standbys: vec![name] }),
                    });
                }
            }
            // The setting already names it (e.g. from the configuration): confirm from now.
            _ => self.sync_change = Some((name, pg.flush)),
        }
    }
}
