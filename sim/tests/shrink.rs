//! `repsim shrink` returns a smaller scenario that still fails the same way.

mod common;

use repsim::cmd::run::run_seed;
use repsim::cmd::shrink::{failure_signature, shrink, write_shrunk};
use repsim::scenario::load_scenario;

#[test]
fn shrink_keeps_the_failure_and_the_file_it_writes_reproduces_it() {
    let original = common::load("primary-crash-restart", &["replication.synchronous_commit=off", "workload.clients=8"]);
    let before = failure_signature(&run_seed(&original, 2, None)).expect("the original fails");
    let shrunk = shrink(&original, 2).expect("fails, so it shrinks");
    assert_eq!(shrunk.signature, before);
    assert!(shrunk.scenario.workload.clients <= original.workload.clients);
    assert!(shrunk.scenario.duration_ns <= original.duration_ns);
    assert!(shrunk.scenario.faults.len() <= original.faults.len());
    assert!(
        shrunk.scenario.workload.clients < original.workload.clients
            || shrunk.scenario.duration_ns < original.duration_ns
            || shrunk.scenario.faults.len() < original.faults.len(),
        "nothing was shrunk"
    );
    let dir = std::env::temp_dir().join("repsim-shrink-test");
    let file = write_shrunk(&common::scenario_path("primary-crash-restart"), &shrunk.scenario, &dir).expect("written");
    let reloaded = load_scenario(&file, &[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reloaded.workload.clients, shrunk.scenario.workload.clients);
    assert_eq!(reloaded.faults.len(), shrunk.scenario.faults.len());
    assert_eq!(failure_signature(&run_seed(&reloaded, 2, None)), Some(before));
}

#[test]
fn a_passing_run_has_nothing_to_shrink() {
    let passing = common::load("primary-crash-restart", &["duration=6s", "faults=[]"]);
    assert!(shrink(&passing, 1).is_none());
}
