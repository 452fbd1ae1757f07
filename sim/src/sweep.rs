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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;

use crate::progress::{interrupt_flag, Progress, EXIT_INTERRUPTED};
use crate::report::Summary;
use crate::run::{run_seed, RunFailure};
use crate::scenario::{load_scenario, Scenario};

const EXIT_OK: u8 = 0;
const EXIT_VIOLATED: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

/// A range of seeds, Rust-style: `A..B` is A up to B-1, `A..=B` is A up to B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
}

const RANGE_HELP: &str = "write the seeds as a Rust range: `1..1000` (1 to 999) or `1..=1000` (1 to 1000)";

impl SeedRange {
    pub fn parse(text: &str) -> Result<SeedRange, String> {
        let bad = |why: String| format!("invalid seed range `{text}`: {why}; {RANGE_HELP}");
        let (a, b, inclusive) = match text.split_once("..=") {
            Some((a, b)) => (a, b, true),
            None => match text.split_once("..") {
                Some((a, b)) => (a, b, false),
                None => return Err(bad("no `..`".into())),
            },
        };
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad(format!("`{s}` is not a seed (0 or more)")));
        let (start, last) = (number(a)?, number(b)?);
        let end = if inclusive { last.checked_add(1).ok_or_else(|| bad("the end is too large".into()))? } else { last };
        if end <= start {
            return Err(bad(format!("it is empty (the end must be above the start {start})")));
        }
        Ok(SeedRange { start, end })
    }

    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

