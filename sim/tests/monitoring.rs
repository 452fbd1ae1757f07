//! Monitoring as PostgreSQL shows it (issue 12.6): `pg_stat_replication` and
//! `pg_stat_wal_receiver` sampled each second into `series.json` and at `--snapshot` instants
//! into `monitoring.md`, without changing the run.

mod common;

use std::process::Command;

use repsim::cmd::run::run_seed_with_history;
use repsim::report::monitoring::MonitoringView;

const SECOND_NS: u64 = 1_000_000_000;

fn snapshots(name: &str, seed: u64, at_s: &[u64]) -> (Vec<MonitoringView>, repsim::report::summary::Summary) {
    let scenario = common::load(name, &[]);
    let at_ns: Vec<u64> = at_s.iter().map(|s| s * SECOND_NS).collect();
    let summary = run_seed_with_history(&scenario, seed, None, None, &at_ns).expect("runs");
    (summary.snapshots.clone(), summary)
}

/// failover.toml, seed 42: pg1 loses power at 20 s and pg2 is promoted at 41.8 s.
#[test]
fn the_views_show_a_failover_as_an_operator_would_see_it() {
    let (views, summary) = snapshots("failover", 42, &[15, 30, 45]);
    assert_eq!(views.iter().map(|v| v.at_ns).collect::<Vec<_>>(), vec![15 * SECOND_NS, 30 * SECOND_NS, 45 * SECOND_NS]);
    // Before the crash: both standbys stream from pg1, pg2 is the synchronous one, and the
    // byte lags are ordered as their columns are (current >= sent >= flush >= replay).
    let before = &views[0];
    assert_eq!(before.primary.as_deref(), Some("pg1"));
    assert_eq!(before.replication.len(), 2);
    for row in &before.replication {
        assert_eq!(row.state, "streaming");
        let (current, sent, flush) = (
            row.current_minus_replay_bytes.unwrap(),
            row.sent_minus_replay_bytes.unwrap(),
            row.flush_minus_replay_bytes.unwrap(),
        );
        assert!(current >= sent && sent >= flush, "{row:?}");
    }
    let sync: Vec<&str> = before.replication.iter().map(|r| r.sync_state.as_str()).collect();
    assert!(sync.contains(&"sync") && sync.contains(&"async"), "{sync:?}");
    // Ten seconds after the power loss no primary answers, yet the standbys' walreceivers still
    // say streaming: nothing closed their connections, and wal_receiver_timeout (60 s) has not
    // passed. Their last message is from before the crash.
    let during = &views[1];
    assert_eq!(during.primary, None);
    assert_eq!(during.receivers.len(), 2);
    for r in &during.receivers {
        assert_eq!(r.status, "streaming", "{r:?}");
        assert!(r.last_msg_receipt_time_ns < 20 * SECOND_NS + SECOND_NS / 10, "{r:?}");
    }
    // After the promotion the application's primary is pg2.
    assert_eq!(views[2].primary.as_deref(), Some("pg2"));
    // The per-second series has one sample per second at most, in order.
    let series = &summary.timeline.as_ref().expect("timeline").monitoring;
    assert!(series.len() > 80, "{} samples in 90 s", series.len());
    assert!(series.windows(2).all(|w| w[0].at_ns / SECOND_NS < w[1].at_ns / SECOND_NS));
}

fn repsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_repsim")).args(args).output().expect("binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

fn trace_hash(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).expect("one JSON object");
    v["trace_hash"].as_str().expect("trace_hash").to_string()
}

#[test]
fn snapshots_do_not_change_the_run_and_are_written_to_monitoring_md() {
    let scenario = common::scenario_path("sync-vs-async");
    let scenario = scenario.to_str().unwrap();
    let out = std::env::temp_dir().join("repsim-monitoring-test");
    let out = out.to_str().unwrap();
    let (code, plain, _) = repsim(&["run", scenario, "--seed", "3", "--json", "--out", out]);
    assert_eq!(code, 0);
    let (code, with, stderr) =
        repsim(&["run", scenario, "--seed", "3", "--json", "--out", out, "--snapshot", "10s,5s"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(trace_hash(&plain), trace_hash(&with), "taking snapshots changed the run");
    let md = std::fs::read_to_string(std::path::Path::new(out).join("sync-vs-async/seed-3/monitoring.md")).unwrap();
    let five = md.find("## At 5.000 s").expect("the 5 s snapshot");
    let ten = md.find("## At 10.000 s").expect("the 10 s snapshot");
    assert!(five < ten, "instants in order");
    assert!(md.contains("`pg_stat_replication` on pg1") && md.contains("| pg2 | streaming |"), "{md}");
}

#[test]
fn a_snapshot_after_the_end_or_without_a_unit_is_exit_2() {
    let scenario = common::scenario_path("sync-vs-async");
    let scenario = scenario.to_str().unwrap();
    let (code, _, stderr) = repsim(&["run", scenario, "--snapshot", "10s,1h"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--snapshot 10s,1h") && stderr.contains("after the run's end"), "{stderr}");
    let (code, _, stderr) = repsim(&["run", scenario, "--snapshot", "10"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("has no unit"), "{stderr}");
}

/// logical-replica.toml, seed 1: the publisher pg1 loses power at 20 s (the subscriber's
/// worker waits for the retry interval), and comes back.
#[test]
fn pg_stat_subscription_shows_the_worker_streaming_then_gone_then_back() {
    let (views, _) = snapshots("logical-replica", 1, &[10, 23, 40]);
    let row = |i: usize| {
        assert_eq!(views[i].subscriptions.len(), 1, "{:?}", views[i].subscriptions);
        views[i].subscriptions[0].clone()
    };
    let streaming = row(0);
    assert_eq!((streaming.node.as_str(), streaming.subname.as_str(), streaming.running), ("sub1", "app_copy", true));
    assert!(streaming.received_lsn.is_some() && streaming.latest_end_lsn.is_some(), "{streaming:?}");
    // The link's one-way latency (lognormal, p50 40 ms, p99 60 ms), and both clocks agree.
    let transit_ns = streaming.receipt_minus_send_ns.expect("a message arrived");
    assert!((20_000_000..100_000_000).contains(&transit_ns), "{streaming:?}");
    let stopped = row(1);
    assert!(!stopped.running && stopped.received_lsn.is_none() && stopped.latest_end_time_ns.is_none(), "{stopped:?}");
    let back = row(2);
    assert!(back.running && back.latest_end_time_ns.unwrap() > 30 * SECOND_NS, "{back:?}");
}
