//! Managed-service endpoints through the whole system (issue 15.2): a DNS writer endpoint that
//! follows the control plane after `update_delay`, clients that cache its answer, a reader
//! endpoint over the standbys, and the rules of the `[endpoints]` table.

mod common;

use repsim::scenario::{parse_scenario, ScenarioError};

const S: u64 = 1_000_000_000;

#[test]
fn a_multi_az_failover_repoints_the_writer_after_the_promotion_and_loses_nothing() {
    let s = common::run("rds-multi-az", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    assert_eq!(s.invariants["endpoint_rules"], "ok");
    let e = s.endpoints.as_ref().expect("[endpoints]");
    let promoted_ns = s.promotions[0].at_ns;
    assert_eq!(e.writer_flips.len(), 1, "{e:?}");
    assert_eq!(e.writer_flips[0].node, "pg2");
    // The record follows HAProxy's view (a check every 10 s) after update_delay = 30 s.
    let flip_ns = e.writer_flips[0].at_ns;
    assert!(
        flip_ns >= promoted_ns + 30 * S && flip_ns <= promoted_ns + 41 * S,
        "promoted {promoted_ns}, flip {flip_ns}"
    );
    // Writes resume within the TTL of the flip.
    assert!(s.unavailable_ns <= flip_ns + 6 * S - 60 * S, "unavailable {} flip {flip_ns}", s.unavailable_ns);
    assert_eq!(s.lost_acked_writes, 0);
}

#[test]
fn clients_that_cache_past_the_ttl_keep_writing_to_the_old_writer_for_their_cache_lifetime() {
    let ttl = common::run("rds-multi-az", 1, &[]);
    let jvm = common::run("rds-multi-az", 1, &["endpoints.client_dns_cache=30s"]);
    let (a, b) = (ttl.endpoints.unwrap(), jvm.endpoints.unwrap());
    assert!(a.old_writer_used_for_ns <= 5 * S, "{a:?}");
    assert!(b.old_writer_used_for_ns > 5 * S && b.old_writer_used_for_ns <= 30 * S, "{b:?}");
    assert!(b.stale_writer_ops > a.stale_writer_ops * 10);
    assert!(jvm.unavailable_ns > ttl.unavailable_ns + 10 * S);
}

#[test]
fn a_reader_endpoint_spreads_reads_over_the_standbys_and_falls_back_to_the_writer() {
    let overrides = ["workload.router=replica", "cluster.nodes=[\"pg1\", \"pg2\", \"pg3\"]"];
    let s = common::run("rds-multi-az", 1, &overrides);
    assert!(s.ok, "{:?}", s.violations);
    let e = s.endpoints.as_ref().expect("[endpoints]");
    // Reads answered while pg1 was down came from the standbys through the reader endpoint.
    assert!(s.reads > 30_000, "reads {}", s.reads);
    assert!(e.reader_errors < e.writer_errors / 10, "{e:?}");
}

#[test]
fn an_operator_promotion_repoints_the_writer_at_once_and_the_ttl_bounds_the_rest() {
    let s = common::run("cross-region-replica", 1, &[]);
    assert!(s.ok, "{:?}", s.violations);
    let e = s.endpoints.as_ref().expect("[endpoints]");
    assert_eq!(e.writer_flips.len(), 1);
    assert_eq!(e.writer_flips[0].at_ns, s.promotions[0].at_ns, "update_delay is 0");
    assert!(e.old_writer_used_for_ns <= 60 * S, "{e:?}");
    assert!(s.lost_acked_writes > 0, "an asynchronous replica loses its lag");
}

const BASE: &str = "name = \"x\"\nduration = \"10s\"\n[cluster]\nnodes = [\"pg1\", \"pg2\"]\nprimary = \"pg1\"\n";

fn error_of(extra: &str) -> String {
    match parse_scenario(&format!("{BASE}{extra}"), "x.toml", &[]) {
        Ok(_) => panic!("should fail:\n{extra}"),
        Err(ScenarioError { message }) => message,
    }
}

#[test]
fn the_endpoints_table_is_checked_with_a_message_that_says_what_to_write() {
    let cases = [
        ("[endpoints]\ndns_tll = \"5s\"\n", "dns_ttl"),
        ("[endpoints]\nclient_dns_cache = \"always\"\n", "\"forever\""),
        ("[endpoints]\nupdate_delay = \"-5s\"\n", "update_delay"),
        ("[workload]\nrouter = \"read_your_writes\"\n[endpoints]\n", "router = \"replica\""),
        ("[endpoints]\n[pooler]\n", "is not modelled"),
    ];
    for (extra, expected) in cases {
        let message = error_of(extra);
        assert!(message.contains(expected), "expected {expected:?} in:\n{message}");
        assert!(message.contains("x.toml:"), "names the file and line:\n{message}");
    }
    let ok =
        parse_scenario(&format!("{BASE}[endpoints]\nclient_dns_cache = \"forever\"\n"), "x.toml", &[]).expect("valid");
    assert_eq!(ok.endpoints.expect("[endpoints]").answer_lifetime_ns(), u64::MAX);
}
