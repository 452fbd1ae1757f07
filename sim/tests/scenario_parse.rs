//! Scenario files: a full file parses to the expected values; every kind of mistake gives a
//! message with the right `file:line:col`, the offending line and a useful `help:`; `--set`
//! overrides go through the same checks.

use repsim::scenario::{
    load_scenario, parse_scenario, Arrival, Dist, FaultKind, KeyDistribution, Scenario, ScenarioError,
};
use repsim_engine::config::SyncCommitLevel;
use repsim_engine::syncrep::SyncMethod;

const PATH: &str = "scenarios/x.toml";
const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;
const MB: u64 = 1024 * 1024;

/// Lines 1-6; anything appended starts at line 7 (after the blank line 7 if it starts with "\n").
const BASE: &str = r#"name = "x"
duration = "60s"

[cluster]
nodes = ["pg1", "pg2", "pg3"]
primary = "pg1"
"#;

const FULL: &str = r#"name = "failover"
description = "The primary crashes under load."
duration = "60s"
settle = "20s"

[cluster]
nodes = ["pg1", "pg2", "pg3"]
primary = "pg1"

[replication]
synchronous_commit = "remote_apply"
synchronous_standby_names = "ANY 1 (pg2, pg3)"
wal_keep_size = "256MB"
max_wal_size = "2GB"
checkpoint_timeout = "5min"
wal_sender_timeout = "30s"
recovery_min_apply_delay = "1.5s"

[node]
cpus = 4
statement_cpu = "60us"
[node.pg3]
replay_record_cpu = "50us"
clock_offset = "-5ms"

[network]
latency = { dist = "lognormal", p50 = "0.5ms", p99 = "2ms" }
bandwidth = "1Gbit"
loss = 0.001
client_latency = { dist = "uniform", min = "0.1ms", max = "0.3ms" }
[[network.links]]
between = ["pg1", "pg3"]
latency = { dist = "normal", mean = "40ms", stddev = "3ms" }
bandwidth = "100Mbit"

[disk]
write = { dist = "constant", value = "30us" }
fsync = { dist = "pareto", min = "1ms", alpha = 1.5 }
[disk.pg2]
fsync = "10ms"
torn_write_probability = 0.5

[workload]
clients = 32
arrival = { closed = { think = "1ms" } }
write_fraction = 0.3
keys = 10000
key_distribution = "zipf"
value_size = "1kB"

[[faults]]
at = "45s"
restart = "pg1"

[[faults]]
at = "20s"
crash = "pg1"

[[faults]]
at = "20s"
partition = [["pg2"], ["pg3"]]
one_way = true

[[faults]]
at = "30s"
slow_disk = "pg2"
factor = 10.0
for = "5s"

[[faults]]
at = "35s"
reset = ["pg2", "pg3"]

[[faults]]
at = "40s"
heal = true

[expect]
lost_acked_writes = 0
converged = true
min_commits = 1000
max_commit_p99 = "20ms"
max_lag_bytes_p99 = "1MB"
"#;

fn parse(source: &str) -> Scenario {
    parse_scenario(source, PATH, &[]).unwrap_or_else(|e| panic!("should parse:\n{e}"))
}

fn error_of(source: &str, overrides: &[&str]) -> String {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    match parse_scenario(source, PATH, &overrides) {
        Ok(_) => panic!("should fail:\n{source}\n{overrides:?}"),
        Err(ScenarioError { message }) => message,
    }
}

