//! Measurements: latency histograms (hdrhistogram), per-standby lag, per-second time series,
//! marks (failovers, role changes) for the plots, and the longest window with no acknowledged
//! write while clients were asking.
//!
//! Memory is bounded whatever the run length: histograms have fixed bounds, and every series
//! holds one value per `BUCKET_NS` of simulated time (a few bytes a second).

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Lag and time-series sampling period.
pub const SAMPLE_INTERVAL_NS: u64 = 100_000_000;
pub const BUCKET_NS: u64 = 1_000_000_000;

fn histogram() -> Histogram<u64> {
    // 1 ns .. 1 hour at 3 significant digits: bounded memory whatever the run length.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds")
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub p9999: u64,
    pub max: u64,
}

impl Percentiles {
    /// `(quantile, label, value)` for p50 … p99.99, in order: what `latency.svg` marks.
    pub fn labelled(&self) -> [(f64, &'static str, u64); 5] {
        [
            (0.5, "p50", self.p50),
            (0.9, "p90", self.p90),
            (0.99, "p99", self.p99),
            (0.999, "p99.9", self.p999),
            (0.9999, "p99.99", self.p9999),
        ]
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Spread {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

pub struct Recorder(Histogram<u64>);

impl Default for Recorder {
    fn default() -> Self {
        Recorder(histogram())
    }
}

impl Recorder {
    pub fn record(&mut self, value: u64) {
        self.0.saturating_record(value);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    fn at(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    /// The value at quantile `q` (0..=1); 0 when nothing was recorded.
    pub fn value_at_quantile(&self, q: f64) -> u64 {
        self.at(q)
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.at(0.5),
            p90: self.at(0.9),
            p99: self.at(0.99),
            p999: self.at(0.999),
            p9999: self.at(0.9999),
            max: self.0.max(),
        }
    }

    /// The percentile spectrum for a plot: `(quantile, value)` at `per_decade` points per
    /// decade of `1 / (1 - q)`, from q = 0 to q = 0.9999; empty when nothing was recorded.
    pub fn quantile_curve(&self, per_decade: u32) -> Vec<(f64, u64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        let steps = 4 * per_decade;
        (0..=steps)
            .map(|i| {
                let nines = f64::from(i) / f64::from(per_decade);
                let q = 1.0 - libm::pow(10.0, -nines);
                (q, self.at(q))
            })
            .collect()
    }

    pub fn spread(&self) -> Spread {
        Spread { p50: self.at(0.5), p99: self.at(0.99), max: self.0.max() }
    }
}

/// Lag of one standby as the primary's `pg_stat_replication` shows it.
#[derive(Default)]
pub struct StandbyLag {
    pub lag_bytes: Recorder,
    pub write_lag_ns: Recorder,
    pub flush_lag_ns: Recorder,
    pub replay_lag_ns: Recorder,
    /// Per-second maximum lag in bytes (0 also where there was no sample: see
    /// `samples_series`).
    pub lag_bytes_series: Vec<u64>,
    /// Per-second number of samples: 0 where the standby had no `pg_stat_replication` row
    /// (disconnected, or the primary was down), so the plots leave a gap instead of a zero.
    pub samples_series: Vec<u32>,
    /// Per-second maximum of `write_lag`, `flush_lag`, `replay_lag` (PostgreSQL's lag times;
    /// `None` where the primary reported none, as `pg_stat_replication` shows NULL).
    pub write_lag_ns_series: Vec<Option<u64>>,
    pub flush_lag_ns_series: Vec<Option<u64>>,
    pub replay_lag_ns_series: Vec<Option<u64>>,
}

/// What a mark on the time axis stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    /// A standby was promoted and the cluster moved to it.
    Failover,
    /// A node changed role (promoted, demoted, rewound, re-cloned).
    RoleChange,
    /// A fault that is an instant rather than a window (a connection reset).
    Fault,
    /// Anything else worth a line on the plots.
    Note,
}

/// An instant worth marking on every time plot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Mark {
    pub at_ns: u64,
    pub kind: MarkKind,
    pub label: String,
}

#[derive(Default)]
pub struct Metrics {
    pub commit_latency_ns: Recorder,
    pub read_latency_ns: Recorder,
    pub commits: u64,
    pub rollbacks: u64,
    pub reads: u64,
    pub failed_ops: u64,
    pub indeterminate_ops: u64,
    /// Commits whose wait for standbys `statement_timeout` cancelled (PostgreSQL reports them
    /// committed, with a warning): durable on the primary only.
    pub committed_locally_unconfirmed: u64,
    /// Cancel requests clients sent (`[workload] cancel_after`).
    pub cancel_requests: u64,
    /// Standby queries cancelled by replay ("conflict with recovery").
    pub standby_queries_cancelled: u64,
    /// Cleanup records whose replay waited for or cancelled standby queries, and the longest
    /// such wait.
    pub replay_conflict_waits: u64,
    pub replay_conflict_wait_max_ns: u64,
    /// The archive's lag behind the application's primary, sampled once a second: bytes of
    /// flushed WAL not archived, and (as `replay_lag_ns`) the age of the oldest WAL not
    /// archived.
    pub archive_lag: StandbyLag,
    /// The most WAL the application's primary held in `pg_wal` at a sample.
    pub pg_wal_max_bytes: u64,
    /// The most dead row versions a primary's cleanup found at once (bloat behind the `xmin`
    /// horizon when it had to keep them).
    pub dead_row_versions_max: u64,
    pub commits_series: Vec<u32>,
    pub reads_series: Vec<u32>,
    pub standbys: BTreeMap<String, StandbyLag>,
    pub unavailable: Unavailability,
    /// Per-second maximum and sum of commit latencies (with `commits_series`, the mean).
    pub commit_latency_max_series: Vec<u64>,
    pub commit_latency_sum_series: Vec<u64>,
    /// Failovers, role changes and other instants for the plots, in time order.
    pub marks: Vec<Mark>,
}

/// The bucket of `at_ns` in `series`, growing it (with `T::default()`) as needed.
fn slot<T: Clone + Default>(series: &mut Vec<T>, at_ns: u64) -> &mut T {
    let bucket = (at_ns / BUCKET_NS) as usize;
    if series.len() <= bucket {
        series.resize(bucket + 1, T::default());
    }
    &mut series[bucket]
}

fn bump(series: &mut Vec<u32>, at_ns: u64) {
    *slot(series, at_ns) += 1;
}

fn keep_max(series: &mut Vec<Option<u64>>, at_ns: u64, value: Option<u64>) {
    let cell = slot(series, at_ns);
    if let Some(v) = value {
        *cell = Some(cell.map_or(v, |c| c.max(v)));
    }
}

impl Metrics {
    pub fn commit(&mut self, now_ns: u64, latency_ns: u64) {
        self.commits += 1;
        self.commit_latency_ns.record(latency_ns);
        bump(&mut self.commits_series, now_ns);
        let max = slot(&mut self.commit_latency_max_series, now_ns);
        *max = (*max).max(latency_ns);
        *slot(&mut self.commit_latency_sum_series, now_ns) += latency_ns;
    }

    /// Marks an instant (a failover, a role change) on the plots.
    pub fn mark(&mut self, at_ns: u64, kind: MarkKind, label: impl Into<String>) {
        self.marks.push(Mark { at_ns, kind, label: label.into() });
    }

    pub fn read(&mut self, now_ns: u64, latency_ns: u64) {
        self.reads += 1;
        self.read_latency_ns.record(latency_ns);
        bump(&mut self.reads_series, now_ns);
    }

    pub fn lag_sample(&mut self, now_ns: u64, standby: &str, lag_bytes: u64, lags_ns: [Option<u64>; 3]) {
        self.standbys.entry(standby.to_string()).or_default().sample(now_ns, lag_bytes, lags_ns);
    }
}

impl StandbyLag {
    /// One sample: lag in bytes, and write, flush and replay lag in time.
    pub fn sample(&mut self, now_ns: u64, lag_bytes: u64, lags_ns: [Option<u64>; 3]) {
        let entry = self;
        entry.lag_bytes.record(lag_bytes);
        let recorders = [&mut entry.write_lag_ns, &mut entry.flush_lag_ns, &mut entry.replay_lag_ns];
        for (recorder, lag) in recorders.into_iter().zip(lags_ns) {
            if let Some(lag) = lag {
                recorder.record(lag);
            }
        }
        let max = slot(&mut entry.lag_bytes_series, now_ns);
        *max = (*max).max(lag_bytes);
        *slot(&mut entry.samples_series, now_ns) += 1;
        keep_max(&mut entry.write_lag_ns_series, now_ns, lags_ns[0]);
        keep_max(&mut entry.flush_lag_ns_series, now_ns, lags_ns[1]);
        keep_max(&mut entry.replay_lag_ns_series, now_ns, lags_ns[2]);
    }
}

/// The shortest stretch without an acknowledged write (while writes wait) that counts as an
/// outage: 100 ms, ten times a typical local commit and shorter than any switchover. Shorter
/// gaps between acknowledgements are ordinary commit latency (an fsync tail), not
/// unavailability.
pub const OUTAGE_MIN_NS: u64 = 100_000_000;

/// RTO as clients feel it: the longest stretch ending at a write acknowledgement (or at the end
/// of the run) that began when a write was asked for after the last acknowledgement, during
/// which none was acknowledged. Failed writes do not end it: the clients were still asking.
/// Reported as unavailability only from `OUTAGE_MIN_NS` on.
#[derive(Default)]
pub struct Unavailability {
    last_ack_ns: u64,
    /// Writes in flight.
    outstanding: u64,
    /// Start of the current window without acknowledgements, if a write is waiting or failed.
    window_start_ns: Option<u64>,
    pub longest_ns: u64,
    /// When the longest window started.
    pub longest_from_ns: u64,
}

impl Unavailability {
    pub fn invoked(&mut self, invoke_ns: u64) {
        self.outstanding += 1;
        if self.window_start_ns.is_none() {
            self.window_start_ns = Some(invoke_ns.max(self.last_ack_ns));
        }
    }

    /// A write finished; `acked` if it was acknowledged as committed.
    pub fn finished(&mut self, now_ns: u64, acked: bool) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if acked {
            self.close_window(now_ns);
            self.last_ack_ns = now_ns;
            self.window_start_ns = (self.outstanding > 0).then_some(now_ns);
        }
    }

    fn close_window(&mut self, now_ns: u64) {
        let Some(from) = self.window_start_ns else {
            return;
        };
        if now_ns.saturating_sub(from) > self.longest_ns {
            self.longest_ns = now_ns - from;
            self.longest_from_ns = from;
        }
    }

    /// The longest gap if it is an outage (at least `OUTAGE_MIN_NS`), else 0.
    pub fn outage_ns(&self) -> u64 {
        if self.longest_ns >= OUTAGE_MIN_NS {
            self.longest_ns
        } else {
            0
        }
    }

    /// When a write was last acknowledged.
    pub fn last_ack_ns(&self) -> u64 {
        self.last_ack_ns
    }

    /// The run ends: a window still open counts up to `now_ns`.
    pub fn finish(&mut self, now_ns: u64) {
        self.close_window(now_ns);
    }
}

#[cfg(test)]
mod series_tests {
    use super::*;

    #[test]
    fn commit_series_sum_to_the_totals() {
        let mut m = Metrics::default();
        m.commit(100, 5);
        m.commit(999_999_999, 7);
        m.commit(2_500_000_000, 3);
        assert_eq!(m.commits_series, vec![2, 0, 1]);
        assert_eq!(m.commit_latency_max_series, vec![7, 0, 3]);
        assert_eq!(m.commit_latency_sum_series.iter().sum::<u64>(), 15);
        assert_eq!(m.commits_series.iter().map(|&c| u64::from(c)).sum::<u64>(), m.commits);
    }

    #[test]
    fn lag_series_keep_the_maximum_and_know_where_there_was_no_sample() {
        let mut m = Metrics::default();
        m.lag_sample(100_000_000, "pg2", 10, [Some(1), None, Some(30)]);
        m.lag_sample(200_000_000, "pg2", 50, [Some(2), None, Some(20)]);
        m.lag_sample(2_100_000_000, "pg2", 5, [None, None, None]);
        let s = &m.standbys["pg2"];
        assert_eq!(s.lag_bytes_series, vec![50, 0, 5]);
        assert_eq!(s.samples_series, vec![2, 0, 1]);
        assert_eq!(s.replay_lag_ns_series, vec![Some(30), None, None]);
        assert_eq!(s.write_lag_ns_series, vec![Some(2), None, None]);
        assert_eq!(s.flush_lag_ns_series, vec![None, None, None]);
    }

    #[test]
    fn the_quantile_curve_runs_from_the_median_side_to_four_nines() {
        let mut r = Recorder::default();
        for v in 1..=100_000 {
            r.record(v);
        }
        let curve = r.quantile_curve(5);
        assert_eq!(curve.len(), 21);
        assert_eq!(curve[0].0, 0.0);
        assert!((curve[20].0 - 0.9999).abs() < 1e-9);
        assert!(curve.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(curve[20].1, r.percentiles().p9999);
    }
}

#[cfg(test)]
mod zero_tests {
    use super::*;

    #[test]
    fn zero_is_recorded_as_zero() {
        let mut r = Recorder::default();
        r.record(0);
        r.record(0);
        r.record(5);
        assert_eq!(r.spread().p50, 0);
        assert_eq!(r.spread().max, 5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailability_is_the_longest_gap_with_waiting_writes() {
        let mut u = Unavailability::default();
        u.invoked(0);
        u.finished(10, true);
        // Nothing outstanding from 10 to 100: not unavailable.
        u.invoked(100);
        u.invoked(150);
        u.finished(600, false); // failed: no ack, the window stays open
        u.finished(700, true); // window 100..700
        u.invoked(800);
        u.finish(900); // window 800..900 still open
        assert_eq!(u.longest_ns, 600);
        assert_eq!(u.longest_from_ns, 100);
        assert_eq!(u.outage_ns(), 0, "600 ns between acknowledgements is latency, not an outage");
        u.invoked(1_000);
        u.finished(1_000 + OUTAGE_MIN_NS, true);
        assert!(u.outage_ns() >= OUTAGE_MIN_NS, "{}", u.outage_ns());
    }

    #[test]
    fn percentiles_are_ordered() {
        let mut r = Recorder::default();
        for v in 1..=1000 {
            r.record(v * 1000);
        }
        let p = r.percentiles();
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max);
        assert!((p.p50 as i64 - 500_000).abs() < 1_000);
    }
}
