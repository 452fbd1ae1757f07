//! Cascading replication (spec §2.3): a standby streams to another standby the WAL it has
//! flushed, and when it is promoted its downstream standby crosses to the new timeline and
//! keeps streaming from it, with nobody re-pointing it.

mod common;

use common::*;
use repsim_engine::config::SyncCommitLevel;
use repsim_engine::io::{Command, Input, Output, TimerId};
use repsim_engine::{NodeId, Role};

const NAMES: &[&str] = &["p", "s1", "s2"];
const P: NodeId = 0;
const S1: NodeId = 1;
const S2: NodeId = 2;

fn chain() -> Harness {
    let pcfg = primary_cfg(NAMES, SyncCommitLevel::Local, "");
    let image = fresh_image(&pcfg);
    let mut s2 = standby_cfg(S2, NAMES);
    s2.primary_conninfo = Some(S1);
    let mut h = Harness::new();
    h.start(pcfg, image.clone());
    h.start(standby_cfg(S1, NAMES), image.clone());
    h.start(s2, image);
    h.settle();
    h
}

#[test]
fn a_standby_streams_what_it_flushed_to_its_own_standby() {
    let mut h = chain();
    for op in 1..=5 {
        h.write(P, op, vec![insert(op, op, 200)]);
        h.settle();
    }
    assert!(h.node(P).pg_stat_replication().iter().all(|r| r.standby == S1), "the primary serves s1 only");
    let rows = h.node(S1).pg_stat_replication();
    assert_eq!(rows.len(), 1, "s1 serves s2");
    assert_eq!((rows[0].standby, rows[0].state), (S2, "streaming"));
    let flushed = h.node(P).status().flush_lsn;
    assert_eq!(h.node(S2).status().replay_lsn, flushed, "s2 replayed everything through s1");
    assert!((1..=5).all(|k| h.node(S2).store().get(TABLE, k).is_some()));
}

#[test]
fn promoting_the_middle_standby_keeps_its_downstream_streaming_on_the_new_timeline() {
    let mut h = chain();
    h.write(P, 1, vec![insert(1, 1, 200)]);
    h.settle();
    h.step(S1, Input::Admin(Command::Promote));
    h.settle();
    assert_eq!((h.node(S1).role(), h.node(S1).timeline()), (Role::Primary, 2));
    // s1 closed s2's stream at the switch; s2's walreceiver asks again after the retry interval.
    assert!(h.peer(S1).log.iter().any(|o| matches!(o, Output::Disconnect { peer: S2 })));
    h.step(S2, Input::ConnectionLost { peer: S1 });
    h.fire(S2, TimerId::WalReceiver);
    h.settle();
    assert_eq!(h.node(S2).timeline(), 2, "s2 crossed to s1's new timeline");
    h.write(S1, 2, vec![insert(2, 2, 200)]);
    h.settle();
    assert_eq!(h.node(S2).status().replay_lsn, h.node(S1).status().flush_lsn);
    assert!(h.node(S2).store().get(TABLE, 2).is_some(), "s2 replays the new primary's writes");
}