/// Asserts that `message` contains every one of `parts`.
fn assert_has(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "expected {part:?} in:\n{message}");
    }
}

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn full_scenario_top_level_cluster_and_replication() {
    let s = parse(FULL);
    assert_eq!(s.name, "failover");
    assert_eq!(s.description, "The primary crashes under load.");
    assert_eq!(s.source_path, PATH);
    assert_eq!((s.duration_ns, s.settle_ns), (60 * S, 20 * S));
    assert_eq!(s.cluster.nodes, ["pg1", "pg2", "pg3"]);
    assert_eq!(s.cluster.primary, 0);
    let r = &s.replication;
    assert_eq!(r.synchronous_commit, SyncCommitLevel::RemoteApply);
    assert_eq!(r.synchronous_standby_names.method, SyncMethod::Quorum);
    assert_eq!(r.synchronous_standby_names.names, ["pg2", "pg3"]);
    assert_eq!(r.wal_keep_size_bytes, 256 * MB);
    assert_eq!(r.max_wal_size_bytes, 2048 * MB);
    assert_eq!(r.checkpoint_timeout_ns, 300 * S);
    assert_eq!(r.wal_sender_timeout_ns, 30 * S);
    assert_eq!(r.recovery_min_apply_delay_ns, 1_500 * MS);
    // Not in the file: PostgreSQL's defaults.
    assert_eq!(r.wal_segment_size_bytes, 16 * MB);
    assert_eq!(r.wal_receiver_timeout_ns, 60 * S);
    assert_eq!(r.checkpoint_completion_target, 0.9);
}

#[test]
fn full_scenario_nodes_network_disks() {
    let s = parse(FULL);
    let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["pg1", "pg2", "pg3"]);
    assert!(s.nodes.iter().all(|n| n.cpus == 4 && n.statement_cpu_ns == 60 * US));
    assert_eq!(s.nodes[0].replay_record_cpu_ns, 5 * US);
    assert_eq!(s.nodes[2].replay_record_cpu_ns, 50 * US);
    assert_eq!(s.nodes[2].clock_offset_ns, -5 * MS as i64);
    assert_eq!(s.nodes[1].commit_cpu_ns, 20 * US);

    let n = &s.network;
    assert_eq!(n.latency, Dist::log_normal(500 * US, 2 * MS));
    assert_eq!(n.bandwidth_bytes_per_sec, 125_000_000);
    assert_eq!(n.loss, 0.001);
    assert_eq!(n.client_latency, Dist::Uniform { min_ns: 100 * US, max_ns: 300 * US });
    assert_eq!(n.links.len(), 1);
    assert_eq!(n.links[0].between, (0, 2));
    assert_eq!(n.links[0].latency, Some(Dist::Normal { mean_ns: 40 * MS, stddev_ns: 3 * MS }));
    assert_eq!(n.links[0].bandwidth_bytes_per_sec, Some(12_500_000));
    assert_eq!(n.links[0].loss, None);

    assert_eq!(s.disks.len(), 3);
    assert_eq!(s.disks[0].write, Dist::Constant { value_ns: 30 * US });
    assert_eq!(s.disks[0].fsync, Dist::Pareto { min_ns: MS, alpha: 1.5 });
    assert_eq!(s.disks[1].write, Dist::Constant { value_ns: 30 * US });
    assert_eq!(s.disks[1].fsync, Dist::Constant { value_ns: 10 * MS });
    assert_eq!(s.disks[1].torn_write_probability, 0.5);
    assert_eq!(s.disks[2].torn_write_probability, 0.0);
    assert_eq!(s.disks[2].bandwidth_bytes_per_sec, 500 * MB);
}

