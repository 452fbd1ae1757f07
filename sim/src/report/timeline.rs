//! What the time plots show, taken from a finished world: per-second series, fault windows
//! (from the scenario's faults), the unavailability window, the settle phase, marks, and the
//! latency percentile spectra. Written as `series.json` next to the plots, so every plotted
//! number can be checked against `summary.json` or re-plotted with another tool.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::{Mark, MarkKind, Metrics, Recorder, BUCKET_NS};
use crate::scenario::model::{FaultKind, Scenario};

/// What a shaded window stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// A node is down: from its crash to its restart (or the end of `duration`).
    Crash,
    /// The network is split: from the partition to the heal (or the end of `duration`).
    Partition,
    /// A disk is slow: `at` .. `at + for`.
    SlowDisk,
    /// A node is paused (stopped process, long GC): no input is processed.
    Pause,
    /// The longest stretch with no write acknowledged while clients were asking (RTO).
    Unavailable,
    /// After `duration`: clients stopped, faults healed, crashed nodes restarted.
    Settle,
}

impl WindowKind {
    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Crash => "crash",
            WindowKind::Partition => "partition",
            WindowKind::SlowDisk => "slow disk",
            WindowKind::Pause => "pause",
            WindowKind::Unavailable => "unavailable",
            WindowKind::Settle => "settle",
        }
    }
}

/// A stretch of simulated time to shade on every time plot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Window {
    pub kind: WindowKind,
    pub from_ns: u64,
    pub to_ns: u64,
    pub label: String,
}

/// One standby's per-second series. `None`: no sample in that second (disconnected, primary
/// down), drawn as a gap.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StandbySeries {
    pub lag_bytes: Vec<Option<u64>>,
    pub write_lag_ns: Vec<Option<u64>>,
    pub flush_lag_ns: Vec<Option<u64>>,
    pub replay_lag_ns: Vec<Option<u64>>,
}

/// Everything the run plots draw, in simulated time. Every series has `buckets()` entries.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timeline {
    pub bucket_ns: u64,
    /// Clients run until here ...
    pub duration_ns: u64,
    /// ... and the run ends here (`duration + settle`).
    pub end_ns: u64,
    pub commits: Vec<u64>,
    pub reads: Vec<u64>,
    /// Per-second maximum and mean commit latency; `None` in a second without commits.
    pub commit_latency_max_ns: Vec<Option<u64>>,
    pub commit_latency_mean_ns: Vec<Option<u64>>,
    pub standbys: BTreeMap<String, StandbySeries>,
    /// The WAL archive's lag behind the primary (`replay_lag_ns`: the oldest unarchived
    /// segment's age), with `archive_mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<StandbySeries>,
    pub windows: Vec<Window>,
    pub marks: Vec<Mark>,
    /// `(quantile, latency_ns)` from q = 0 to q = 0.9999 (hdrhistogram).
    pub commit_latency_curve: Vec<(f64, u64)>,
    pub read_latency_curve: Vec<(f64, u64)>,
    /// `pg_stat_replication` and `pg_stat_wal_receiver`, the last sample of each second
    /// (`report::monitoring`).
    pub monitoring: Vec<crate::report::monitoring::MonitoringView>,
}

fn padded<T: Copy>(series: &[T], n: usize, fill: T) -> Vec<T> {
    let mut out: Vec<T> = series.iter().copied().take(n).collect();
    out.resize(n, fill);
    out
}

fn widen(series: &[u32], n: usize) -> Vec<u64> {
    padded(series, n, 0).into_iter().map(u64::from).collect()
}

