//! The session guarantees over the reads: `read_your_writes`, `monotonic_reads`, `no_dirty_reads`.

use std::collections::BTreeMap;

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
/// under `off` may be lost); the session guarantee is judged on the other reads.
pub fn unexplained<'a>(
    end: &EndState,
    by_expected: &BTreeMap<u64, u64>,
    examples: &'a [ReadAnomaly],
) -> Unexplained<'a> {
    let store = end.final_primary().and_then(|p| end.nodes[p].engine).map(|e| e.store());
    let survived = |write_id: u64| store.is_none_or(|s| s.get(INSERT_TABLE, write_id).is_some());
    let count = by_expected.iter().filter(|(id, _)| survived(**id)).map(|(_, n)| n).sum();
    Unexplained {
        count,
        example: examples.iter().find(|a| survived(a.expected_write_id)),
        expected_write_id: by_expected.keys().copied().find(|&id| survived(id)),
    }
}

/// `read_your_writes` is judged: the router promises it or `[expect]` demands it.
pub(crate) fn read_your_writes_judged(end: &EndState) -> bool {
    end.scenario.workload.router.promises_read_your_writes() || end.scenario.expect.read_your_writes == Some(true)
}

/// `monotonic_reads` is judged: the router promises it or `[expect]` demands it.
pub(crate) fn monotonic_reads_judged(end: &EndState) -> bool {
    end.scenario.workload.router.promises_monotonic_reads() || end.scenario.expect.monotonic_reads == Some(true)
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
    let ryw_checked = read_your_writes_judged(end);
    let ryw = unexplained(end, &reads.read_your_writes_by_expected, &reads.read_your_writes);
    if ryw_checked && ryw.count > 0 {
        let detail = format!("{} reads missed the session's own write; first: {}", ryw.count, first(&ryw));
        out.push(Violation { invariant: "read_your_writes".into(), detail });
    }
    let monotonic_checked = monotonic_reads_judged(end);
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