#[test]
fn full_scenario_workload_faults_expect() {
    let s = parse(FULL);
    let w = &s.workload;
    assert_eq!(w.clients, 32);
    assert_eq!(w.arrival, Arrival::Closed { think: Dist::Constant { value_ns: MS } });
    assert_eq!((w.write_fraction, w.keys), (0.3, 10_000));
    assert_eq!(w.key_distribution, KeyDistribution::Zipf);
    assert_eq!(w.value_size_bytes, 1024);
    assert_eq!(w.abort_fraction, 0.0);

    let kinds: Vec<(u64, &FaultKind)> = s.faults.iter().map(|f| (f.at_ns / S, &f.kind)).collect();
    assert_eq!(
        kinds,
        [
            (20, &FaultKind::Crash { node: 0 }),
            (20, &FaultKind::Partition { a: vec![1], b: vec![2], one_way: true }),
            (30, &FaultKind::SlowDisk { node: 1, factor: 10.0, for_ns: 5 * S }),
            (35, &FaultKind::Reset { a: 1, b: 2 }),
            (40, &FaultKind::Heal),
            (45, &FaultKind::Restart { node: 0 }),
        ]
    );
    // Lines of the `[[faults]]` headers.
    let line_of = |needle: &str| FULL.lines().position(|l| l == needle).map(|i| i + 1);
    assert_eq!(Some(s.faults[0].line + 1), line_of("at = \"20s\""));
    assert_eq!(Some(s.faults[5].line + 1), line_of("at = \"45s\""));

    assert_eq!(s.expect.lost_acked_writes, Some(repsim::scenario::model::LossBound::All(0)));
    assert_eq!(s.expect.converged, Some(true));
    assert_eq!(s.expect.min_commits, Some(1000));
    assert_eq!(s.expect.max_commit_p99_ns, Some(20 * MS));
    assert_eq!(s.expect.max_lag_bytes_p99, Some(MB));
}

#[test]
fn minimal_scenario_gets_the_defaults() {
    let s = parse(BASE);
    assert_eq!(s.settle_ns, 10 * S);
    assert_eq!(s.description, "");
    assert_eq!(s.replication.synchronous_commit, SyncCommitLevel::On);
    assert!(s.replication.synchronous_standby_names.is_empty());
    assert_eq!(s.replication.max_wal_size_bytes, 1024 * MB);
    assert_eq!(s.replication.wal_writer_delay_ns, 200 * MS);
    assert_eq!(s.nodes.len(), 3);
    assert_eq!((s.nodes[1].cpus, s.nodes[1].statement_cpu_ns), (2, 60 * US));
    assert_eq!(s.network.latency, Dist::log_normal(500 * US, 2 * MS));
    assert_eq!(s.network.client_latency, Dist::Constant { value_ns: 100 * US });
    assert_eq!(s.network.bandwidth_bytes_per_sec, 125_000_000);
    assert_eq!(s.disks[0].fsync, Dist::log_normal(MS, 8 * MS));
    assert_eq!(s.disks[0].write, Dist::Constant { value_ns: 20 * US });
    assert_eq!(s.workload.arrival, Arrival::Open { ops_per_sec: 1000.0 });
    assert_eq!((s.workload.clients, s.workload.keys, s.workload.value_size_bytes), (8, 1000, 100));
    assert!(s.faults.is_empty());
    assert_eq!(s.expect, Default::default());
    assert!(s.overrides.is_empty());
}

#[test]
fn small_forms_are_accepted() {
    let s = parse(&with(
        "\n[replication]\nsynchronous_commit = false\nsynchronous_standby_names = \"*\"\n\
         [workload]\narrival = { open = \"2000/s\" }\n",
    ));
    assert_eq!(s.replication.synchronous_commit, SyncCommitLevel::Off);
    assert_eq!(s.replication.synchronous_standby_names.names, ["*"]);
    assert_eq!(s.workload.arrival, Arrival::Open { ops_per_sec: 2000.0 });
}

#[test]
fn syntax_error() {
    let message = error_of(&with("\n[network]\nlatency = 5ms\n"), &[]);
    assert_has(
        &message,
        &["error: invalid TOML", "--> scenarios/x.toml:9:12", "9 | latency = 5ms", "help:", "`latency = \"5ms\"`"],
    );
    let message = error_of(&with("\n[network\n"), &[]);
    assert_has(&message, &["invalid TOML", "scenarios/x.toml:8:", "[network"]);
}

#[test]
fn unknown_key_suggests_the_closest() {
    let message = error_of(&with("\n[network]\nlaytency = \"1ms\"\n"), &[]);
    let expected = "error: unknown key `laytency` in [network]\n \
                    --> scenarios/x.toml:9:1\n  \
                    |\n\
                    9 | laytency = \"1ms\"\n  \
                    | ^^^^^^^^\n\
                    help: did you mean `latency`? expected one of: latency, bandwidth, loss, client_latency, links";
    assert_eq!(message, expected);
    let message = error_of(&with("\n[hq]\nttl = \"30s\"\n"), &[]);
    assert_has(&message, &["unknown key `hq` in the top level", "x.toml:8:2", "did you mean `ha`?"]);
    let message = error_of(&with("\n[[network.links]]\nbetween = [\"pg1\", \"pg2\"]\nlatncy = \"1ms\"\n"), &[]);
    assert_has(&message, &["unknown key `latncy`", "x.toml:10:1", "did you mean `latency`?"]);
}