impl Timeline {
    /// Builds the timeline of a finished run.
    pub fn new(scenario: &Scenario, metrics: &Metrics) -> Timeline {
        let end_ns = scenario.duration_ns + scenario.settle_ns;
        let n = end_ns.div_ceil(BUCKET_NS).max(1) as usize;
        let commits = widen(&metrics.commits_series, n);
        let max = padded(&metrics.commit_latency_max_series, n, 0);
        let sum = padded(&metrics.commit_latency_sum_series, n, 0);
        let commit_latency_max_ns = (0..n).map(|i| (commits[i] > 0).then_some(max[i])).collect();
        let commit_latency_mean_ns = (0..n).map(|i| (commits[i] > 0).then(|| sum[i] / commits[i])).collect();
        let series_of = |s: &crate::metrics::StandbyLag| {
            let samples = padded(&s.samples_series, n, 0);
            let bytes = padded(&s.lag_bytes_series, n, 0);
            StandbySeries {
                lag_bytes: (0..n).map(|i| (samples[i] > 0).then_some(bytes[i])).collect(),
                write_lag_ns: padded(&s.write_lag_ns_series, n, None),
                flush_lag_ns: padded(&s.flush_lag_ns_series, n, None),
                replay_lag_ns: padded(&s.replay_lag_ns_series, n, None),
            }
        };
        let standbys = metrics.standbys.iter().map(|(name, s)| (name.clone(), series_of(s))).collect();
        let archive = scenario.replication.archive_mode.then(|| series_of(&metrics.archive_lag));
        let (windows, mut marks) = fault_windows(scenario);
        marks.extend(metrics.marks.iter().filter(|m| !repeats_a_window(m, &windows, scenario)).cloned());
        marks.sort_by_key(|m| m.at_ns);
        let mut timeline = Timeline {
            bucket_ns: BUCKET_NS,
            duration_ns: scenario.duration_ns,
            end_ns,
            commits,
            reads: widen(&metrics.reads_series, n),
            commit_latency_max_ns,
            commit_latency_mean_ns,
            standbys,
            archive,
            windows,
            marks,
            commit_latency_curve: curve(&metrics.commit_latency_ns),
            read_latency_curve: curve(&metrics.read_latency_ns),
            monitoring: Vec::new(),
        };
        let u = &metrics.unavailable;
        if u.outage_ns() > 0 {
            timeline.windows.push(Window {
                kind: WindowKind::Unavailable,
                from_ns: u.longest_from_ns,
                to_ns: u.longest_from_ns + u.longest_ns,
                label: format!("writes unavailable {}", secs_precise(u.longest_ns)),
            });
        }
        if scenario.settle_ns > 0 {
            timeline.windows.push(Window {
                kind: WindowKind::Settle,
                from_ns: scenario.duration_ns,
                to_ns: end_ns,
                label: "settle: clients stopped".into(),
            });
        }
        timeline
    }

    /// Number of buckets in every series.
    pub fn buckets(&self) -> usize {
        self.commits.len()
    }
}

