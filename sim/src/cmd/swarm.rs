//! `repsim swarm`: random scenarios drawn from the whole scenario space (`crate::swarm`), each
//! checked by every invariant. A seed range or a wall-clock budget; every seed one JSON line
//! in `<out>/swarm/seeds.jsonl`; each failing seed written as a standalone scenario file,
//! shrunk, with the command that reproduces it.

use crate::cmd::exit::{say, say_raw};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_VIOLATED};
use crate::cmd::progress::{interrupt_flag, Progress};
use crate::cmd::run::run_seed;
use crate::cmd::shrink::{shrink, write_shrunk};
use crate::cmd::sweep::default_jobs;
use crate::report::summary::reproduce_for;
use crate::report::sweep::{SeedOutcome, SeedRange, SeedResult};
use crate::scenario::units::parse_duration_ns;
use crate::swarm::{scenario_of, scenario_path};

pub struct SwarmArgs {
    pub seeds: Option<String>,
    pub seed: Option<u64>,
    pub for_: Option<String>,
    pub print: bool,
    pub jobs: Option<usize>,
    pub out: PathBuf,
    pub shrink: bool,
    pub quiet: bool,
}

/// One swarm seed, run: its result, or the parser's refusal of its draw.
fn run_swarm_seed(seed: u64, out: &Path) -> SeedResult {
    let path = scenario_path(out, seed);
    let (_, scenario) = scenario_of(seed, &path.display().to_string());
    let outcome = match scenario {
        Ok(scenario) => match run_seed(&scenario, seed, None) {
            Ok(summary) => SeedOutcome::Ran(Box::new(crate::report::summary::Summary { timeline: None, ..summary })),
            Err(failure) => SeedOutcome::Panicked(failure),
        },
        Err(message) => SeedOutcome::Panicked(crate::report::summary::RunFailure {
            seed,
            message: format!("the swarm drew a scenario the parser refuses: {message}"),
            reproduce: format!("repsim swarm --seed {seed} --print"),
            io_error: false,
        }),
    };
    SeedResult { seed, outcome }
}

/// A failing seed: its scenario file, shrunk when asked, and the command that reproduces it.
fn record_failure(seed: u64, out: &Path, shrink_it: bool) -> Result<String, String> {
    let path = scenario_path(out, seed);
    let (text, scenario) = scenario_of(seed, &path.display().to_string());
    std::fs::create_dir_all(path.parent().expect("a folder")).map_err(|e| e.to_string())?;
    let header = format!("# Drawn by `repsim swarm --seed {seed}`; it fails with --seed {seed}.\n");
    std::fs::write(&path, header + &text).map_err(|e| format!("{}: {e}", path.display()))?;
    let Ok(scenario) = scenario else { return Ok(format!("repsim swarm --seed {seed} --print")) };
    if shrink_it {
        if let Some(shrunk) = shrink(&scenario, seed) {
            let file = write_shrunk(&path, &shrunk.scenario, path.parent().expect("a folder"))?;
            return Ok(format!("repsim run {} --seed {seed}   (shrunk from {})", file.display(), path.display()));
        }
    }
    Ok(reproduce_for(&scenario, seed))
}

pub fn swarm_command(args: SwarmArgs) -> ExitCode {
    let bad = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_BAD_INPUT)
    };
    if let (Some(seed), true) = (args.seed, args.print) {
        say_raw!("{}", crate::swarm::draw::draw_toml(seed));
        return ExitCode::from(EXIT_OK);
    }
    let (start, end) = match (&args.seeds, args.seed) {
        (Some(_), Some(_)) => return bad("give --seeds or --seed, not both".into()),
        (Some(text), None) => match SeedRange::parse(text) {
            Ok(range) => (range.start, range.end),
            Err(e) => return bad(e),
        },
        (None, Some(seed)) => (seed, seed + 1),
        (None, None) if args.for_.is_some() => (1, u64::MAX),
        (None, None) => return bad("give --seeds A..B, --seed N or --for DURATION (e.g. --for 10m)".into()),
    };
    let budget = match args.for_.as_deref().map(parse_duration_ns) {
        None => None,
        Some(Ok(ns)) => Some(Duration::from_nanos(ns)),
        Some(Err(e)) => return bad(format!("--for: {}; {}", e.message, e.help)),
    };
    let jobs = match default_jobs(args.jobs) {
        Ok(j) => j,
        Err(e) => return bad(e),
    };
    let dir = args.out.join("swarm");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return bad(format!("cannot create {}: {e}", dir.display()));
    }
    let lines = match std::fs::File::create(dir.join("seeds.jsonl")) {
        Ok(f) => Mutex::new(std::io::BufWriter::new(f)),
        Err(e) => return bad(format!("cannot create {}: {e}", dir.join("seeds.jsonl").display())),
    };
    let total = if end == u64::MAX { 0 } else { end - start };
    let progress = Progress::new(total, "swarm", args.quiet);
    let interrupt = interrupt_flag();
    // Wall-clock time bounds how many seeds start, never what a seed does.
    let started = Instant::now();
    let next = AtomicU64::new(start);
    let out_of_time = AtomicBool::new(false);
    let failures: Mutex<Vec<SeedResult>> = Mutex::new(Vec::new());
    let worker = || loop {
        if interrupt.load(Ordering::SeqCst) || out_of_time.load(Ordering::SeqCst) {
            break;
        }
        if budget.is_some_and(|b| started.elapsed() >= b) {
            out_of_time.store(true, Ordering::SeqCst);
            break;
        }
        let seed = next.fetch_add(1, Ordering::SeqCst);
        if seed >= end {
            break;
        }
        let result = run_swarm_seed(seed, &args.out);
        let line = result.json_line(&format!("swarm-{seed}"));
        if let Ok(mut w) = lines.lock() {
            let _ = writeln!(w, "{line}");
        }
        progress.finish_one(!result.passed());
        if !result.passed() {
            failures.lock().expect("no worker panics").push(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            std::thread::Builder::new().stack_size(16 << 20).spawn_scoped(scope, worker).expect("spawn a worker");
        }
    });
    progress.finish();
    let _ = lines.lock().map(|mut w| w.flush());
    // Every seed below the last one taken was run to completion: the seeds run are one range.
    let last = next.load(Ordering::SeqCst).min(end);
    let mut failures = failures.into_inner().expect("no worker panics");
    failures.sort_by_key(|r| r.seed);
    say!("swarm: seeds {start}..{last} ran ({} seeds), {} failed", last - start, failures.len());
    for failure in &failures {
        let reasons = failure.reasons().join("; ");
        let reproduce =
            record_failure(failure.seed, &args.out, args.shrink).unwrap_or_else(|e| format!("(cannot write: {e})"));
        say!("seed {}: {reasons}\n  reproduce: {reproduce}", failure.seed);
    }
    say!("every seed: {}", dir.join("seeds.jsonl").display());
    if interrupt.load(Ordering::SeqCst) {
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    ExitCode::from(if failures.is_empty() { EXIT_OK } else { EXIT_VIOLATED })
}
