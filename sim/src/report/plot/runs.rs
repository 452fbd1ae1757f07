//! The three plots of one run. Every figure in a legend is taken from the summary, so the
//! plots and `summary.json` / `summary.md` always say the same thing.

use super::figure::{Block, Curve, Figure, Series, SpectrumPanel, TimePanel};
use super::style::{self, bytes, bytes_unit, ms, series_color, thousands, time_unit};
use super::PlotError;
use crate::report::summary::Summary;
use crate::report::timeline::Timeline;

fn title(summary: &Summary, what: &str) -> String {
    format!("{} · seed {} — {what}", summary.scenario, summary.seed)
}

fn subtitle(summary: &Summary) -> String {
    let mut s = format!("trace {}", summary.trace_hash);
    for o in &summary.overrides {
        s.push_str(&format!("  ·  --set {o}"));
    }
    s.push_str(&format!(
        "  ·  {:.0} s simulated ({:.0} s of clients, then settle)",
        summary.sim_duration_ns as f64 / 1e9 + settle_s(summary),
        summary.sim_duration_ns as f64 / 1e9
    ));
    s
}

fn settle_s(summary: &Summary) -> f64 {
    summary.timeline.as_deref().map_or(0.0, |t| t.end_ns.saturating_sub(t.duration_ns) as f64 / 1e9)
}

fn scaled(values: &[Option<u64>], div: f64) -> Vec<Option<f64>> {
    values.iter().map(|v| v.map(|v| v as f64 / div)).collect()
}

fn max_of<'a>(series: impl Iterator<Item = &'a Vec<Option<u64>>>) -> f64 {
    series.flat_map(|s| s.iter().flatten()).copied().max().unwrap_or(0) as f64
}

/// `lag.svg`: per standby, lag in bytes and replay lag in time, over the run.
pub fn lag_svg(summary: &Summary, timeline: &Timeline) -> Result<String, PlotError> {
    let all = || timeline.standbys.values().chain(timeline.archive.iter());
    let (bdiv, bunit) = bytes_unit(max_of(all().map(|s| &s.lag_bytes)));
    let (tdiv, tunit) = time_unit(max_of(all().map(|s| &s.replay_lag_ns)));
    let mut bytes_panel = TimePanel {
        heading: "Lag in bytes: primary's flushed WAL minus the standby's replayed position (per-second max)".into(),
        y_desc: format!("lag ({bunit})"),
        series: Vec::new(),
        log_y: false,
    };
    let mut time_panel = TimePanel {
        heading: "Replay lag in time, as pg_stat_replication.replay_lag shows it (per-second max)".into(),
        y_desc: format!("replay lag ({tunit})"),
        series: Vec::new(),
        log_y: false,
    };
    for (i, (name, series)) in timeline.standbys.iter().enumerate() {
        let color = series_color(i);
        let stats = summary.standbys.get(name);
        let note =
            |f: &dyn Fn(u64) -> String,
             pick: &dyn Fn(&crate::report::summary::StandbySummary) -> crate::metrics::Spread| {
                stats.map_or(String::new(), |s| format!("p99 {} · max {}", f(pick(s).p99), f(pick(s).max)))
            };
        bytes_panel.series.push(Series {
            name: name.clone(),
            note: note(&bytes, &|s| s.lag_bytes),
            color,
            values: scaled(&series.lag_bytes, bdiv),
            dashed: false,
        });
        time_panel.series.push(Series {
            name: name.clone(),
            note: note(&ms, &|s| s.replay_lag_ns),
            color,
            values: scaled(&series.replay_lag_ns, tdiv),
            dashed: false,
        });
    }
    if let (Some(series), Some(stats)) = (&timeline.archive, &summary.archive) {
        let color = series_color(timeline.standbys.len());
        let name = "archive (not yet archived)".to_string();
        bytes_panel.series.push(Series {
            name: name.clone(),
            note: format!("p99 {} · max {}", bytes(stats.lag_bytes.p99), bytes(stats.lag_bytes.max)),
            color,
            values: scaled(&series.lag_bytes, bdiv),
            dashed: true,
        });
        time_panel.series.push(Series {
            name,
            note: format!("oldest segment's age, max {}", ms(stats.lag_ns.max)),
            color,
            values: scaled(&series.replay_lag_ns, tdiv),
            dashed: true,
        });
    }
    Figure {
        title: title(summary, "replication lag per standby"),
        subtitle: subtitle(summary),
        timeline,
        blocks: vec![Block::Time(bytes_panel), Block::Time(time_panel)],
    }
    .render()
}

