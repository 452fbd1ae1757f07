//! One run of one scenario with one seed, protected against panics: a panic inside the
//! simulation becomes a failed run that names its seed and the command that reproduces it.

use crate::cmd::exit::{say, say_raw};
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATED};

use crate::check;
use crate::cmd::summarize::{reproduce_command, summarize};
use crate::report::summary::{render_markdown, reproduce_for, RunFailure, Summary};
use crate::scenario::{load_scenario, Scenario};
use crate::world::trace::Trace;
use crate::world::World;

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
    run_seed_with_history(scenario, seed, trace_sink, None, &[])
}

/// [`run_seed`], also writing every client operation as one JSON line to `history_sink`, and
/// taking monitoring snapshots at `snapshot_at_ns` (sorted; reading state only).
pub fn run_seed_with_history(
    scenario: &Scenario,
    seed: u64,
    trace_sink: Option<Box<dyn Write + Send>>,
    history_sink: Option<Box<dyn Write + Send>>,
    snapshot_at_ns: &[u64],
) -> Result<Summary, RunFailure> {
    // Wall-clock time of the run itself, for the report only; nothing simulated reads it.
    let started = std::time::Instant::now();
    let result = guarded(scenario, seed, || {
        let mut world = World::new(scenario.clone(), seed, Trace::new(trace_sink));
        world.history_sink = history_sink;
        world.snapshot_at_ns = snapshot_at_ns.to_vec();
        world.run();
        for slot in &world.nodes {
            if let Some(engine) = &slot.engine {
                let s = engine.status();
                for value in [s.insert_lsn.0, s.flush_lsn.0, s.replay_lsn.0, engine.data_hash()] {
                    world.trace.fold(value);
                }
            }
        }
        world.trace.flush();
        if let Some(Err(e)) = world.history_sink.as_mut().map(|sink| sink.flush()) {
            world.history_error.get_or_insert(format!("cannot write the history file: {e}"));
        }
        let verdict = check::check(&world.end_state());
        (world.trace.hash_hex(), verdict, world)
    });
    let wall_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok((hash, verdict, world)) => {
            if let Some(error) = world.trace.write_error.as_ref().or(world.history_error.as_ref()) {
                return Err(RunFailure {
                    seed,
                    message: error.clone(),
                    reproduce: reproduce_command(&world),
                    io_error: true,
                });
            }
            Ok(summarize(&world, &verdict, hash, wall_ms))
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
        io_error: false,
    })
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
    std::fs::write(dir.join("summary.md"), render_markdown(summary))?;
    if !summary.snapshots.is_empty() {
        let text = crate::report::monitoring::render_monitoring(&summary.scenario, summary.seed, &summary.snapshots);
        std::fs::write(dir.join("monitoring.md"), text)?;
    }
    crate::report::plot::write_run_plots(dir, summary)
}

type Sink = Option<Box<dyn std::io::Write + Send>>;

fn create_sink(file: &Option<PathBuf>) -> Result<Sink, String> {
    match file {
        None => Ok(None),
        Some(path) => std::fs::File::create(path)
            .map(|f| Some(Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write + Send>))
            .map_err(|e| format!("error: cannot create {}: {e}", path.display())),
    }
}

/// `--snapshot 20s,45s`: instants within the run (`duration + settle`), sorted.
fn snapshot_instants(text: &str, scenario: &Scenario) -> Result<Vec<u64>, String> {
    let end_ns = scenario.duration_ns + scenario.settle_ns;
    let mut at = Vec::new();
    for part in text.split(',').map(str::trim) {
        let ns = crate::scenario::units::parse_duration_ns(part).map_err(|e| format!("{} ({})", e.message, e.help))?;
        if ns > end_ns {
            return Err(format!(
                "{part} is after the run's end ({} s: duration + settle); write an instant up to that",
                end_ns as f64 / 1e9
            ));
        }
        at.push(ns);
    }
    at.sort_unstable();
    at.dedup();
    Ok(at)
}

/// `files`: the trace and the history file, if asked for.
pub fn run_command(
    path: PathBuf,
    seed: u64,
    overrides: Vec<String>,
    json: bool,
    files: [Option<PathBuf>; 2],
    out: PathBuf,
    snapshot: Option<String>,
) -> ExitCode {
    let scenario = match load_scenario(&path, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let snapshot_at_ns = match snapshot.as_deref().map_or(Ok(Vec::new()), |t| snapshot_instants(t, &scenario)) {
        Ok(at) => at,
        Err(e) => {
            eprintln!("error: --snapshot {}: {e}", snapshot.unwrap_or_default());
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    for warning in scenario.warnings() {
        eprintln!("warning: {warning}");
    }
    let [trace, history] = files;
    let (sink, history) = match (create_sink(&trace), create_sink(&history)) {
        (Ok(sink), Ok(history)) => (sink, history),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let summary = match run_seed_with_history(&scenario, seed, sink, history, &snapshot_at_ns) {
        Ok(s) => s,
        Err(failure) if failure.io_error => {
            eprintln!("error: {}", failure.message);
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        Err(failure) => {
            eprintln!("error: {failure}");
            return ExitCode::from(EXIT_VIOLATED);
        }
    };
    let dir = report_dir(&out, &summary.scenario, seed);
    if let Err(e) = write_report(&dir, &summary) {
        eprintln!("error: cannot write the report to {}: {e}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if json {
        say!("{}", serde_json::to_string(&summary).expect("summary serialises"));
    } else {
        say_raw!("{}", crate::report::summary::render_text(&summary));
        say!("report: {}", dir.display());
    }
    ExitCode::from(if summary.ok { EXIT_OK } else { EXIT_VIOLATED })
}
