//! Disaster recovery through the whole system (issue 13): base backups into the archive store,
//! the loss of a site, and a restore from the backup plus archived WAL, to the archive's end or
//! to a point in time; what is lost (RPO) and how long writes stop (RTO); and the scenario
//! rules of the actions.

mod common;

use repsim::check::history::INSERT_TABLE;
use repsim::scenario::{parse_scenario, ScenarioError};
use repsim::world::trace::Trace;
use repsim::world::World;

const S: u64 = 1_000_000_000;

#[test]
fn losing_the_site_loses_what_the_archive_lacked_and_the_restored_node_takes_writes() {
    let s = common::run("disaster-recovery", 1, &[]);
    assert!(s.violations.is_empty(), "{:?}", s.violations);
    let r = &s.restores[0];
    assert_eq!((r.node.as_str(), r.outcome.as_str()), ("pg4", "promoted"));
    assert_eq!(r.backup_from, "pg1");
    assert!(r.segments_restored >= 1, "the archived segment is fetched");
    // The lost writes are those after the last archived segment: the archive's lag at the loss.
    let rpo_ns = r.rpo_ns.expect("judged");
    let lag_ns = s.archive.expect("archive_mode").lag_ns.max;
    assert!(rpo_ns > 60 * S && rpo_ns <= lag_ns, "RPO {rpo_ns} ns, archive lag up to {lag_ns} ns");
    assert!(s.lost_acked_writes > 0 && s.lost_acked_writes == s.lost_acked_writes_by_level.on);
    // Writes resume once the operator (30 s after the loss) has restored and promoted pg4.
    let rto_ns = r.rto_ns.expect("pg4 took writes");
    assert!((30 * S..40 * S).contains(&rto_ns), "RTO {rto_ns} ns");
    assert_eq!(s.nodes["pg4"].role, "primary");
    assert_eq!(s.invariants["restore_complete"], "ok");
    assert_eq!(s.invariants["converged"], "ok", "the lost nodes are re-cloned from pg4 at settle");
}

#[test]
fn a_point_in_time_restore_holds_the_writes_acknowledged_by_its_target_and_none_after() {
    let mut world = World::new(common::load("point-in-time-recovery", &[]), 1, Trace::new(None));
    world.run();
    let pg3 = world.nodes[2].engine.as_ref().expect("pg3 runs");
    assert_eq!(pg3.role(), repsim_engine::Role::Primary);
    let store = pg3.store();
    let target_ns = 240 * S;
    let (mut before, mut after) = (0, 0);
    for w in world.history.acked_writes.iter() {
        let held = store.get(INSERT_TABLE, w.write_id).is_some();
        if w.acked_at_ns <= target_ns {
            assert!(held, "write {} acknowledged at {} ns, before the target, is missing", w.write_id, w.acked_at_ns);
            before += 1;
        } else if w.acked_at_ns < 300 * S && w.acked_at_ns > target_ns + S {
            assert!(!held, "write {} acknowledged at {} ns, after the target, was replayed", w.write_id, w.acked_at_ns);
            after += 1;
        }
    }
    assert!(before > 10_000 && after > 10_000, "{before} writes before the target, {after} after");
    let run = &world.restores[0];
    let taken_ns = run.backup_taken_at_ns;
    assert!((121 * S..122 * S).contains(&taken_ns), "the newest backup taken before the target: {taken_ns}");
    assert!(run.segments_restored > 5);
}

#[test]
fn a_target_older_than_every_backup_has_nothing_to_restore_from() {
    let faults = "faults=[{ at = \"300s\", lose_site = [\"pg1\", \"pg2\"] }, \
                  { at = \"310s\", restore = { node = \"pg3\", target_time = \"500ms\" } }]";
    let s = common::run("point-in-time-recovery", 1, &[faults]);
    assert_eq!(s.restores[0].outcome, "no base backup fits the target");
    assert_eq!(s.invariants["restore_complete"], "ok");
}

#[test]
fn an_lsn_target_past_the_archive_ends_recovery_with_fatal_and_the_node_stays_down() {
    let faults = "faults=[{ at = \"300s\", lose_site = [\"pg1\", \"pg2\"] }, \
                  { at = \"310s\", restore = { node = \"pg3\", target_lsn = \"1/0\" } }]";
    let s = common::run("point-in-time-recovery", 1, &[faults]);
    let outcome = &s.restores[0].outcome;
    assert!(outcome.contains("FATAL: recovery ended before configured recovery target was reached"), "{outcome}");
    assert!(s.promotions.is_empty());
}

const BASE: &str = "name = \"x\"\nduration = \"60s\"\n[cluster]\nnodes = [\"pg1\", \"pg2\", \"pg3\"]\nprimary = \"pg1\"\nspare = [\"pg3\"]\n";

fn error_of(extra: &str) -> String {
    match parse_scenario(&format!("{BASE}{extra}"), "x.toml", &[]) {
        Ok(_) => panic!("should fail:\n{extra}"),
        Err(ScenarioError { message }) => message,
    }
}

#[test]
fn restore_and_backup_faults_are_checked_against_the_scenario() {
    let archive = "[replication]\narchive_mode = true\n";
    let cases = [
        ("[[faults]]\nat = \"5s\"\nbase_backup = \"pg1\"\n", "needs a WAL archive"),
        (&format!("{archive}[[faults]]\nat = \"5s\"\nrestore = {{ node = \"pg2\" }}\n"), "spare = [\"pg2\"]"),
        (&format!("{archive}[[faults]]\nat = \"5s\"\nrestore = {{ node = \"pg3\", target = \"yesterday\" }}\n"), "unknown restore target `yesterday`"),
        (&format!("{archive}[[faults]]\nat = \"5s\"\nrestore = {{ node = \"pg3\", target_lsn = \"5000000\" }}\n"), "is not an LSN"),
        (
            &format!("{archive}[[faults]]\nat = \"5s\"\nrestore = {{ node = \"pg3\", target = \"latest\", target_time = \"3s\" }}\n"),
            "a restore has one target",
        ),
        (&format!("{archive}[[faults]]\nat = \"5s\"\nrestore = {{ node = \"pg3\", when = \"now\" }}\n"), "when"),
        (&format!("{archive}[ha]\n[[faults]]\nat = \"5s\"\nrestore = {{ node = \"pg3\" }}\n"), "beside `[ha]` is not modelled"),
        (&format!("{archive}[[faults]]\nat = \"5s\"\nlose_site = [\"pg1\", \"pg1\"]\n"), "listed twice"),
    ];
    for (extra, expected) in cases {
        let message = error_of(extra);
        assert!(message.contains(expected), "expected {expected:?} in:\n{message}");
        assert!(message.contains("x.toml:"), "names the file and line:\n{message}");
    }
    let ok = format!("{archive}[[faults]]\nat = \"5s\"\nrestore = {{ node = \"pg3\", target_lsn = \"0/5000000\" }}\n");
    let scenario = parse_scenario(&format!("{BASE}{ok}"), "x.toml", &[]).expect("valid");
    let restore = repsim::scenario::FaultKind::Restore {
        node: 2,
        target: repsim::scenario::model::RestoreTarget::Lsn(0x500_0000),
    };
    assert_eq!(scenario.faults[0].kind, restore);
}
