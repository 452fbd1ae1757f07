//! Verdicts a user can trust: every check is `ok`, `violated` or `not_checked` with its reason,
//! the same in every output; stuck operations are reported; figures carry their units.

mod common;

use repsim::cmd::run::run_seed;
use repsim::report::summary::{render_markdown, render_text, Summary};
use repsim::scenario::parse_scenario;

fn run_text(text: &str, seed: u64) -> Summary {
    let scenario = parse_scenario(text, "t.toml", &[]).unwrap_or_else(|e| panic!("{e}"));
    run_seed(&scenario, seed, None).unwrap_or_else(|e| panic!("{e}"))
}

/// The result column of `summary.md` for one invariant.
fn markdown_result(md: &str, invariant: &str) -> String {
    let row = md.lines().find(|l| l.starts_with(&format!("| invariant `{invariant}` "))).expect("a row");
    row.rsplit('|').nth(1).unwrap().trim().to_string()
}

#[test]
fn a_check_that_was_not_run_is_not_checked_everywhere_never_ok_or_violated() {
    // The README's first command: commits_release has no bound to judge.
    let s = common::run("sync-vs-async", 42, &[]);
    assert!(s.ok);
    assert_eq!(s.invariants["commits_release"], "not_checked");
    assert!(s.not_checked["commits_release"].contains("max_commit_wait"));
    let md = render_markdown(&s);
    assert!(!md.contains("VIOLATED"), "{md}");
    assert!(markdown_result(&md, "commits_release").starts_with("not checked: "), "{md}");
    assert!(render_text(&s).contains("- invariant `commits_release`: not_checked (no `[expect] max_commit_wait`"));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["invariants"]["commits_release"], "not_checked");
    assert!(json["not_checked"]["commits_release"].is_string());
    // A scenario that expects no convergence: not judged, and said so, not VIOLATED.
    let stuck = common::run("standby-falls-behind", 1, &[]);
    assert_eq!(stuck.invariants["converged"], "not_checked");
    assert!(markdown_result(&render_markdown(&stuck), "converged").starts_with("not checked: "));
}

#[test]
fn session_guarantees_the_router_does_not_promise_are_not_checked_unless_expected() {
    let replica = common::run("read-your-writes", 42, &["workload.router=replica", "expect.read_your_writes=false"]);
    assert_eq!(replica.invariants["monotonic_reads"], "not_checked", "{:?}", replica.invariants);
    assert!(replica.not_checked["monotonic_reads"].contains("replica router"));
    let demanded = common::run(
        "read-your-writes",
        42,
        &["workload.router=replica", "expect.read_your_writes=false", "expect.monotonic_reads=true"],
    );
    assert_ne!(demanded.invariants["monotonic_reads"], "not_checked");
}

const NEVER_SATISFIED: &str = r#"
name = "stuck"
duration = "3s"
settle = "1s"
[cluster]
nodes = ["pg1", "pg2"]
primary = "pg1"
[replication]
synchronous_commit = "on"
synchronous_standby_names = "FIRST 2 (pg2)"
[workload]
clients = 4
arrival = { open = "100/s" }
write_fraction = 1.0
"#;

#[test]
fn commits_that_never_return_are_reported_with_their_age_and_the_setting_is_warned_about() {
    let s = run_text(NEVER_SATISFIED, 1);
    assert_eq!(s.commits, 0);
    assert_eq!(s.in_flight_at_end, 4, "every client waits on one commit");
    assert!(s.oldest_in_flight_ns >= 3_000_000_000, "{}", s.oldest_in_flight_ns);
    assert!(render_text(&s).contains("still waiting at the end (not in the latencies) | 4"), "{}", render_text(&s));
    assert!(s.warnings.iter().any(|w| w.contains("asks for 2 synchronous standbys")), "{:?}", s.warnings);
    let scenario = parse_scenario(NEVER_SATISFIED, "t.toml", &[]).unwrap();
    assert_eq!(scenario.warnings().len(), 1);
    let fine = parse_scenario(&NEVER_SATISFIED.replace("FIRST 2", "FIRST 1"), "t.toml", &[]).unwrap();
    assert!(fine.warnings().is_empty());
}

