//! `[multi_master]` in the simulated world: two writable masters replicating to each other
//! with `origin = none`, their clients updating the same keys. Under last_update_wins with
//! agreeing clocks the masters converge (`masters_converged`) and no update is lost; the
//! other policies, or skewed clocks, leave the masters holding different versions and lose
//! updates, which the summary counts. Scenario mistakes are located errors.

mod common;

use repsim::scenario::parse_scenario;

#[test]
fn last_update_wins_with_agreeing_clocks_converges_and_loses_nothing() {
    let s = common::run("active-active", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.invariants["masters_converged"], "ok");
    assert_eq!(s.invariants["logical_exactly_once"], "not_checked");
    let mm = s.multi_master.as_ref().expect("[multi_master]");
    let names: Vec<&str> = mm.masters.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["east", "west"]);
    for m in &mm.masters {
        assert_eq!((m.rows_missing_extra_different, m.lost_updates), ((0, 0, 0), 0), "{}", m.name);
    }
    // Both sides met the other's updates of rows they had written, and resolved them both ways.
    for sub in &s.subscriptions {
        let count = |resolution: &str| {
            sub.resolved_conflicts
                .iter()
                .filter(|(kind, r, _)| kind == "update_origin_differs" && r == resolution)
                .map(|(_, _, n)| n)
                .sum::<u64>()
        };
        assert!(
            count("applied_remote") > 1000 && count("kept_local") > 100,
            "{}: {:?}",
            sub.name,
            sub.resolved_conflicts
        );
        assert!(sub.applied_transactions > 5000, "{}", sub.applied_transactions);
    }
    // Writes were shared: both masters committed their clients' writes.
    assert!(s.commits > 15_000);
}

#[test]
fn a_clock_behind_loses_updates_and_leaves_the_masters_apart_under_last_update_wins() {
    let s = common::run("active-active", 1, &["node.west.clock_offset=-500ms"]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.invariants["masters_converged"], "not_checked", "skewed clocks promise nothing");
    let mm = s.multi_master.as_ref().expect("[multi_master]");
    assert!(mm.masters[0].lost_updates > 10, "{:?}", mm.masters[0]);
    let (_, _, different) = mm.masters[1].rows_missing_extra_different;
    assert!(different > 0, "{:?}", mm.masters[1]);
}

#[test]
fn keep_local_diverges_on_every_contended_key() {
    let s = common::run("active-active", 1, &["multi_master.conflict_resolution=keep_local"]);
    let mm = s.multi_master.as_ref().expect("[multi_master]");
    let (missing, extra, different) = mm.masters[1].rows_missing_extra_different;
    assert_eq!((missing, extra), (0, 0), "inserts never conflict");
    assert!(different > 150, "of 200 register keys: {different}");
    assert!(mm.masters.iter().all(|m| m.lost_updates > 100), "{mm:?}");
}

const BASE: &str = r#"name = "x"
duration = "10s"

[cluster]
nodes = ["east", "west", "pg3"]
primary = "east"
"#;

#[test]
fn multi_master_mistakes_are_located_errors_with_what_to_write() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[multi_master]\nmasters = [\"west\", \"pg3\"]\n",
            &["the cluster's primary", "masters = [\"east\", \"west\"]"],
        ),
        ("[multi_master]\nmasters = [\"east\"]\n", &["at least one other node"]),
        ("[multi_master]\nmasters = [\"east\", \"west\", \"west\"]\n", &["listed twice"]),
        ("[multi_master]\nmasters = [\"east\", \"wets\"]\n", &["wets"]),
        (
            "[multi_master]\nmasters = [\"east\", \"west\"]\nconflict_resolution = \"last_writer_wins\"\n",
            &["unknown conflict resolution `last_writer_wins`", "last_update_wins"],
        ),
        (
            "[multi_master]\nmasters = [\"east\", \"west\"]\nconflict_resolution = { register = \"error\" }\n",
            &["register", "registers"],
        ),
        ("[multi_master]\nmasters = [\"east\", \"west\"]\n\n[ha]\n", &["not modelled", "[ha]"]),
        (
            "[multi_master]\nmasters = [\"east\", \"west\"]\n\n[node.pg3]\nprimary_conninfo = \"west\"\n",
            &["pg3", "streams WAL from `west`"],
        ),
        (
            "[multi_master]\nmasters = [\"east\", \"west\"]\n\n[[faults]]\nat = \"1s\"\npromote = \"west\"\n",
            &["west", "promote"],
        ),
    ];
    common::assert_located_errors(BASE, cases);
}

#[test]
fn per_table_policies_are_read_by_table_name() {
    let text = format!(
        "{BASE}[multi_master]\nmasters = [\"east\", \"west\"]\nconflict_resolution = {{ registers = \"keep_local\" }}\n"
    );
    let scenario = parse_scenario(&text, "scenarios/x.toml", &[]).expect("valid");
    let mm = scenario.logical.multi_master.expect("[multi_master]");
    use repsim_engine::logical::conflict::ConflictResolution;
    assert_eq!(mm.policies.for_table(repsim::scenario::logical::REGISTER_TABLE), ConflictResolution::KeepLocal);
    assert_eq!(mm.policies.for_table(repsim::scenario::logical::INSERT_TABLE), ConflictResolution::ApplyRemote);
    // Each master subscribes to every other, with origin = none.
    let subs: Vec<(&str, usize, Option<usize>, bool)> =
        scenario.logical.subscriptions.iter().map(|s| (s.name.as_str(), s.node, s.publisher, s.origin_none)).collect();
    assert_eq!(subs, [("east_from_west", 0, Some(1), true), ("west_from_east", 1, None, true)]);
}

#[test]
fn skipping_the_failed_transaction_lets_the_worker_go_on_until_the_next_conflict() {
    let text = std::fs::read_to_string(common::scenario_path("active-active")).unwrap();
    let with_skip = format!("{text}\n[[faults]]\nat = \"10s\"\nskip_transaction = \"west_from_east\"\n");
    let run = |text: &str| {
        let overrides = ["multi_master.conflict_resolution=error".to_string()];
        let scenario = parse_scenario(text, "scenarios/active-active.toml", &overrides).expect("valid");
        repsim::cmd::run::run_seed(&scenario, 1, None).expect("runs")
    };
    let (skipped, stuck) = (run(&with_skip), run(&text));
    let sub = |s: &repsim::report::summary::Summary| {
        s.subscriptions.iter().find(|x| x.name == "west_from_east").cloned().expect("subscription")
    };
    let events = sub(&skipped).events;
    assert!(events.iter().any(|e| e.contains("10.000 s: skip set to the transaction finishing at")), "{events:?}");
    assert!(events.iter().any(|e| e.contains("skipped the transaction finishing at")), "{events:?}");
    // It applied what followed the skipped transaction, up to the next conflict.
    assert!(sub(&skipped).applied_transactions > sub(&stuck).applied_transactions, "{events:?}");
    // A subscription that does not exist is a located error.
    let wrong = format!("{text}\n[[faults]]\nat = \"10s\"\nskip_transaction = \"west_from_eats\"\n");
    let message = parse_scenario(&wrong, "scenarios/active-active.toml", &[]).expect_err("unknown").message;
    assert!(message.contains("no subscription `west_from_eats`") && message.contains("west_from_east"), "{message}");
}
