//! `repsim sweep`: one scenario over a range of seeds, on worker threads.
//!
//! Each seed runs exactly as `repsim run --seed N` would (`run_seed`, nothing shared between
//! runs), so its summary is the same whatever the number of threads; results are collected and
//! emitted in seed order, so every output (stdout, `seeds.jsonl`, `summary.{md,json}`) is the
//! same whatever the thread timing. Only the timing line on stderr, and `wall_ms` inside each
//! seed's summary, depend on the machine.
//!
//! Output, under `<out>/<scenario>/sweep/` (or `sweep/shard-I-of-N/` for `--shard I/N`):
//! - `seeds.jsonl`: one line per seed that ran, in seed order: the seed's summary object (the
//!   same as `run --json`); for a seed whose run panicked, `{scenario, seed, ok: false,
//!   panicked: true, error, reproduce}`;
//! - `summary.json` ([`SweepSummary`]) and `summary.md`: counts, distributions across seeds,
//!   and the failing seeds with the commands that reproduce them.

use crate::cmd::exit::{say, say_raw};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_VIOLATED};
use crate::cmd::progress::{interrupt_flag, Progress};
use crate::cmd::run::run_seed;
use crate::report::summary::Summary;
use crate::report::sweep::{sweep_dir, SeedOutcome, SeedRange, SeedResult, SeedRun, Shard, StoppedBy, SweepSummary};
use crate::scenario::{load_scenario, Scenario};

/// The seeds of `range` that `shard` takes, in order. Shards 1..=N together are the range.
pub fn shard_seeds(range: SeedRange, shard: Option<Shard>) -> Vec<u64> {
    let (index, count) = shard.map_or((1, 1), |s| (s.index, s.count));
    (range.start..range.end).filter(|seed| (seed - range.start) % count == index - 1).collect()
}

