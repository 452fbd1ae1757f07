//! The session guarantees over the reads: `read_your_writes`, `monotonic_reads`, `no_dirty_reads`.

use std::collections::BTreeMap;

use repsim_engine::storage::Store;

use crate::check::history::INSERT_TABLE;
use crate::check::reads::ReadAnomaly;
use crate::check::verdict::Violation;
use crate::check::view::EndState;

/// Anomalies of one session guarantee that no lost write explains, and the first example.
pub struct Unexplained<'a> {
    pub count: u64,
    pub example: Option<&'a ReadAnomaly>,
    /// A write the reads should have seen, when no kept example is unexplained.
    pub expected_write_id: Option<u64>,
}

/// A read that missed a write which the final primary does not hold either saw the loss of
/// that write, which `acked_writes_durable` judges against its promise (a write acknowledged
/// under `off` may be lost); the session guarantee is judged on the other reads. With no
/// primary at the end, a write no running node holds is lost as far as the run can tell (an
/// `off` commit that died with its primary's restart, every copy since gone); with no node
/// running at all, nothing explains an anomaly.
pub fn unexplained<'a>(
    end: &EndState,
    by_expected: &BTreeMap<u64, u64>,
    examples: &'a [ReadAnomaly],
) -> Unexplained<'a> {
    let stores: Vec<&Store> = match end.final_primary().and_then(|p| end.nodes[p].engine) {
        Some(primary) => vec![primary.store()],
        None => end.physical().filter_map(|(_, n)| n.engine).map(|e| e.store()).collect(),
    };
    let survived = |write_id: u64| stores.is_empty() || stores.iter().any(|s| s.get(INSERT_TABLE, write_id).is_some());
    let count = by_expected.iter().filter(|(id, _)| survived(**id)).map(|(_, n)| n).sum();
    Unexplained {
        count,
        example: examples.iter().find(|a| survived(a.expected_write_id)),
        expected_write_id: by_expected.keys().copied().find(|&id| survived(id)),
    }
}

/// `read_your_writes` is judged: the router promises it or `[expect]` demands it.
pub(crate) fn read_your_writes_judged(end: &EndState) -> bool {
    let promised = end.scenario.workload.router.promises_read_your_writes() && !pgpool_balances(end);
    promised || end.scenario.expect.read_your_writes == Some(true)
}

/// PgPool-II balances the reads the application sends it: the router's promises do not hold
/// (with `router = "primary"` every statement goes to PgPool-II, which picks the node).
fn pgpool_balances(end: &EndState) -> bool {
    use crate::scenario::model::{PgpoolLoadBalance, PoolerKind};
    end.scenario
        .pooler
        .as_ref()
        .is_some_and(|p| p.kind == PoolerKind::Pgpool && p.load_balance != PgpoolLoadBalance::Off)
}

/// `monotonic_reads` is judged: the router promises it or `[expect]` demands it.
pub(crate) fn monotonic_reads_judged(end: &EndState) -> bool {
    let promised = end.scenario.workload.router.promises_monotonic_reads() && !pgpool_balances(end);
    promised || end.scenario.expect.monotonic_reads == Some(true)
}

/// Why no write can be judged lost or kept: no node runs at the end (every copy down or gone).
/// Then a read that missed a session's write may have seen its loss (allowed under `off`), and
/// neither `acked_writes_durable` nor the session guarantees can be judged.
pub(crate) fn losses_unknowable(end: &EndState) -> Option<String> {
    end.physical().all(|(_, n)| n.engine.is_none()).then(|| {
        "no node runs at the end: which acknowledged writes survived, and so whether a read missed a write or saw its loss, cannot be judged".to_string()
    })
}

/// The session guarantees: checked when the router promises them or `[expect]` demands them.
pub(crate) fn check_reads(end: &EndState) -> Vec<Violation> {
    let reads = end.reads;
    let mut out = Vec::new();
    let describe = |a: &crate::check::reads::ReadAnomaly| {
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
    let first = |u: &Unexplained| match (u.example, u.expected_write_id) {
        (Some(a), _) => describe(a),
        (None, Some(id)) => format!("a read older than write {id}"),
        (None, None) => String::new(),
    };
    let losses_known = losses_unknowable(end).is_none();
    let ryw_checked = read_your_writes_judged(end) && losses_known;
    let ryw = unexplained(end, &reads.read_your_writes_by_expected, &reads.read_your_writes);
    if ryw_checked && ryw.count > 0 {
        let detail = format!("{} reads missed the session's own write; first: {}", ryw.count, first(&ryw));
        out.push(Violation { invariant: "read_your_writes".into(), detail });
    }
    let monotonic_checked = monotonic_reads_judged(end) && losses_known;
    let monotonic = unexplained(end, &reads.monotonic_reads_by_expected, &reads.monotonic_reads);
    if monotonic_checked && monotonic.count > 0 {
        let detail = format!("{} reads went back in time; first: {}", monotonic.count, first(&monotonic));
        out.push(Violation { invariant: "monotonic_reads".into(), detail });
    }
    if let Some(first) = reads.dirty_reads.first() {
        let detail = format!(
            "{} reads returned a rolled-back write; first: session {} read key {} on {} and got write {}",
            reads.dirty_reads_count, first.session, first.key, first.node, first.returned_write_id
        );
        out.push(Violation { invariant: "no_dirty_reads".into(), detail });
    }
    out
}
