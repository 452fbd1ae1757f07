//! Targeted archive recovery: PostgreSQL's `recovery.signal` with `restore_command` and a
//! `recovery_target_*` (xlogrecovery.c: `recoveryStopsBefore`, `recoveryStopsAfter`, and the
//! end of recovery when `restore_command` finds no more WAL). A node restored from a base
//! backup replays archived WAL up to its target, then ends recovery on a new timeline, as
//! `recovery_target_action = promote` does (PostgreSQL's default is `pause`; a restore for
//! disaster recovery asks for `promote`).
//!
//! With a time or LSN target, an archive that ends before the target is reached ends recovery
//! with FATAL "recovery ended before configured recovery target was reached" (PostgreSQL 13+):
//! the node stops, and an operator must pick another target.

use crate::io::{Instant, Observation, Output};
use crate::lsn::Lsn;
use crate::node::{Node, Role};
use crate::wal::record::{Record, RecordBody};

/// The FATAL message of a targeted recovery that ran out of WAL (PostgreSQL 13+).
pub const TARGET_NOT_REACHED: &str = "recovery ended before configured recovery target was reached";

/// `recovery_target_*`, with `recovery_target_inclusive = on` (the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// No target: replay all the archive holds, on the newest timeline it has
    /// (`recovery_target_timeline = latest`).
    Latest,
    /// `recovery_target_time`, on the writer's clock (commit timestamps): a commit or abort
    /// stamped later is not replayed, nor anything after it.
    TimeNs(u64),
    /// `recovery_target_lsn`: replay stops after the first record that starts at or past it.
    Lsn(Lsn),
}

impl Node {
    /// Replay stops before `record` (`recoveryStopsBefore`): a commit or abort stamped after a
    /// time target.
    pub(crate) fn recovery_stops_before(&self, record: &Record) -> bool {
        match (self.cfg.recovery_target, &record.body) {
            (
                Some(RecoveryTarget::TimeNs(target_ns)),
                RecordBody::Commit { timestamp_ns, .. } | RecordBody::Abort { timestamp_ns },
            ) => *timestamp_ns > target_ns,
            _ => false,
        }
    }

    /// Replay stops after the record that starts at `start` (`recoveryStopsAfter`): the first
    /// one at or past an LSN target (inclusive).
    pub(crate) fn recovery_stops_after(&self, start: Lsn) -> bool {
        matches!(self.cfg.recovery_target, Some(RecoveryTarget::Lsn(target)) if start >= target)
    }

    /// Replay stopped at the target: end recovery there, once the batch before it is applied.
    pub(crate) fn stop_at_recovery_target(&mut self, now: Instant, out: &mut Vec<Output>) {
        if !self.restorer.target_reached || self.replay_busy() || self.promote_requested {
            return;
        }
        out.push(Output::Observe(Observation::RecoveryTargetReached { lsn: self.replay.lsn }));
        self.request_promotion(now, out);
    }

    /// `restore_command` found nothing more and there is no stream to turn to: in targeted
    /// recovery (no `standby.signal`), that ends recovery.
    pub(crate) fn archive_exhausted(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.cfg.recovery_target.is_some() && self.cfg.primary_conninfo.is_none() && self.role == Role::Standby {
            self.request_promotion(now, out);
        }
    }

    /// Recovery may end: no target, `latest`, or the target was reached. Otherwise the node
    /// stops with FATAL (it returns false).
    pub(crate) fn recovery_target_satisfied(&mut self, out: &mut Vec<Output>) -> bool {
        let needs_target = matches!(self.cfg.recovery_target, Some(RecoveryTarget::TimeNs(_) | RecoveryTarget::Lsn(_)));
        if !needs_target || self.restorer.target_reached {
            return true;
        }
        self.role = Role::Panicked;
        out.push(Output::Observe(Observation::RecoveryTargetNotReached { replayed_to: self.replay.lsn }));
        false
    }
}
