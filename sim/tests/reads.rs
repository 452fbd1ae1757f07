//! Read routing and the read invariants, through scenarios: each guarantee holds under the
//! router that promises it, and the checker reports the violation, with a reproducing command,
//! when a scenario demands a guarantee its router does not give.

mod common;

#[test]
fn read_your_writes_router_keeps_its_promise() {
    for seed in 1..4 {
        let s = common::run("read-your-writes", seed, &["duration=8s"]);
        assert!(s.ok, "seed {seed}: {:?} {:?}", s.violations, s.expectations);
        assert_eq!(s.invariants["read_your_writes"], "ok");
        assert!(s.reads > 5_000, "seed {seed}: {} reads", s.reads);
        // It reads from standbys, so other sessions' recent writes may be missing.
        assert!(s.stale_reads > 0, "seed {seed}: no read ever went to a standby?");
    }
}

#[test]
fn the_replica_router_breaks_read_your_writes_and_the_checker_proves_it() {
    let s = common::run("read-your-writes", 1, &["duration=8s", "workload.router=replica"]);
    assert!(!s.ok);
    assert_eq!(s.invariants["read_your_writes"], "violated");
    let violation = s.violations.iter().find(|v| v.invariant == "read_your_writes").expect("reported");
    assert!(violation.detail.contains("older than write"), "{}", violation.detail);
    assert!(s.reproduce.contains("--set 'workload.router=replica'"), "{}", s.reproduce);
    let failed: Vec<_> = s.expectations.iter().filter(|e| !e.ok).map(|e| e.name.as_str()).collect();
    assert_eq!(failed, vec!["read_your_writes"]);
}

#[test]
fn reads_from_the_primary_are_never_stale_and_never_dirty() {
    let s = common::run(
        "read-your-writes",
        2,
        &["duration=6s", "workload.router=primary", "workload.abort_fraction=0.2", "expect.monotonic_reads=true"],
    );
    assert!(s.ok, "{:?} {:?}", s.violations, s.expectations);
    assert_eq!(s.stale_reads, 0);
    assert!(s.rollbacks > 100, "{} rollbacks", s.rollbacks);
    assert_eq!(s.invariants["no_dirty_reads"], "ok");
    assert_eq!(s.invariants["monotonic_reads"], "ok");
}

#[test]
fn round_robin_reads_go_back_in_time_when_monotonic_reads_are_demanded() {
    let s = common::run(
        "read-your-writes",
        3,
        &["duration=8s", "workload.router=round_robin", "workload.keys=3", "expect.monotonic_reads=true"],
    );
    assert_eq!(s.invariants["monotonic_reads"], "violated", "{:?}", s.expectations);
    assert!(s.staleness_ns.max > 0);
}

#[test]
fn lag_aware_skips_standbys_past_the_delay_threshold() {
    // A threshold of zero bytes sends every read to the primary once lag has been sampled.
    let tight = common::run(
        "read-your-writes",
        4,
        &["duration=6s", "workload.router=lag_aware", "workload.delay_threshold=0B"],
    );
    let loose = common::run(
        "read-your-writes",
        4,
        &["duration=6s", "workload.router=lag_aware", "workload.delay_threshold=1GB"],
    );
    assert!(tight.stale_reads < loose.stale_reads, "{} vs {}", tight.stale_reads, loose.stale_reads);
}

/// A session that reads past its own write lost under `off` saw the loss its promise allowed:
/// reported under `lost_acked_writes_by_level.off`, not as a `read_your_writes` violation.
#[test]
fn a_read_missing_a_lost_off_write_is_the_loss_not_a_read_your_writes_violation() {
    let mut lost = 0;
    for seed in 1..=5 {
        let s = common::run(
            "primary-crash-restart",
            seed,
            &["replication.synchronous_commit=off", "expect.read_your_writes=true"],
        );
        lost += s.lost_acked_writes_by_level.off;
        assert_eq!(s.invariants["read_your_writes"], "ok", "seed {seed}: {:?}", s.violations);
        assert!(s.ok, "seed {seed}: {:?} {:?}", s.violations, s.expectations);
    }
    assert!(lost > 0, "no write was lost under off: the test proves nothing");
}
