//! The results of a sweep: per-seed outcomes, distributions across seeds, the failing seeds
//! with their reproduce commands, and the files a sweep writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::report::format::table_cell;
use crate::report::summary::{RunFailure, Summary};
use crate::scenario::Scenario;

const RANGE_HELP: &str = "write the seeds as a Rust range: `1..1000` (1 to 999) or `1..=1000` (1 to 1000)";

/// A range of seeds, Rust-style: `A..B` is A up to B-1, `A..=B` is A up to B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    pub start: u64,
    /// Exclusive.
    pub end: u64,
}

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
    /// A line of `seeds.jsonl` read back (`json_line`'s inverse).
    pub fn from_json_line(line: &str) -> Result<SeedResult, String> {
        let value: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let seed = value["seed"].as_u64().ok_or("no seed")?;
        if value["panicked"] == true {
            let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
            let failure = RunFailure { seed, message: text("error"), reproduce: text("reproduce"), io_error: false };
            return Ok(SeedResult { seed, outcome: SeedOutcome::Panicked(failure) });
        }
        let summary: Summary = serde_json::from_value(value).map_err(|e| e.to_string())?;
        Ok(SeedResult { seed, outcome: SeedOutcome::Ran(Box::new(summary)) })
    }

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

/// Why a sweep ended before every seed ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
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

/// What makes two sweep outputs parts of one sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepIdentity {
    pub scenario: String,
    pub source: String,
    pub overrides: Vec<String>,
    pub scenario_fingerprint: String,
    pub build: String,
}

/// FNV-1a of the scenario as validated, without where it was read from.
pub fn scenario_fingerprint(scenario: &Scenario) -> String {
    let mut anonymous = scenario.clone();
    anonymous.source_path.clear();
    format!("{:016x}", crate::world::rng::fnv1a(format!("{anonymous:?}").as_bytes(), 0xcbf2_9ce4_8422_2325))
}

/// FNV-1a of the running executable's bytes: two binaries built from different code differ.
pub fn build_fingerprint() -> String {
    let bytes = std::env::current_exe().and_then(std::fs::read).unwrap_or_default();
    format!("{}-{:016x}", env!("CARGO_PKG_VERSION"), crate::world::rng::fnv1a(&bytes, 0xcbf2_9ce4_8422_2325))
}

/// `summary.json` of a sweep. Keys are a stable interface: extended, never renamed.
#[derive(Clone, Debug, Serialize)]
pub struct SweepSummary {
    pub scenario: String,
    pub source: String,
    pub overrides: Vec<String>,
    /// A fingerprint of the scenario as validated (file contents and overrides): shards of
    /// one sweep share it.
    pub scenario_fingerprint: String,
    /// A fingerprint of the repsim binary that ran it: shards merge only from one build.
    pub build: String,
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
    /// Every invariant's state across the seeds that ran.
    pub checks: BTreeMap<String, CheckTally>,
    /// In seed order.
    pub failures: Vec<FailingSeed>,
}

/// How many seeds found an invariant `ok`, `violated` or `not_checked`, and why the first
/// `not_checked` seed did not judge it.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct CheckTally {
    pub ok: u64,
    pub violated: u64,
    pub not_checked: u64,
    pub not_checked_why: Option<String>,
}

impl CheckTally {
    pub fn of<'a>(summaries: impl IntoIterator<Item = &'a Summary>) -> BTreeMap<String, CheckTally> {
        let mut out: BTreeMap<String, CheckTally> = BTreeMap::new();
        for s in summaries {
            for (name, state) in &s.invariants {
                let t = out.entry(name.clone()).or_default();
                match state.as_str() {
                    "ok" => t.ok += 1,
                    "violated" => t.violated += 1,
                    _ => {
                        t.not_checked += 1;
                        if t.not_checked_why.is_none() {
                            t.not_checked_why = s.not_checked.get(name).cloned();
                        }
                    }
                }
            }
        }
        out
    }

    /// A markdown table, one row per invariant.
    pub fn table(checks: &BTreeMap<String, CheckTally>) -> String {
        let mut out = String::from("| invariant | ok | violated | not checked |\n| --- | --- | --- | --- |\n");
        for (name, t) in checks {
            let why = t.not_checked_why.as_deref().map_or(String::new(), |w| format!(" ({})", table_cell(w)));
            let _ = writeln!(out, "| `{name}` | {} | {} | {}{why} |", t.ok, t.violated, t.not_checked);
        }
        out
    }
}

impl SweepSummary {
    pub fn of(scenario: &Scenario, range: SeedRange, shard: Option<Shard>, run: &SeedRun) -> SweepSummary {
        let identity = SweepIdentity {
            scenario: scenario.name.clone(),
            source: scenario.source_path.clone(),
            overrides: scenario.overrides.clone(),
            scenario_fingerprint: scenario_fingerprint(scenario),
            build: build_fingerprint(),
        };
        SweepSummary::from_parts(identity, range, shard, run)
    }

    /// A sweep's summary from its identity and its seeds' results (`repsim merge` rebuilds one
    /// from shards without the scenario file).
    pub fn from_parts(id: SweepIdentity, range: SeedRange, shard: Option<Shard>, run: &SeedRun) -> SweepSummary {
        let summaries: Vec<&Summary> = run.results.iter().filter_map(SeedResult::summary).collect();
        let failures: Vec<FailingSeed> = run.results.iter().filter_map(FailingSeed::of).collect();
        let panicked = failures.iter().filter(|f| f.outcome == "panicked").count() as u64;
        SweepSummary {
            scenario: id.scenario,
            source: id.source,
            overrides: id.overrides,
            scenario_fingerprint: id.scenario_fingerprint,
            build: id.build,
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
            checks: CheckTally::of(summaries.iter().copied()),
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
        format!(
            "{}\n{}\n\n{}\n{}\n{}",
            self.title(),
            self.counts(),
            self.table(),
            CheckTally::table(&self.checks),
            self.failure_lines()
        )
    }

    /// `summary.md`.
    pub fn render_markdown(&self) -> String {
        let mut out = format!(
            "# {}\n\n{}\n\n{}\n{}\n",
            self.title(),
            self.counts(),
            self.table(),
            CheckTally::table(&self.checks)
        );
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
