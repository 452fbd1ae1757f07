//! Per-node clocks: true simulated time plus an offset and a drift. Leases and lag timestamps
//! read the node's clock; the scheduler runs on true time.

#[derive(Clone, Copy, Debug, Default)]
pub struct NodeClock {
    pub offset_ns: i64,
    pub drift_ppm: f64,
}

impl NodeClock {
    /// The node's reading at true time `true_ns` (never negative).
    pub fn local(&self, true_ns: u64) -> u64 {
        // Converted through i64, one instruction (to i128 it is a library call, on every
        // event): the same value, the drift being bounded (`MAX_CLOCK_DRIFT_PPM` of a u64).
        let drift = (true_ns as f64 * self.drift_ppm / 1e6) as i64;
        (true_ns as i128 + self.offset_ns as i128 + drift as i128).max(0) as u64
    }

    /// The first true time at which the node's clock reads at least `local_ns`.
    pub fn true_time(&self, local_ns: u64) -> u64 {
        let rate = 1.0 + self.drift_ppm / 1e6;
        let behind_ns = local_ns as i128 - self.offset_ns as i128;
        // The same float either way; through i64 where it fits (i128 to float is a library call).
        let behind = i64::try_from(behind_ns).map_or(behind_ns as f64, |b| b as f64);
        let estimate = (behind / rate).max(0.0) as u64;
        // Correct rounding so that local(result) >= local_ns.
        let mut t = estimate.saturating_sub(2);
        while self.local(t) < local_ns {
            t += 1;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_time_inverts_local() {
        let clock = NodeClock { offset_ns: -5_000_000, drift_ppm: 100.0 };
        for local in [10_000_000u64, 1_000_000_000, 60_000_000_000] {
            let t = clock.true_time(local);
            assert!(clock.local(t) >= local);
            assert!(clock.local(t - 1) < local);
        }
    }
}
