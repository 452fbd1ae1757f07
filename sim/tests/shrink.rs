//! `repsim shrink` returns a smaller scenario that still fails the same way.

mod common;

use repsim::cmd::run::run_seed;
use repsim::cmd::shrink::{failing_checks, failure_signature, shrink, shrink_keeping, write_shrunk};
use repsim::scenario::load_scenario;

/// An `off` run that demands no loss at all (the file allows it under `off`) and, so that two
/// checks fail, an impossible p99.
const LOSSY: &[&str] = &[
    "replication.synchronous_commit=off",
    "workload.clients=8",
    "expect.lost_acked_writes=0",
    "expect.max_commit_p99=1us",
];

#[test]
fn shrink_keeps_the_failure_and_the_file_it_writes_reproduces_it() {
    let original = common::load("primary-crash-restart", LOSSY);
    let before = failure_signature(&run_seed(&original, 2, None)).expect("the original fails");
    assert_eq!(before, "expectation lost_acked_writes", "the scenario's own expectations come first");
    let shrunk = shrink(&original, 2).expect("fails, so it shrinks");
    assert_eq!(shrunk.signature, before);
    assert_eq!(shrunk.also_failing, ["expectation max_commit_p99"]);
    assert!(shrunk.scenario.workload.clients <= original.workload.clients);
    assert!(shrunk.scenario.faults.len() <= original.faults.len());
    // The loss happens at the crash (8 s of 20 s): a bisection ends well under half the
    // duration, where halving alone stops at 10 s.
    assert!(shrunk.scenario.duration_ns < original.duration_ns / 2, "{}", shrunk.scenario.duration_ns);
    let dir = std::env::temp_dir().join("repsim-shrink-test");
    let file = write_shrunk(&common::scenario_path("primary-crash-restart"), &shrunk.scenario, &dir).expect("written");
    let reloaded = load_scenario(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reloaded.workload.clients, shrunk.scenario.workload.clients);
    assert_eq!(reloaded.faults.len(), shrunk.scenario.faults.len());
    assert!(failing_checks(&run_seed(&reloaded, 2, None)).contains(&before));
}

#[test]
fn the_user_chooses_which_failure_to_keep() {
    let original = common::load("primary-crash-restart", LOSSY);
    let kept = shrink_keeping(&original, 2, Some("max_commit_p99")).expect("it fails that check").expect("fails");
    assert_eq!(kept.signature, "expectation max_commit_p99");
    assert!(failing_checks(&run_seed(&kept.scenario, 2, None)).contains(&kept.signature));
    let refused = shrink_keeping(&original, 2, Some("read_your_writes")).err().expect("not a failing check");
    assert!(refused.contains(&"expectation lost_acked_writes".to_string()), "{refused:?}");
}

#[test]
fn a_passing_run_has_nothing_to_shrink() {
    let passing = common::load("primary-crash-restart", &["duration=6s", "faults=[]"]);
    assert!(shrink(&passing, 1).is_none());
}