impl std::fmt::Display for SeedRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// `--shard I/N` (1-based I): the seeds whose position in the range is I-1 modulo N.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = |why: &str| format!("invalid shard `{text}`: {why}; write I/N with 1 <= I <= N, e.g. `--shard 2/4`");
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index = i.trim().parse::<u64>().map_err(|_| bad("I is not a number"))?;
        let count = n.trim().parse::<u64>().map_err(|_| bad("N is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(bad("I must be between 1 and N"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The seeds of `range` that `shard` takes, in order. Shards 1..=N together are the range.
pub fn shard_seeds(range: SeedRange, shard: Option<Shard>) -> Vec<u64> {
    let (index, count) = shard.map_or((1, 1), |s| (s.index, s.count));
    (range.start..range.end).filter(|seed| (seed - range.start) % count == index - 1).collect()
}

/// How one seed ended.
#[derive(Debug)]
pub enum SeedOutcome {
    /// The run completed; `summary.ok` says whether every expectation and invariant held.
    Ran(Box<Summary>),
    /// The simulation panicked (caught by `run_seed`).
    Panicked(RunFailure),
}

#[derive(Debug)]
pub struct SeedResult {
    pub seed: u64,
    pub outcome: SeedOutcome,
}

impl SeedResult {
    pub fn passed(&self) -> bool {
        matches!(&self.outcome, SeedOutcome::Ran(s) if s.ok)
    }

    pub fn summary(&self) -> Option<&Summary> {
        match &self.outcome {
            SeedOutcome::Ran(s) => Some(s),
            SeedOutcome::Panicked(_) => None,
        }
    }

    /// The exact command that reproduces this seed.
    pub fn reproduce(&self) -> &str {
        match &self.outcome {
            SeedOutcome::Ran(s) => &s.reproduce,
            SeedOutcome::Panicked(f) => &f.reproduce,
        }
    }

    /// Why the seed failed, one item per violated invariant or expectation (empty if it passed).
    pub fn reasons(&self) -> Vec<String> {
        match &self.outcome {
            SeedOutcome::Panicked(f) => vec![f.message.clone()],
            SeedOutcome::Ran(s) => {
                let mut out: Vec<String> = s
                    .violations
                    .iter()
                    .map(|v| format!("invariant {}: {}", v.invariant, shorten(&v.detail, 300)))
                    .collect();
                out.extend(
                    s.expectations
                        .iter()
                        .filter(|e| !e.ok)
                        .map(|e| format!("{} {}: actual {}", e.name, e.expected, e.actual)),
                );
                out
            }
        }
    }

    /// The line of `seeds.jsonl` for this seed.
    pub fn json_line(&self, scenario: &str) -> String {
        match &self.outcome {
            SeedOutcome::Ran(s) => serde_json::to_string(s).expect("summary serialises"),
            SeedOutcome::Panicked(f) => serde_json::json!({
                "scenario": scenario,
                "seed": self.seed,
                "ok": false,
                "panicked": true,
                "error": f.message,
                "reproduce": f.reproduce,
            })
            .to_string(),
        }
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars).collect();
    out.push('…');
    out
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

/// Why a sweep ended before every seed ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedBy {
    FailFast,
    Interrupted,
}

/// The seeds that ran, in seed order, and those that did not.
#[derive(Debug)]
pub struct SeedRun {
    pub results: Vec<SeedResult>,
    pub not_run: Vec<u64>,
    pub stopped_by: Option<StoppedBy>,
}

/// Runs `scenario` for each of `seeds` on `jobs` threads. With `fail_fast`, no seed starts
/// after one has failed; once `interrupt` is set, no seed starts at all. Seeds already running
/// finish either way.
pub fn run_seeds(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    fail_fast: bool,
    interrupt: &AtomicBool,
    progress: &Progress,
) -> SeedRun {
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

/// min / p50 / p90 / max of one metric across the seeds that ran (nearest-rank percentiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Distribution {
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub max: u64,
}

impl Distribution {
    pub fn of(values: impl IntoIterator<Item = u64>) -> Option<Distribution> {
        let mut v: Vec<u64> = values.into_iter().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let rank = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Some(Distribution { min: v[0], p50: rank(0.5), p90: rank(0.9), max: v[v.len() - 1] })
    }
}

/// Distributions across seeds (absent when no seed completed).
#[derive(Clone, Debug, Serialize)]
pub struct Distributions {
    pub lost_acked_writes: Option<Distribution>,
    pub unavailable_ns: Option<Distribution>,
    /// Per seed: the largest p99 of `lag_bytes` over its standbys.
    pub max_standby_lag_bytes_p99: Option<Distribution>,
    pub commit_latency_p99_ns: Option<Distribution>,
}

impl Distributions {
    pub fn of(summaries: &[&Summary]) -> Distributions {
        let over = |f: &dyn Fn(&Summary) -> u64| Distribution::of(summaries.iter().map(|s| f(s)));
        Distributions {
            lost_acked_writes: over(&|s| s.lost_acked_writes),
            unavailable_ns: over(&|s| s.unavailable_ns),
            max_standby_lag_bytes_p99: over(&|s| s.standbys.values().map(|b| b.lag_bytes.p99).max().unwrap_or(0)),
            commit_latency_p99_ns: over(&|s| s.commit_latency_ns.p99),
        }
    }

    fn rows(&self) -> [(&'static str, Option<Distribution>, bool); 4] {
        [
            ("lost_acked_writes", self.lost_acked_writes, false),
            ("unavailable (ms)", self.unavailable_ns, true),
            ("max standby lag_bytes p99", self.max_standby_lag_bytes_p99, false),
            ("commit p99 (ms)", self.commit_latency_p99_ns, true),
        ]
    }
}

/// A seed that violated an expectation or an invariant, or panicked.
#[derive(Clone, Debug, Serialize)]
pub struct FailingSeed {
    pub seed: u64,
    /// `failed` (a violation) or `panicked`.
    pub outcome: &'static str,
    pub reasons: Vec<String>,
    pub reproduce: String,
}

impl FailingSeed {
    pub fn of(result: &SeedResult) -> Option<FailingSeed> {
        if result.passed() {
            return None;
        }
        let outcome = if result.summary().is_some() { "failed" } else { "panicked" };
        Some(FailingSeed {
            seed: result.seed,
            outcome,
            reasons: result.reasons(),
            reproduce: result.reproduce().to_string(),
        })
    }
}

/// `summary.json` of a sweep. Keys are a stable interface: extended, never renamed.
#[derive(Clone, Debug, Serialize)]
pub struct SweepSummary {
    pub scenario: String,
    pub source: String,
    pub overrides: Vec<String>,
    /// The range as given, normalised to `A..B` (B exclusive).
    pub seeds: String,
    /// `I/N` for a sharded sweep.
    pub shard: Option<String>,
    pub seeds_requested: u64,
    pub seeds_run: u64,
    pub ok: u64,
    pub failed: u64,
    pub panicked: u64,
    pub not_run: u64,
    pub stopped_by: Option<StoppedBy>,
    pub distributions: Distributions,
    /// In seed order.
    pub failures: Vec<FailingSeed>,
}

impl SweepSummary {
    pub fn of(scenario: &Scenario, range: SeedRange, shard: Option<Shard>, run: &SeedRun) -> SweepSummary {
        let summaries: Vec<&Summary> = run.results.iter().filter_map(SeedResult::summary).collect();
        let failures: Vec<FailingSeed> = run.results.iter().filter_map(FailingSeed::of).collect();
        let panicked = failures.iter().filter(|f| f.outcome == "panicked").count() as u64;
        SweepSummary {
            scenario: scenario.name.clone(),
            source: scenario.source_path.clone(),
            overrides: scenario.overrides.clone(),
            seeds: range.to_string(),
            shard: shard.map(|s| s.to_string()),
            seeds_requested: (run.results.len() + run.not_run.len()) as u64,
            seeds_run: run.results.len() as u64,
            ok: run.results.iter().filter(|r| r.passed()).count() as u64,
            failed: failures.len() as u64 - panicked,
            panicked,
            not_run: run.not_run.len() as u64,
            stopped_by: run.stopped_by,
            distributions: Distributions::of(&summaries),
            failures,
        }
    }

    pub fn all_passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The header line: what ran.
    fn title(&self) -> String {
        let shard = self.shard.as_ref().map_or(String::new(), |s| format!(", shard {s}"));
        let overrides = if self.overrides.is_empty() {
            String::new()
        } else {
            format!(", {}", self.overrides.iter().map(|o| format!("--set {o}")).collect::<Vec<_>>().join(" "))
        };
        format!("sweep {} ({}): seeds {}{shard}{overrides}", self.scenario, self.source, self.seeds)
    }

    fn counts(&self) -> String {
        let mut line = format!(
            "{} of {} seeds ran: {} ok, {} failed, {} panicked",
            self.seeds_run, self.seeds_requested, self.ok, self.failed, self.panicked
        );
        match self.stopped_by {
            Some(StoppedBy::FailFast) => {
                let _ = write!(line, "; stopped after a failure (--fail-fast), {} not run", self.not_run);
            }
            Some(StoppedBy::Interrupted) => {
                let _ = write!(line, "; interrupted, {} not run", self.not_run);
            }
            None => {}
        }
        line
    }

    fn table(&self) -> String {
        let mut out = String::from("| across seeds | min | p50 | p90 | max |\n| --- | --- | --- | --- | --- |\n");
        let fmt = |v: u64, ms: bool| if ms { format!("{:.2}", v as f64 / 1e6) } else { v.to_string() };
        for (name, dist, ms) in self.distributions.rows() {
            match dist {
                Some(d) => {
                    let _ = writeln!(
                        out,
                        "| {name} | {} | {} | {} | {} |",
                        fmt(d.min, ms),
                        fmt(d.p50, ms),
                        fmt(d.p90, ms),
                        fmt(d.max, ms)
                    );
                }
                None => {
                    let _ = writeln!(out, "| {name} | - | - | - | - |");
                }
            }
        }
        out
    }

    /// The failing seeds, each with what it violated and its reproduce command.
    fn failure_lines(&self) -> String {
        let mut out = String::new();
        for f in &self.failures {
            let what = if f.outcome == "panicked" { "PANICKED" } else { "FAILED" };
            let _ = writeln!(out, "{what} seed {}: {}", f.seed, f.reasons.join("; "));
            let _ = writeln!(out, "  reproduce: {}", f.reproduce);
        }
        out
    }

    /// What `sweep` prints on stdout.
    pub fn render_text(&self) -> String {
        format!("{}\n{}\n\n{}\n{}", self.title(), self.counts(), self.table(), self.failure_lines())
    }

    /// `summary.md`.
    pub fn render_markdown(&self) -> String {
        let mut out = format!("# {}\n\n{}\n\n{}\n", self.title(), self.counts(), self.table());
        if self.failures.is_empty() {
            out.push_str("Every seed that ran passed.\n");
        } else {
            out.push_str("## Failing seeds\n\n");
            for f in &self.failures {
                let _ = writeln!(out, "- seed {} ({}): {}", f.seed, f.outcome, f.reasons.join("; "));
                let _ = writeln!(out, "  `{}`", f.reproduce);
            }
        }
        out
    }
}

/// `<out>/<scenario>/sweep/`, or `…/sweep/shard-I-of-N/` for a shard.
pub fn sweep_dir(out: &Path, scenario: &str, shard: Option<Shard>) -> PathBuf {
    let dir = out.join(scenario).join("sweep");
    match shard {
        Some(s) => dir.join(format!("shard-{}-of-{}", s.index, s.count)),
        None => dir,
    }
}

/// Writes `seeds.jsonl`, `summary.json`, `summary.md` and `distributions.svg` into `dir`.
pub fn write_sweep(dir: &Path, run: &SeedRun, summary: &SweepSummary) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut lines = String::new();
    for result in &run.results {
        lines.push_str(&result.json_line(&summary.scenario));
        lines.push('\n');
    }
    std::fs::write(dir.join("seeds.jsonl"), lines)?;
    let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    let markdown = summary.render_markdown()
        + "\n![lost writes, unavailability and p99 commit latency across seeds](distributions.svg)\n";
    std::fs::write(dir.join("summary.md"), markdown)?;
    crate::plot::sweep::write_sweep_plot(dir, run, &summary.scenario)?;
    Ok(())
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
    let interrupt = interrupt_flag();
    let progress = Progress::new(seeds.len() as u64, &scenario.name, args.quiet);
    let started = std::time::Instant::now();
    let run = run_seeds(&scenario, &seeds, jobs, args.fail_fast, interrupt, &progress);
    let elapsed = started.elapsed().as_secs_f64();
    progress.finish();
    let summary = SweepSummary::of(&scenario, range, shard, &run);
    let dir = sweep_dir(&args.out, &scenario.name, shard);
    print!("{}", summary.render_text());
    if let Err(e) = write_sweep(&dir, &run, &summary) {
        eprintln!("error: cannot write the sweep report to {}: {e}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    println!("report: {}", dir.display());
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

#[cfg(test)]
mod tests {
    use super::*;

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
