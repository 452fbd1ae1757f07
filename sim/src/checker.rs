//! The invariants of DESIGN §5 that the core can break, checked over the history and the final
//! state of every node after `settle`. Each violation names the invariant and what proves it.

use repsim_engine::config::SyncCommitLevel;
use repsim_engine::{Lsn, Role};
use serde::Serialize;

use crate::history::AckedWrite;
use crate::workload::INSERT_TABLE;
use crate::world::World;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

/// Lost acknowledged writes, per promise level, in `SyncCommitLevel::ALL` order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Losses {
    pub by_level: [u64; 5],
    /// Lost although the promise covered a node the cluster kept: a bug.
    pub broken_promises: Vec<AckedWrite>,
}

impl Losses {
    pub fn total(&self) -> u64 {
        self.by_level.iter().sum()
    }
}

pub struct Verdict {
    pub losses: Losses,
    pub converged: bool,
    pub violations: Vec<Violation>,
    /// Invariant name -> "ok" or "violated", in a fixed order.
    pub invariants: Vec<(&'static str, &'static str)>,
}

fn level_index(level: SyncCommitLevel) -> usize {
    SyncCommitLevel::ALL.iter().position(|l| *l == level).expect("listed")
}

/// `acked_writes_durable`: every acknowledged insert must be in the final primary, unless its
/// promise did not cover that node (an `off` commit covers nothing durable; a `local` one only
/// the node that acknowledged it).
pub fn check_losses(world: &World) -> Losses {
    let mut losses = Losses::default();
    let Some(primary) = final_primary(world) else { return losses };
    let Some(engine) = world.nodes[primary].engine.as_ref() else {
        return losses;
    };
    let store = engine.store();
    for write in &world.history.acked_writes {
        if store.get(INSERT_TABLE, write.write_id).is_some() {
            continue;
        }
        losses.by_level[level_index(write.level)] += 1;
        let kept_node_confirmed = write.node as usize == primary || write.confirmed_by_mask & (1 << primary) != 0;
        // A split-brain write is counted as such (`no_split_brain`), not as a broken promise.
        if write.level >= SyncCommitLevel::Local && kept_node_confirmed && !write.split_brain {
            losses.broken_promises.push(*write);
        }
    }
    losses
}

pub fn check(world: &World) -> Verdict {
    let losses = check_losses(world);
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
                world.nodes[first.node as usize].name
            ),
        });
    }
    for detail in &world.fsync_violations {
        violations.push(Violation { invariant: "durable_fsync", detail: detail.clone() });
    }
    violations.extend(check_replica_prefix(world));
    violations.extend(check_reads(world));
    if let Some(example) = &world.slow_commit_example {
        let detail = format!("{} commits waited past max_commit_wait; first: {example}", world.slow_commits);
        violations.push(Violation { invariant: "commits_release", detail });
    }
    let convergence = check_converged(world);
    let converged = convergence.is_empty();
    let converged_gates = world.scenario.expect.converged != Some(false);
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
        (
            "commits_release",
            if world.scenario.expect.max_commit_wait_ns.is_none() { "not_checked" } else { status("commits_release") },
        ),
        (
            "converged",
            if converged {
                "ok"
            } else if converged_gates {
                "violated"
            } else {
                "not_converged_as_expected"
            },
        ),
    ];
    Verdict { losses, converged, violations, invariants }
}

/// `replica_prefix`: where a standby and the primary both still hold WAL, the bytes agree.
fn check_replica_prefix(world: &World) -> Vec<Violation> {
    let Some(primary_index) = final_primary(world) else { return Vec::new() };
    let Some(primary) = world.nodes[primary_index].engine.as_ref() else {
        return Vec::new();
    };
    let p = primary.status();
    let mut out = Vec::new();
    for (i, slot) in world.nodes.iter().enumerate() {
        let Some(standby) = slot.engine.as_ref().filter(|_| i != primary_index) else {
            continue;
        };
        if standby.timeline() != primary.timeline() {
            continue; // not following the final primary (yet): `converged` reports it
        }
        let s = standby.status();
        let from = Lsn(p.wal_start_lsn.0.max(s.wal_start_lsn.0));
        let to = Lsn(p.flush_lsn.0.min(s.flush_lsn.0));
        if from >= to {
            continue;
        }
        let (Some(a), Some(b)) = (primary.wal_bytes(from, to), standby.wal_bytes(from, to)) else {
            continue;
        };
        if let Some(offset) = a.iter().zip(b).position(|(x, y)| x != y) {
            out.push(Violation {
                invariant: "replica_prefix",
                detail: format!(
                    "{}'s WAL differs from {}'s at {}",
                    slot.name,
                    world.nodes[primary_index].name,
                    Lsn(from.0 + offset as u64)
                ),
            });
        }
    }
    out
}

