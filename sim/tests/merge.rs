//! `repsim merge`: the shards of one sweep combine into exactly what a single sweep of the same
//! seeds writes; shards that do not belong together are refused. And the deploy/ examples that
//! run shards on a cluster parse and name the right commands.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

const SHORT: &[&str] = &["faults.0.at=1s", "faults.1.at=1500ms", "duration=2s", "settle=2s", "expect.converged=false"];

fn repsim(args: &[String]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_repsim")).args(args).output().expect("binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn sweep(out: &Path, shard: Option<&str>, overrides: &[&str]) -> i32 {
    let scenario = common::scenario_path("primary-crash-restart");
    let mut args = strings(&["sweep", &scenario.to_string_lossy(), "--seeds", "1..=6", "--quiet", "--jobs", "2"]);
    args.extend(strings(&["--out", &out.to_string_lossy()]));
    if let Some(shard) = shard {
        args.extend(strings(&["--shard", shard]));
    }
    for o in overrides {
        args.extend(strings(&["--set", o]));
    }
    repsim(&args).0
}

fn workdir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("repsim-merge-test-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn shard_dir(out: &Path, i: u32, n: u32) -> String {
    out.join(format!("primary-crash-restart/sweep/shard-{i}-of-{n}")).to_string_lossy().into_owned()
}

fn without_wall_ms(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("wall_ms");
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn merged_shards_are_the_single_sweep() {
    let dir = workdir("same");
    // Losses demanded away so that some seeds fail: the failing list must merge too.
    let overrides = [SHORT, &["replication.synchronous_commit=off", "expect.lost_acked_writes=0"]].concat();
    let whole_code = sweep(&dir.join("whole"), None, &overrides);
    for i in 1..=3 {
        sweep(&dir.join("shards"), Some(&format!("{i}/3")), &overrides);
    }
    let shards = dir.join("shards");
    let mut args = strings(&["merge"]);
    args.extend((1..=3).map(|i| shard_dir(&shards, i, 3)));
    args.extend(strings(&["--out", &dir.join("merged").to_string_lossy()]));
    let (code, stdout, stderr) = repsim(&args);
    assert_eq!(code, whole_code, "{stdout}{stderr}");
    let read = |which: &str, file: &str| {
        std::fs::read_to_string(dir.join(which).join("primary-crash-restart/sweep").join(file)).unwrap()
    };
    for file in ["summary.json", "summary.md", "distributions.svg"] {
        assert_eq!(read("merged", file), read("whole", file), "{file} differs");
    }
    assert_eq!(without_wall_ms(&read("merged", "seeds.jsonl")), without_wall_ms(&read("whole", "seeds.jsonl")));
    let summary: serde_json::Value = serde_json::from_str(&read("merged", "summary.json")).unwrap();
    assert!(summary["failed"].as_u64().unwrap() > 0, "no seed failed: the failing list was not exercised");
}

#[test]
fn shards_that_do_not_belong_together_are_refused() {
    let dir = workdir("refused");
    sweep(&dir.join("a"), Some("1/2"), SHORT);
    sweep(&dir.join("a"), Some("2/2"), SHORT);
    sweep(&dir.join("b"), Some("2/2"), &[SHORT, &["workload.clients=4"]].concat());
    let merge = |dirs: &[String]| {
        let mut args = strings(&["merge"]);
        args.extend(dirs.iter().cloned());
        args.extend(strings(&["--out", &dir.join("m").to_string_lossy()]));
        repsim(&args)
    };
    let (code, _, stderr) = merge(&[shard_dir(&dir.join("a"), 1, 2)]);
    assert_eq!(code, 2);
    assert!(stderr.contains("missing shards: 2/2"), "{stderr}");
    let (code, _, stderr) = merge(&[shard_dir(&dir.join("a"), 1, 2), shard_dir(&dir.join("b"), 2, 2)]);
    assert_eq!(code, 2);
    assert!(stderr.contains("different overrides"), "{stderr}");
    // Another build: the fingerprint in the shard's summary differs.
    let edited = dir.join("a/primary-crash-restart/sweep/shard-2-of-2/summary.json");
    let mut summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&edited).unwrap()).unwrap();
    summary["build"] = "0.1.0-0000000000000000".into();
    std::fs::write(&edited, summary.to_string()).unwrap();
    let (code, _, stderr) = merge(&[shard_dir(&dir.join("a"), 1, 2), shard_dir(&dir.join("a"), 2, 2)]);
    assert_eq!(code, 2);
    assert!(stderr.contains("different builds"), "{stderr}");
}

