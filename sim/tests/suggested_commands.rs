//! Every command a scenario header suggests does what the header says: each `--set` line of
//! `scenarios/*.toml` is listed here with the outcome its header promises, and run.

mod common;

use std::collections::BTreeSet;

/// (scenario, seed, overrides, passes, what else must hold)
type Suggested = (&'static str, u64, &'static [&'static str], bool, fn(&repsim::report::summary::Summary) -> bool);

const SUGGESTED: &[Suggested] = &[
    ("logical-replica", 1, &["replication.synchronous_standby_names=app_copy"], true, |s| {
        s.commits < 5_000 && s.invariants["promise_audit"] == "ok"
    }),
    (
        "logical-replica",
        1,
        &["replication.synchronous_standby_names=app_copy", "logical.subscriptions.0.synchronous_commit=on"],
        true,
        |s| s.commits > 6_000 && s.commits < 10_000 && s.invariants["promise_audit"] == "ok",
    ),
    ("trigger-vs-logical", 1, &["logical.subscriptions.0.capture=logical"], true, |s| {
        let sub = &s.subscriptions[0];
        sub.apply_lag_ns.p50 < 50_000_000
            && s.wal_bytes_per_commit < 400
            && sub.rows_missing_extra_different == Some((0, 0, 0))
    }),
    ("trigger-vs-logical", 1, &["logical.subscriptions.0.poll_interval=500ms"], true, |s| {
        let lag = &s.subscriptions[0].apply_lag_ns;
        lag.p50 > 100_000_000 && lag.p50 < 500_000_000 && lag.p99 < 700_000_000
    }),
    ("active-active", 1, &["node.west.clock_offset=-500ms"], true, |s| {
        let mm = s.multi_master.as_ref().expect("[multi_master]");
        mm.masters[0].lost_updates > 10 && mm.masters[1].rows_missing_extra_different.2 > 0
    }),
    ("active-active", 1, &["multi_master.conflict_resolution=keep_local"], true, |s| {
        let mm = s.multi_master.as_ref().expect("[multi_master]");
        mm.masters[1].rows_missing_extra_different.2 > 150 && s.invariants["masters_converged"] == "not_checked"
    }),
    ("active-active", 1, &["multi_master.conflict_resolution=apply_remote"], true, |s| {
        let stopped = |sub: &repsim::report::subscriptions::SubscriptionSummary| {
            sub.resolved_conflicts.iter().any(|(kind, r, _)| kind == "insert_exists" && r == "stopped")
        };
        let mm = s.multi_master.as_ref().expect("[multi_master]");
        s.subscriptions.iter().all(stopped) && mm.masters[1].rows_missing_extra_different.0 > 1000
    }),
    ("active-active", 1, &["multi_master.conflict_resolution=error"], true, |s| {
        let mm = s.multi_master.as_ref().expect("[multi_master]");
        s.subscriptions.iter().all(|sub| sub.resolved_conflicts.iter().any(|(_, r, _)| r == "stopped"))
            && mm.masters[1].rows_missing_extra_different.0 > 1000
    }),
    ("delayed-standby", 1, &["node.pg3.recovery_min_apply_delay=0"], true, |s| {
        let replay_p99_ns = s.standbys["pg3"].replay_lag_ns.p99;
        let promotion_ns = s.promotions.first().and_then(|p| p.promotion_duration_ns);
        replay_p99_ns < 1_000_000_000 && promotion_ns.is_some_and(|ns| ns < 50_000_000) && s.lost_acked_writes > 0
    }),
    ("hot-standby-conflicts", 1, &["replication.hot_standby_feedback=true"], true, |s| {
        let hs = s.hot_standby.expect("reads run long");
        hs.standby_queries_cancelled == 0 && hs.replay_conflict_waits == 0 && hs.dead_row_versions_max > 10_000
    }),
    ("hot-standby-conflicts", 1, &["replication.max_standby_streaming_delay=1s"], true, |s| {
        let hs = s.hot_standby.expect("reads run long");
        hs.standby_queries_cancelled > 150 && s.standbys["pg2"].replay_lag_ns.max < 1_100_000_000
    }),
    ("hot-standby-conflicts", 1, &["replication.max_standby_streaming_delay=-1"], true, |s| {
        let hs = s.hot_standby.expect("reads run long");
        hs.standby_queries_cancelled == 0 && s.standbys["pg2"].replay_lag_ns.max > 60_000_000_000
    }),
    ("statement-timeout", 1, &["workload.statement_timeout=0", "workload.cancel_after=2s"], true, |s| {
        s.cancel_requests == 80 && s.committed_locally_unconfirmed == 80 && s.lost_acked_writes_by_level.local == 16
    }),
    ("archive-timeout", 1, &["replication.archive_timeout=60s"], true, |s| {
        let a = s.archive.expect("archive_mode is on");
        a.segments_archived >= 9 && a.lag_ns.max < 62_000_000_000 && a.bytes_archived >= 9 * 16 * 1024 * 1024
    }),
    ("disaster-recovery", 1, &["replication.archive_timeout=60s"], true, |s| {
        let r = &s.restores[0];
        let a = s.archive.expect("archive_mode is on");
        r.rpo_ns.is_some_and(|ns| ns <= 60_000_000_000)
            && a.bytes_archived >= 8 * 16 * 1024 * 1024
            && r.segments_restored >= 6
    }),
    ("disaster-recovery", 1, &["replication.archive_timeout=10s"], true, |s| {
        let r = &s.restores[0];
        r.rpo_ns.is_some_and(|ns| ns <= 10_000_000_000) && r.segments_restored > 30 && s.lost_acked_writes < 5_000
    }),
    ("inactive-slot", 1, &["replication.max_slot_wal_keep_size=-1"], true, |s| {
        s.logical_slots.len() == 1
            && s.logical_slots[0].ends_with("slot cdc created")
            && s.invariants["slot_wal_kept"] == "ok"
    }),
    ("logical-failover", 3, &["logical.subscriptions.0.failover=false"], true, |s| {
        let sub = &s.subscriptions[0];
        sub.rows_missing_extra_different.is_some_and(|(missing, _, _)| missing > 5_000)
            && sub.events.iter().any(|e| e.contains("which has no slot app_copy"))
    }),
    ("logical-failover", 3, &["replication.synchronized_standby_slots=[]"], true, |s| {
        s.subscriptions[0].rows_missing_extra_different.is_some_and(|(missing, extra, _)| missing == 0 && extra > 0)
            && s.invariants["logical_converged"] == "not_checked"
    }),
    ("connection-pooling", 1, &["pooler.server_connect_cpu=50ms"], true, |s| {
        let pool = s.pooler.as_ref().expect("[pooler]");
        s.commit_latency_ns.p99 > 200_000_000 && pool.wait_ns.max > 400_000_000 && s.unavailable_ns > 19_300_000_000
    }),
    ("connection-pooling", 1, &["pooler.pool_mode=session", "pooler.query_wait_timeout=5s"], true, |s| {
        let pool = s.pooler.as_ref().expect("[pooler]");
        pool.wait_timeouts > 300 && pool.wait_ns.max >= 5_000_000_000
    }),
    ("pgpool-load-balancing", 1, &["pooler.disable_load_balance_on_write=always"], true, |s| {
        let pool = s.pooler.as_ref().expect("[pooler]");
        pool.reads_balanced_to_standbys < 200 && s.stale_reads < 100
    }),
    ("pgpool-load-balancing", 1, &["pooler.sr_check_period=1s"], true, |s| {
        let pool = s.pooler.as_ref().expect("[pooler]");
        pool.reads_past_delay_threshold < 2_500 && pool.reads_balanced_to_standbys > 20_000
    }),
    ("pgpool-always", 1, &["pooler.disable_load_balance_on_write=transaction"], false, |s| {
        s.pooler.as_ref().is_some_and(|p| p.reads_balanced_to_standbys == s.reads)
            && s.invariants["read_your_writes"] == "violated"
    }),
    ("rds-multi-az", 1, &["endpoints.client_dns_cache=30s"], true, |s| {
        let e = s.endpoints.as_ref().expect("[endpoints]");
        e.old_writer_used_for_ns > 15_000_000_000 && s.unavailable_ns > 85_000_000_000 && s.lost_acked_writes == 0
    }),
    ("rds-multi-az", 1, &["endpoints.client_dns_cache=forever"], true, |s| {
        let e = s.endpoints.as_ref().expect("[endpoints]");
        e.old_writer_used_for_ns > 100_000_000_000 && s.unavailable_ns >= 179_000_000_000
    }),
    ("cross-region-replica", 1, &["endpoints.dns_ttl=5s"], true, |s| {
        let e = s.endpoints.as_ref().expect("[endpoints]");
        e.old_writer_used_for_ns < 1_000_000_000 && s.unavailable_ns < 61_000_000_000 && s.lost_acked_writes > 0
    }),
    ("ssl-replication", 1, &["replication.ssl=false"], true, |s| {
        s.replication_tls_cpu_ns.is_none() && s.commit_latency_ns.p50 < 7_600_000
    }),
    ("ssl-replication", 1, &["node.ssl_cpu_per_mb=10ms"], true, |s| {
        s.replication_tls_cpu_ns.is_some_and(|ns| ns > 20_000_000_000) && s.commit_latency_ns.p50 > 100_000_000
    }),
    ("archive-outage", 1, &["archive.bandwidth=100kB"], true, |s| {
        let a = s.archive.expect("archive_mode is on");
        a.segments_archived < 30 && a.lag_bytes.p50 > 10_000_000
    }),
    (
        "standby-falls-behind",
        42,
        &["replication.archive_mode=true", "replication.restore_command=true", "expect.converged=true"],
        true,
        |s| s.invariants["converged"] == "ok" && s.archive.is_some_and(|a| a.segments_restored > 0),
    ),
    ("cascading", 1, &["node.pg3.primary_conninfo=pg1"], false, |s| {
        s.invariants["converged"] == "violated" && s.violations.iter().all(|v| v.detail.contains("pg3"))
    }),
    ("failover", 42, &["ha.ttl=30s", "ha.loop_wait=10s", "ha.retry_timeout=10s"], true, |s| {
        s.ha_events.iter().any(|e| e.contains("pg1: starting as readonly because i had the session lock"))
    }),
    ("failover", 7, &["replication.synchronous_commit=local", "ha.synchronous_mode=false"], true, |s| {
        s.lost_acked_writes_by_level.local > 0
    }),
    ("pause-split-brain", 42, &["replication.synchronous_commit=local", "ha.synchronous_mode=false"], false, |s| {
        s.split_brain_writes > 0 && s.expectations.iter().filter(|e| !e.ok).all(|e| e.name == "split_brain_writes")
    }),
    ("primary-crash-restart", 1, &["replication.synchronous_commit=off"], true, |s| {
        s.lost_acked_writes_by_level.off > 0 && s.lost_acked_writes == s.lost_acked_writes_by_level.off
    }),
    ("promotion-time", 1, &["disk.fsync.p50=0.2ms", "disk.fsync.p99=1ms"], true, |s| {
        s.promotions.len() == 1 && s.promotions[0].promotion_duration_ns.is_some_and(|ns| ns < 5_000_000)
    }),
    ("read-your-writes", 42, &["workload.router=pin_after_write", "workload.pin_duration=2ms"], false, |s| {
        s.expectations.iter().filter(|e| !e.ok).all(|e| e.name == "read_your_writes")
    }),
    ("read-your-writes", 42, &["workload.router=replica"], false, |s| {
        s.expectations.iter().filter(|e| !e.ok).all(|e| e.name == "read_your_writes")
    }),
    ("standby-falls-behind", 42, &["replication.replication_slots=true", "expect.converged=true"], true, |s| {
        s.invariants["converged"] == "ok"
    }),
    (
        "standby-falls-behind",
        42,
        &["ha.remove_data_directory_on_rewind_failure=true", "ha.ttl=30s", "expect.converged=true"],
        true,
        |s| s.ha_events.iter().any(|e| e.contains("pg3") && e.contains("re-clon")),
    ),
    ("statement-timeout", 1, &["workload.statement_timeout=0"], true, |s| {
        s.committed_locally_unconfirmed == 0 && s.lost_acked_writes == 0
    }),
    ("sync-vs-async", 42, &["replication.synchronous_commit=off"], true, |s| s.commits > 0),
    ("wal-volume", 1, &["replication.full_page_writes=false"], true, |s| {
        s.wal_bytes_per_commit < 360 && s.standbys["pg2"].lag_bytes.max < 10_000
    }),
    ("sync-vs-async", 42, &["replication.synchronous_commit=local"], true, |s| s.commits > 0),
    ("sync-vs-async", 42, &["replication.synchronous_commit=remote_write"], true, |s| s.commits > 0),
    ("sync-vs-async", 42, &["replication.synchronous_commit=on"], true, |s| s.commits > 0),
    ("sync-vs-async", 42, &["replication.synchronous_commit=remote_apply"], true, |s| s.commits > 0),
];

/// The `--set` lists the header comments of `scenarios/*.toml` suggest, one per line.
fn suggested_in_headers() -> BTreeSet<(String, Vec<String>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        // `repsim compare` lines give several values per key: `compare`'s own tests run them.
        for line in text.lines().take_while(|l| l.starts_with('#')).filter(|l| !l.contains("repsim compare")) {
            let words: Vec<&str> = line.split_whitespace().map(|w| w.trim_matches('`')).collect();
            let sets: Vec<String> = words
                .windows(2)
                .filter(|w| w[0] == "--set")
                .map(|w| w[1].trim_end_matches('`').trim_matches('\'').to_string())
                .collect();
            if !sets.is_empty() {
                out.insert((name.clone(), sets));
            }
        }
    }
    out
}

#[test]
fn every_suggested_command_in_a_scenario_header_is_listed_here() {
    let listed: BTreeSet<(String, Vec<String>)> = SUGGESTED
        .iter()
        .map(|(name, _, sets, _, _)| (name.to_string(), sets.iter().map(|s| s.to_string()).collect()))
        .collect();
    let missing: Vec<_> = suggested_in_headers().into_iter().filter(|s| !listed.contains(s)).collect();
    assert!(missing.is_empty(), "header suggestions without a test here: {missing:?}");
}

#[test]
fn every_suggested_command_does_what_its_header_says() {
    for (name, seed, sets, passes, holds) in SUGGESTED {
        let s = common::run(name, *seed, sets);
        let failed: Vec<_> = s.expectations.iter().filter(|e| !e.ok).map(|e| &e.name).collect();
        assert_eq!(s.ok, *passes, "{name} {sets:?}: violations {:?}, expectations failed {failed:?}", s.violations);
        assert!(holds(&s), "{name} {sets:?}: the header's claim does not hold");
    }
}

/// The repsim command lines of the README's `sh` blocks, joined across `\` continuations, with
/// comments and the `cargo run … --` prefix removed, `$level` filled in.
fn readme_commands() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let mut commands = Vec::new();
    let (mut in_sh, mut pending) = (false, String::new());
    for line in readme.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let code = line.split(" # ").next().unwrap_or("").trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let whole = format!("{pending}{code}").replace("$level", "off");
        pending.clear();
        let Some(at) =
            whole.find(" -- ").map(|i| i + 4).or_else(|| whole.trim_start().starts_with("repsim ").then_some(0))
        else {
            continue; // cargo test, loop syntax
        };
        let words: Vec<String> = whole[at..].split_whitespace().map(str::to_string).collect();
        let words = if words.first().is_some_and(|w| w == "repsim") { words[1..].to_vec() } else { words };
        commands.push(words);
    }
    commands
}

