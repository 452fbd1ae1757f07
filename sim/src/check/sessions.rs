//! The session guarantees over the reads: `read_your_writes`, `monotonic_reads`, `no_dirty_reads`.

use crate::check::verdict::Violation;
use crate::check::view::EndState;

/// The session guarantees: checked when the router promises them or `[expect]` demands them.
pub(crate) fn check_reads(end: &EndState) -> Vec<Violation> {
    let reads = end.reads;
    let router = end.scenario.workload.router;
    let expect = &end.scenario.expect;
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
