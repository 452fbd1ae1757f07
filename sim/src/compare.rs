//! `repsim compare`: one scenario under several settings, side by side.
//!
//! `--set key=v1,v2,…` gives the values of one setting; with several `--set`, every
//! combination runs (the first key varies slowest). Every combination runs the same seeds, and
//! since every random draw comes from a stream named by its purpose (`workload`, `faults`,
//! `network`, …), each seed sees the same workload and the same faults under every value:
//! the differences are the setting's, not the dice's (common random numbers).
//!
//! Output, under `<out>/<scenario>/compare/`: `compare.md` (the table, also printed),
//! `compare.json` (every seed's figures) and `compare.svg` (one panel per figure, a bar per
//! combination: the mean over seeds, with the min–max range).
//!
//! Exit 0 unless the input is bad (2) or a run panicked (1): a comparison measures, it does not
//! gate, so violated expectations are reported (the `runs ok` column), not failed on.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::progress::Progress;
use crate::report::Summary;
use crate::run::run_seed;
use crate::scenario::{load_scenario, Scenario};
use crate::sweep::{default_jobs, parallel_map, SeedRange};

const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_BAD_INPUT: u8 = 2;

/// One `--set key=v1,v2,…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `key=v1,v2,…`. Commas inside `{…}`, `[…]` or quotes do not split, so an inline
    /// TOML table or array is one value: `network.latency={ dist = "constant", value = "5ms" },2ms`.
    pub fn parse(text: &str) -> Result<Axis, String> {
        let Some((key, values)) = text.split_once('=') else {
            return Err(format!("--set {text}: expected KEY=V1,V2,… (e.g. replication.synchronous_commit=off,on)"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("--set {text}: the key before `=` is empty"));
        }
        let values = split_values(values)?;
        if values.iter().any(|v| v.is_empty()) {
            return Err(format!("--set {text}: an empty value (two commas in a row, or a trailing comma)"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = values.iter().find(|v| !seen.insert(v.as_str())) {
            return Err(format!("--set {text}: the value `{dup}` is listed twice"));
        }
        Ok(Axis { key: key.to_string(), values })
    }

    /// The last segment of the key: `synchronous_commit` for `replication.synchronous_commit`.
    pub fn short_key(&self) -> &str {
        self.key.rsplit('.').next().unwrap_or(&self.key)
    }
}

/// Splits on the commas that are not inside brackets, braces or quotes; values are trimmed.
pub fn split_values(text: &str) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut depth: i32 = 0;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                values.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if quote.is_some() || depth != 0 {
        return Err(format!("`{text}`: unbalanced quotes, brackets or braces"));
    }
    values.push(current.trim().to_string());
    Ok(values)
}

/// One combination of values: the overrides it applies and how tables name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Combination {
    /// `key=value` for every axis, in `--set` order.
    pub overrides: Vec<String>,
    /// The values of the axes that vary, e.g. `on` or `on, 8`.
    pub label: String,
}

/// Every combination of the axes' values; the first axis varies slowest.
pub fn combinations(axes: &[Axis]) -> Vec<Combination> {
    let mut combos: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
    for (a, axis) in axes.iter().enumerate() {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                (0..axis.values.len()).map(move |v| {
                    let mut c = prefix.clone();
                    c.push((a, v));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|picks| {
            let overrides = picks.iter().map(|&(a, v)| format!("{}={}", axes[a].key, axes[a].values[v])).collect();
            let varying: Vec<&str> = picks
                .iter()
                .filter(|&&(a, _)| axes[a].values.len() > 1)
                .map(|&(a, v)| axes[a].values[v].as_str())
                .collect();
            let label = if varying.is_empty() { "(as set)".to_string() } else { varying.join(", ") };
            Combination { overrides, label }
        })
        .collect()
}

/// The figures compared, from one run's summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    pub seed: u64,
    pub ok: bool,
    pub commit_p50_ns: u64,
    pub commit_p99_ns: u64,
    pub commits: u64,
    pub commits_per_sec: f64,
    pub failed_ops: u64,
    /// The worst standby's p99.
    pub lag_bytes_p99: u64,
    pub replay_lag_p99_ns: u64,
    pub lost_acked_writes: u64,
    pub unavailable_ns: u64,
    pub trace_hash: String,
}

impl Figures {
    pub fn of(s: &Summary) -> Figures {
        Figures {
            seed: s.seed,
            ok: s.ok,
            commit_p50_ns: s.commit_latency_ns.p50,
            commit_p99_ns: s.commit_latency_ns.p99,
            commits: s.commits,
            commits_per_sec: s.commits_per_sec,
            failed_ops: s.failed_ops,
            lag_bytes_p99: s.standbys.values().map(|x| x.lag_bytes.p99).max().unwrap_or(0),
            replay_lag_p99_ns: s.standbys.values().map(|x| x.replay_lag_ns.p99).max().unwrap_or(0),
            lost_acked_writes: s.lost_acked_writes,
            unavailable_ns: s.unavailable_ns,
            trace_hash: s.trace_hash.clone(),
        }
    }
}

/// Mean, min and max of one figure over the seeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub min: f64,
    pub max: f64,
}

impl Stat {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Stat> {
        let values: Vec<f64> = values.into_iter().collect();
        if values.is_empty() {
            return None;
        }
        let sum: f64 = values.iter().sum();
        Some(Stat {
            mean: sum / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// `mean (min–max)`, or just the value when every seed agrees; `scale` divides first.
    pub fn text(&self, scale: f64, decimals: usize) -> String {
        let f = |v: f64| format!("{:.decimals$}", v / scale);
        if f(self.min) == f(self.max) {
            f(self.mean)
        } else {
            format!("{} ({}–{})", f(self.mean), f(self.min), f(self.max))
        }
    }
}

/// A run that panicked: its seed and how to reproduce it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Panicked {
    pub seed: u64,
    pub error: String,
    pub reproduce: String,
}

/// One combination's results over the seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub combination: Combination,
    pub runs: Vec<Figures>,
    pub panicked: Vec<Panicked>,
}

/// Which figure a column or panel shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    CommitP50,
    CommitP99,
    CommitsPerSec,
    LagBytesP99,
    ReplayLagP99,
    LostAckedWrites,
    Unavailable,
}

impl Metric {
    pub fn value(self, f: &Figures) -> f64 {
        match self {
            Metric::CommitP50 => f.commit_p50_ns as f64,
            Metric::CommitP99 => f.commit_p99_ns as f64,
            Metric::CommitsPerSec => f.commits_per_sec,
            Metric::LagBytesP99 => f.lag_bytes_p99 as f64,
            Metric::ReplayLagP99 => f.replay_lag_p99_ns as f64,
            Metric::LostAckedWrites => f.lost_acked_writes as f64,
            Metric::Unavailable => f.unavailable_ns as f64,
        }
    }

    /// Column heading, the divisor to its unit, and decimals.
    pub fn column(self) -> (&'static str, f64, usize) {
        match self {
            Metric::CommitP50 => ("commit p50 (ms)", 1e6, 2),
            Metric::CommitP99 => ("commit p99 (ms)", 1e6, 2),
            Metric::CommitsPerSec => ("commits/s", 1.0, 1),
            Metric::LagBytesP99 => ("lag p99 (KiB)", 1024.0, 1),
            Metric::ReplayLagP99 => ("replay_lag p99 (ms)", 1e6, 2),
            Metric::LostAckedWrites => ("lost acked writes", 1.0, 1),
            Metric::Unavailable => ("unavailable (s)", 1e9, 3),
        }
    }

    pub const TABLE: [Metric; 7] = [
        Metric::CommitP50,
        Metric::CommitP99,
        Metric::CommitsPerSec,
        Metric::LagBytesP99,
        Metric::ReplayLagP99,
        Metric::LostAckedWrites,
        Metric::Unavailable,
    ];
}

impl Row {
    pub fn stat(&self, metric: Metric) -> Option<Stat> {
        Stat::of(self.runs.iter().map(|f| metric.value(f)))
    }
}

/// A whole comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub scenario: String,
    pub source_path: String,
    pub axes: Vec<(String, Vec<String>)>,
    pub seeds: Vec<u64>,
    pub command: String,
    pub rows: Vec<Row>,
}

