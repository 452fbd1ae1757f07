//! The invariants of DESIGN §5 that the core can break, checked over the history and the final
//! state of every node after `settle`. Each violation names the invariant and what proves it.

pub mod converged;
pub mod durability;
pub mod history;
pub mod id_map;
pub mod ledger;
pub mod logical;
pub mod master_writes;
pub mod multimaster;
pub mod oracle;
pub mod reads;
pub mod replica_prefix;
pub mod session_keys;
pub mod sessions;
pub mod verdict;
pub mod view;

use crate::check::converged::check_converged;
pub use crate::check::durability::check_losses;
use crate::check::replica_prefix::check_replica_prefix;
use crate::check::sessions::{check_reads, losses_unknowable, monotonic_reads_judged, read_your_writes_judged};
pub use crate::check::verdict::{CheckState, Losses, Verdict, Violation};
use crate::check::view::EndState;
use crate::scenario::model::FaultKind;

/// Why the archive invariants were not judged.
const ARCHIVE_OFF: &str = "`archive_mode` is off: nothing is archived";

pub fn check(end: &EndState) -> Verdict {
    let losses = check_losses(end);
    let mut violations = Vec::new();
    if let Some(first) = losses.broken_promises.first() {
        violations.push(Violation {
            invariant: "acked_writes_durable".into(),
            detail: format!(
                "{} acknowledged writes lost although their promise covered the surviving primary; first: write {} committed at {} under synchronous_commit={} by {}",
                losses.broken_promises.len(),
                first.write_id,
                first.commit_lsn,
                first.level.name(),
                end.nodes[first.node as usize].name
            ),
        });
    }
    for detail in end.fsync_violations {
        violations.push(Violation { invariant: "durable_fsync".into(), detail: detail.clone() });
    }
    for (invariant, finding) in &end.live.by_invariant {
        let detail = format!("{} times; first: {}", finding.count, finding.examples.join("; "));
        violations.push(Violation { invariant: invariant.to_string(), detail });
    }
    violations.extend(check_replica_prefix(end));
    violations.extend(check_reads(end));
    if let Some(example) = end.slow_commit_example {
        let detail = format!("{} commits waited past max_commit_wait; first: {example}", end.slow_commits);
        violations.push(Violation { invariant: "commits_release".into(), detail });
    }
    let convergence = check_converged(end);
    let converged = convergence.is_empty();
    let converged_unjudged = why_converged_is_not_judged(end, converged);
    if converged_unjudged.is_none() {
        violations.extend(convergence);
    }
    let logical_unjudged = logical::why_not_judged(end);
    if logical_unjudged.is_none() {
        violations.extend(logical::check_logical_converged(end));
    }
    let masters_unjudged = multimaster::why_not_judged(end);
    if masters_unjudged.is_none() {
        violations.extend(multimaster::check_masters_converged(end));
    }
    let multi_master = end.scenario.logical.multi_master.is_some();
    let subscribed = !end.subscriptions.is_empty();
    let judged = |name: &str| {
        if violations.iter().any(|v| v.invariant == name) {
            CheckState::Violated
        } else {
            CheckState::Ok
        }
    };
    let unless =
        |checked: bool, name: &str, why: String| if checked { judged(name) } else { CheckState::NotChecked(why) };
    // With no node running at the end, no write can be judged lost or kept (`sessions.rs`).
    let losses_unknown = losses_unknowable(end);
    let unless_losses_unknown = |state: CheckState| match (&losses_unknown, state) {
        (Some(why), CheckState::Ok | CheckState::Violated) => CheckState::NotChecked(why.clone()),
        (_, state) => state,
    };
    let invariants = vec![
        ("acked_writes_durable", unless_losses_unknown(judged("acked_writes_durable"))),
        ("durable_fsync", judged("durable_fsync")),
        ("replica_prefix", judged("replica_prefix")),
        (
            "read_your_writes",
            unless_losses_unknown(unless(
                read_your_writes_judged(end),
                "read_your_writes",
                format!(
                    "the {} does not promise it; `[expect] read_your_writes = true` judges it",
                    reads_routed_by(end)
                ),
            )),
        ),
        (
            "monotonic_reads",
            unless_losses_unknown(unless(
                monotonic_reads_judged(end),
                "monotonic_reads",
                format!(
                    "the {} does not promise it; `[expect] monotonic_reads = true` judges it",
                    reads_routed_by(end)
                ),
            )),
        ),
        ("no_dirty_reads", judged("no_dirty_reads")),
        ("promise_audit", judged("promise_audit")),
        ("honest_reports", judged("honest_reports")),
        ("promotion_replayed", judged("promotion_replayed")),
        ("waiting_commits_hidden", judged("waiting_commits_hidden")),
        ("archive_identical", unless(end.scenario.replication.archive_mode, "archive_identical", ARCHIVE_OFF.into())),
        (
            "archived_before_recycled",
            unless(end.scenario.replication.archive_mode, "archived_before_recycled", ARCHIVE_OFF.into()),
        ),
        (
            "slot_wal_kept",
            unless(
                subscribed || end.scenario.faults.iter().any(|f| matches!(f.kind, FaultKind::CreateLogicalSlot { .. })),
                "slot_wal_kept",
                "no subscription or `create_logical_slot` fault makes a logical slot".into(),
            ),
        ),
        (
            "logical_exactly_once",
            match (subscribed, multi_master) {
                (_, true) => CheckState::NotChecked(logical::MULTI_MASTER.into()),
                (false, _) => CheckState::NotChecked("no `[[logical.subscriptions]]`".into()),
                (true, false) => judged("logical_exactly_once"),
            },
        ),
        (
            "logical_converged",
            match logical_unjudged {
                None => judged("logical_converged"),
                Some(why) => CheckState::NotChecked(why),
            },
        ),
        (
            "masters_converged",
            match masters_unjudged {
                None => judged("masters_converged"),
                Some(why) => CheckState::NotChecked(why),
            },
        ),
        (
            "restore_complete",
            unless(
                end.scenario.faults.iter().any(|f| matches!(f.kind, FaultKind::Restore { .. })),
                "restore_complete",
                "no `restore` fault restores a node from the archive".into(),
            ),
        ),
        (
            "endpoint_rules",
            unless(
                end.scenario.endpoints.is_some(),
                "endpoint_rules",
                "no `[endpoints]`: clients follow the router's primary at once".into(),
            ),
        ),
        (
            "pooler_rules",
            unless(
                end.scenario.pooler.is_some(),
                "pooler_rules",
                "no `[pooler]` stands between the clients and the nodes".into(),
            ),
        ),
        (
            "recovery_conflicts_resolved",
            unless(
                end.scenario.workload.read_duration.is_some(),
                "recovery_conflicts_resolved",
                "no read runs long enough to conflict with replay; `[workload] read_duration` sets one".into(),
            ),
        ),
        (
            "sync_promotion",
            unless(
                end.ha && end.scenario.ha.as_ref().is_some_and(|h| h.synchronous_mode),
                "sync_promotion",
                "it applies to Patroni's synchronous_mode, which this scenario does not use".into(),
            ),
        ),
        (
            "commits_release",
            unless(
                end.scenario.expect.max_commit_wait_ns.is_some(),
                "commits_release",
                "no `[expect] max_commit_wait` bounds how long a commit may wait".into(),
            ),
        ),
        (
            "converged",
            match converged_unjudged {
                Some(why) => CheckState::NotChecked(why),
                None => judged("converged"),
            },
        ),
    ];
    Verdict { losses, converged, violations, invariants }
}

/// What routes the reads: PgPool-II when it balances them, else the application's router.
fn reads_routed_by(end: &EndState) -> String {
    match end.scenario.pooler.as_ref() {
        Some(p) if p.kind == crate::scenario::model::PoolerKind::Pgpool => "PgPool-II's load balancing".into(),
        _ => format!("{} router", end.scenario.workload.router.name()),
    }
}

/// Why `converged` is reported but not judged: the scenario says so, or (when it did not
/// converge) the run left no way to, as PostgreSQL and Patroni would (`converged::excuse`).
fn why_converged_is_not_judged(end: &EndState, converged: bool) -> Option<String> {
    let expect = &end.scenario.expect;
    if !expect.liveness {
        return Some("`[expect] liveness = false`: the fault plan may leave no way to converge".into());
    }
    if expect.converged == Some(false) {
        let measured = if converged { "it converged anyway" } else { "it did not" };
        return Some(format!("`[expect] converged = false`: the scenario expects a node not to catch up ({measured})"));
    }
    if converged {
        None
    } else {
        crate::check::converged::excuse(end)
    }
}
