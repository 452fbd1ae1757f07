//! One run of one scenario with one seed, protected against panics: a panic inside the
//! simulation becomes a failed run that names its seed and the command that reproduces it.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use crate::checker;
use crate::report::{self, Summary};
use crate::scenario::Scenario;
use crate::trace::Trace;
use crate::world::World;

#[derive(Debug)]
pub struct RunFailure {
    pub seed: u64,
    pub message: String,
    pub reproduce: String,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seed {} failed: {}\nreproduce: {}", self.seed, self.message, self.reproduce)
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-text payload".into()
    }
}

/// Runs `(scenario, seed)` to completion and checks it. `wall_ms` is the only field of the
/// summary that is not a function of `(scenario, seed)`.
pub fn run_seed(
    scenario: &Scenario,
    seed: u64,
    trace_sink: Option<Box<dyn Write + Send>>,
) -> Result<Summary, RunFailure> {
    run_seed_with_history(scenario, seed, trace_sink, None)
}

/// [`run_seed`], also writing every client operation as one JSON line to `history_sink`.
pub fn run_seed_with_history(
    scenario: &Scenario,
    seed: u64,
    trace_sink: Option<Box<dyn Write + Send>>,
    history_sink: Option<Box<dyn Write + Send>>,
) -> Result<Summary, RunFailure> {
    // Wall-clock time of the run itself, for the report only; nothing simulated reads it.
    let started = std::time::Instant::now();
    let result = guarded(scenario, seed, || {
        let mut world = World::new(scenario.clone(), seed, Trace::new(trace_sink));
        world.history_sink = history_sink;
        world.run();
        for slot in &world.nodes {
            if let Some(engine) = &slot.engine {
                let s = engine.status();
                for value in [s.insert_lsn.0, s.flush_lsn.0, s.replay_lsn.0, s.data_hash] {
                    world.trace.fold(value);
                }
            }
        }
        world.trace.flush();
        let verdict = checker::check(&world);
        (world.trace.hash_hex(), verdict, world)
    });
    let wall_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok((hash, verdict, world)) => {
            if let Some(error) = &world.trace.write_error {
                return Err(RunFailure {
                    seed,
                    message: format!("could not write the trace: {error}"),
                    reproduce: report::reproduce_command(&world),
                });
            }
            Ok(report::summarize(&world, &verdict, hash, wall_ms))
        }
        Err(failure) => Err(failure),
    }
}

/// Runs `body`, turning a panic into a failed run that names the seed and how to reproduce it.
pub fn guarded<T>(scenario: &Scenario, seed: u64, body: impl FnOnce() -> T) -> Result<T, RunFailure> {
    catch_unwind(AssertUnwindSafe(body)).map_err(|payload| RunFailure {
        seed,
        message: format!("panic inside the simulation: {}", panic_text(payload)),
        reproduce: reproduce_for(scenario, seed),
    })
}

pub fn reproduce_for(scenario: &Scenario, seed: u64) -> String {
    let mut cmd = format!("repsim run {} --seed {}", scenario.source_path, seed);
    for o in &scenario.overrides {
        cmd.push_str(&format!(" --set '{o}'"));
    }
    cmd
}

/// `reports/<scenario>/seed-<seed>/` under `out_dir`.
pub fn report_dir(out_dir: &Path, scenario: &str, seed: u64) -> PathBuf {
    out_dir.join(scenario).join(format!("seed-{seed}"))
}

/// Writes `summary.json`, `summary.md`, and the plots with their data (`crate::plot`).
pub fn write_report(dir: &Path, summary: &Summary) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    std::fs::write(dir.join("summary.md"), report::render_markdown(summary))?;
    crate::plot::write_run_plots(dir, summary)
}