impl Comparison {
    /// The heading of the label column: the keys that vary.
    pub fn label_heading(&self) -> String {
        let varying: Vec<&str> =
            self.axes.iter().filter(|(_, v)| v.len() > 1).map(|(k, _)| k.rsplit('.').next().unwrap_or(k)).collect();
        if varying.is_empty() {
            "setting".into()
        } else {
            varying.join(", ")
        }
    }

    pub fn panicked(&self) -> usize {
        self.rows.iter().map(|r| r.panicked.len()).sum()
    }
}

/// Loads the scenario under every combination (any error is bad input), before running any.
pub fn load_all(path: &Path, combos: &[Combination]) -> Result<Vec<Scenario>, String> {
    combos.iter().map(|c| load_scenario(path, &c.overrides).map_err(|e| e.to_string())).collect()
}

/// Runs every `(combination, seed)` on `jobs` threads. Results are in combination then seed
/// order whatever the thread timing.
pub fn run_comparison(
    path: &Path,
    axes: &[Axis],
    seeds: &[u64],
    jobs: usize,
    progress: &Progress,
) -> Result<Comparison, String> {
    let combos = combinations(axes);
    let scenarios = load_all(path, &combos)?;
    let work_items: Vec<(usize, u64)> = (0..combos.len()).flat_map(|c| seeds.iter().map(move |&s| (c, s))).collect();
    let never = || false;
    let work = |&(c, seed): &(usize, u64)| {
        let result = run_seed(&scenarios[c], seed, None);
        progress.finish_one(result.is_err());
        result.map(|summary| Figures::of(&summary))
    };
    let results = parallel_map(&work_items, jobs, &never, &work);
    let mut rows: Vec<Row> =
        combos.into_iter().map(|combination| Row { combination, runs: Vec::new(), panicked: Vec::new() }).collect();
    for (&(c, seed), result) in work_items.iter().zip(results) {
        match result.expect("every item runs: nothing stops a comparison early") {
            Ok(figures) => rows[c].runs.push(figures),
            Err(failure) => {
                rows[c].panicked.push(Panicked { seed, error: failure.message, reproduce: failure.reproduce })
            }
        }
    }
    let name = scenarios.first().map_or(String::new(), |s| s.name.clone());
    let mut command = format!("repsim compare {}", path.display());
    for axis in axes {
        command.push_str(&format!(" --set '{}={}'", axis.key, axis.values.join(",")));
    }
    if let (Some(first), Some(last)) = (seeds.first(), seeds.last()) {
        command.push_str(&format!(" --seeds {first}..={last}"));
    }
    Ok(Comparison {
        scenario: name,
        source_path: path.display().to_string(),
        axes: axes.iter().map(|a| (a.key.clone(), a.values.clone())).collect(),
        seeds: seeds.to_vec(),
        command,
        rows,
    })
}