fn yaml(path: &str) -> Vec<yaml_rust2::Yaml> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    let text = std::fs::read_to_string(&file).unwrap();
    yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A shell command line as repsim's own parser sees it, after the CI variables are filled in.
fn parses(command: &str) {
    let filled = command
        .replace("\"${{ inputs.scenario }}\"", "scenarios/failover.toml")
        .replace("\"${{ inputs.seeds }}\"", "1..=1000")
        .replace("${{ matrix.shard }}", "1")
        .replace("$((JOB_COMPLETION_INDEX + 1))", "1")
        .replace("\\\n", " ");
    // The words up to the end of the first shell command (`;` or `||`).
    let mut words = Vec::new();
    for word in filled.split_whitespace() {
        if word == "||" {
            break;
        }
        words.push(word.trim_end_matches(';'));
        if word.ends_with(';') {
            break;
        }
    }
    let start = words.iter().position(|w| w.ends_with("repsim")).unwrap_or_else(|| panic!("no repsim in {command}"));
    let mut args: Vec<&str> = words[start..].to_vec();
    args[0] = "repsim";
    repsim::cmd::Cli::try_parse_from_args(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
}

#[test]
fn the_kubernetes_example_is_an_indexed_job_of_sweep_shards_then_a_merge() {
    let docs = yaml("deploy/kubernetes/sweep-job.yaml");
    let job = docs.iter().find(|d| d["kind"].as_str() == Some("Job")).expect("a Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let shards = spec["completions"].as_i64().unwrap();
    let command = spec["template"]["spec"]["containers"][0]["args"][0].as_str().unwrap();
    assert!(command.contains("repsim sweep") && command.contains(&format!("/{shards} ")), "{command}");
    parses(command);
    let merge = yaml("deploy/kubernetes/merge-job.yaml");
    let command = merge[0]["spec"]["template"]["spec"]["containers"][0]["args"][0].as_str().unwrap();
    assert!(command.contains("repsim merge") && command.contains(&format!("shard-*-of-{shards}")), "{command}");
    parses(command);
}

#[test]
fn the_github_actions_example_is_a_matrix_of_shards_then_a_merge() {
    let docs = yaml("deploy/github-actions/sweep.yml");
    let jobs = &docs[0]["jobs"];
    let shards = jobs["shard"]["strategy"]["matrix"]["shard"].as_vec().unwrap().len();
    let runs = |job: &str| -> Vec<String> {
        jobs[job]["steps"].as_vec().unwrap().iter().filter_map(|s| s["run"].as_str().map(str::to_string)).collect()
    };
    let sweep = runs("shard").into_iter().find(|r| r.contains("repsim sweep")).expect("a sweep step");
    assert!(sweep.contains(&format!("/{shards} ")), "{sweep}");
    parses(&sweep[sweep.find("bin/repsim sweep").unwrap()..]);
    let merge = runs("merge").into_iter().find(|r| r.contains("repsim merge")).expect("a merge step");
    assert!(merge.contains(&format!("shard-*-of-{shards}")), "{merge}");
    parses(&merge[merge.find("bin/repsim merge").unwrap()..]);
    assert_eq!(jobs["merge"]["needs"].as_str(), Some("shard"));
}
