//! Peak memory of long runs: `sync-vs-async.toml` for 10 minutes and for one hour of simulated
//! time, then `failover.toml` for one hour, each measured as this process's peak resident set
//! (Linux `VmHWM`, which only rises: run in this order, each figure is that run's peak). WAL is
//! held once for all engines and disks, only back to the last checkpoint or `wal_keep_size`
//! (failover.toml keeps 256 MB of it), and packed when cold; the checker's ledger spills to a
//! file. A plain benchmark, not criterion: one run of each is the figure.
//!
//!     cargo bench -p repsim-benches --bench memory

use std::path::Path;
use std::time::Instant;

use repsim::cmd::run::run_seed;
use repsim::scenario::load_scenario;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/");

/// Peak resident set so far, in KiB (0 where /proc is missing).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run only when benched.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let before = peak_rss_kib();
    for (name, duration) in [("sync-vs-async", "10m"), ("sync-vs-async", "1h"), ("failover", "1h")] {
        let overrides = [format!("duration={duration}")];
        let path = format!("{SCENARIOS}{name}.toml");
        let scenario = load_scenario(Path::new(&path), &overrides).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let summary = run_seed(&scenario, 1, None).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{name}, {duration} simulated: peak RSS {} MiB (process), {} events, {:.1} wall s",
            peak_rss_kib().saturating_sub(before) / 1024,
            summary.events,
            started.elapsed().as_secs_f64()
        );
    }
}
