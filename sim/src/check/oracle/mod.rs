//! Live, god's-eye oracles: promises audited at the instant they are made, against the
//! world's own state (what the disks hold, what the stores contain), never against what the
//! engine reports about itself. The world gathers the facts (`world/oracles.rs`); the rules
//! live here, one file each, as pure functions. A violation names the time, the node and
//! the LSN that prove it.

pub mod promotion;
pub mod reports;
pub mod slots;
pub mod snapshots;
pub mod syncrep;
pub mod visibility;

use std::collections::BTreeMap;

/// Where a node's WAL ends on its disk, as LSN byte positions: what its OS holds (written,
/// perhaps volatile) and what survives power loss (durable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalFacts {
    pub written_end: u64,
    pub durable_end: u64,
}

/// Examples kept per oracle (every violation is counted).
pub const KEPT_EXAMPLES: usize = 3;

/// The live oracles, in the order the verdict lists them.
pub const LIVE_INVARIANTS: [&str; 13] = [
    "promise_audit",
    "honest_reports",
    "promotion_replayed",
    "sync_promotion",
    "waiting_commits_hidden",
    "recovery_conflicts_resolved",
    "archive_identical",
    "archived_before_recycled",
    "restore_complete",
    "slot_wal_kept",
    "pooler_rules",
    "endpoint_rules",
    "logical_exactly_once",
];

#[derive(Clone, Debug, Default)]
pub struct Finding {
    pub count: u64,
    pub examples: Vec<String>,
}

/// What the live oracles found during a run. Bounded: counts, and a few examples each.
#[derive(Clone, Debug, Default)]
pub struct LiveFindings {
    pub by_invariant: BTreeMap<&'static str, Finding>,
}

impl LiveFindings {
    /// Records one violation of `invariant` at `at_ns`; the text is built only if kept.
    pub fn record(&mut self, invariant: &'static str, at_ns: u64, text: impl FnOnce() -> String) {
        debug_assert!(LIVE_INVARIANTS.contains(&invariant), "unknown live invariant {invariant}");
        let finding = self.by_invariant.entry(invariant).or_default();
        finding.count += 1;
        if finding.examples.len() < KEPT_EXAMPLES {
            finding.examples.push(format!("at {:.6}s: {}", at_ns as f64 / 1e9, text()));
        }
    }
}
