//! Connection poolers through the whole system (issue 15.1): PgBouncer's pools and what a
//! failover does to them, PgPool-II's read balancing and its delay check, and the rules of the
//! `[pooler]` table.

mod common;

use repsim::scenario::{parse_scenario, ScenarioError};

#[test]
fn a_failover_opens_a_new_pool_on_the_new_primary_and_nothing_acknowledged_is_lost() {
    let s = common::run("connection-pooling", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    let pool = s.pooler.as_ref().expect("[pooler]");
    assert_eq!(s.invariants["pooler_rules"], "ok");
    // 20 connections on pg1 at the start, up to 20 more on the new primary after 20 s.
    assert!(pool.server_connects > 20 && pool.server_connects <= 60, "{pool:?}");
    assert!(pool.peak_connects_at_ns >= 20_000_000_000, "the storm follows the failover: {pool:?}");
    assert_eq!((pool.wait_timeouts, pool.clients_refused), (0, 0), "{pool:?}");
    assert!(s.indeterminate_ops > 0, "transactions in flight on pg1's server connections died with it");
    assert_eq!(s.lost_acked_writes, 0);
}

#[test]
fn session_pooling_serves_only_as_many_sessions_as_the_pool_has_connections() {
    let s = common::run("connection-pooling", 1, &["pooler.pool_mode=session", "pooler.default_pool_size=4"]);
    assert!(s.ok, "{:?}", s.violations);
    let pool = s.pooler.as_ref().expect("[pooler]");
    // 64 sessions, 4 connections a node: the other 60 wait for ever (query_wait_timeout 120 s
    // is past the end of the run).
    assert!(pool.waiting_at_end >= 56, "{pool:?}");
    assert_eq!(pool.wait_timeouts, 0);
}

#[test]
fn clients_past_max_client_conn_are_refused_and_judged_by_the_oracle_as_never_served() {
    let s = common::run("connection-pooling", 1, &["pooler.max_client_conn=16"]);
    assert!(s.ok, "{:?}", s.violations);
    let pool = s.pooler.as_ref().expect("[pooler]");
    assert!(pool.clients_refused > 1_000, "48 of 64 sessions are refused every time: {pool:?}");
}

#[test]
fn pgpool_keeps_reads_on_the_standbys_while_the_primary_is_down() {
    let s = common::run("pgpool-load-balancing", 1, &["faults=[{ at = \"10s\", crash = \"pg1\" }]"]);
    let pool = s.pooler.as_ref().expect("[pooler]");
    assert!(pool.reads_balanced_to_standbys > 20_000, "{pool:?}");
    // Writes fail from 10 s on; reads go on (pg1 weighs 0, so none is refused).
    assert!(s.failed_ops > 5_000 && s.reads > 40_000, "failed {} reads {}", s.failed_ops, s.reads);
}

#[test]
fn pgpool_with_always_sends_no_read_after_a_write_to_a_standby() {
    let s = common::run("pgpool-load-balancing", 1, &["pooler.disable_load_balance_on_write=always"]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.invariants["pooler_rules"], "ok");
    let balanced = common::run("pgpool-load-balancing", 1, &[]);
    let (always, default) = (s.pooler.unwrap(), balanced.pooler.unwrap());
    assert!(always.reads_balanced_to_standbys * 10 < default.reads_balanced_to_standbys);
    assert!(s.stale_reads * 10 < balanced.stale_reads, "{} vs {}", s.stale_reads, balanced.stale_reads);
}

const BASE: &str = "name = \"x\"\nduration = \"10s\"\n[cluster]\nnodes = [\"pg1\", \"pg2\"]\nprimary = \"pg1\"\n";

fn error_of(extra: &str) -> String {
    match parse_scenario(&format!("{BASE}{extra}"), "x.toml", &[]) {
        Ok(_) => panic!("should fail:\n{extra}"),
        Err(ScenarioError { message }) => message,
    }
}

#[test]
fn the_pooler_table_is_checked_with_a_message_that_says_what_to_write() {
    let cases = [
        ("[pooler]\nkind = \"pgbounce\"\n", "did you mean `pgbouncer`"),
        ("[pooler]\npool_mode = \"statement\"\n", "write \"transaction\""),
        ("[pooler]\nnum_init_children = 8\n", "`num_init_children` is a pgpool setting"),
        ("[pooler]\nkind = \"pgpool\"\ndefault_pool_size = 8\n", "`default_pool_size` is a pgbouncer setting"),
        ("[pooler]\ndefault_pool_size = 0\n", "default_pool_size"),
        ("[pooler]\nquery_wait_timeout = \"-1s\"\n", "query_wait_timeout"),
        ("[pooler]\nkind = \"pgpool\"\nbackend_weight = { pg9 = 1 }\n", "`pg9` is not one of cluster.nodes"),
        ("[pooler]\nkind = \"pgpool\"\nbackend_weight = { pg1 = 0, pg2 = 0 }\n", "every `backend_weight` is 0"),
        ("[workload]\nrouter = \"replica\"\n[pooler]\nkind = \"pgpool\"\n", "PgPool-II routes every statement itself"),
        ("[workload]\nrouter = \"replica\"\n[pooler]\nkind = \"pgpool\"\nload_balance = \"off\"\n", "router"),
        ("[pooler]\npool_size = 8\n", "pool_size"),
    ];
    for (extra, expected) in cases {
        let message = error_of(extra);
        assert!(message.contains(expected), "expected {expected:?} in:\n{message}");
        assert!(message.contains("x.toml:"), "names the file and line:\n{message}");
    }
    let ok = "[pooler]\nkind = \"pgpool\"\nload_balance = \"off\"\ndisable_load_balance_on_write = \"dml_adaptive\"\n";
    assert!(parse_scenario(&format!("{BASE}{ok}"), "x.toml", &[]).is_ok());
}