/// Every README command parses with repsim's CLI and its scenario loads with its overrides; the
/// shrink example fails (so there is something to shrink) and the `off` crash run loses writes
/// as the text says, without failing.
#[test]
fn every_readme_command_parses_and_its_scenario_loads() {
    let commands = readme_commands();
    assert!(commands.len() >= 8, "{commands:?}");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for words in &commands {
        let mut args = vec!["repsim"];
        args.extend(words.iter().map(String::as_str));
        repsim::cmd::Cli::try_parse_from_args(&args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let Some(file) = words.iter().find(|w| w.ends_with(".toml")) else { continue };
        let sets: Vec<String> = words.windows(2).filter(|w| w[0] == "--set").map(|w| w[1].clone()).collect();
        let sets: Vec<String> = if words[0] == "compare" {
            Vec::new() // comma lists: one value each is loaded by compare itself
        } else {
            sets
        };
        repsim::scenario::load_scenario(&root.join(file), &sets).unwrap_or_else(|e| panic!("{words:?}: {e}"));
    }
    let shrink = commands.iter().find(|w| w[0] == "shrink").expect("a shrink example");
    let sets: Vec<&str> = shrink.windows(2).filter(|w| w[0] == "--set").map(|w| w[1].as_str()).collect();
    let file = shrink.iter().find(|w| w.ends_with(".toml")).expect("a scenario");
    let name = file.trim_start_matches("scenarios/").trim_end_matches(".toml");
    let seed: u64 = shrink.windows(2).find(|w| w[0] == "--seed").map_or(42, |w| w[1].parse().unwrap());
    assert!(!common::run(name, seed, &sets).ok, "the README's shrink example does not fail: {shrink:?}");
    let off = common::run("primary-crash-restart", 1, &["replication.synchronous_commit=off"]);
    assert!(off.ok && off.lost_acked_writes_by_level.off > 0);
    assert_eq!(common::run("primary-crash-restart", 1, &[]).lost_acked_writes, 0, "local loses none");
}
