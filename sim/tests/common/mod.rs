//! Helpers for whole-system tests: load a scenario from `scenarios/` and run it.
#![allow(dead_code)]

use repsim::cmd::run::run_seed;
use repsim::report::summary::Summary;
use repsim::scenario::{load_scenario, Scenario};

pub fn scenario_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(format!("{name}.toml"))
}

pub fn load(name: &str, overrides: &[&str]) -> Scenario {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load_scenario(&scenario_path(name), &overrides).unwrap_or_else(|e| panic!("{e}"))
}

pub fn run(name: &str, seed: u64, overrides: &[&str]) -> Summary {
    let scenario = load(name, overrides);
    run_seed(&scenario, seed, None).unwrap_or_else(|e| panic!("{e}"))
}

/// Each of `cases` (text added to `base`, and what its error must say) fails to load with a
/// located message (`scenarios/x.toml:` and a line) holding every one of its needles.
pub fn assert_located_errors(base: &str, cases: &[(&str, &[&str])]) {
    for (extra, needles) in cases {
        let message = match repsim::scenario::parse_scenario(&format!("{base}{extra}"), "scenarios/x.toml", &[]) {
            Ok(_) => panic!("should fail:\n{extra}"),
            Err(e) => e.message,
        };
        assert!(message.contains("scenarios/x.toml:"), "no location:\n{message}");
        for needle in *needles {
            assert!(message.contains(needle), "{needle:?} not in:\n{message}");
        }
    }
}