#[test]
fn wrong_types() {
    let message = error_of(&with("\n[workload]\nclients = \"8\"\n"), &[]);
    assert_has(
        &message,
        &[
            "`workload.clients` must be an integer, found a string",
            "x.toml:9:11",
            "write `clients = 8`, without quotes",
        ],
    );
    let message = error_of(&with("\n[expect]\nconverged = \"yes\"\n"), &[]);
    assert_has(&message, &["must be a boolean", "x.toml:9:13", "`converged = true`"]);
    let message = error_of(&with("\n[replication]\nwal_keep_size = 16\n"), &[]);
    assert_has(
        &message,
        &["must be a size string with a unit, found an integer", "x.toml:9:17", "write `wal_keep_size = \"16MB\"`"],
    );
    let message = error_of(&with("\n[network]\nlatency = 5\n"), &[]);
    assert_has(
        &message,
        &["found an integer", "x.toml:9:11", "{ dist = \"lognormal\", p50 = \"1ms\", p99 = \"8ms\" }"],
    );
}

#[test]
fn bad_units() {
    let cases = [
        ("\"5 ms\"", "no space is allowed", "write \"5ms\""),
        ("\"5sec\"", "unknown duration unit `sec`", "write \"5s\""),
        ("\"5\"", "has no unit", "write \"5ms\" or \"5s\""),
    ];
    for (value, message_part, help_part) in cases {
        let message = error_of(&with(&format!("\n[network]\nclient_latency = {value}\n")), &[]);
        assert_has(&message, &[message_part, "x.toml:9:18", &format!("9 | client_latency = {value}"), help_part]);
    }
    let message = error_of(&with("\n[replication]\nmax_wal_size = \"1gb\"\n"), &[]);
    assert_has(&message, &["unknown size unit `gb`", "x.toml:9:16", "write \"1GB\""]);
    let message = error_of(&with("\n[network]\nbandwidth = \"1Gbps\"\n"), &[]);
    assert_has(&message, &["unknown bandwidth unit `Gbps`", "x.toml:9:13", "bit, kbit, Mbit, Gbit"]);
}

#[test]
fn negative_durations_only_for_clock_offset() {
    let message = error_of(&with("\n[node]\ncommit_cpu = \"-5us\"\n"), &[]);
    assert_has(&message, &["durations cannot be negative", "x.toml:9:14", "help:"]);
    let s = parse(&with("\n[node]\nclock_offset = \"-2ms\"\n"));
    assert!(s.nodes.iter().all(|n| n.clock_offset_ns == -2 * MS as i64));
}

#[test]
fn unknown_node_names_list_the_nodes() {
    let message = error_of(&with("\n[[faults]]\nat = \"1s\"\ncrash = \"pg9\"\n"), &[]);
    assert_has(
        &message,
        &["unknown node `pg9` in `faults.0.crash`", "x.toml:10:9", "the cluster's nodes are: pg1, pg2, pg3"],
    );
    let message = error_of(&with("\n[node.pg4]\ncpus = 1\n"), &[]);
    assert_has(&message, &["[node.pg4] names no node", "x.toml:8:7", "pg1, pg2, pg3"]);
    let message = error_of(&with("\n[[network.links]]\nbetween = [\"pg1\", \"pgg2\"]\n"), &[]);
    assert_has(&message, &["unknown node `pgg2`", "x.toml:9:19", "did you mean `pg2`?"]);
    let message = error_of(&with("\n[[faults]]\nat = \"1s\"\npartition = [[\"pg1\"], [\"pg2\", \"pg1\"]]\n"), &[]);
    assert_has(&message, &["`pg1` is listed in both groups", "x.toml:10:31"]);
}

