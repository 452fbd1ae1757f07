//! Sampling the scenario's latency distributions.

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
