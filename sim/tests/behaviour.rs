//! The whole system through scenarios: what each synchronous_commit level costs and risks.

mod common;

use repsim::report::summary::Summary;

const LEVELS: [&str; 5] = ["off", "local", "remote_write", "on", "remote_apply"];

fn level_run(seed: u64, level: &str) -> Summary {
    let set = format!("replication.synchronous_commit={level}");
    common::run("sync-vs-async", seed, &["duration=6s", "settle=2s", "expect.min_commits=0", &set])
}

#[test]
fn commit_latency_orders_by_synchronous_commit_level() {
    for seed in [1, 2] {
        let p50: Vec<u64> = LEVELS.iter().map(|l| level_run(seed, l).commit_latency_ns.p50).collect();
        for pair in p50.windows(2) {
            assert!(pair[0] <= pair[1], "seed {seed}: p50 by level {LEVELS:?} = {p50:?} is not ordered");
        }
        // `on` costs about one round trip (2 x 1 ms) plus the standby's fsync (p50 1 ms) more
        // than `local`; group commit and queueing add a little.
        let extra_ns = p50[3] - p50[1];
        assert!((2_500_000..5_500_000).contains(&extra_ns), "seed {seed}: on - local = {extra_ns} ns");
        // `off` does not wait for any fsync: below the median fsync time.
        assert!(p50[0] < 1_000_000, "seed {seed}: off p50 {} ns", p50[0]);
    }
}

#[test]
fn every_level_keeps_its_promise_without_faults() {
    for level in LEVELS {
        let s = level_run(3, level);
        assert_eq!(s.lost_acked_writes, 0, "{level}");
        assert_eq!(s.invariants["converged"], "ok", "{level}");
        assert!(s.commits > 1000, "{level}: only {} commits", s.commits);
        assert!(s.standbys.contains_key("pg2") && s.standbys.contains_key("pg3"));
    }
}

#[test]
fn a_primary_crash_loses_acknowledged_writes_only_under_off() {
    let mut lost_under_off = 0;
    for seed in 1..=3 {
        let off = common::run("primary-crash-restart", seed, &["replication.synchronous_commit=off"]);
        assert_eq!(off.lost_acked_writes, off.lost_acked_writes_by_level.off, "seed {seed}");
        // Expected loss, not a bug: the invariant holds, and the file bounds only the levels
        // that promise durability, so the run passes with its loss measured.
        assert_eq!(off.invariants["acked_writes_durable"], "ok");
        assert!(off.ok, "seed {seed}: {:?} {:?}", off.violations, off.expectations);
        lost_under_off += off.lost_acked_writes;
        let local = common::run("primary-crash-restart", seed, &[]);
        assert_eq!(local.lost_acked_writes, 0, "seed {seed}: local lost writes");
        assert!(local.ok, "seed {seed}: {:?}", local.violations);
        assert!(local.failed_ops > 0, "seed {seed}: clients never saw the outage");
        // The outage spans the 4 s from crash to restart.
        assert!(local.unavailable_ns >= 4_000_000_000, "seed {seed}: {}", local.unavailable_ns);
    }
    assert!(lost_under_off > 0, "no seed lost an asynchronous commit");
}