#[test]
fn missing_required_keys() {
    let message = error_of(&BASE.replace("duration = \"60s\"\n", ""), &[]);
    assert_has(
        &message,
        &["missing required key `duration`", "x.toml:1:1", "add `duration = \"60s\"` at the top level"],
    );
    let message = error_of(&BASE.replace("nodes = [\"pg1\", \"pg2\", \"pg3\"]\n", ""), &[]);
    assert_has(
        &message,
        &[
            "missing required key `nodes` in [cluster]",
            "x.toml:4:1",
            "4 | [cluster]",
            "add `nodes = [\"pg1\", \"pg2\"]`",
        ],
    );
    let message = error_of(&BASE.replace("primary = \"pg1\"\n", ""), &[]);
    assert_has(&message, &["missing required key `primary` in [cluster]", "x.toml:4:1", "add `primary = \"pg1\"`"]);
    let message = error_of("name = \"x\"\nduration = \"1s\"\n", &[]);
    assert_has(&message, &["missing required key `cluster`", "[cluster]\n", "primary = \"pg1\""]);
}

#[test]
fn cluster_mistakes() {
    let message = error_of(&BASE.replace("primary = \"pg1\"", "primary = \"pg4\""), &[]);
    assert_has(&message, &["the primary `pg4` is not one of cluster.nodes", "x.toml:6:11", "pg1, pg2, pg3"]);
    let message = error_of(&BASE.replace("\"pg3\"]", "\"pg2\"]"), &[]);
    assert_has(&message, &["duplicate node name `pg2`", "x.toml:5:24", "unique"]);
    let message = error_of(&BASE.replace("\"pg3\"]", "\"PG3\"]"), &[]);
    assert_has(&message, &["invalid name \"PG3\"", "x.toml:5:24", "write \"pg3\""]);
    let message = error_of(&BASE.replace("[\"pg1\", \"pg2\", \"pg3\"]", "[]"), &[]);
    assert_has(&message, &["`cluster.nodes` is empty", "x.toml:5:9"]);
}

#[test]
fn probabilities_out_of_range() {
    let message = error_of(&with("\n[network]\nloss = 1.0\n"), &[]);
    assert_has(&message, &["`network.loss` is a probability and must be at least 0 and below 1", "x.toml:9:8"]);
    let message = error_of(&with("\n[workload]\nwrite_fraction = -0.1\n"), &[]);
    assert_has(&message, &["must be between 0 and 1", "x.toml:9:18", "help:"]);
}

#[test]
fn synchronous_standby_names_mistakes() {
    let set = |value: &str| with(&format!("\n[replication]\nsynchronous_standby_names = \"{value}\"\n"));
    let message = error_of(&set("FIRST (pg2)"), &[]);
    assert_has(&message, &["invalid `replication.synchronous_standby_names`", "x.toml:9:29", "FIRST 1 (pg2, pg3)"]);
    let message = error_of(&set("FIRST 1 (pg2, pg9)"), &[]);
    assert_has(&message, &["unknown standby `pg9`", "x.toml:9:29", "the standbys are: pg2, pg3"]);
    // The primary's own name is allowed, as PostgreSQL allows it: it is never its own standby.
    let s = parse(&set("FIRST 1 (pg1, pg2)"));
    assert_eq!(s.replication.synchronous_standby_names.names, ["pg1", "pg2"]);
    let message = error_of(&with("\n[replication]\nsynchronous_commit = \"remote_aply\"\n"), &[]);
    assert_has(
        &message,
        &["x.toml:9:22", "did you mean `remote_apply`?", "off, local, remote_write, on, remote_apply"],
    );
}

