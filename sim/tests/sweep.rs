//! `repsim sweep` and random faults: a sweep's seeds are exactly the single runs, shards cover
//! the range, failing seeds come with their reproduce commands, and random faults are a
//! deterministic, self-healing function of the seed.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;

use repsim::cmd::progress::Progress;
use repsim::cmd::run::run_seed;
use repsim::cmd::sweep::run_seeds;
use repsim::scenario::{parse_scenario, FaultKind};
use repsim::world::nemesis::{concrete_faults, fault_end_ns};

/// Short runs of sync-vs-async that pass (2 s of load misses its `min_commits`).
const SHORT_OK: &[&str] = &["duration=2s", "settle=1s", "expect.min_commits=0"];
/// primary-crash-restart, shortened, at `off`: its `[expect] lost_acked_writes = 0` breaks.
const SHORT_LOSSY: &[&str] = &[
    "faults.0.at=1s",
    "faults.1.at=1500ms",
    "duration=2s",
    "settle=2s",
    "replication.synchronous_commit=off",
    "expect.lost_acked_writes=0",
];

fn repsim(args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_repsim")).args(args).output().expect("binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn out_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("repsim-sweep-test-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `repsim sweep NAME --seeds RANGE --out OUT --quiet EXTRA… --set O…`.
fn sweep(name: &str, range: &str, out: &std::path::Path, extra: &[&str], overrides: &[&str]) -> (i32, String, String) {
    let mut args: Vec<String> = vec![
        "sweep".into(),
        common::scenario_path(name).to_string_lossy().into_owned(),
        "--seeds".into(),
        range.into(),
        "--out".into(),
        out.to_string_lossy().into_owned(),
        "--quiet".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    for o in overrides {
        args.push("--set".into());
        args.push(o.to_string());
    }
    repsim(&args)
}

/// The summary objects of `seeds.jsonl`, keyed by seed, without `wall_ms`.
fn seed_lines(dir: &std::path::Path) -> Vec<(u64, serde_json::Value)> {
    let text = std::fs::read_to_string(dir.join("seeds.jsonl")).expect("seeds.jsonl");
    text.lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            v.as_object_mut().unwrap().remove("wall_ms");
            (v["seed"].as_u64().unwrap(), v)
        })
        .collect()
}

fn without_wall_ms(summary: &repsim::report::summary::Summary) -> serde_json::Value {
    let mut v = serde_json::to_value(summary).unwrap();
    v.as_object_mut().unwrap().remove("wall_ms");
    v
}

#[test]
fn sweep_seeds_on_two_threads_equal_single_runs() {
    let out = out_dir("equal");
    let (code, stdout, stderr) = sweep("sync-vs-async", "3..=6", &out, &["--jobs", "2"], SHORT_OK);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("4 of 4 seeds ran: 4 ok, 0 failed, 0 panicked"), "{stdout}");
    let lines = seed_lines(&out.join("sync-vs-async/sweep"));
    assert_eq!(lines.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3, 4, 5, 6], "in seed order");
    let scenario = common::load("sync-vs-async", SHORT_OK);
    for (seed, line) in &lines {
        let alone = run_seed(&scenario, *seed, None).unwrap();
        assert_eq!(*line, without_wall_ms(&alone), "seed {seed}");
    }
    // The library entry point, too: two threads, results in seed order, each as if alone.
    let run = run_seeds(&scenario, &[6, 3], 2, false, &AtomicBool::new(false), &Progress::hidden(), None);
    assert_eq!(run.results.iter().map(|r| r.seed).collect::<Vec<_>>(), [6, 3]);
    for result in &run.results {
        let alone = run_seed(&scenario, result.seed, None).unwrap();
        assert_eq!(without_wall_ms(result.summary().unwrap()), without_wall_ms(&alone));
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sync-vs-async/sweep/summary.json")).unwrap()).unwrap();
    assert_eq!(summary["seeds"], "3..7");
    assert_eq!(summary["ok"], 4);
    let commits_p99: Vec<u64> = lines.iter().map(|(_, v)| v["commit_latency_ns"]["p99"].as_u64().unwrap()).collect();
    let dist = &summary["distributions"]["commit_latency_p99_ns"];
    assert_eq!(dist["min"].as_u64(), commits_p99.iter().min().copied());
    assert_eq!(dist["max"].as_u64(), commits_p99.iter().max().copied());
    let md = std::fs::read_to_string(out.join("sync-vs-async/sweep/summary.md")).unwrap();
    assert!(md.contains("| commit p99 (ms) |"), "{md}");
}

