//! What a long run retains, counted in items. The event queue is bounded by the cluster and the
//! load, not by the length of the run. (The engines' WAL between checkpoints, the checker's
//! ledger of acknowledged writes and the holes refused writes leave in the insert table's key
//! ranges still grow with the run: issue 11.)

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