#[test]
fn expectations_print_units_and_fault_labels_do_not_break_tables() {
    let s = common::run("failover", 42, &[]);
    let e = s.expectations.iter().find(|e| e.name == "max_unavailable").unwrap();
    assert_eq!(e.expected, "<= 45 s");
    assert!(e.actual.ends_with(" s") && !e.actual.contains("ns"), "{}", e.actual);
    let partition = common::run("standby-partition", 1, &[]);
    let md = render_markdown(&partition);
    let row = md.lines().find(|l| l.contains("partition pg")).expect("a partition row");
    assert!(row.contains("\\|"), "an unescaped | splits the cell: {row}");
    assert_eq!(row.replace("\\|", "").matches('|').count(), 4, "{row}");
}

#[test]
fn ordinary_commit_latency_is_not_unavailability() {
    // No fault: the longest gap between acknowledgements is commit latency, not an outage.
    let s = common::run("sync-vs-async", 42, &["duration=3s", "settle=2s"]);
    assert_eq!(s.unavailable_ns, 0, "gap {} ns", s.longest_write_gap_ns);
    assert!(s.longest_write_gap_ns > 0);
    // A crash is an outage, and so is a switchover's third of a second.
    let crash = common::run("primary-crash-restart", 1, &[]);
    assert!(crash.unavailable_ns >= 1_000_000_000, "{}", crash.unavailable_ns);
    let switchover = common::run("switchover", 42, &[]);
    assert!(switchover.unavailable_ns >= 100_000_000, "{}", switchover.longest_write_gap_ns);
}

#[test]
fn lag_under_off_is_not_hidden_by_a_sampler_in_step_with_the_wal_writer() {
    // Under `off` WAL reaches the standbys when the WAL writer flushes (every 200 ms); a sampler
    // firing at a fixed phase always saw lag 0. Sampled at random instants, some samples catch
    // WAL the standby has not replayed yet.
    let s = common::run("sync-vs-async", 42, &["replication.synchronous_commit=off", "duration=5s"]);
    let lagging = s.standbys.values().filter(|st| st.lag_bytes.p99 > 0).count();
    assert!(lagging > 0, "{:?}", s.standbys.values().map(|st| &st.lag_bytes).collect::<Vec<_>>());
}

#[test]
fn the_ha_log_collapses_repeats_and_off_spares_run_no_agent() {
    let log = vec![
        (1_000_000_000, "pg1: DCS request Read failed".to_string()),
        (2_000_000_000, "pg2: acquired the leader key".to_string()),
        (3_000_000_000, "pg1: DCS request Read failed".to_string()),
        (4_000_000_000, "pg1: DCS request Read failed".to_string()),
        (5_000_000_000, "pg1: demoting".to_string()),
    ];
    assert_eq!(
        repsim::cmd::summarize::collapse_repeats(&log),
        [
            "1.000s pg1: DCS request Read failed (×3 to 4.000s)",
            "2.000s pg2: acquired the leader key",
            "5.000s pg1: demoting"
        ]
    );
    // switchover.toml has no spare; a spare that is never added says nothing.
    let text = std::fs::read_to_string(common::scenario_path("failover")).unwrap();
    let with_spare = text.replace(
        "nodes = [\"pg1\", \"pg2\", \"pg3\"]",
        "nodes = [\"pg1\", \"pg2\", \"pg3\", \"pg4\"]\nspare = [\"pg4\"]",
    );
    assert_ne!(with_spare, text, "the failover scenario's node list changed");
    let s = run_text(&with_spare, 42);
    assert!(!s.ha_events.iter().any(|e| e.contains("pg4")), "{:?}", s.ha_events);
}

/// A subscription's walsender is a synchronous standby under its slot's name (PostgreSQL
/// matches the application_name of logical walsenders too): naming it is not a setting that
/// waits forever.
#[test]
fn a_subscription_named_in_synchronous_standby_names_is_not_warned_about() {
    let scenario = common::load("logical-replica", &["replication.synchronous_standby_names=app_copy"]);
    assert!(scenario.warnings().is_empty(), "{:?}", scenario.warnings());
    let too_many = common::load("logical-replica", &["replication.synchronous_standby_names=FIRST 3 (pg2, app_copy)"]);
    assert_eq!(too_many.warnings().len(), 1, "three asked of two that could answer: waits forever");
    assert!(too_many.warnings()[0].contains("at most 2"), "{:?}", too_many.warnings());
}