#[test]
fn shards_concatenate_to_the_whole_range() {
    let out = out_dir("shards");
    let (code, _, stderr) = sweep("sync-vs-async", "1..6", &out, &["--jobs", "2"], SHORT_OK);
    assert_eq!(code, 0, "{stderr}");
    let whole = seed_lines(&out.join("sync-vs-async/sweep"));
    let mut joined = Vec::new();
    for shard in ["1/2", "2/2"] {
        let (code, stdout, stderr) = sweep("sync-vs-async", "1..6", &out, &["--shard", shard], SHORT_OK);
        assert_eq!(code, 0, "{stderr}");
        assert!(stdout.contains(&format!("shard {shard}")), "{stdout}");
        let dir = out.join("sync-vs-async/sweep").join(format!("shard-{}", shard.replace('/', "-of-")));
        joined.extend(seed_lines(&dir));
    }
    assert_eq!(joined.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 3, 5, 2, 4]);
    joined.sort_by_key(|(seed, _)| *seed);
    assert_eq!(joined, whole);
}

#[test]
fn failing_seeds_are_listed_with_their_reproduce_commands() {
    let out = out_dir("failing");
    let (code, stdout, stderr) = sweep("primary-crash-restart", "1..3", &out, &["--jobs", "2"], SHORT_LOSSY);
    assert_eq!(code, 1, "{stdout}{stderr}");
    for seed in [1, 2] {
        assert!(stdout.contains(&format!("FAILED seed {seed}: ")), "{stdout}");
        let reproduce = format!(
            "reproduce: repsim run {} --seed {seed} --set 'faults.0.at=1s'",
            common::scenario_path("primary-crash-restart").display()
        );
        assert!(stdout.contains(&reproduce), "{stdout}");
    }
    assert!(stdout.contains("lost_acked_writes <= 0: actual"), "{stdout}");
    assert!(stdout.contains("--set 'replication.synchronous_commit=off'"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("primary-crash-restart/sweep/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["failed"], 2);
    assert_eq!(summary["failures"][1]["seed"], 2);
    assert!(summary["distributions"]["lost_acked_writes"]["min"].as_u64().unwrap() > 0);
    // Each listed command reproduces its seed: the same summary as in the sweep.
    let listed = summary["failures"][0]["reproduce"].as_str().unwrap();
    let scenario = common::load("primary-crash-restart", SHORT_LOSSY);
    assert_eq!(listed, run_seed(&scenario, 1, None).unwrap().reproduce);
}

#[test]
fn fail_fast_starts_no_seed_after_a_failure() {
    let out = out_dir("fail-fast");
    let (code, stdout, _) = sweep("primary-crash-restart", "1..5", &out, &["--jobs", "1", "--fail-fast"], SHORT_LOSSY);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("1 of 4 seeds ran"), "{stdout}");
    assert!(stdout.contains("--fail-fast"), "{stdout}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("primary-crash-restart/sweep/summary.json")).unwrap())
            .unwrap();
    assert_eq!((summary["seeds_run"].as_u64(), summary["not_run"].as_u64()), (Some(1), Some(3)));
    assert_eq!(summary["stopped_by"], "fail_fast");
}

#[test]
fn bad_input_is_exit_2() {
    let out = out_dir("bad");
    for (range, extra, needle) in [
        ("5..3", &[][..], "invalid seed range `5..3`"),
        ("1..10", &["--shard", "3/2"][..], "invalid shard `3/2`"),
        ("1..10", &["--jobs", "0"][..], "--jobs"),
    ] {
        let (code, _, stderr) = sweep("sync-vs-async", range, &out, extra, &[]);
        assert_eq!(code, 2, "{range} {extra:?}: {stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    let (code, _, stderr) = sweep("sync-vs-async", "1..3", &out, &[], &["workload.clients=-1"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--set workload.clients=-1"), "{stderr}");
    let (code, _, stderr) = repsim(&["sweep".into(), "/no/such.toml".into(), "--seeds".into(), "1..3".into()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/no/such.toml"), "{stderr}");
    let help = repsim(&["sweep".into(), "--help".into()]).1;
    assert!(help.contains("1..1000 is 1 to 999"), "{help}");
}

// ---- random faults ----

const RANDOM: &str = r#"name = "random"
duration = "20s"
settle = "5s"

[cluster]
nodes = ["pg1", "pg2", "pg3"]
primary = "pg1"

# partition_dcs acts through the HA manager's DCS.
[ha]

[workload]
clients = 4
arrival = { open = "200/s" }

[[faults]]
random = { rate = "1/2s", kinds = ["crash", "partition", "slow_disk", "reset", "pause", "partition_dcs"], from = "1s", for = { dist = "uniform", min = "500ms", max = "3s" } }
"#;

fn random_scenario(overrides: &[&str]) -> repsim::scenario::Scenario {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    parse_scenario(RANDOM, "random.toml", &overrides).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn random_faults_are_a_function_of_the_seed() {
    let s = random_scenario(&[]);
    assert_eq!(s.random_faults.len(), 1);
    let a = concrete_faults(&s, 11);
    assert_eq!(a, concrete_faults(&s, 11), "same seed, same faults");
    assert_ne!(a, concrete_faults(&s, 12), "another seed, other faults");
    assert!(a.len() >= 6, "about 10 faults expected at 1/2s over 19 s: {a:?}");
    for kind in ["Crash", "Partition {", "SlowDisk", "Reset", "Pause", "PartitionDcs"] {
        let present =
            (1..20).any(|seed| concrete_faults(&s, seed).iter().any(|f| format!("{:?}", f.kind).starts_with(kind)));
        assert!(present, "some seed draws a {kind}");
    }
    // The faults stream is independent of the rest of the scenario.
    let other = random_scenario(&["replication.synchronous_commit=off", "workload.clients=9"]);
    assert_eq!(concrete_faults(&other, 11), a);
}

#[test]
fn random_faults_heal_before_settle() {
    let s = random_scenario(&[]);
    for seed in 1..40 {
        let faults = concrete_faults(&s, seed);
        assert!(faults.windows(2).all(|w| w[0].at_ns <= w[1].at_ns), "sorted");
        for (i, f) in faults.iter().enumerate() {
            assert!(f.at_ns >= 1_000_000_000, "seed {seed}: before `from`: {f:?}");
            assert!(fault_end_ns(f) <= s.duration_ns, "seed {seed}: not over by `settle`: {f:?}");
            let later = &faults[i..];
            match &f.kind {
                FaultKind::Crash { node } => assert!(
                    later.iter().any(|g| g.kind == FaultKind::Restart { node: *node }),
                    "seed {seed}: crash of {node} never restarted"
                ),
                FaultKind::Partition { a, b, .. } => {
                    assert_eq!(a.len() + b.len(), 3);
                    assert!(later.iter().any(|g| g.kind == FaultKind::Heal), "seed {seed}: partition never healed");
                }
                FaultKind::PartitionDcs { .. } => {
                    assert!(later.iter().any(|g| g.kind == FaultKind::Heal), "seed {seed}: DCS partition never healed");
                }
                _ => {}
            }
        }
    }
}

#[test]
fn the_world_runs_the_random_faults_of_its_seed() {
    let s = random_scenario(&["faults.0.random.kinds=[\"crash\"]", "faults.0.random.nodes=[\"pg2\"]"]);
    let crashes = concrete_faults(&s, 5).iter().filter(|f| matches!(f.kind, FaultKind::Crash { .. })).count();
    assert!(crashes > 0);
    let a = run_seed(&s, 5, None).unwrap();
    assert_eq!(a.nodes["pg2"].crashes as usize, crashes, "every drawn crash happened");
    assert_eq!(a.nodes["pg1"].crashes, 0);
    assert_eq!(a.nodes["pg2"].role, "standby", "restarted by `until`");
    let b = run_seed(&s, 5, None).unwrap();
    assert_eq!(a.trace_hash, b.trace_hash);
    assert!(a.violations.is_empty(), "{:?}", a.violations);
}

#[test]
fn bad_random_faults_are_located_errors() {
    let bad_kind = RANDOM.replace("\"reset\",", "\"rest\",");
    let err = parse_scenario(&bad_kind, "random.toml", &[]).unwrap_err().message;
    let line = RANDOM.lines().position(|l| l.starts_with("random =")).unwrap() + 1;
    assert!(err.contains(&format!("random.toml:{line}:")), "{err}");
    assert!(err.contains("unknown kind of random fault `rest`"), "{err}");
    assert!(err.contains("crash, partition, slow_disk, reset"), "{err}");
    assert!(err.contains("did you mean `reset`"), "{err}");

    for (text, needle) in [
        ("rate = \"1/2s\"", "rate = \"often\""),
        ("from = \"1s\"", "from = \"1s\", until = \"30s\""),
        ("from = \"1s\"", "from = \"1s\", nodes = [\"pg9\"]"),
        ("from = \"1s\"", "from = \"1s\", at = \"3s\""),
    ]
    .map(|(from, to)| (RANDOM.replace(from, to), to))
    {
        let err = parse_scenario(&text, "random.toml", &[]).unwrap_err().message;
        assert!(err.contains(&format!("random.toml:{line}:")), "{needle}: {err}");
    }
    let err = parse_scenario(RANDOM, "random.toml", &["duration=500ms".into()]).unwrap_err().message;
    assert!(err.contains("window is empty"), "{err}");
}