/// A duration as the unavailability label shows it (milliseconds precision).
pub fn secs_precise(ns: u64) -> String {
    if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

fn curve(r: &Recorder) -> Vec<(f64, u64)> {
    r.quantile_curve(10)
}

/// A mark the world recorded for a fault that is already drawn as a window: "pg1 crashed" at
/// the start of the "crash pg1" window, "pg1 paused" at the start of "pause pg1".
fn repeats_a_window(mark: &Mark, windows: &[Window], scenario: &Scenario) -> bool {
    windows.iter().any(|w| {
        w.from_ns == mark.at_ns
            && matches!(w.kind, WindowKind::Crash | WindowKind::Pause)
            && mark.label.contains(w.kind.name())
            && scenario.cluster.nodes.iter().any(|n| w.label.ends_with(n.as_str()) && mark.label.contains(n.as_str()))
    })
}

/// Windows and instant marks from the scenario's `[[faults]]` (random faults included: the
/// world has made them concrete). A crash lasts until the same node's next restart, a
/// partition until the next heal, either at most until the end of `duration` (the settle
/// phase heals and restarts everything); a slow disk and a pause last their `for`.
pub fn fault_windows(scenario: &Scenario) -> (Vec<Window>, Vec<Mark>) {
    let names = &scenario.cluster.nodes;
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("node{i}"));
    let group = |g: &[usize]| g.iter().map(|&i| name(i)).collect::<Vec<_>>().join(",");
    let faults = &scenario.faults;
    let end = scenario.duration_ns;
    let run_end = scenario.duration_ns + scenario.settle_ns;
    let mut windows = Vec::new();
    let mut marks = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let at = fault.at_ns.min(end);
        let later = || faults[i + 1..].iter();
        let heal = || later().find(|f| matches!(f.kind, FaultKind::Heal)).map_or(end, |f| f.at_ns);
        let mut window = |kind, to_ns: u64, label: String| {
            let limit = if kind == WindowKind::Pause { run_end } else { end };
            windows.push(Window { kind, from_ns: at, to_ns: to_ns.clamp(at, limit), label })
        };
        let mut mark = |label: String| marks.push(Mark { at_ns: at, kind: MarkKind::Fault, label });
        #[allow(unreachable_patterns)] // new fault kinds are marked as instants until drawn here
        match &fault.kind {
            FaultKind::Crash { node } | FaultKind::LoseDisk { node } => {
                let what = if matches!(fault.kind, FaultKind::LoseDisk { .. }) { "lose disk" } else { "crash" };
                let restart = later()
                    .find(|f| matches!(f.kind, FaultKind::Restart { node: n } if n == *node))
                    .map_or(end, |f| f.at_ns);
                window(WindowKind::Crash, restart, format!("{what} {}", name(*node)));
            }
            FaultKind::Partition { a, b, one_way } => {
                let arrow = if *one_way { " -> " } else { " | " };
                window(WindowKind::Partition, heal(), format!("partition {}{arrow}{}", group(a), group(b)));
            }
            FaultKind::PartitionDcs { node } => {
                window(WindowKind::Partition, heal(), format!("partition DCS | {}", name(*node)));
            }
            FaultKind::KillDcs => window(WindowKind::Crash, end, "DCS down".into()),
            FaultKind::SlowDisk { node, factor, for_ns } => {
                let label = format!("slow disk {} x{factor}", name(*node));
                window(WindowKind::SlowDisk, at.saturating_add(*for_ns), label);
            }
            FaultKind::Pause { node, for_ns } => {
                window(WindowKind::Pause, at.saturating_add(*for_ns), format!("pause {}", name(*node)));
            }
            FaultKind::Restart { .. } | FaultKind::Heal => {} // the end of a window above
            FaultKind::Reset { a, b } => mark(format!("reset {}-{}", name(*a), name(*b))),
            FaultKind::ClockSkew { node, by_ns } => {
                mark(format!("clock {} {:+}s", name(*node), *by_ns as f64 / 1e9));
            }
            FaultKind::ClockDrift { node, ppm } => mark(format!("clock {} drifts {ppm} ppm", name(*node))),
            FaultKind::Promote { node } => mark(format!("pg_promote() on {}", name(*node))),
            FaultKind::Switchover { node } => mark(format!("switchover to {}", name(*node))),
            FaultKind::FsyncError { node } => mark(format!("fsync error on {}", name(*node))),
            FaultKind::CreateLogicalSlot { node, slot } => mark(format!("slot {slot} created on {}", name(*node))),
            FaultKind::DropLogicalSlot { node, slot } => mark(format!("slot {slot} dropped on {}", name(*node))),
            FaultKind::SkipTransaction { subscription } => mark(format!("subscription {subscription}: SKIP")),
            FaultKind::LoseSite { nodes } => {
                window(WindowKind::Crash, end, format!("site lost: {}", group(nodes)));
            }
            FaultKind::BaseBackup { node } => mark(format!("base backup of {}", name(*node))),
            FaultKind::Restore { node, .. } => mark(format!("restore {} from the archive", name(*node))),
            other => {
                let text = format!("{other:?}");
                mark(text.split([' ', '{', '(']).next().unwrap_or("fault").to_lowercase());
            }
        }
    }
    (windows, marks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_scenario;

    const BASE: &str = "name = \"t\"\nduration = \"20s\"\nsettle = \"5s\"\n[cluster]\nnodes = [\"pg1\", \"pg2\", \"pg3\"]\nprimary = \"pg1\"\n";

    fn scenario(faults: &str) -> Scenario {
        parse_scenario(&format!("{BASE}{faults}"), "t.toml", &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_crash_lasts_until_its_own_restart_or_the_end_of_duration() {
        let s = scenario(
            "[[faults]]\nat = \"3s\"\ncrash = \"pg2\"\n[[faults]]\nat = \"4s\"\ncrash = \"pg1\"\n\
             [[faults]]\nat = \"8s\"\nrestart = \"pg1\"\n",
        );
        let (w, marks) = fault_windows(&s);
        assert!(marks.is_empty());
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].from_ns, w[0].to_ns, w[0].label.as_str()), (3_000_000_000, 20_000_000_000, "crash pg2"));
        assert_eq!((w[1].from_ns, w[1].to_ns, w[1].label.as_str()), (4_000_000_000, 8_000_000_000, "crash pg1"));
    }

    #[test]
    fn partitions_heal_slow_disks_expire_and_resets_are_instants() {
        let s = scenario(
            "[[faults]]\nat = \"2s\"\npartition = [[\"pg1\"], [\"pg2\", \"pg3\"]]\n[[faults]]\nat = \"6s\"\nheal = true\n\
             [[faults]]\nat = \"10s\"\nslow_disk = \"pg2\"\nfactor = 10.0\nfor = \"15s\"\n\
             [[faults]]\nat = \"11s\"\nreset = [\"pg1\", \"pg2\"]\n",
        );
        let (w, marks) = fault_windows(&s);
        assert_eq!(w[0].kind, WindowKind::Partition);
        assert_eq!((w[0].from_ns, w[0].to_ns), (2_000_000_000, 6_000_000_000));
        assert_eq!(w[0].label, "partition pg1 | pg2,pg3");
        assert_eq!(w[1].kind, WindowKind::SlowDisk);
        // Clamped to the end of duration: settle restores the disk.
        assert_eq!((w[1].from_ns, w[1].to_ns), (10_000_000_000, 20_000_000_000));
        assert_eq!(marks.len(), 1);
        assert_eq!((marks[0].at_ns, marks[0].label.as_str()), (11_000_000_000, "reset pg1-pg2"));
    }

    #[test]
    fn pauses_are_windows_and_the_worlds_own_mark_for_them_is_not_repeated() {
        let s = scenario(
            "[ha]\n[[faults]]\nat = \"5s\"\npause = \"pg2\"\nfor = \"18s\"\n[[faults]]\nat = \"6s\"\nswitchover = \"pg3\"\n",
        );
        let mut m = Metrics::default();
        m.mark(5_000_000_000, MarkKind::Note, "pg2 paused");
        m.mark(7_000_000_000, MarkKind::Failover, "pg3 promoted");
        let t = Timeline::new(&s, &m);
        let pause = t.windows.iter().find(|w| w.kind == WindowKind::Pause).expect("a pause window");
        // It outlasts `duration` (20 s): drawn to its end, in the settle phase.
        assert_eq!((pause.from_ns, pause.to_ns, pause.label.as_str()), (5_000_000_000, 23_000_000_000, "pause pg2"));
        let labels: Vec<&str> = t.marks.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(labels, ["switchover to pg3", "pg3 promoted"]);
    }

    #[test]
    fn series_are_padded_to_the_whole_run_with_gaps_where_nothing_was_sampled() {
        let s = scenario("");
        let mut m = Metrics::default();
        m.commit(500_000_000, 4);
        m.commit(600_000_000, 8);
        m.lag_sample(2_000_000_000, "pg2", 7, [None, None, Some(9)]);
        m.mark(3_000_000_000, MarkKind::Failover, "failover to pg2");
        m.unavailable.invoked(1_000_000_000);
        m.unavailable.finish(2_500_000_000);
        let t = Timeline::new(&s, &m);
        assert_eq!(t.buckets(), 25);
        assert_eq!(t.commits[0], 2);
        assert_eq!(t.commit_latency_mean_ns[0], Some(6));
        assert_eq!(t.commit_latency_max_ns[1], None);
        assert_eq!(t.standbys["pg2"].lag_bytes[1], None);
        assert_eq!(t.standbys["pg2"].lag_bytes[2], Some(7));
        assert_eq!(t.standbys["pg2"].replay_lag_ns[2], Some(9));
        assert_eq!(t.marks[0].kind, MarkKind::Failover);
        let kinds: Vec<_> = t.windows.iter().map(|w| w.kind).collect();
        assert_eq!(kinds, [WindowKind::Unavailable, WindowKind::Settle]);
        assert_eq!(t.windows[0].label, "writes unavailable 1.500 s");
    }
}
