//! Sampling the scenario's latency distributions, and the time bytes take at a bandwidth.

use crate::scenario::model::Dist;
use crate::world::rng::Rng;

pub fn sample_ns(dist: &Dist, rng: &mut Rng) -> u64 {
    let value = match *dist {
        Dist::Constant { value_ns } => return value_ns,
        Dist::Uniform { min_ns, max_ns } => return min_ns + rng.below(max_ns - min_ns + 1),
        Dist::Normal { mean_ns, stddev_ns } => mean_ns as f64 + stddev_ns as f64 * rng.std_normal(),
        Dist::LogNormal { mu, sigma, .. } => libm::exp(mu + sigma * rng.std_normal()),
        Dist::Pareto { min_ns, alpha } => min_ns as f64 * libm::pow(1.0 - rng.unit(), -1.0 / alpha),
    };
    // Clamped at zero, and at an hour so a heavy tail cannot overflow simulated time.
    value.clamp(0.0, 3.6e12) as u64
}

/// How long `bytes` take at `bytes_per_sec` (0 counts as 1), rounded down: in 64 bits where
/// the product fits (any realistic size; a 128-bit division is a library call, made on every
/// message and disk write), else in 128.
pub fn transfer_ns(bytes: u64, bytes_per_sec: u64) -> u64 {
    let rate = bytes_per_sec.max(1);
    match bytes.checked_mul(1_000_000_000) {
        Some(scaled) => scaled / rate,
        None => (u128::from(bytes) * 1_000_000_000 / u128::from(rate)) as u64,
    }
}

/// The distribution's median, for reports.
pub fn median_ns(dist: &Dist) -> u64 {
    match *dist {
        Dist::Constant { value_ns } => value_ns,
        Dist::Uniform { min_ns, max_ns } => (min_ns + max_ns) / 2,
        Dist::Normal { mean_ns, .. } => mean_ns,
        Dist::LogNormal { p50_ns, .. } => p50_ns,
        Dist::Pareto { min_ns, alpha } => (min_ns as f64 * libm::pow(2.0, 1.0 / alpha)) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::rng::stream;

    /// The 64-bit path gives what the 128-bit formula does, on both sides of where it stops.
    #[test]
    fn transfer_time_is_the_128_bit_formula() {
        let wide = |bytes: u64, rate: u64| (u128::from(bytes) * 1_000_000_000 / u128::from(rate.max(1))) as u64;
        let fits = u64::MAX / 1_000_000_000;
        for bytes in [0, 1, 8_192, 1 << 40, fits, fits + 1, u64::MAX] {
            for rate in [0, 1, 3, 125_000_000, u64::MAX] {
                assert_eq!(transfer_ns(bytes, rate), wide(bytes, rate), "{bytes} bytes at {rate}/s");
            }
        }
    }

    fn quantile(dist: &Dist, q: f64) -> u64 {
        let mut rng = stream(7, "dist-test");
        let mut samples: Vec<u64> = (0..20_000).map(|_| sample_ns(dist, &mut rng)).collect();
        samples.sort_unstable();
        samples[(q * samples.len() as f64) as usize]
    }

    #[test]
    fn lognormal_hits_its_p50_and_p99() {
        let dist = Dist::log_normal(1_000_000, 8_000_000);
        let p50 = quantile(&dist, 0.5) as f64;
        let p99 = quantile(&dist, 0.99) as f64;
        assert!((p50 / 1e6 - 1.0).abs() < 0.05, "p50 {p50}");
        assert!((p99 / 8e6 - 1.0).abs() < 0.15, "p99 {p99}");
    }

    #[test]
    fn uniform_stays_in_range_and_normal_is_clamped() {
        let mut rng = stream(1, "d");
        for _ in 0..1000 {
            let v = sample_ns(&Dist::Uniform { min_ns: 10, max_ns: 20 }, &mut rng);
            assert!((10..=20).contains(&v));
        }
        let normal = Dist::Normal { mean_ns: 10, stddev_ns: 1_000 };
        assert!(quantile(&normal, 0.1) == 0);
    }

    #[test]
    fn pareto_never_goes_below_its_minimum() {
        let dist = Dist::Pareto { min_ns: 1_000, alpha: 1.5 };
        assert!(quantile(&dist, 0.0) >= 1_000);
        assert!(quantile(&dist, 0.999) > 10_000);
    }
}
