//! The invariants of DESIGN §5 that the core can break, checked over the history and the final
//! state of every node after `settle`. Each violation names the invariant and what proves it.

pub mod converged;
pub mod durability;
pub mod history;
pub mod oracle;
pub mod reads;
pub mod replica_prefix;
pub mod sessions;
pub mod verdict;
pub mod view;

use crate::check::converged::check_converged;
pub use crate::check::durability::check_losses;
use crate::check::replica_prefix::check_replica_prefix;
use crate::check::sessions::check_reads;
pub use crate::check::verdict::{Losses, Verdict, Violation};
use crate::check::view::EndState;

pub fn check(end: &EndState) -> Verdict {
    let losses = check_losses(end);
    let mut violations = Vec::new();
    if let Some(first) = losses.broken_promises.first() {
        violations.push(Violation {
            invariant: "acked_writes_durable",
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
        violations.push(Violation { invariant: "durable_fsync", detail: detail.clone() });
    }
    for (invariant, finding) in &end.live.by_invariant {
        let detail = format!("{} times; first: {}", finding.count, finding.examples.join("; "));
        violations.push(Violation { invariant, detail });
    }
    violations.extend(check_replica_prefix(end));
    violations.extend(check_reads(end));
    if let Some(example) = end.slow_commit_example {
        let detail = format!("{} commits waited past max_commit_wait; first: {example}", end.slow_commits);
        violations.push(Violation { invariant: "commits_release", detail });
    }
    let convergence = check_converged(end);
    let converged = convergence.is_empty();
    let excuse = if converged { None } else { crate::check::converged::excuse(end) };
    let converged_gates =
        end.scenario.expect.converged != Some(false) && end.scenario.expect.liveness && excuse.is_none();
    if converged_gates {
        violations.extend(convergence);
    }
    let status = |name: &str| {
        if violations.iter().any(|v| v.invariant == name) {
            "violated"
        } else {
            "ok"
        }
    };
    let invariants = vec![
        ("acked_writes_durable", status("acked_writes_durable")),
        ("durable_fsync", status("durable_fsync")),
        ("replica_prefix", status("replica_prefix")),
        ("read_your_writes", status("read_your_writes")),
        ("monotonic_reads", status("monotonic_reads")),
        ("no_dirty_reads", status("no_dirty_reads")),
        ("promise_audit", status("promise_audit")),
        ("honest_reports", status("honest_reports")),
        ("promotion_replayed", status("promotion_replayed")),
        ("sync_promotion", status("sync_promotion")),
        (
            "commits_release",
            if end.scenario.expect.max_commit_wait_ns.is_none() { "not_checked" } else { status("commits_release") },
        ),
        (
            "converged",
            if !end.scenario.expect.liveness {
                "not_checked"
            } else if converged {
                "ok"
            } else if end.scenario.expect.converged == Some(false) {
                "not_converged_as_expected"
            } else if excuse.is_some() {
                "not_checked"
            } else {
                "violated"
            },
        ),
    ];
    let notes = excuse.map(|why| format!("converged not judged: {why}")).into_iter().collect();
    Verdict { losses, converged, violations, invariants, notes }
}