/// The table: one row per combination, `mean (min–max)` over the seeds.
pub fn render_table(c: &Comparison) -> String {
    let mut out = String::new();
    let mut header = format!("| {} |", c.label_heading());
    let mut rule = "| --- |".to_string();
    for m in Metric::TABLE {
        header.push_str(&format!(" {} |", m.column().0));
        rule.push_str(" --- |");
    }
    header.push_str(" runs ok |");
    rule.push_str(" --- |");
    let _ = writeln!(out, "{header}\n{rule}");
    for row in &c.rows {
        let _ = write!(out, "| {} |", row.combination.label);
        for m in Metric::TABLE {
            let (_, scale, decimals) = m.column();
            let cell = row.stat(m).map_or("–".to_string(), |s| s.text(scale, decimals));
            let _ = write!(out, " {cell} |");
        }
        let ok = row.runs.iter().filter(|f| f.ok).count();
        let total = row.runs.len() + row.panicked.len();
        let _ = writeln!(out, " {ok}/{total} |");
    }
    out
}

/// `compare.md`.
pub fn render_markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let varying: Vec<String> = c.axes.iter().filter(|(_, v)| v.len() > 1).map(|(k, _)| format!("`{k}`")).collect();
    let fixed: Vec<String> =
        c.axes.iter().filter(|(_, v)| v.len() == 1).map(|(k, v)| format!("`{k}={}`", v[0])).collect();
    let _ = writeln!(
        out,
        "# {}: {}\n",
        c.scenario,
        if varying.is_empty() { "compare".into() } else { varying.join(" × ") }
    );
    let seeds = match (c.seeds.first(), c.seeds.last()) {
        (Some(a), Some(b)) => format!("seeds {a} to {b} ({} seeds)", c.seeds.len()),
        _ => "no seeds".into(),
    };
    let _ = writeln!(
        out,
        "`{}` · {seeds}, the same under every setting: each seed draws the same workload and the same faults \
         whatever the setting (common random numbers), so the differences below are the setting's.\n",
        c.source_path
    );
    if !fixed.is_empty() {
        let _ = writeln!(out, "Fixed for every run: {}\n", fixed.join(" "));
    }
    let _ = writeln!(out, "Regenerate: `{}`\n", c.command);
    let _ = writeln!(
        out,
        "Each cell is the mean over the seeds, with the range (min–max) when the seeds differ. Lag figures are \
         the worst standby's; `unavailable` is the longest stretch without an acknowledged write while clients \
         were asking; `runs ok` counts runs whose invariants and `[expect]` held.\n"
    );
    out.push_str(&render_table(c));
    let _ = writeln!(out, "\n![comparison](compare.svg)\n");
    let _ = writeln!(out, "## Runs\n");
    let _ = writeln!(
        out,
        "| {} | seed | trace hash | ok | reproduce |\n| --- | --- | --- | --- | --- |",
        c.label_heading()
    );
    for row in &c.rows {
        let sets: String = row.combination.overrides.iter().map(|o| format!(" --set '{o}'")).collect();
        for f in &row.runs {
            let _ = writeln!(
                out,
                "| {} | {} | `{}` | {} | `repsim run {} --seed {}{sets}` |",
                row.combination.label,
                f.seed,
                f.trace_hash,
                if f.ok { "ok" } else { "**no**" },
                c.source_path,
                f.seed
            );
        }
        for p in &row.panicked {
            let _ = writeln!(
                out,
                "| {} | {} | | **panicked**: {} | `{}` |",
                row.combination.label, p.seed, p.error, p.reproduce
            );
        }
    }
    out
}