/// Runs `work` over `items` on `jobs` threads (at least one). Before taking each item a worker
/// asks `should_stop`; items not taken stay `None`. Results are returned in the order of
/// `items`, whatever order the threads finished in.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    should_stop: &(dyn Fn() -> bool + Sync),
    work: &(dyn Fn(&T) -> R + Sync),
) -> Vec<Option<R>> {
    let next = AtomicUsize::new(0);
    let jobs = jobs.clamp(1, items.len().max(1));
    let finished: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let worker = || {
            let mut mine = Vec::new();
            while !should_stop() {
                let index = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(index) else { break };
                mine.push((index, work(item)));
            }
            mine
        };
        let handles: Vec<_> = (0..jobs)
            .map(|_| {
                // The main thread's stack size, at least: a seed must not overflow on a worker
                // when it would not when run alone.
                std::thread::Builder::new()
                    .stack_size(16 << 20)
                    .spawn_scoped(scope, worker)
                    .expect("spawn a worker thread")
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut slots: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    for (index, result) in finished.into_iter().flatten() {
        slots[index] = Some(result);
    }
    slots
}

/// `seeds.jsonl` written as seeds finish, in seed order: a finished seed waits only for the
/// seeds before it, so whatever stops the sweep (a second Ctrl-C, SIGTERM, a power cut) the
/// file holds every seed up to the first one still running.
pub struct SeedLines {
    state: std::sync::Mutex<SeedLinesState>,
}

struct SeedLinesState {
    file: std::io::BufWriter<std::fs::File>,
    /// Index (in the seed list) of the next line to write.
    next: usize,
    waiting: std::collections::BTreeMap<usize, String>,
    error: Option<std::io::Error>,
}

impl SeedLines {
    pub fn create(path: &Path) -> std::io::Result<SeedLines> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        let state = SeedLinesState { file, next: 0, waiting: Default::default(), error: None };
        Ok(SeedLines { state: std::sync::Mutex::new(state) })
    }

    /// The line of the seed at `index`; written now if every earlier seed's line is.
    pub fn finished(&self, index: usize, line: String) {
        use std::io::Write;
        let mut s = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        s.waiting.insert(index, line);
        loop {
            let next = s.next;
            let Some(line) = s.waiting.remove(&next) else { break };
            let written = writeln!(s.file, "{line}").and_then(|()| s.file.flush());
            if let Err(e) = written {
                s.error.get_or_insert(e);
            }
            s.next += 1;
        }
    }

    /// The first write error, if any.
    pub fn finish(self) -> std::io::Result<()> {
        let s = self.state.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        s.error.map_or(Ok(()), Err)
    }
}

/// Runs `scenario` for each of `seeds` on `jobs` threads. With `fail_fast`, no seed starts
/// after one has failed; once `interrupt` is set, no seed starts at all. Seeds already running
/// finish either way. With `lines`, each seed's line is appended as it finishes.
pub fn run_seeds(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    fail_fast: bool,
    interrupt: &AtomicBool,
    progress: &Progress,
    lines: Option<&SeedLines>,
) -> SeedRun {
    let index_of: std::collections::BTreeMap<u64, usize> = seeds.iter().enumerate().map(|(i, s)| (*s, i)).collect();
    let failed = AtomicBool::new(false);
    let should_stop = || interrupt.load(Ordering::SeqCst) || (fail_fast && failed.load(Ordering::SeqCst));
    let work = |&seed: &u64| {
        let outcome = match run_seed(scenario, seed, None) {
            // The plots' per-second series are not kept across thousands of seeds.
            Ok(summary) => SeedOutcome::Ran(Box::new(Summary { timeline: None, ..summary })),
            Err(failure) => SeedOutcome::Panicked(failure),
        };
        let result = SeedResult { seed, outcome };
        if !result.passed() {
            failed.store(true, Ordering::SeqCst);
        }
        if let Some(lines) = lines {
            lines.finished(index_of[&seed], result.json_line(&scenario.name));
        }
        progress.finish_one(!result.passed());
        result
    };
    let slots = parallel_map(seeds, jobs, &should_stop, &work);
    let mut run = SeedRun { results: Vec::new(), not_run: Vec::new(), stopped_by: None };
    for (seed, slot) in seeds.iter().zip(slots) {
        match slot {
            Some(result) => run.results.push(result),
            None => run.not_run.push(*seed),
        }
    }
    if !run.not_run.is_empty() {
        run.stopped_by =
            Some(if interrupt.load(Ordering::SeqCst) { StoppedBy::Interrupted } else { StoppedBy::FailFast });
    }
    run
}

/// The number of worker threads: `--jobs`, or one per core.
pub fn default_jobs(jobs: Option<usize>) -> Result<usize, String> {
    match jobs {
        Some(0) => Err("--jobs must be at least 1".into()),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// The arguments of `repsim sweep`.
#[derive(Clone, Debug)]
pub struct SweepArgs {
    pub scenario: PathBuf,
    pub seeds: String,
    pub jobs: Option<usize>,
    pub shard: Option<String>,
    pub overrides: Vec<String>,
    pub fail_fast: bool,
    pub out: PathBuf,
    pub quiet: bool,
}

/// `repsim sweep`: exit 0 when every seed passed, 1 when one failed or panicked, 2 on bad
/// input, 130 when interrupted by Ctrl-C before every seed ran (and none failed).
pub fn sweep_command(args: SweepArgs) -> ExitCode {
    let parsed = (|| {
        let range = SeedRange::parse(&args.seeds)?;
        let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
        let jobs = default_jobs(args.jobs)?;
        let scenario = load_scenario(&args.scenario, &args.overrides).map_err(|e| e.message)?;
        Ok::<_, String>((range, shard, jobs, scenario))
    })();
    let (range, shard, jobs, scenario) = match parsed {
        Ok(p) => p,
        Err(message) => {
            eprintln!("{}", with_error_prefix(&message));
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let seeds = shard_seeds(range, shard);
    if seeds.is_empty() {
        eprintln!(
            "error: shard {} of {range} has no seeds; use fewer shards or more seeds",
            shard.unwrap_or(Shard { index: 1, count: 1 })
        );
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let dir = sweep_dir(&args.out, &scenario.name, shard);
    let lines = match std::fs::create_dir_all(&dir).and_then(|()| SeedLines::create(&dir.join("seeds.jsonl"))) {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("error: cannot create {}: {e}", dir.join("seeds.jsonl").display());
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let interrupt = interrupt_flag();
    let progress = Progress::new(seeds.len() as u64, &scenario.name, args.quiet);
    let started = std::time::Instant::now();
    let run = run_seeds(&scenario, &seeds, jobs, args.fail_fast, interrupt, &progress, Some(&lines));
    let elapsed = started.elapsed().as_secs_f64();
    progress.finish();
    let summary = SweepSummary::of(&scenario, range, shard, &run);
    say_raw!("{}", summary.render_text());
    if let Err(e) = lines.finish().and_then(|()| write_sweep(&dir, &run, &summary)) {
        eprintln!("error: cannot write the sweep report to {}: {e}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    say!("report: {}", dir.display());
    if !args.quiet {
        let ran = run.results.len() as f64;
        eprintln!(
            "{} seeds in {elapsed:.1} s on {jobs} threads ({:.0} seeds/min)",
            run.results.len(),
            if elapsed > 0.0 { ran * 60.0 / elapsed } else { 0.0 }
        );
    }
    if !summary.all_passed() {
        ExitCode::from(EXIT_VIOLATED)
    } else if summary.stopped_by == Some(StoppedBy::Interrupted) {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::from(EXIT_OK)
    }
}

/// Scenario errors already start with `error`; plain messages get the prefix.
pub(crate) fn with_error_prefix(message: &str) -> String {
    if message.starts_with("error") {
        message.to_string()
    } else {
        format!("error: {message}")
    }
}

/// Writes `summary.json`, `summary.md` and `distributions.svg` into `dir` (`seeds.jsonl` is
/// written as the seeds finish, by [`SeedLines`]).
pub fn write_sweep(dir: &Path, run: &SeedRun, summary: &SweepSummary) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    let markdown = summary.render_markdown()
        + "\n![lost writes, unavailability and p99 commit latency across seeds](distributions.svg)\n";
    std::fs::write(dir.join("summary.md"), markdown)?;
    crate::report::plot::sweep::write_sweep_plot(dir, run, &summary.scenario)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sweep::Distribution;

    /// A sweep stopped by anything (SIGTERM, a second Ctrl-C) keeps every finished seed up to
    /// the first one still running: lines reach the file as soon as the seeds before them did.
    #[test]
    fn seed_lines_are_on_disk_as_soon_as_every_earlier_seed_finished() {
        let dir = std::env::temp_dir().join(format!("repsim-seed-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seeds.jsonl");
        let lines = SeedLines::create(&path).unwrap();
        let on_disk = || std::fs::read_to_string(&path).unwrap();
        lines.finished(1, "{\"seed\":2}".into());
        assert_eq!(on_disk(), "", "seed 2 waits for seed 1");
        lines.finished(0, "{\"seed\":1}".into());
        assert_eq!(on_disk(), "{\"seed\":1}\n{\"seed\":2}\n");
        lines.finished(3, "{\"seed\":4}".into());
        assert_eq!(on_disk().lines().count(), 2, "seed 3 is still running");
        lines.finish().unwrap();
    }

    #[test]
    fn ranges_are_rust_ranges() {
        assert_eq!(SeedRange::parse("1..1000"), Ok(SeedRange { start: 1, end: 1000 }));
        assert_eq!(SeedRange::parse("1..=1000"), Ok(SeedRange { start: 1, end: 1001 }));
        assert_eq!(SeedRange::parse("7..=7").map(|r| r.len()), Ok(1));
        for bad in ["5..3", "5..5", "1-10", "a..3", "1..", "..3", "1..=18446744073709551615"] {
            assert!(SeedRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_partition_the_range() {
        let range = SeedRange::parse("3..=20").unwrap();
        let mut all: Vec<u64> = (1..=3).flat_map(|i| shard_seeds(range, Some(Shard { index: i, count: 3 }))).collect();
        all.sort_unstable();
        assert_eq!(all, (3..=20).collect::<Vec<_>>());
        assert_eq!(shard_seeds(range, Some(Shard { index: 2, count: 3 }))[..2], [4, 7]);
        for bad in ["3/2", "0/2", "1/0", "1", "x/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn distributions_use_nearest_rank() {
        let d = Distribution::of(1..=10).unwrap();
        assert_eq!(d, Distribution { min: 1, p50: 5, p90: 9, max: 10 });
        assert_eq!(Distribution::of([4]).unwrap(), Distribution { min: 4, p50: 4, p90: 4, max: 4 });
        assert_eq!(Distribution::of([]), None);
    }

    #[test]
    fn parallel_map_keeps_item_order_and_stops() {
        let items: Vec<u64> = (0..50).collect();
        let out = parallel_map(&items, 3, &|| false, &|x| x * 2);
        assert_eq!(out, items.iter().map(|x| Some(x * 2)).collect::<Vec<_>>());
        let none = parallel_map(&items, 2, &|| true, &|x| *x);
        assert!(none.iter().all(Option::is_none));
    }
}
