//! What a long run retains, counted in items. The event queue is bounded by the cluster and the
//! load, not by the length of the run; the WAL every engine and disk holds is held once, and is
//! bounded by checkpoints, not by the length of the run, and all but the most recently used of
//! its blocks are held packed; the checker's ledger of acknowledged writes keeps at most a
//! megabyte in memory and spills the rest. (The holes refused writes leave in the insert
//! table's key ranges still grow with the run, by one range per refused write.)

mod common;

use repsim::world::trace::Trace;
use repsim::world::World;

fn queue_high_water(duration: &str) -> usize {
    let scenario = common::load("sync-vs-async", &[&format!("duration={duration}")]);
    let mut world = World::new(scenario, 1, Trace::new(None));
    world.run();
    world.queue_high_water()
}

#[test]
fn the_event_queue_does_not_grow_with_the_run() {
    let (short, long) = (queue_high_water("30s"), queue_high_water("120s"));
    // One queued event per engine timer, not one per re-arm (a walsender re-arms with every
    // message: 31,000 stale events were once pending under load).
    assert!(long < 500, "{long} events pending at once");
    assert!(long <= short * 2, "{long} pending in a 120 s run, {short} in a 30 s one");
}

/// Distinct 64 KiB blocks the engines and disks hold at the end of a run, and the most WAL any
/// one engine holds, in blocks.
fn blocks_held(duration: &str) -> (usize, u64) {
    let scenario =
        common::load("sync-vs-async", &[&format!("duration={duration}"), "replication.checkpoint_timeout=1min"]);
    let mut world = World::new(scenario, 1, Trace::new(None));
    world.run();
    let mut distinct = std::collections::BTreeSet::new();
    let mut most_wal_bytes = 0;
    for slot in &world.nodes {
        let engine_blocks = slot.engine.iter().flat_map(|e| e.wal_blocks());
        distinct.extend(engine_blocks.chain(slot.disk.shared_blocks()).map(|b| b.identity()));
        if let Some(status) = slot.engine.as_ref().map(|e| e.status()) {
            most_wal_bytes = most_wal_bytes.max(status.flush_lsn.0.saturating_sub(status.wal_start_lsn.0));
        }
    }
    (distinct.len(), most_wal_bytes / repsim_engine::wal::blocks::BLOCK_BYTES as u64)
}

#[test]
fn wal_is_held_once_and_only_back_to_the_last_checkpoint() {
    // Checkpoints start every minute (checkpoint_timeout) and are spread over 54 s; a
    // standby's restartpoint starts when it replays the checkpoint's record and is spread too,
    // so a standby keeps WAL back to a redo point 1.8 to 2.8 min old. After 2 min no
    // restartpoint has finished yet; after 6 min the fourth one has.
    let (short, short_wal) = blocks_held("2m");
    let (long, long_wal) = blocks_held("6m");
    for (held, wal) in [(short, short_wal), (long, long_wal)] {
        // Three engines and three disks hold this WAL; with the table's data files on top, one
        // copy of it is still most of what is held.
        assert!(wal > 100, "the run wrote {wal} blocks of WAL: too little to tell");
        assert!((held as u64) < wal + wal / 4 + 64, "{held} blocks held for {wal} blocks of WAL");
    }
    assert!(long < short * 3 / 2, "{long} blocks held after 6 min, {short} after 2 min");
}

#[test]
fn cold_wal_is_packed_and_the_ledger_spills() {
    let scenario = common::load("sync-vs-async", &["duration=4m"]);
    let mut world = World::new(scenario, 1, Trace::new(None));
    world.run();
    let (live, packed) = world.blocks.live_blocks();
    let plain = live - packed;
    assert!(live > repsim_engine::wal::blocks::WARM_BLOCKS + 256, "{live} blocks: too few to tell");
    // Only the most recently made or read blocks are plain (one that does not pack would stay
    // plain, but WAL and table images pack).
    assert!(plain <= repsim_engine::wal::blocks::WARM_BLOCKS, "{plain} of {live} blocks plain");
    let ledger = &world.history.acked_writes;
    assert!(ledger.len() > 100_000, "{} acknowledged writes: too few to spill", ledger.len());
    assert!(
        ledger.held_bytes() <= repsim::check::ledger::MAX_HELD_BYTES,
        "{} ledger bytes held for {} writes",
        ledger.held_bytes(),
        ledger.len()
    );
    assert_eq!(ledger.iter().count(), ledger.len(), "the spilled ledger reads back whole");
}
