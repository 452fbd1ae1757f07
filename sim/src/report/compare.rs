//! The results of `repsim compare`: figures per setting, the table, `compare.md` and the plot.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::report::summary::Summary;

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
    /// The slowest subscription's apply lag (`None`: no subscription).
    #[serde(default)]
    pub apply_lag_p50_ns: Option<u64>,
    #[serde(default)]
    pub apply_lag_p99_ns: Option<u64>,
    #[serde(default)]
    pub wal_bytes_per_commit: u64,
    /// The final primary's CPU, in cores busy on average.
    #[serde(default)]
    pub primary_cpu_cores: f64,
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
            apply_lag_p50_ns: s.subscriptions.iter().map(|x| x.apply_lag_ns.p50).max(),
            apply_lag_p99_ns: s.subscriptions.iter().map(|x| x.apply_lag_ns.p99).max(),
            wal_bytes_per_commit: s.wal_bytes_per_commit,
            primary_cpu_cores: s.primary_cpu_busy_ns as f64 / s.sim_duration_ns.max(1) as f64,
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
    ApplyLagP50,
    ApplyLagP99,
    WalPerCommit,
    PrimaryCpu,
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
            Metric::ApplyLagP50 => f.apply_lag_p50_ns.unwrap_or(0) as f64,
            Metric::ApplyLagP99 => f.apply_lag_p99_ns.unwrap_or(0) as f64,
            Metric::WalPerCommit => f.wal_bytes_per_commit as f64,
            Metric::PrimaryCpu => f.primary_cpu_cores,
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
            Metric::ApplyLagP50 => ("apply lag p50 (ms)", 1e6, 1),
            Metric::ApplyLagP99 => ("apply lag p99 (ms)", 1e6, 1),
            Metric::WalPerCommit => ("WAL/commit (B)", 1.0, 0),
            Metric::PrimaryCpu => ("primary CPU (cores)", 1.0, 3),
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

    /// With subscriptions, what replicating them costs: their apply lag, and the primary's
    /// WAL per commit and CPU.
    pub const SUBSCRIPTIONS: [Metric; 4] =
        [Metric::ApplyLagP50, Metric::ApplyLagP99, Metric::WalPerCommit, Metric::PrimaryCpu];
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

    /// The table's columns: [`Metric::TABLE`], and [`Metric::SUBSCRIPTIONS`] when a run had one.
    pub fn metrics(&self) -> Vec<Metric> {
        let subscribed = self.rows.iter().flat_map(|r| &r.runs).any(|f| f.apply_lag_p99_ns.is_some());
        let extra: &[Metric] = if subscribed { &Metric::SUBSCRIPTIONS } else { &[] };
        Metric::TABLE.iter().chain(extra).copied().collect()
    }

    pub fn panicked(&self) -> usize {
        self.rows.iter().map(|r| r.panicked.len()).sum()
    }
}

/// The table: one row per combination, `mean (min–max)` over the seeds.
pub fn render_table(c: &Comparison) -> String {
    let mut out = String::new();
    let mut header = format!("| {} |", c.label_heading());
    let mut rule = "| --- |".to_string();
    let metrics = c.metrics();
    for &m in &metrics {
        header.push_str(&format!(" {} |", m.column().0));
        rule.push_str(" --- |");
    }
    header.push_str(" runs ok |");
    rule.push_str(" --- |");
    let _ = writeln!(out, "{header}\n{rule}");
    for row in &c.rows {
        let _ = write!(out, "| {} |", row.combination.label);
        for &m in &metrics {
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

/// One combination of values: the overrides it applies and how tables name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Combination {
    /// `key=value` for every axis, in `--set` order.
    pub overrides: Vec<String>,
    /// The values of the axes that vary, e.g. `on` or `on, 8`.
    pub label: String,
}