#[test]
fn fault_mistakes() {
    let message = error_of(&with("\n[[faults]]\nat = \"20s\"\n"), &[]);
    assert_has(&message, &["has no action", "x.toml:8:1", "8 | [[faults]]", "crash = \"pg1\"", "heal = true"]);
    let message = error_of(&with("\n[[faults]]\nat = \"20s\"\ncrash = \"pg1\"\nrestart = \"pg1\"\n"), &[]);
    assert_has(&message, &["two actions, `crash` and `restart`", "x.toml:11:1", "its own [[faults]]"]);
    let message = error_of(&with("\n[[faults]]\nat = \"70s\"\ncrash = \"pg1\"\n"), &[]);
    assert_has(
        &message,
        &["fault at 70s is not before the end of the run (70s = duration 60s + settle 10s)", "x.toml:9:6"],
    );
    let message = error_of(&with("\n[[faults]]\nat = \"1s\"\ncrash = \"pg1\"\nfactor = 2.0\n"), &[]);
    assert_has(&message, &["`factor` only applies to a `slow_disk` fault", "x.toml:11:1"]);
    let message = error_of(&with("\n[[faults]]\nat = \"1s\"\nslow_disk = \"pg2\"\nfactor = 0.5\nfor = \"1s\"\n"), &[]);
    assert_has(&message, &["`factor` must be at least 1", "x.toml:11:10"]);
}

#[test]
fn distribution_mistakes() {
    let set = |value: &str| with(&format!("\n[disk]\nfsync = {value}\n"));
    let message = error_of(&set("{ dist = \"gaussian\", mean = \"1ms\" }"), &[]);
    assert_has(
        &message,
        &["unknown distribution `gaussian`", "x.toml:9:18", "{ dist = \"pareto\", min = \"1ms\", alpha = 1.5 }"],
    );
    let message = error_of(&set("{ dist = \"normal\", mean = \"1ms\", p99 = \"2ms\" }"), &[]);
    assert_has(
        &message,
        &[
            "unknown key `p99` in [disk.fsync]",
            "x.toml:9:42",
            "{ dist = \"normal\", mean = \"5ms\", stddev = \"1ms\" }",
        ],
    );
    let message = error_of(&set("{ dist = \"uniform\", min = \"5ms\" }"), &[]);
    assert_has(&message, &["missing required key `max`", "x.toml:9:9"]);
    let message = error_of(&set("{ dist = \"lognormal\", p50 = \"5ms\", p99 = \"1ms\" }"), &[]);
    assert_has(&message, &["must be at least `p50`", "0 < p50 <= p99"]);
    let message = error_of(&set("{ dist = \"pareto\", min = \"1ms\", alpha = 0 }"), &[]);
    assert_has(&message, &["alpha` must be above zero"]);
}

#[test]
fn overrides_apply_strings_numbers_and_tables() {
    let overrides: Vec<String> = [
        "replication.synchronous_commit=remote_write",
        "network.loss=0.05",
        "network.latency={ dist = \"constant\", value = \"5ms\" }",
        "workload.clients=4",
        "duration=30s",
        "faults.0.at=2s",
        "node.pg2.cpus=8",
    ]
    .map(String::from)
    .to_vec();
    let source = with("\n[network]\nloss = 0.0\n[[faults]]\nat = \"1s\"\ncrash = \"pg1\"\n");
    let s = parse_scenario(&source, PATH, &overrides).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.replication.synchronous_commit, SyncCommitLevel::RemoteWrite);
    assert_eq!(s.network.loss, 0.05);
    assert_eq!(s.network.latency, Dist::Constant { value_ns: 5 * MS });
    assert_eq!(s.workload.clients, 4);
    assert_eq!(s.duration_ns, 30 * S);
    assert_eq!(s.faults[0].at_ns, 2 * S);
    assert_eq!(s.faults[0].line, 10);
    assert_eq!(s.nodes.iter().map(|n| n.cpus).collect::<Vec<_>>(), [2, 8, 2]);
    assert_eq!(s.overrides, overrides);
}

#[test]
fn later_overrides_win() {
    let overrides = ["network.loss=0.1", "network.loss=0.2"].map(String::from);
    let s = parse_scenario(BASE, PATH, &overrides).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.network.loss, 0.2);
}

