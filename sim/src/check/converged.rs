//! `converged`: after settle every node runs, every standby has replayed everything the primary
//! flushed, and holds the same data.

use repsim_engine::Role;

use crate::check::verdict::Violation;
use crate::check::view::EndState;

/// `converged`: after settle every node runs, every standby has replayed everything the primary
/// flushed, and holds the same data.
pub(crate) fn check_converged(end: &EndState) -> Vec<Violation> {
    let name = |i: usize| end.nodes[i].name.to_string();
    let Some(primary_index) = end.final_primary() else {
        return vec![Violation { invariant: "converged".into(), detail: "no node runs as primary at the end".into() }];
    };
    let Some(primary) = end.nodes[primary_index].engine.filter(|e| e.role() == Role::Primary) else {
        return vec![Violation {
            invariant: "converged".into(),
            detail: format!("{} is not running as primary at the end", name(primary_index)),
        }];
    };
    let p = primary.status();
    let primary_data_hash = primary.data_hash();
    let mut out = Vec::new();
    for (i, slot) in end.physical() {
        let spare_never_added = slot.never_added;
        if i == primary_index || spare_never_added {
            continue;
        }
        let Some(standby) = slot.engine else {
            out.push(Violation {
                invariant: "converged".into(),
                detail: format!("{} is not running at the end", name(i)),
            });
            continue;
        };
        let s = standby.status();
        // WAL the primary flushed in the last moments (a checkpoint's record) may still be on
        // its way: the standby must have replayed what was flushed at the mark, and holds the
        // same data once it has replayed everything.
        let flushed_at_mark = end
            .flush_at_converge_mark
            .get(primary_index)
            .copied()
            .flatten()
            .map_or(p.flush_lsn, |l| l.min(p.flush_lsn));
        if s.replay_lsn < p.flush_lsn && s.replay_lsn >= flushed_at_mark {
            continue;
        }
        // It holds all the WAL, and `recovery_min_apply_delay` holds replay at a commit not yet
        // due on its own clock (the delay, plus however far its clock is behind the
        // primary's): PostgreSQL waits too (`recoveryApplyDelay`), and a longer settle judges
        // it (swarm seed 5540: a clock 8.5 s behind, a commit 9 s before the end).
        if s.replay_lsn < p.flush_lsn && s.flush_lsn >= p.flush_lsn && slot.apply_delay_pending {
            continue;
        }
        let (standby_hash, primary_hash) = (standby.data_hash(), primary_data_hash);
        if s.replay_lsn < p.flush_lsn || standby_hash != primary_hash {
            out.push(Violation {
                invariant: "converged".into(),
                detail: format!(
                    "{} replayed to {} ({} bytes behind {}'s flush {}), data hash {:016x} vs {:016x}",
                    name(i),
                    s.replay_lsn,
                    p.flush_lsn.bytes_since(s.replay_lsn),
                    name(primary_index),
                    p.flush_lsn,
                    standby_hash,
                    primary_hash
                ),
            });
        }
    }
    out
}