/// `throughput.svg`: commits and reads completed per second.
pub fn throughput_svg(summary: &Summary, timeline: &Timeline) -> Result<String, PlotError> {
    let per_s = |v: &[u64]| v.iter().map(|&c| Some(c as f64 * 1e9 / timeline.bucket_ns as f64)).collect();
    let panel = TimePanel {
        heading: "Operations completed per second".into(),
        y_desc: "operations per second".into(),
        series: vec![
            Series {
                name: "commits/s".into(),
                note: format!("{} commits, {:.1}/s", thousands(summary.commits), summary.commits_per_sec),
                color: series_color(0),
                values: per_s(&timeline.commits),
                dashed: false,
            },
            Series {
                name: "reads/s".into(),
                note: format!("{} reads", thousands(summary.reads)),
                color: series_color(1),
                values: per_s(&timeline.reads),
                dashed: false,
            },
        ],
        log_y: false,
    };
    Figure {
        title: title(summary, "throughput"),
        subtitle: subtitle(summary),
        timeline,
        blocks: vec![Block::Time(panel)],
    }
    .render()
}

/// `latency.svg`: the commit and read latency percentiles over the whole run (p50 … p99.99 on
/// a log scale), and commit latency second by second.
pub fn latency_svg(summary: &Summary, timeline: &Timeline) -> Result<String, PlotError> {
    let all = timeline.commit_latency_curve.iter().chain(&timeline.read_latency_curve).map(|p| p.1);
    let (div, unit) = time_unit(all.max().unwrap_or(0) as f64);
    let curve = |name: &str, i: usize, points: &[(f64, u64)], p: &crate::metrics::Percentiles| {
        let marked = p.labelled();
        let mut legend: Vec<String> = marked.iter().map(|(_, label, v)| format!("{label} {}", ms(*v))).collect();
        legend.push(format!("max {}", ms(p.max)));
        Curve {
            name: name.into(),
            color: series_color(i),
            points: points.iter().map(|&(q, v)| (q, v as f64 / div)).collect(),
            marked: marked.iter().map(|&(q, _, v)| (q, v as f64 / div)).collect(),
            legend,
        }
    };
    let mut curves = vec![curve("commit", 0, &timeline.commit_latency_curve, &summary.commit_latency_ns)];
    if !timeline.read_latency_curve.is_empty() {
        curves.push(curve("read", 1, &timeline.read_latency_curve, &summary.read_latency_ns));
    }
    let spectrum = SpectrumPanel {
        heading: "Latency by percentile over the whole run (hdrhistogram; both axes log scale)".into(),
        y_desc: format!("latency ({unit})"),
        curves,
    };
    let max_series = max_of([&timeline.commit_latency_max_ns].into_iter());
    let (tdiv, tunit) = time_unit(max_series);
    let per_second = TimePanel {
        heading: "Commit latency second by second (log scale)".into(),
        y_desc: format!("commit latency ({tunit})"),
        series: vec![
            Series {
                name: "max".into(),
                note: format!("overall max {}", ms(summary.commit_latency_ns.max)),
                color: style::series_color(4),
                values: scaled(&timeline.commit_latency_max_ns, tdiv),
                dashed: false,
            },
            Series {
                name: "mean".into(),
                note: format!("overall p50 {}", ms(summary.commit_latency_ns.p50)),
                color: series_color(0),
                values: scaled(&timeline.commit_latency_mean_ns, tdiv),
                dashed: false,
            },
        ],
        log_y: true,
    };
    Figure {
        title: title(summary, "commit and read latency"),
        subtitle: subtitle(summary),
        timeline,
        blocks: vec![Block::Spectrum(spectrum), Block::Time(per_second)],
    }
    .render()
}