#[test]
fn bad_overrides_name_the_set() {
    let message = error_of(BASE, &["network.loss=0.1", "network.lossx=0.1"]);
    assert_has(
        &message,
        &["error in --set network.lossx=0.1: unknown key `lossx` in [network]", "help: did you mean `loss`?"],
    );
    assert!(!message.contains("-->"), "no snippet for command-line values:\n{message}");
    let message = error_of(BASE, &["network.loss=2"]);
    assert_has(&message, &["error in --set network.loss=2:", "probability", "help:"]);
    assert!(!message.contains("-->"), "{message}");
    let message = error_of(BASE, &["duration=5 s"]);
    assert_has(&message, &["error in --set duration=5 s:", "write \"5s\""]);
    let message = error_of(BASE, &["no_equals_sign"]);
    assert_has(&message, &["error in --set no_equals_sign: expected `key.path=value`", "help:"]);
    let message = error_of(BASE, &["name.sub=1"]);
    assert_has(&message, &["error in --set name.sub=1: `name` is a string, not a table"]);
}

#[test]
fn override_errors_about_file_values_point_into_the_file() {
    let message = error_of(BASE, &["cluster.nodes=[\"a\", \"b\"]"]);
    assert_has(
        &message,
        &["error in --set cluster.nodes=", "the primary `pg1` is not one of cluster.nodes", "x.toml:6:11", "a, b"],
    );
}

#[test]
fn file_errors_come_before_overrides() {
    let message = error_of(&with("\n[network]\nlos = 0.1\n"), &["network.loss=0.1"]);
    assert_has(&message, &["error: unknown key `los`", "x.toml:9:1"]);
}

