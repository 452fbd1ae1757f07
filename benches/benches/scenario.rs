//! A whole simulated run: `scenarios/sync-vs-async.toml` shortened to 2 s of load and 1 s of
//! settle, seed 1. The world simulates both phases (3 s), so throughput elements are the
//! simulated milliseconds of `duration + settle`: criterion's `elem/s` divided by 1000 is
//! simulated seconds per wall second. (`Summary::sim_duration_ns` counts `duration` only.)

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use repsim::cmd::run::run_seed;
use repsim::scenario::{load_scenario, Scenario};

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/sync-vs-async.toml");
const SEED: u64 = 1;

fn scenario() -> Scenario {
    let overrides = ["duration=2s".to_string(), "settle=1s".to_string()];
    load_scenario(Path::new(SCENARIO), &overrides).unwrap_or_else(|e| panic!("{e}"))
}

fn whole_run(c: &mut Criterion) {
    let scenario = scenario();
    // One run up front: its simulated length sets the throughput, and it shows the run is
    // sound (a 2 s run misses the file's `min_commits`, so `ok` itself is not asserted).
    let started = Instant::now();
    let summary = run_seed(&scenario, SEED, None).unwrap_or_else(|e| panic!("{e}"));
    let wall = started.elapsed();
    assert!(summary.violations.is_empty(), "invariant violations: {:?}", summary.violations);
    let simulated_ns = scenario.duration_ns + scenario.settle_ns;
    let sim_secs = simulated_ns as f64 / 1e9;
    println!(
        "sync-vs-async (2s + 1s settle), seed {SEED}: {:.3} simulated s, {} events, {} commits; \
         first run {:.3} wall s = {:.2} sim-s/wall-s, {:.0} events/wall-s",
        sim_secs,
        summary.events,
        summary.commits,
        wall.as_secs_f64(),
        sim_secs / wall.as_secs_f64(),
        summary.events as f64 / wall.as_secs_f64(),
    );
    let mut group = c.benchmark_group("scenario");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(simulated_ns / 1_000_000));
    group.bench_function("sync-vs-async-3s", |b| {
        b.iter(|| {
            let s = run_seed(&scenario, SEED, None).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.trace_hash, summary.trace_hash, "the run is not deterministic");
            s
        })
    });
    group.finish();
}

criterion_group!(benches, whole_run);
criterion_main!(benches);
