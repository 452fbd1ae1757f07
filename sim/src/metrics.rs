//! Measurements: latency histograms (hdrhistogram), per-standby lag, per-second time series,
//! and the longest window with no acknowledged write while clients were asking.

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

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
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

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            p50: self.at(0.5),
            p90: self.at(0.9),
            p99: self.at(0.99),
            p999: self.at(0.999),
            max: self.0.max(),
        }
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
    /// Per-second maximum lag in bytes.
    pub lag_bytes_series: Vec<u64>,
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
    pub commits_series: Vec<u32>,
    pub reads_series: Vec<u32>,
    pub standbys: BTreeMap<String, StandbyLag>,
    pub unavailable: Unavailability,
}

fn bump(series: &mut Vec<u32>, at_ns: u64) {
    let bucket = (at_ns / BUCKET_NS) as usize;
    if series.len() <= bucket {
        series.resize(bucket + 1, 0);
    }
    series[bucket] += 1;
}

impl Metrics {
    pub fn commit(&mut self, now_ns: u64, latency_ns: u64) {
        self.commits += 1;
        self.commit_latency_ns.record(latency_ns);
        bump(&mut self.commits_series, now_ns);
    }

    pub fn read(&mut self, now_ns: u64, latency_ns: u64) {
        self.reads += 1;
        self.read_latency_ns.record(latency_ns);
        bump(&mut self.reads_series, now_ns);
    }

    pub fn lag_sample(&mut self, now_ns: u64, standby: &str, lag_bytes: u64, lags_ns: [Option<u64>; 3]) {
        let entry = self.standbys.entry(standby.to_string()).or_default();
        entry.lag_bytes.record(lag_bytes);
        let recorders = [&mut entry.write_lag_ns, &mut entry.flush_lag_ns, &mut entry.replay_lag_ns];
        for (recorder, lag) in recorders.into_iter().zip(lags_ns) {
            if let Some(lag) = lag {
                recorder.record(lag);
            }
        }
        let bucket = (now_ns / BUCKET_NS) as usize;
        if entry.lag_bytes_series.len() <= bucket {
            entry.lag_bytes_series.resize(bucket + 1, 0);
        }
        entry.lag_bytes_series[bucket] = entry.lag_bytes_series[bucket].max(lag_bytes);
    }
}

/// RTO as clients feel it: the longest stretch ending at a write acknowledgement (or at the end
/// of the run) that began when a write was asked for after the last acknowledgement, during
/// which none was acknowledged. Failed writes do not end it: the clients were still asking.
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

    /// The run ends: a window still open counts up to `now_ns`.
    pub fn finish(&mut self, now_ns: u64) {
        self.close_window(now_ns);
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