#[test]
fn load_scenario_reads_files() {
    let dir = std::env::temp_dir().join(format!("repsim-scenario-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("ok.toml");
    std::fs::write(&path, BASE).expect("write");
    let s = load_scenario(&path, &["settle=1s".to_string()]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.settle_ns, S);
    assert_eq!(s.source_path, path.display().to_string());
    let missing = dir.join("missing.toml");
    let err = load_scenario(&missing, &[]).expect_err("missing file");
    assert_has(&err.to_string(), &["cannot read scenario file", &missing.display().to_string()]);
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn never_panics_on_truncated_or_mangled_input() {
    let boundaries = (0..=FULL.len()).filter(|i| FULL.is_char_boundary(*i));
    for cut in boundaries {
        let inputs = [
            FULL[..cut].to_string(),
            format!("{}\"{}", &FULL[..cut], &FULL[cut..]),
            format!("{}-1{}", &FULL[..cut], &FULL[cut..]),
        ];
        for input in inputs {
            if let Err(e) = parse_scenario(&input, PATH, &[]) {
                assert!(e.message.starts_with("error: "), "{e}");
                assert!(e.message.contains("help: "), "every error has a help:\n{e}");
            }
        }
    }
}

#[test]
fn values_that_cannot_be_simulated_are_located_errors_not_panics_or_hangs() {
    // Each of these once panicked, overflowed simulated time, exhausted memory or looped
    // (issue 9): now each is an error naming the key, with what to write instead.
    let cases: &[(&str, &[&str])] = &[
        ("[disk]\nfsync = \"9223372036854775807ns\"\n", &["`disk.fsync`", "24h"]),
        ("[workload]\nclients = 4294967295\n", &["`workload.clients` must be at most 10000"]),
        ("[workload]\nkeys = 1000000000000\n", &["`workload.keys` must be at most 10000000"]),
        ("[node]\nclock_drift_ppm = -1000000\n", &["`node.clock_drift_ppm` must be between"]),
        ("[replication]\nwal_writer_delay = \"1ns\"\n", &["`replication.wal_writer_delay`", "at least 1ms"]),
        ("[replication]\nwal_receiver_status_interval = \"1ns\"\n", &["at least 1ms", "\"0\" to turn it off"]),
        ("[replication]\ncheckpoint_timeout = \"1ns\"\n", &["`replication.checkpoint_timeout`"]),
        ("[ha]\nmanager = \"patroni\"\nttl = \"24h\"\nloop_wait = \"24h\"\nretry_timeout = \"24h\"\n", &["loop_wait"]),
        ("[ha]\nmanager = \"patroni\"\ncheck_interval = \"1ns\"\n", &["`ha.check_interval`", "at least 1ms"]),
        ("[[faults]]\nat = \"1s\"\nslow_disk = \"pg1\"\nfactor = 1e30\nfor = \"1s\"\n", &["factor", "10000"]),
        ("[[faults]]\nat = \"1s\"\nclock_drift = \"pg1\"\nppm = -1000000.0\n", &["ppm", "between"]),
    ];
    for (extra, parts) in cases {
        let message = error_of(&with(extra), &[]);
        assert_has(&message, parts);
        assert!(message.contains(PATH), "the file is named: {message}");
    }
    // Zero still turns the timeouts and the status interval off, as in PostgreSQL.
    let off = parse(&with("[replication]\nwal_receiver_status_interval = \"0\"\nwal_sender_timeout = \"0\"\n"));
    assert_eq!(off.replication.wal_receiver_status_interval_ns, 0);
}

#[test]
fn cascading_upstreams_must_reach_the_primary() {
    let ok = parse(&with("\n[node.pg3]\nprimary_conninfo = \"pg2\"\n"));
    assert_eq!(ok.nodes[2].primary_conninfo.as_deref(), Some("pg2"));
    let circle = with("\n[node.pg2]\nprimary_conninfo = \"pg3\"\n\n[node.pg3]\nprimary_conninfo = \"pg2\"\n");
    assert_has(&error_of(&circle, &[]), &["scenarios/x.toml:9:20", "go round in a circle", "must stream from `pg1`"]);
    let own = with("\n[node.pg2]\nprimary_conninfo = \"pg2\"\n");
    assert_has(&error_of(&own, &[]), &["cannot stream from itself", "primary_conninfo = \"pg1\""]);
    let primary = with("\n[node.pg1]\nprimary_conninfo = \"pg2\"\n");
    assert_has(&error_of(&primary, &[]), &["`pg1` is the primary: it has no upstream"]);
    let typo = with("\n[node.pg3]\nprimary_conninfo = \"pg4\"\n");
    assert_has(&error_of(&typo, &[]), &["scenarios/x.toml:9:20", "pg4"]);
    let everyone = with("\n[node]\nprimary_conninfo = \"pg2\"\n");
    assert_has(&error_of(&everyone, &[]), &["set it for that standby only"]);
    let ha = with("\n[node.pg3]\nprimary_conninfo = \"pg2\"\n\n[ha]\nmanager = \"patroni\"\n");
    assert_has(&error_of(&ha, &[]), &["not modelled", "replicatefrom"]);
}

#[test]
fn archive_settings_and_outages_parse_and_bad_ones_are_explained() {
    let s = parse(&with(
        "\n[replication]\narchive_mode = true\n\n[archive]\nlatency = \"20ms\"\nbandwidth = \"50MB\"\n\
         request_cost = \"5ms\"\n\n[[faults]]\nat = \"10s\"\narchive_down = true\nfor = \"1min\"\n",
    ));
    assert!(s.replication.archive_mode);
    assert_eq!(s.archive.latency, Dist::Constant { value_ns: 20 * MS });
    assert_eq!((s.archive.bandwidth_bytes_per_sec, s.archive.request_cost_ns), (50 * MB, 5 * MS));
    assert_eq!(s.faults[0].kind, FaultKind::ArchiveDown { for_ns: 60 * S });
    let no_for = with("\n[[faults]]\nat = \"10s\"\narchive_down = true\n");
    assert_has(&error_of(&no_for, &[]), &["missing required key `for`", "add `for = \"10min\"`"]);
    let typo = with("\n[archive]\nlatncy = \"20ms\"\n");
    assert_has(&error_of(&typo, &[]), &["latncy", "latency"]);
}