/// `converged`: after settle every node runs, every standby has replayed everything the primary
/// flushed, and holds the same data.
fn check_converged(world: &World) -> Vec<Violation> {
    let name = |i: usize| world.nodes[i].name.clone();
    let Some(primary_index) = final_primary(world) else {
        return vec![Violation { invariant: "converged", detail: "no node runs as primary at the end".into() }];
    };
    let Some(primary) = world.nodes[primary_index].engine.as_ref().filter(|e| e.role() == Role::Primary) else {
        return vec![Violation {
            invariant: "converged",
            detail: format!("{} is not running as primary at the end", name(primary_index)),
        }];
    };
    let p = primary.status();
    let mut out = Vec::new();
    for (i, slot) in world.nodes.iter().enumerate() {
        let spare_never_added = !slot.host_up && slot.disk.durable_bytes() == 0;
        if i == primary_index || spare_never_added {
            continue;
        }
        let Some(standby) = slot.engine.as_ref() else {
            out.push(Violation { invariant: "converged", detail: format!("{} is not running at the end", name(i)) });
            continue;
        };
        let s = standby.status();
        if s.replay_lsn < p.flush_lsn || s.data_hash != p.data_hash {
            out.push(Violation {
                invariant: "converged",
                detail: format!(
                    "{} replayed to {} ({} bytes behind {}'s flush {}), data hash {:016x} vs {:016x}",
                    name(i),
                    s.replay_lsn,
                    p.flush_lsn.bytes_since(s.replay_lsn),
                    name(primary_index),
                    p.flush_lsn,
                    s.data_hash,
                    p.data_hash
                ),
            });
        }
    }
    out
}

/// The session guarantees: checked when the router promises them or `[expect]` demands them.
fn check_reads(world: &World) -> Vec<Violation> {
    let reads = &world.reads;
    let router = world.scenario.workload.router;
    let expect = &world.scenario.expect;
    let mut out = Vec::new();
    let describe = |a: &crate::reads::ReadAnomaly| {
        format!(
            "session {} read key {} on {} at {:.3}s and got write {} ({}), older than write {} ({})",
            a.session,
            a.key,
            a.node,
            a.invoked_at_ns as f64 / 1e9,
            a.returned_write_id,
            a.returned_lsn,
            a.expected_write_id,
            a.expected_lsn
        )
    };
    let ryw_checked = router.promises_read_your_writes() || expect.read_your_writes == Some(true);
    if let (true, Some(first)) = (ryw_checked, reads.read_your_writes.first()) {
        let detail = format!(
            "{} reads missed the session's own write; first: {}",
            reads.read_your_writes_count,
            describe(first)
        );
        out.push(Violation { invariant: "read_your_writes", detail });
    }
    let monotonic_checked = router.promises_monotonic_reads() || expect.monotonic_reads == Some(true);
    if let (true, Some(first)) = (monotonic_checked, reads.monotonic_reads.first()) {
        let detail = format!("{} reads went back in time; first: {}", reads.monotonic_reads_count, describe(first));
        out.push(Violation { invariant: "monotonic_reads", detail });
    }
    if let Some(first) = reads.dirty_reads.first() {
        let detail = format!(
            "{} reads returned a rolled-back write; first: session {} read key {} on {} and got write {}",
            reads.dirty_reads_count, first.session, first.key, first.node, first.returned_write_id
        );
        out.push(Violation { invariant: "no_dirty_reads", detail });
    }
    out
}

/// The primary the cluster converged on: the one clients are routed to, else any node running
/// as primary (the most recently promoted first).
pub fn final_primary(world: &World) -> Option<usize> {
    let is_primary = |i: usize| world.nodes[i].engine.as_ref().is_some_and(|e| e.role() == Role::Primary);
    if let Some(node) = world.router_primary.map(|n| n as usize).filter(|&n| is_primary(n)) {
        return Some(node);
    }
    if let Some(p) = world.promotions.iter().rev().map(|p| p.node as usize).find(|&n| is_primary(n)) {
        return Some(p);
    }
    (0..world.nodes.len()).find(|&i| is_primary(i))
}
