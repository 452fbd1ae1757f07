//! The command line: exit codes and messages a user and CI rely on.

mod common;

use std::process::Command;

fn repsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_repsim")).args(args).output().expect("binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join("repsim-cli-test");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn a_typo_in_a_scenario_is_exit_2_with_file_line_and_help() {
    let path = temp_file(
        "typo.toml",
        "name = \"t\"\nduration = \"5s\"\n[cluster]\nnodes = [\"a\", \"b\"]\nprimary = \"a\"\n[network]\nlatncy = \"1ms\"\n",
    );
    let (code, _, stderr) = repsim(&["run", &path]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(&format!("{path}:7:1")), "{stderr}");
    assert!(stderr.contains("did you mean `latency`"), "{stderr}");
}

#[test]
fn a_bad_override_is_exit_2_and_names_the_set() {
    let scenario = common::scenario_path("sync-vs-async");
    let (code, _, stderr) = repsim(&["run", scenario.to_str().unwrap(), "--set", "workload.clients=-3"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--set workload.clients=-3"), "{stderr}");
    let (code, _, stderr) = repsim(&["validate", scenario.to_str().unwrap(), "/no/such/file.toml"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/no/such/file.toml"), "{stderr}");
}

#[test]
fn a_violated_expectation_is_exit_1_with_the_reproduce_command() {
    let scenario = common::scenario_path("primary-crash-restart");
    let out_dir = std::env::temp_dir().join("repsim-cli-test-reports");
    let args = [
        "run",
        scenario.to_str().unwrap(),
        "--seed",
        "2",
        "--set",
        "replication.synchronous_commit=off",
        // The file allows loss under `off`; this run demands none at any level.
        "--set",
        "expect.lost_acked_writes=0",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let (code, stdout, _) = repsim(&args);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("VIOLATED"), "{stdout}");
    assert!(
        stdout.contains("--seed 2 --set 'replication.synchronous_commit=off' --set 'expect.lost_acked_writes=0'"),
        "{stdout}"
    );
    let summary = out_dir.join("primary-crash-restart/seed-2/summary.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
    assert_eq!(json["ok"], false);
    assert!(json["lost_acked_writes_by_level"]["off"].as_u64().unwrap() > 0);
}

#[test]
fn json_output_has_the_documented_keys() {
    let scenario = common::scenario_path("sync-vs-async");
    let out_dir = std::env::temp_dir().join("repsim-cli-test-json");
    let (code, stdout, stderr) = repsim(&[
        "run",
        scenario.to_str().unwrap(),
        "--json",
        "--set",
        "duration=2s",
        "--set",
        "expect.min_commits=0",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    for key in [
        "scenario",
        "seed",
        "trace_hash",
        "ok",
        "sim_duration_ns",
        "events",
        "commits",
        "commits_per_sec",
        "commit_latency_ns",
        "standbys",
        "lost_acked_writes",
        "lost_acked_writes_by_level",
        "wal_bytes",
        "net_bytes",
        "invariants",
        "expectations",
    ] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(v["commit_latency_ns"][p].is_u64(), "commit_latency_ns.{p}");
    }
    for lag in ["lag_bytes", "write_lag_ns", "flush_lag_ns", "replay_lag_ns"] {
        assert!(v["standbys"]["pg2"][lag]["p99"].is_u64(), "standbys.pg2.{lag}");
    }
    assert_eq!(v["sim_duration_ns"], 2_000_000_000u64);
}

#[test]
fn a_trace_file_has_one_json_line_per_event() {
    let scenario = common::scenario_path("sync-vs-async");
    let trace = std::env::temp_dir().join("repsim-cli-test-trace.jsonl");
    let out_dir = std::env::temp_dir().join("repsim-cli-test-trace");
    let (_, stdout, stderr) = repsim(&[
        "run",
        scenario.to_str().unwrap(),
        "--json",
        "--set",
        "duration=1s",
        "--set",
        "settle=1s",
        "--trace",
        trace.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    let text = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(text.lines().count() as u64, v["events"].as_u64().unwrap());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert!(first["t_ns"].is_u64() && first["event"].is_string());
}

#[test]
fn a_panic_inside_a_run_is_reported_with_its_seed_and_reproduce_command() {
    let scenario = common::load("sync-vs-async", &[]);
    let failure = repsim::cmd::run::guarded(&scenario, 731, || -> u32 { panic!("invariant broken at 0/1000") })
        .expect_err("the panic is caught");
    assert_eq!(failure.seed, 731);
    assert!(failure.message.contains("invariant broken at 0/1000"));
    assert!(failure.to_string().contains("repsim run"));
    assert!(failure.reproduce.ends_with("sync-vs-async.toml --seed 731"), "{}", failure.reproduce);
}

#[test]
fn a_history_file_has_one_line_per_completed_operation() {
    let scenario = common::scenario_path("sync-vs-async");
    let history = std::env::temp_dir().join("repsim-cli-test-history.jsonl");
    let out_dir = std::env::temp_dir().join("repsim-cli-test-history");
    let (_, stdout, stderr) = repsim(&[
        "run",
        scenario.to_str().unwrap(),
        "--json",
        "--set",
        "duration=1s",
        "--history",
        history.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{stderr}"));
    let text = std::fs::read_to_string(&history).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let ok_writes = lines.iter().filter(|l| l["kind"] == "write" && l["outcome"] == "ok").count() as u64;
    let ok_reads = lines.iter().filter(|l| l["kind"] == "read" && l["outcome"] == "ok").count() as u64;
    assert_eq!(ok_writes, v["commits"].as_u64().unwrap());
    assert_eq!(ok_reads, v["reads"].as_u64().unwrap());
    assert!(lines.iter().all(|l| l["complete_ns"].as_u64() >= l["invoke_ns"].as_u64()));
}

#[test]
fn swarm_prints_a_seed_s_scenario_and_runs_a_range_with_one_json_line_per_seed() {
    let (code, text, stderr) = repsim(&["swarm", "--seed", "3", "--print"]);
    assert_eq!(code, 0, "{stderr}");
    let (again, _, _) = (repsim(&["swarm", "--seed", "3", "--print"]).1, (), ());
    assert_eq!(text, again, "a seed draws the same scenario every time");
    let path = temp_file("swarm-3.toml", &text);
    let (code, _, stderr) = repsim(&["validate", &path]);
    assert_eq!(code, 0, "the drawn scenario is a valid scenario file: {stderr}");

    let out = std::env::temp_dir().join("repsim-cli-test").join("swarm-out");
    let _ = std::fs::remove_dir_all(&out);
    let (code, stdout, stderr) =
        repsim(&["swarm", "--seeds", "1..4", "--quiet", "--no-shrink", "--out", out.to_str().unwrap()]);
    assert!(code == 0 || code == 1, "{stderr}");
    assert!(stdout.contains("seeds 1..4 ran (3 seeds)"), "{stdout}");
    let lines = std::fs::read_to_string(out.join("swarm/seeds.jsonl")).unwrap();
    let seeds: Vec<u64> = lines
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seed"].as_u64().unwrap())
        .collect();
    let mut sorted = seeds.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![1, 2, 3]);
    let (code, _, stderr) = repsim(&["swarm", "--seeds", "5..3"]);
    assert_eq!(code, 2, "a bad range is bad input: {stderr}");
}

const SMALL: &str =
    "name = \"small\"\nduration = \"2s\"\nsettle = \"1s\"\n[cluster]\nnodes = [\"pg1\", \"pg2\"]\nprimary = \"pg1\"\n";

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    use std::process::Stdio;
    let path = temp_file("pipe.toml", SMALL);
    let mut child = Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args(["run", &path, "--out", &std::env::temp_dir().join("repsim-cli-test/out").to_string_lossy()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| true`: the reader is gone before anything is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

#[test]
fn zero_disables_a_timeout_from_the_command_line_as_in_a_file() {
    let path = temp_file("zero.toml", SMALL);
    let (code, _, stderr) = repsim(&["validate", &path]);
    assert_eq!(code, 0, "{stderr}");
    let scenario =
        repsim::scenario::load_scenario(std::path::Path::new(&path), &["replication.wal_sender_timeout=0".to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.replication.wal_sender_timeout_ns, 0);
}

#[test]
fn overrides_are_validated_together_whatever_their_order() {
    let path = temp_file("order.toml", SMALL);
    let load = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        repsim::scenario::load_scenario(std::path::Path::new(&path), &sets)
    };
    // A fault at 2.5 s: within duration + settle (3 s); with duration 1 s only if settle grows.
    let with_fault = format!("{SMALL}[[faults]]\nat = \"2500ms\"\ncrash = \"pg2\"\n");
    std::fs::write(&path, with_fault).unwrap();
    assert!(load(&["duration=1s", "settle=5s"]).is_ok());
    assert!(load(&["settle=5s", "duration=1s"]).is_ok());
    let error = load(&["duration=1s"]).expect_err("the fault is past the end").message;
    assert!(error.contains("--set duration=1s"), "{error}");
}

#[test]
fn an_unwritable_history_file_is_bad_output_exit_2_and_called_history() {
    let path = temp_file("io.toml", SMALL);
    let (code, _, stderr) = repsim(&["run", &path, "--history", "/dev/full"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot write the history file"), "{stderr}");
    assert!(!stderr.contains("trace") && !stderr.contains("seed 42 failed"), "{stderr}");
    let (code, _, stderr) = repsim(&["run", &path, "--trace", "/dev/full"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot write the trace file"), "{stderr}");
}

#[test]
fn a_negative_seed_gets_a_plain_error_not_a_tip_that_does_not_work() {
    let path = temp_file("seed.toml", SMALL);
    let (code, _, stderr) = repsim(&["run", &path, "--seed", "-1"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("invalid value '-1'"), "{stderr}");
    assert!(!stderr.contains("tip:"), "{stderr}");
}

#[test]
fn invalid_utf8_is_located() {
    let dir = std::env::temp_dir().join("repsim-cli-test");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("latin1.toml");
    std::fs::write(&path, b"name = \"t\"\ndescription = \"caf\xe9\"\n").unwrap();
    let (code, _, stderr) = repsim(&["validate", &path.to_string_lossy()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not valid UTF-8") && stderr.contains("line 2, column 19"), "{stderr}");
}

#[test]
fn a_switchover_without_an_ha_manager_is_rejected_where_it_is_written() {
    let path = temp_file("switch.toml", &format!("{SMALL}[[faults]]\nat = \"1s\"\nswitchover = \"pg2\"\n"));
    let (code, _, stderr) = repsim(&["validate", &path]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("needs an HA manager") && stderr.contains(&format!("{path}:9:")), "{stderr}");
    let random = temp_file(
        "random-dcs.toml",
        &format!("{SMALL}[[faults]]\nrandom = {{ rate = \"1/s\", kinds = [\"crash\", \"partition_dcs\"] }}\n"),
    );
    let (code, _, stderr) = repsim(&["validate", &random]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("`partition_dcs` fault needs an HA manager"), "{stderr}");
}

#[test]
fn validate_counts_random_fault_rules_and_prints_warnings() {
    let text = format!(
        "{}[replication]\nsynchronous_commit = \"on\"\nsynchronous_standby_names = \"FIRST 2 (pg2)\"\n[[faults]]\nrandom = {{ rate = \"1/10s\", kinds = [\"crash\"] }}\n",
        SMALL
    );
    let path = temp_file("random.toml", &text);
    let (code, stdout, stderr) = repsim(&["validate", &path]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(2 nodes, 0 faults, 1 random fault rule)"), "{stdout}");
    assert!(stderr.contains("warning:") && stderr.contains("asks for 2 synchronous standbys"), "{stderr}");
}
