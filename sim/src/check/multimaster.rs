//! `[multi_master]`: what the clients' register writes became on each master after settle.
//!
//! - Divergence: rows a master holds differently from the final primary (or lacks, or holds
//!   beyond it). `masters_converged` requires none where every table's policy is
//!   `last_update_wins` and the masters' clocks agree: the one setting that promises it
//!   (pglogical compares timestamps only when applying a remote change, so a local update
//!   stamped earlier than the row it replaces wins locally and loses elsewhere). Otherwise
//!   divergence is a measured outcome, not a verdict.
//! - Lost updates (Jepsen's term for a register): acknowledged writes to a key that began
//!   after the write a master ends with had been acknowledged. Any order of the writes that
//!   respects real time puts them after it, yet it is what stayed: they were lost. Judged
//!   among the last [`KEPT_WRITES_PER_KEY`] acknowledged writes of each key (a lower bound
//!   beyond them), so memory stays flat.

use crate::check::logical::row_differences;
pub use crate::check::master_writes::{MasterWrites, KEPT_WRITES_PER_KEY};
use crate::check::verdict::Violation;
use crate::check::view::EndState;
use crate::scenario::logical::{REGISTER_TABLE, TABLE_NAMES};

/// One master at the end, against the final primary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterOutcome {
    pub node: usize,
    /// Rows missing, extra and different against the final primary, every table.
    pub rows_missing_extra_different: (u64, u64, u64),
    pub lost_updates: u64,
    /// Register keys whose final write is not among those kept (not judged for lost updates).
    pub keys_unjudged: u64,
}

/// Each running master's outcome, the final primary first; empty without `[multi_master]`.
pub fn master_outcomes(end: &EndState) -> Vec<MasterOutcome> {
    let Some(mm) = &end.scenario.logical.multi_master else { return Vec::new() };
    let Some(primary) = end.final_primary() else { return Vec::new() };
    let Some(reference) = end.nodes[primary].engine else { return Vec::new() };
    let masters = std::iter::once(primary).chain(mm.masters.iter().copied().filter(|&m| !end.is_physical(m)));
    masters
        .filter_map(|node| {
            let engine = end.nodes[node].engine?;
            let mut outcome = MasterOutcome { node, ..Default::default() };
            outcome.rows_missing_extra_different = row_differences(reference, engine, None, &Default::default());
            for (key, value) in engine.store().table(REGISTER_TABLE) {
                match end.master_writes.lost_after(key, value.write_id) {
                    Some(lost) => outcome.lost_updates += lost,
                    None => outcome.keys_unjudged += 1,
                }
            }
            Some(outcome)
        })
        .collect()
}

/// Why `masters_converged` is not judged, if it is not.
pub(crate) fn why_not_judged(end: &EndState) -> Option<String> {
    let Some(mm) = &end.scenario.logical.multi_master else { return Some("no `[multi_master]`".into()) };
    if !mm.promises_convergence() {
        return Some(
            "only `last_update_wins` promises that masters converge; the summary counts the rows they hold differently"
                .into(),
        );
    }
    if let Some(why) = clocks_disagree(end, &mm.masters) {
        return Some(format!(
            "{why}: under last_update_wins a local update is not compared with the row's timestamp, so a master whose clock is behind can keep a version the others reject; the summary counts the rows they hold differently"
        ));
    }
    if !end.promoted.is_empty() {
        return Some("the cluster's primary failed over: the other masters' slots on it stayed behind".into());
    }
    if let Some(down) = mm.masters.iter().find(|&&m| end.nodes[m].engine.is_none()) {
        return Some(format!("master {} is not running at the end", end.nodes[*down].name));
    }
    let invalidated = mm.masters.iter().find_map(|&m| {
        let engine = end.nodes[m].engine?;
        let row = engine.pg_replication_slots().into_iter().find(|r| r.wal_status == "lost")?;
        Some(format!("`max_slot_wal_keep_size` invalidated slot {} on {}", row.slot_name, end.nodes[m].name))
    });
    invalidated
}

/// What makes the masters' clocks disagree, if anything does.
fn clocks_disagree(end: &EndState, masters: &[usize]) -> Option<String> {
    use crate::scenario::model::FaultKind;
    let clock = |m: usize| (end.scenario.nodes[m].clock_offset_ns, end.scenario.nodes[m].clock_drift_ppm);
    if let Some(&m) = masters.iter().find(|&&m| clock(m) != clock(masters[0])) {
        return Some(format!("the clocks of {} and {} differ", end.nodes[masters[0]].name, end.nodes[m].name));
    }
    end.scenario.faults.iter().find_map(|f| match &f.kind {
        FaultKind::ClockSkew { node, .. } | FaultKind::ClockDrift { node, .. } if masters.contains(node) => {
            Some(format!("a clock fault moves {}'s clock", end.nodes[*node].name))
        }
        _ => None,
    })
}

/// `masters_converged`: under `last_update_wins`, every master ends with the final
/// primary's rows.
pub(crate) fn check_masters_converged(end: &EndState) -> Vec<Violation> {
    let Some(primary) = end.final_primary() else { return Vec::new() };
    let Some(reference) = end.nodes[primary].engine else { return Vec::new() };
    let mut out = Vec::new();
    for outcome in master_outcomes(end).iter().filter(|o| o.node != primary) {
        let engine = end.nodes[outcome.node].engine.expect("outcomes are of running masters");
        for (table_name, table) in TABLE_NAMES {
            if let Some(difference) =
                crate::check::logical::first_difference(reference, engine, table, &Default::default())
            {
                let detail = format!(
                    "table {table_name} on {} differs from {} (the final primary) under last_update_wins: {difference}",
                    end.nodes[outcome.node].name, end.nodes[primary].name
                );
                out.push(Violation { invariant: "masters_converged".into(), detail });
            }
        }
    }
    out
}