#[test]
fn a_partitioned_sync_standby_stalls_commits_for_wal_sender_timeout() {
    let s = common::run("standby-partition", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    // wal_sender_timeout is 5 s: commits wait that long, then pg3 becomes synchronous.
    assert!((4_500_000_000..6_500_000_000).contains(&s.unavailable_ns), "unavailable {} ns", s.unavailable_ns);
    let shorter = common::run("standby-partition", 1, &["replication.wal_sender_timeout=2s"]);
    assert!(shorter.unavailable_ns < s.unavailable_ns);
    assert!(shorter.unavailable_ns < 3_500_000_000, "unavailable {} ns", shorter.unavailable_ns);
}

#[test]
fn a_standby_crash_costs_nothing_on_async_commits_and_it_catches_up() {
    let s = common::run(
        "sync-vs-async",
        4,
        &[
            "duration=10s",
            "replication.synchronous_standby_names=''",
            "faults=[{ at = \"3s\", crash = \"pg2\" }, { at = \"6s\", restart = \"pg2\" }]",
            "expect.min_commits=0",
        ],
    );
    assert!(s.ok, "{:?} {:?}", s.violations, s.expectations);
    assert_eq!(s.nodes["pg2"].crashes, 1);
    assert_eq!(s.invariants["converged"], "ok");
    assert!(s.unavailable_ns < 100_000_000, "unavailable {} ns", s.unavailable_ns);
}

#[test]
fn loss_and_bandwidth_show_up_in_lag_and_latency() {
    let base = level_run(5, "on");
    let lossy =
        common::run("sync-vs-async", 5, &["duration=6s", "settle=2s", "expect.min_commits=0", "network.loss=0.02"]);
    // A lost packet costs at least one 200 ms retransmission and blocks the line behind it.
    assert!(lossy.commit_latency_ns.p99 > base.commit_latency_ns.p99 + 100_000_000);
    let thin = common::run(
        "sync-vs-async",
        5,
        &["duration=6s", "settle=2s", "expect.min_commits=0", "network.bandwidth=2Mbit"],
    );
    assert!(thin.standbys["pg3"].lag_bytes.p99 > base.standbys["pg3"].lag_bytes.p99);
    assert!(thin.commit_latency_ns.p50 > base.commit_latency_ns.p50);
}

#[test]
fn wal_is_recycled_so_memory_is_bounded_by_retention() {
    let overrides = [
        "duration=30s",
        "settle=5s",
        "expect.min_commits=0",
        "replication.wal_segment_size=1MB",
        "replication.max_wal_size=4MB",
        "replication.checkpoint_timeout=5s",
        "workload.value_size=2kB",
    ];
    let s = common::run("sync-vs-async", 6, &overrides);
    assert!(s.ok, "{:?}", s.violations);
    assert!(s.wal_bytes > 20 * 1024 * 1024, "only {} bytes of WAL generated", s.wal_bytes);
    for (name, node) in &s.nodes {
        assert!(node.checkpoints >= 3, "{name}: {} checkpoints", node.checkpoints);
        // Retention: max_wal_size plus the segment being filled, far below what was generated.
        assert!(node.wal_held_bytes <= 6 * 1024 * 1024, "{name} holds {} bytes of WAL", node.wal_held_bytes);
        assert!(node.disk_bytes <= 8 * 1024 * 1024, "{name} has {} bytes on disk", node.disk_bytes);
    }
}

#[test]
fn commits_release_holds_with_healthy_standbys_and_fails_when_a_silent_standby_holds_them() {
    let healthy = level_run(7, "on");
    assert_eq!(healthy.invariants["commits_release"], "not_checked");
    let checked = common::run(
        "sync-vs-async",
        7,
        &["duration=6s", "settle=2s", "expect.min_commits=0", "expect.max_commit_wait=1s"],
    );
    assert_eq!(checked.invariants["commits_release"], "ok", "{:?}", checked.violations);
    // The partitioned synchronous standby still counts as connected until wal_sender_timeout:
    // commits wait 5 s with "enough" synchronous standbys, which the liveness check reports.
    let stalled = common::run("standby-partition", 1, &["expect.max_commit_wait=1s"]);
    assert_eq!(stalled.invariants["commits_release"], "violated");
    let v = stalled.violations.iter().find(|v| v.invariant == "commits_release").expect("reported");
    assert!(v.detail.contains("waited"), "{}", v.detail);
    assert!(!stalled.ok);
}

/// A fast promotion costs a few fsyncs and no checkpoint (SPEC-ADDITIONS.md A6.1): on a disk
/// whose fsync p50 is 5 ms it takes tens of milliseconds, on one with 0.2 ms a few, and the
/// outage clients see is the operator's second, not the promotion.
#[test]
fn a_promotion_costs_a_few_fsyncs_not_a_checkpoint() {
    let took = |sets: &[&str]| {
        let s = common::run("promotion-time", 1, sets);
        assert_eq!(s.promotions.len(), 1);
        (s.promotions[0].promotion_duration_ns.expect("the promotion finished"), s.unavailable_ns)
    };
    let (slow_ns, outage_ns) = took(&[]);
    let (fast_ns, _) = took(&["disk.fsync.p50=0.2ms", "disk.fsync.p99=1ms"]);
    assert!((10_000_000..100_000_000).contains(&slow_ns), "slow disk: {slow_ns} ns");
    assert!(fast_ns * 5 < slow_ns, "fsync-bound: {fast_ns} ns on the fast disk, {slow_ns} ns on the slow one");
    assert!(
        (1_000_000_000..1_200_000_000).contains(&outage_ns),
        "outage {outage_ns} ns: crash at 10 s, pg_promote at 11 s"
    );
}

/// `[node.pg3] recovery_min_apply_delay` makes a delayed standby: it flushes WAL as fast as its
/// link allows but replays it 30 s late, and promoting it first replays what it held back.
/// `[node.pg3] client_latency` places the clients 40 ms from it.
#[test]
fn a_delayed_standby_lags_in_replay_not_in_flush_and_replays_before_promoting() {
    let delayed = common::run("delayed-standby", 1, &[]);
    let pg3 = &delayed.standbys["pg3"];
    assert!(pg3.replay_lag_ns.p50 > 15_000_000_000, "replay lag p50 {} ns", pg3.replay_lag_ns.p50);
    assert!(pg3.flush_lag_ns.p99 < 200_000_000, "flush lag p99 {} ns: WAL arrives at once", pg3.flush_lag_ns.p99);
    let undelayed = common::run("delayed-standby", 1, &["node.pg3.recovery_min_apply_delay=0"]);
    assert!(undelayed.standbys["pg3"].replay_lag_ns.p99 < 1_000_000_000);
    let took = |s: &repsim::report::summary::Summary| s.promotions[0].promotion_duration_ns.expect("finished");
    assert!(took(&delayed) > 5 * took(&undelayed), "{} vs {} ns", took(&delayed), took(&undelayed));
    // The delay costs no data: the same commits are lost either way (the last round trip's).
    assert_eq!(delayed.lost_acked_writes, undelayed.lost_acked_writes);
    // After the failover every operation crosses the region: 80 ms per round trip at least.
    let near = common::run("delayed-standby", 1, &["node.pg3.client_latency=0.1ms"]);
    assert!(delayed.commit_latency_ns.p99 > near.commit_latency_ns.p99 + 80_000_000);
}

/// `session_synchronous_commit`: sessions that SET synchronous_commit = off lose their last
/// commits when the primary loses power; the sessions on the server's `local` lose none.
#[test]
fn sessions_with_their_own_synchronous_commit_keep_their_own_promise() {
    let mixed = common::run("primary-crash-restart", 1, &["workload.session_synchronous_commit={ off = 4 }"]);
    assert!(mixed.lost_acked_writes_by_level.off > 0, "the off sessions' last commits are lost");
    assert_eq!(mixed.lost_acked_writes, mixed.lost_acked_writes_by_level.off, "nothing under local is lost");
    let all_local = common::run("primary-crash-restart", 1, &[]);
    assert_eq!(all_local.lost_acked_writes, 0);
    assert!(mixed.commit_latency_ns.p50 < all_local.commit_latency_ns.p50, "half the commits skip the fsync wait");
}

/// `full_page_writes`: after a checkpoint the first change to each page logs its image, so a
/// run with checkpoints writes more WAL per commit than the records alone, and the byte lag
/// follows (spec §1.4: "First change to a page after redo logs a full-page image").
#[test]
fn full_page_images_after_checkpoints_raise_wal_per_commit() {
    let with = common::run("wal-volume", 1, &[]);
    let without = common::run("wal-volume", 1, &["replication.full_page_writes=false"]);
    assert_eq!(with.commits, without.commits, "the same workload");
    assert!(
        with.wal_bytes_per_commit > without.wal_bytes_per_commit * 11 / 10,
        "{} vs {} B",
        with.wal_bytes_per_commit,
        without.wal_bytes_per_commit
    );
    assert!(with.standbys["pg2"].lag_bytes.max > 2 * without.standbys["pg2"].lag_bytes.max);
}

/// Hot-standby conflicts (spec §4.3): long reports on pg2 hold replay until the WAL's receipt
/// time plus `max_standby_streaming_delay` (30 s), then are cancelled; with
/// `hot_standby_feedback` the primary keeps the dead row versions instead and nothing waits.
#[test]
fn long_standby_queries_cost_replay_lag_and_cancels_or_bloat_with_feedback() {
    let held = common::run("hot-standby-conflicts", 1, &[]);
    let hs = held.hot_standby.expect("reads run long");
    assert!(hs.standby_queries_cancelled > 0, "reports that conflict past the limit are cancelled");
    // The limit, plus the CPU time of the batch of records replay reads again after it.
    let wait_ns = hs.replay_conflict_wait_max_ns;
    assert!(wait_ns <= 30_010_000_000, "never held past receipt + 30 s: {wait_ns}");
    assert!(hs.replay_conflict_wait_max_ns > 20_000_000_000, "held up to the limit");
    let lag_ns = held.standbys["pg2"].replay_lag_ns.max;
    assert!((20_000_000_000..31_000_000_000).contains(&lag_ns), "replay lag follows the hold: {lag_ns}");
    assert_eq!(held.invariants["recovery_conflicts_resolved"], "ok");

    let feedback = common::run("hot-standby-conflicts", 1, &["replication.hot_standby_feedback=true"]);
    let fb = feedback.hot_standby.expect("reads run long");
    assert_eq!((fb.standby_queries_cancelled, fb.replay_conflict_waits), (0, 0));
    assert!(feedback.standbys["pg2"].replay_lag_ns.max < 1_000_000_000);
    assert!(fb.dead_row_versions_max > 10 * hs.dead_row_versions_max, "bloat on the primary instead");
    assert_eq!(feedback.commits, held.commits, "the same writes either way");
}

/// `archive_mode` (issue 13): while the archive store is down, nothing is recycled that is not
/// archived, so pg_wal grows by the WAL written meanwhile and the archive lag is that much;
/// once it is back the backlog drains. Without the outage pg_wal stays small.
#[test]
fn an_archive_outage_grows_pg_wal_and_the_archive_lag_then_drains() {
    let outage = common::run("archive-outage", 1, &[]);
    let a = outage.archive.expect("archive_mode is on");
    assert!(a.failed_attempts > 0);
    assert!(a.lag_bytes.max > 15 * 1024 * 1024, "four minutes of WAL wait: {}", a.lag_bytes.max);
    assert!(a.lag_ns.max > 200_000_000_000, "the oldest segment waits most of the outage");
    assert_eq!(outage.invariants["archived_before_recycled"], "ok");
    assert_eq!(outage.invariants["archive_identical"], "ok");
    let calm = common::run("archive-outage", 1, &["faults=[]"]);
    let c = calm.archive.expect("archive_mode is on");
    assert_eq!(c.failed_attempts, 0);
    assert!(
        a.pg_wal_max_bytes > c.pg_wal_max_bytes + 10 * 1024 * 1024,
        "{} vs {}",
        a.pg_wal_max_bytes,
        c.pg_wal_max_bytes
    );
    assert!(c.lag_bytes.max < 3 * 1024 * 1024, "a segment or two behind: {}", c.lag_bytes.max);
    assert!(c.segments_archived >= a.segments_archived, "everything gets archived either way");
}

/// `pin_after_write` (django-multidb-router): reads go to the primary for `pin_duration` after
/// the session's write. A pin longer than the replication lag keeps read-your-writes; one
/// shorter than it does not.
#[test]
fn pinning_reads_after_a_write_keeps_read_your_writes_only_while_the_pin_outlasts_the_lag() {
    let pinned = common::run("read-your-writes", 42, &["workload.router=pin_after_write"]);
    assert_eq!(pinned.invariants["read_your_writes"], "ok");
    let short = common::run("read-your-writes", 42, &["workload.router=pin_after_write", "workload.pin_duration=2ms"]);
    assert_eq!(short.invariants["read_your_writes"], "violated");
    assert_eq!(pinned.commits, short.commits, "the same writes");
}
