//! Regression scenarios whose failing seed is not among the gate's seeds 1..=30: each runs at
//! the seed that failed before its fix.

mod common;

#[test]
fn a_message_read_after_a_reconnect_is_not_handed_to_the_new_stream() {
    let summary = common::run("regressions/tls-read-after-reconnect", 496, &[]);
    assert!(summary.ok, "{:?}", summary.violations);
    assert!(summary.replication_tls_cpu_ns.is_some_and(|ns| ns > 0), "the stream was encrypted");
}

#[test]
fn a_leader_restarted_as_a_replica_hands_a_pending_switchover_over_without_promoting() {
    let summary = common::run("regressions/switchover-pending-at-leader-restart", 25715, &[]);
    assert!(summary.ok, "{:?}", summary.violations);
    let timelines: Vec<(&str, u32)> = summary.promotions.iter().map(|p| (p.node.as_str(), p.timeline)).collect();
    assert_eq!(timelines, [("pg2", 2)], "one promotion, the switchover candidate's");
}
