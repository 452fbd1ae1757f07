//! `capture = "trigger"` against logical decoding on the same workload: triggers cost the
//! primary WAL and CPU, and the target lags by the poll interval; both converge. Mistakes in a
//! trigger subscription are located errors.

mod common;

#[test]
fn triggers_cost_the_primary_wal_and_cpu_and_lag_by_the_poll_interval() {
    let trigger = common::run("trigger-vs-logical", 1, &[]);
    let logical = common::run("trigger-vs-logical", 1, &["logical.subscriptions.0.capture=logical"]);
    for s in [&trigger, &logical] {
        assert!(s.ok, "{:?}", s.violations);
        assert_eq!(s.invariants["logical_converged"], "ok");
        assert_eq!(s.subscriptions[0].rows_missing_extra_different, Some((0, 0, 0)));
    }
    assert_eq!(trigger.commits, logical.commits, "the same workload (common random numbers)");
    assert!(trigger.wal_bytes_per_commit > 3 * logical.wal_bytes_per_commit);
    assert!(trigger.primary_cpu_busy_ns as f64 > 1.5 * logical.primary_cpu_busy_ns as f64);
    let (t, l) = (&trigger.subscriptions[0].apply_lag_ns, &logical.subscriptions[0].apply_lag_ns);
    // Polled every 5 s: half of it on average, all of it at worst, plus the trip.
    assert!(t.p50 > 2_000_000_000 && t.p50 < 3_000_000_000, "{t:?}");
    assert!(t.max < 5_500_000_000, "{t:?}");
    assert!(l.p99 < 100_000_000, "{l:?}");
}

const BASE: &str = r#"name = "x"
duration = "10s"

[cluster]
nodes = ["pg1", "pg2", "sub1"]
primary = "pg1"

[[logical.publications]]
name = "app"

[[logical.subscriptions]]
name = "copy"
node = "sub1"
publications = ["app"]
"#;

#[test]
fn trigger_subscription_mistakes_are_located_errors() {
    let cases: &[(&str, &[&str])] = &[
        ("capture = \"triger\"\n", &["unknown capture `triger`", "trigger"]),
        ("poll_interval = \"1s\"\n", &["`poll_interval` is for `capture = \"trigger\"`"]),
        ("capture = \"trigger\"\nfailover = true\n", &["no slot to fail over"]),
        ("capture = \"trigger\"\nat = \"5s\"\n", &["initial load", "remove `at`"]),
        ("capture = \"trigger\"\npoll_interval = \"-1s\"\n", &["poll_interval"]),
        ("capture = \"trigger\"\nbatch_rows = 0\n", &["batch_rows"]),
    ];
    common::assert_located_errors(BASE, cases);
    let filtered =
        BASE.replace("name = \"app\"\n", "name = \"app\"\ntables = [\"registers\"]\nrow_filter = \"key < 10\"\n");
    let cases: &[(&str, &[&str])] =
        &[("capture = \"trigger\"\n", &["publication `app` has a row filter", "capture = \"logical\""])];
    common::assert_located_errors(&filtered, cases);
}
