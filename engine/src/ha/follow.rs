//! Following a leader: start as its standby, repoint, and rejoin after a divergence or
//! removed WAL (spec ha-and-routing §1.8): pg_rewind, re-clone, or wait for an operator.

use super::*;

impl HaAgent {
    /// Someone else leads: be its standby.
    pub(super) fn follow(&mut self, pg: &PgState, upstream: Option<NodeId>, out: &mut Vec<HaOutput>) {
        match pg.role {
            PgRole::Stopped if self.needs_reinit => {}
            PgRole::Stopped => out.push(HaOutput::Pg(PgAction::StartStandby { upstream })),
            PgRole::Primary => {
                out.push(HaOutput::Event("demoting: another member holds the leader key".into()));
                out.push(HaOutput::Pg(PgAction::Demote { upstream }));
            }
            PgRole::Replica => {
                let Some(source) = upstream else { return };
                if pg.diverged {
                    self.rejoin(source, pg.wal_removed, out);
                } else if pg.upstream != Some(source) {
                    out.push(HaOutput::Pg(PgAction::Follow { upstream: source }));
                }
            }
        }
    }

    /// §1.8: our WAL went past the new timeline's fork, or (`wal_removed`) the leader no
    /// longer has the WAL we need to stream from.
    fn rejoin(&mut self, source: NodeId, wal_removed: bool, out: &mut Vec<HaOutput>) {
        // PostgreSQL's words for each case (walsender.c, xlogrecovery.c).
        let why = if wal_removed {
            "requested WAL segment has already been removed on the leader"
        } else {
            "diverged from the leader's timeline"
        };
        if self.needs_reinit {
            if self.cfg.remove_data_directory_on_rewind_failure {
                self.needs_reinit = false;
                out.push(HaOutput::Event("re-cloning after a failed rewind".into()));
                out.push(HaOutput::Pg(PgAction::Reinit { source }));
            }
            return;
        }
        if self.cfg.use_pg_rewind {
            out.push(HaOutput::Event(format!("{why}: pg_rewind")));
            out.push(HaOutput::Pg(PgAction::Rewind { source }));
        } else if self.cfg.remove_data_directory_on_rewind_failure {
            out.push(HaOutput::Event(format!("{why}: re-cloning")));
            out.push(HaOutput::Pg(PgAction::Reinit { source }));
        } else {
            self.needs_reinit = true;
            out.push(HaOutput::Event(format!("{why}, and may neither rewind nor re-clone: needs reinit")));
        }
    }

    /// The driver reports a failed rewind.
    pub fn rewind_failed(&mut self, out: &mut Vec<HaOutput>) {
        self.needs_reinit = true;
        out.push(HaOutput::Event("pg_rewind failed".into()));
    }
}
