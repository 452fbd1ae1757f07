//! Logical subscriptions in the simulated world (`[[logical.subscriptions]]`): a subscriber
//! outside the physical cluster copies the published tables through publisher and subscriber
//! crashes and a partition, applies nothing twice (`logical_exactly_once`), and holds exactly
//! the final primary's published rows after settle (`logical_converged`); scenario mistakes
//! about subscriptions are located errors.

mod common;

use repsim::scenario::{parse_scenario, ScenarioError};

#[test]
fn a_subscriber_copies_the_published_tables_through_crashes_and_a_partition() {
    let s = common::run("logical-replica", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.invariants["logical_converged"], "ok");
    assert_eq!(s.invariants["logical_exactly_once"], "ok");
    assert_eq!(s.invariants["slot_wal_kept"], "ok", "the subscription's slot is judged");
    assert_eq!(s.invariants["converged"], "ok", "the subscriber is not judged as a standby");
    let sub = &s.subscriptions[0];
    assert_eq!((sub.name.as_str(), sub.subscriber.as_str()), ("app_copy", "sub1"));
    // Every commit reached it (some twice: the subscriber's crash lost what it had applied
    // but not flushed, and it was sent again from its replication origin).
    assert!(sub.applied_transactions >= s.commits, "{} applied, {} commits", sub.applied_transactions, s.commits);
    assert_eq!(sub.conflicts, 0);
    // The publisher's crash ended the stream; the worker came back after the retry interval.
    assert!(sub.events.iter().any(|e| e.contains("the connection to the publisher was lost")), "{:?}", sub.events);
    // 40 ms away: the median apply lag is the one-way latency plus the publisher's flush.
    assert!(sub.apply_lag_ns.p50 >= 40_000_000 && sub.apply_lag_ns.p50 < 100_000_000, "{:?}", sub.apply_lag_ns);
}

#[test]
fn without_subscriptions_the_logical_invariants_are_not_judged() {
    let none = common::run("sync-vs-async", 1, &["duration=2s"]);
    assert_eq!(none.invariants["logical_exactly_once"], "not_checked");
    assert_eq!(none.invariants["logical_converged"], "not_checked");
}

const BASE: &str = r#"name = "x"
duration = "10s"

[cluster]
nodes = ["pg1", "pg2", "sub1"]
primary = "pg1"

[[logical.publications]]
name = "app"
tables = ["inserts"]
"#;

fn error_of(extra: &str) -> String {
    match parse_scenario(&format!("{BASE}{extra}"), "scenarios/x.toml", &[]) {
        Ok(_) => panic!("should fail:\n{extra}"),
        Err(ScenarioError { message }) => message,
    }
}

#[test]
fn subscription_mistakes_are_located_errors_with_what_to_write() {
    let sub = |body: &str| format!("\n[[logical.subscriptions]]\nname = \"copy\"\n{body}\n");
    let cases: &[(String, &[&str])] = &[
        (sub("node = \"pg1\"\npublications = [\"app\"]"), &["x.toml:14", "`pg1` is the cluster's primary"]),
        (sub("node = \"sub1\"\npublications = [\"ap\"]"), &["x.toml:15", "no publication `ap`", "did you mean `app`"]),
        (sub("node = \"sub9\"\npublications = [\"app\"]"), &["x.toml:14", "unknown node `sub9`"]),
        (sub("node = \"sub1\"\npublications = [\"app\"]\nslot = \"Copy-1\""), &["x.toml:16", "not a valid name"]),
        (sub("node = \"sub1\"\npublications = [\"app\"]\ncolour = 1"), &["x.toml:16", "colour"]),
        (
            sub("node = \"sub1\"\npublications = [\"app\"]") + "\n[[faults]]\nat = \"5s\"\npromote = \"sub1\"\n",
            &["x.toml:19", "`sub1` is a subscriber", "`promote` does not apply"],
        ),
        (
            sub("node = \"sub1\"\npublications = [\"app\"]") + &sub("node = \"sub1\"\npublications = [\"app\"]"),
            &["x.toml:17", "`sub1` already subscribes"],
        ),
        (
            sub("node = \"sub1\"\npublications = [\"app\"]")
                + "\n[replication]\nsynchronous_standby_names = \"FIRST 1 (cpy)\"\n",
            &["unknown standby `cpy`", "did you mean `copy`", "the subscriptions: copy"],
        ),
    ];
    for (extra, parts) in cases {
        let message = error_of(extra);
        for part in *parts {
            assert!(message.contains(part), "expected {part:?} in:\n{message}");
        }
    }
    let table = error_of("\n[[logical.publications]]\nname = \"more\"\ntables = [\"register\"]\n");
    assert!(table.contains("unknown table `register`") && table.contains("registers"), "{table}");
}