/// `<out>/<scenario>/compare/`.
pub fn compare_dir(out: &Path, scenario: &str) -> PathBuf {
    out.join(scenario).join("compare")
}

/// Writes `compare.md`, `compare.json` and `compare.svg` into `dir`.
pub fn write_comparison(dir: &Path, c: &Comparison) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("compare.md"), render_markdown(c))?;
    let json = serde_json::to_string_pretty(c).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("compare.json"), json + "\n")?;
    std::fs::write(dir.join("compare.svg"), crate::plot::compare::compare_svg(c)?)?;
    Ok(())
}

pub struct CompareArgs {
    pub scenario: PathBuf,
    pub sets: Vec<String>,
    pub seeds: String,
    pub jobs: Option<usize>,
    pub out: PathBuf,
    pub quiet: bool,
}

pub fn compare_command(args: CompareArgs) -> ExitCode {
    let bad = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_BAD_INPUT)
    };
    let axes = match args.sets.iter().map(|s| Axis::parse(s)).collect::<Result<Vec<_>, _>>() {
        Ok(axes) => axes,
        Err(e) => return bad(e),
    };
    let mut keys = std::collections::BTreeSet::new();
    if let Some(dup) = axes.iter().find(|a| !keys.insert(a.key.as_str())) {
        return bad(format!("--set {}: the key is given twice; list all its values in one --set", dup.key));
    }
    let range = match SeedRange::parse(&args.seeds) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let jobs = match default_jobs(args.jobs) {
        Ok(j) => j,
        Err(e) => return bad(e),
    };
    let seeds: Vec<u64> = (range.start..range.end).collect();
    let combos = combinations(&axes);
    // Validate every combination before running anything: a typo is exit 2, not a half run.
    if let Err(e) = load_all(&args.scenario, &combos) {
        eprintln!("{e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let total = (combos.len() * seeds.len()) as u64;
    let name = args.scenario.file_stem().map_or("compare".into(), |s| s.to_string_lossy().into_owned());
    let progress = Progress::new(total, &format!("compare {name}"), args.quiet);
    let comparison = match run_comparison(&args.scenario, &axes, &seeds, jobs, &progress) {
        Ok(c) => c,
        Err(e) => {
            progress.finish();
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    progress.finish();
    let dir = compare_dir(&args.out, &comparison.scenario);
    print!("{}", render_table(&comparison));
    for row in &comparison.rows {
        for p in &row.panicked {
            eprintln!(
                "error: {} seed {} panicked: {}\nreproduce: {}",
                row.combination.label, p.seed, p.error, p.reproduce
            );
        }
    }
    if let Err(e) = write_comparison(&dir, &comparison) {
        eprintln!("error: cannot write the comparison to {}: {e}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    println!("report: {}", dir.display());
    ExitCode::from(if comparison.panicked() > 0 { EXIT_FAILED } else { EXIT_OK })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_split_on_top_level_commas_only() {
        assert_eq!(split_values("off,local, on").unwrap(), ["off", "local", "on"]);
        assert_eq!(
            split_values(r#"{ dist = "constant", value = "5ms" },2ms"#).unwrap(),
            [r#"{ dist = "constant", value = "5ms" }"#, "2ms"]
        );
        assert_eq!(split_values(r#"["a", "b"],"x,y""#).unwrap(), [r#"["a", "b"]"#, r#""x,y""#]);
        assert!(split_values("{ a = 1").is_err());
        assert!(split_values("\"open").is_err());
    }

    #[test]
    fn bad_axes_are_refused_with_the_set_named() {
        assert!(Axis::parse("replication.synchronous_commit").unwrap_err().contains("KEY=V1,V2"));
        assert!(Axis::parse("=on").is_err());
        assert!(Axis::parse("k=a,,b").unwrap_err().contains("empty value"));
        assert!(Axis::parse("k=a,b,a").unwrap_err().contains("twice"));
        let axis = Axis::parse("replication.synchronous_commit=off,on").unwrap();
        assert_eq!(axis.short_key(), "synchronous_commit");
        assert_eq!(axis.values, ["off", "on"]);
    }

    #[test]
    fn every_combination_once_first_key_slowest() {
        let axes = [Axis::parse("a.x=1,2").unwrap(), Axis::parse("b=p,q,r").unwrap(), Axis::parse("c=z").unwrap()];
        let combos = combinations(&axes);
        assert_eq!(combos.len(), 6);
        assert_eq!(combos[0].overrides, ["a.x=1", "b=p", "c=z"]);
        assert_eq!(combos[1].label, "1, q");
        assert_eq!(combos[5].overrides, ["a.x=2", "b=r", "c=z"]);
        let labels: std::collections::BTreeSet<_> = combos.iter().map(|c| c.label.clone()).collect();
        assert_eq!(labels.len(), 6);
    }

    #[test]
    fn stats_show_a_range_only_when_seeds_differ() {
        let s = Stat::of([1e6, 3e6]).unwrap();
        assert_eq!(s.mean, 2e6);
        assert_eq!(s.text(1e6, 2), "2.00 (1.00–3.00)");
        assert_eq!(Stat::of([5.0, 5.0]).unwrap().text(1.0, 1), "5.0");
        assert_eq!(Stat::of(std::iter::empty()), None);
    }
}
