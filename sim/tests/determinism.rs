//! Determinism is the product: the same (scenario, seed) gives the same trace hash in one
//! process, in two processes, and in debug and release builds; different seeds differ.

mod common;

use std::process::Command;

use repsim::cmd::run::run_seed;
use repsim::world::trace::{first_divergence, SharedBuffer};

const SHORT: &[&str] = &["duration=3s", "settle=2s"];

fn traced(name: &str, seed: u64, overrides: &[&str]) -> (String, Vec<u8>) {
    let scenario = common::load(name, overrides);
    let buffer = SharedBuffer::default();
    let summary = run_seed(&scenario, seed, Some(Box::new(buffer.clone()))).expect("run succeeds");
    (summary.trace_hash, buffer.contents())
}

fn assert_same_run(name: &str, seed: u64, overrides: &[&str]) {
    let (hash_a, trace_a) = traced(name, seed, overrides);
    let (hash_b, trace_b) = traced(name, seed, overrides);
    if let Some((line, left, right)) = first_divergence(&trace_a, &trace_b) {
        panic!("{name} seed {seed}: traces diverge at event {line}:\n  first run:  {left}\n  second run: {right}");
    }
    assert_eq!(hash_a, hash_b);
    assert!(!trace_a.is_empty());
}

#[test]
fn same_seed_same_trace_in_one_process() {
    assert_same_run("sync-vs-async", 7, SHORT);
    let crash = ["duration=12s", "settle=5s", "disk.torn_write_probability=0.5"];
    assert_same_run("primary-crash-restart", 3, &crash);
    // Base backups, the loss of a site and a point-in-time restore from the archive.
    assert_same_run("point-in-time-recovery", 2, &["duration=200s", "faults=[{ at = \"150s\", lose_site = [\"pg1\", \"pg2\"] }, { at = \"160s\", restore = { node = \"pg3\", target_time = \"130s\" } }]"]);
}

#[test]
fn summaries_match_except_wall_time() {
    let a = common::run("sync-vs-async", 11, SHORT);
    let b = common::run("sync-vs-async", 11, SHORT);
    let strip = |s: &repsim::report::summary::Summary| {
        let mut v = serde_json::to_value(s).unwrap();
        v.as_object_mut().unwrap().remove("wall_ms");
        v
    };
    assert_eq!(strip(&a), strip(&b));
}

#[test]
fn different_seeds_differ() {
    let a = common::run("sync-vs-async", 1, SHORT);
    let b = common::run("sync-vs-async", 2, SHORT);
    assert_ne!(a.trace_hash, b.trace_hash);
}

#[test]
fn same_seed_same_hash_in_two_processes() {
    let hash = |_: u32| {
        let out = Command::new(env!("CARGO_BIN_EXE_repsim"))
            .args(["run", common::scenario_path("sync-vs-async").to_str().unwrap(), "--seed", "5", "--json"])
            .args(["--set", "duration=2s", "--set", "settle=1s", "--out"])
            .arg(std::env::temp_dir().join("repsim-determinism-test"))
            .output()
            .expect("binary runs");
        // Exit 1 is fine here: a 2 s run misses the scenario's min_commits expectation.
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
        v["trace_hash"].as_str().unwrap().to_string()
    };
    assert_eq!(hash(1), hash(2));
}

/// Pinned hashes: the same on every machine and in debug and release builds. `.ci/run` checks
/// the release binary against the same file. After an intended change to the model, regenerate
/// with `REPSIM_BLESS=1 cargo test -p repsim --test determinism pinned`.
#[test]
fn pinned_trace_hashes_hold_in_this_build() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/trace_hashes.txt");
    let cases: [(&str, u64, &[&str]); 2] =
        [("sync-vs-async", 42, &["duration=3s", "settle=2s"]), ("primary-crash-restart", 42, &["duration=12s"])];
    let mut lines = Vec::new();
    for (name, seed, overrides) in cases {
        let summary = common::run(name, seed, overrides);
        lines.push(format!("{name} {seed} {} {}", overrides.join(","), summary.trace_hash));
    }
    let actual = lines.join("\n") + "\n";
    if std::env::var_os("REPSIM_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).expect("golden file exists");
    assert_eq!(pinned, actual, "trace hashes changed; if the change is intended, re-bless (see the comment)");
}