#[test]
fn failover_slots_keep_a_subscription_whole_through_a_failover_and_their_absence_is_measured() {
    // With a failover slot, copied to the standbys, which the walsender waits for: the
    // subscriber goes on from the new primary and holds exactly its rows.
    let whole = common::run("logical-failover", 3, &[]);
    assert!(whole.ok, "{:?}", whole.violations);
    assert_eq!(whole.invariants["logical_converged"], "ok");
    let sub = &whole.subscriptions[0];
    assert_eq!(sub.rows_missing_extra_different, Some((0, 0, 0)));
    assert!(
        sub.events.iter().any(|e| e.contains("the publisher is now") && e.contains("with slot app_copy")),
        "{:?}",
        sub.events
    );
    // Without the copy the new primary has no slot: the subscription stops for good.
    let no_copy = common::run("logical-failover", 3, &["logical.subscriptions.0.failover=false"]);
    assert_eq!(no_copy.invariants["logical_converged"], "not_checked");
    let sub = &no_copy.subscriptions[0];
    assert!(sub.events.iter().any(|e| e.contains("replication slot \"app_copy\" does not exist")), "{:?}", sub.events);
    assert!(sub.rows_missing_extra_different.is_some_and(|(missing, _, _)| missing > 0));
    // With the copy but no wait for the standbys, the subscriber got changes the promoted
    // standby never had: rows the new primary does not hold.
    let ahead = common::run("logical-failover", 3, &["replication.synchronized_standby_slots=[]"]);
    assert_eq!(ahead.invariants["logical_converged"], "not_checked");
    assert!(ahead.subscriptions[0].rows_missing_extra_different.is_some_and(|(_, extra, _)| extra > 0));
}

#[test]
fn slot_sync_settings_need_what_postgres_17_needs() {
    let base = "name = \"x\"\nduration = \"10s\"\n\n[cluster]\nnodes = [\"pg1\", \"pg2\"]\nprimary = \"pg1\"\n\n[replication]\n";
    let error = |extra: &str| match parse_scenario(&format!("{base}{extra}"), "scenarios/x.toml", &[]) {
        Ok(_) => panic!("should fail:\n{extra}"),
        Err(ScenarioError { message }) => message,
    };
    let no_feedback = error("replication_slots = true\nsync_replication_slots = true\n");
    assert!(no_feedback.contains("x.toml:10") && no_feedback.contains("hot_standby_feedback = true"), "{no_feedback}");
    let no_slots = error("hot_standby_feedback = true\nsync_replication_slots = true\n");
    assert!(no_slots.contains("needs `replication_slots = true`"), "{no_slots}");
    let unknown = error("replication_slots = true\nsynchronized_standby_slots = [\"pg9\"]\n");
    assert!(unknown.contains("unknown node `pg9`"), "{unknown}");
}

#[test]
fn a_subscription_made_on_a_running_publisher_copies_then_catches_up_and_converges() {
    let s = common::run("logical-migration", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.invariants["logical_converged"], "ok");
    let sub = &s.subscriptions[0];
    assert_eq!(sub.created_at_ns, Some(20_000_000_000));
    // By 20 s the application had written thousands of rows: all of them come in the copy.
    assert!(sub.rows_copied > 10_000, "{}", sub.rows_copied);
    let (copied, caught_up) = (sub.copied_at_ns.expect("copied"), sub.caught_up_at_ns.expect("caught up"));
    assert!(copied > 20_000_000_000 && caught_up >= copied, "{copied} {caught_up}");
    assert_eq!(sub.rows_missing_extra_different, Some((0, 0, 0)));
}

#[test]
fn a_row_filter_publishes_only_the_rows_it_passes() {
    let s = common::run("logical-replica", 1, &["logical.publications.0.row_filter=\"key < 2500\""]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.invariants["logical_converged"], "ok", "judged against the filtered rows");
    let sub = &s.subscriptions[0];
    assert_eq!(sub.rows_missing_extra_different, Some((0, 0, 0)));
    // Transactions none of whose rows pass are not sent at all.
    assert!(sub.applied_transactions < s.commits * 3 / 4, "{} of {}", sub.applied_transactions, s.commits);
}

#[test]
fn row_filter_mistakes_are_located_errors() {
    let base = "name = \"x\"\nduration = \"10s\"\n\n[cluster]\nnodes = [\"pg1\", \"sub1\"]\nprimary = \"pg1\"\n\n[[logical.publications]]\nname = \"app\"\n";
    common::assert_located_errors(
        base,
        &[
            ("row_filter = \"key < 10\"\n", &["a row filter needs the tables it filters"]),
            (
                "tables = [\"registers\"]\nrow_filter = \"value < 10\"\n",
                &["is not a filter repsim models", "key % 4 = 1"],
            ),
            ("tables = [\"registers\"]\nrow_filter = \"key % 0 = 1\"\n", &["is not a filter repsim models"]),
        ],
    );
}
