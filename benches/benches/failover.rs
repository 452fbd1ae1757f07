//! A whole failover at load: `scenarios/failover.toml` with an open arrival of 5300 operations
//! a second (about 2,200 commits a second averaged over its 60 s, writes failing during the
//! ~22 s outage), 90 s simulated with settle, seed 42. Prints simulated seconds per wall second
//! and nanoseconds per event; criterion's throughput is in events.
//!
//!     cargo bench -p repsim-benches --bench failover

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use repsim::cmd::run::run_seed;
use repsim::scenario::load_scenario;

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/failover.toml");
const SEED: u64 = 42;

fn failover_at_load(c: &mut Criterion) {
    let overrides = ["workload.arrival={ open = \"5300/s\" }".to_string()];
    let scenario = load_scenario(Path::new(SCENARIO), &overrides).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let summary = run_seed(&scenario, SEED, None).unwrap_or_else(|e| panic!("{e}"));
    let wall_s = started.elapsed().as_secs_f64();
    assert!(summary.violations.is_empty(), "{:?}", summary.violations);
    let simulated_s = (scenario.duration_ns + scenario.settle_ns) as f64 / 1e9;
    println!(
        "failover at 5300 ops/s, seed {SEED}: {simulated_s:.0} simulated s, {} events, {} commits \
         ({:.0}/s); first run {wall_s:.3} wall s = {:.0}x real time, {:.0} ns per event",
        summary.events,
        summary.commits,
        summary.commits_per_sec,
        simulated_s / wall_s,
        wall_s * 1e9 / summary.events as f64,
    );
    let mut group = c.benchmark_group("failover");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(summary.events));
    group.bench_function("failover-5300-ops-per-s", |b| {
        b.iter(|| {
            let s = run_seed(&scenario, SEED, None).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.trace_hash, summary.trace_hash, "the run is not deterministic");
            s
        })
    });
    group.finish();
}

criterion_group!(benches, failover_at_load);
criterion_main!(benches);
