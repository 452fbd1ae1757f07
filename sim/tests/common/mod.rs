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