/// Why the cluster could not converge on its own, when that is what PostgreSQL and Patroni
/// would do too: then `converged` is reported, not judged.
pub fn excuse(end: &EndState) -> Option<String> {
    for (_, n) in end.physical() {
        let Some(s) = n.engine.map(|e| e.status()) else { continue };
        // Only an operation really still on the disk excuses it: a flusher that never asked
        // for the fsync is a bug, and is judged.
        if s.insert_lsn > s.flush_lsn && n.disk_busy {
            return Some(format!(
                "{}'s WAL is written to {} but flushed only to {} (an fsync still in flight at the end, \
                 from the disk's latency tail): a longer settle judges it",
                n.name, s.insert_lsn, s.flush_lsn
            ));
        }
    }
    // An operator's restore that ended without a primary (PostgreSQL stops with FATAL when the
    // archive ends short of the target) leaves nothing to converge on until another restore.
    if let (None, Some(failed)) = (end.final_primary(), end.failed_restore.as_ref()) {
        return Some(format!("{failed}: no primary runs until an operator restores again"));
    }
    // A standby whose upstream removed the WAL it needs (no slot, too small a wal_keep_size)
    // waits for an operator's re-clone in PostgreSQL, and under Patroni unless it may re-clone
    // by itself (remove_data_directory_on_rewind_failure).
    if let Some((_, n)) =
        end.physical().find(|(_, n)| n.wal_removed && !n.engine.is_some_and(|e| e.role() == Role::Primary))
    {
        return Some(format!(
            "{}'s upstream removed WAL it needs (\"requested WAL segment has already been removed\", no slot \
             and too small a wal_keep_size): it waits for an operator's re-clone, as in PostgreSQL",
            n.name
        ));
    }
    // A node whose WAL went past the new timeline's fork, under an HA manager that may neither
    // pg_rewind nor re-clone it (Patroni's defaults: use_pg_rewind and
    // remove_data_directory_on_rewind_failure both false), stays out until an operator reinits it.
    if let Some(n) = end.nodes.iter().find(|n| n.needs_reinit) {
        return Some(format!(
            "{} diverged from the new timeline and the HA manager may neither pg_rewind nor re-clone it \
             (use_pg_rewind = false, remove_data_directory_on_rewind_failure = false): it waits for an \
             operator's reinit, as under Patroni",
            n.name
        ));
    }
    // Patroni demotes a leader that cannot reach the DCS (so that no two primaries run); it
    // takes the key back at a later loop, and nobody else may take it before the lease
    // expires. A demotion within the last ttl + loop_wait of the run may still be in that
    // window (swarm seed 3735: 20 % packet loss against a 1 s retry_timeout flaps on DCS
    // timeouts into settle). The renewal after such a demotion may find the lease lapsed
    // ("the leader key is no longer mine"), and the race that follows takes a probe round
    // (2 s at most), a DCS write and a promotion: swarm seed 16926 ended 68 ms after the lease.
    if let (true, None, Some(ha)) = (end.ha, end.final_primary(), end.scenario.ha.as_ref()) {
        let end_ns = end.scenario.duration_ns + end.scenario.settle_ns;
        let window_ns = ha.ttl_ns + ha.loop_wait_ns + ha.retry_timeout_ns + repsim_engine::ha::PROBE_TIMEOUT_NS;
        let demoted = |e: &str| {
            e.contains("demoting: lost contact with the DCS")
                || e.contains("demoting: the leader key is no longer mine")
        };
        let lost_dcs = end.nodes.iter().find(|n| {
            n.last_ha_event.is_some_and(demoted) && n.last_ha_event_ns.is_some_and(|at| at + window_ns >= end_ns)
        });
        if let Some(n) = lost_dcs {
            return Some(format!(
                "{} demoted itself when it lost contact with the DCS or its lease at {:.3} s, within ttl + loop_wait \
                 + retry_timeout + the probe timeout of the end, and no leader had taken over yet: a longer settle judges it",
                n.name,
                n.last_ha_event_ns.unwrap_or(0) as f64 / 1e9
            ));
        }
    }
    let disk_lost = end.physical().any(|(_, n)| !n.disk_losses_ns.is_empty());
    let refused = |n: &crate::check::view::NodeView| n.last_ha_event.is_some_and(|e| e.contains("not a candidate"));
    let running: Vec<_> = end.physical().map(|(_, n)| n).filter(|n| n.engine.is_some()).collect();
    if end.ha && disk_lost && end.final_primary().is_none() && !running.is_empty() && running.iter().all(|n| refused(n))
    {
        return Some(
            "the leader lost its disk and the HA rules (sync key, nofailover, maximum_lag_on_failover) \
             refuse every survivor, as Patroni would: an operator decides"
                .into(),
        );
    }
    None
}
