//! Client sessions. Open loop: Poisson arrivals queue for a free session, and latency counts
//! from the arrival, so a stall is not hidden by coordinated omission. Closed loop: each session
//! thinks, then issues its next operation. Every write inserts a unique id (so loss is exact)
//! and updates a register key (so staleness is exact). Operations are drawn from the `workload`
//! stream at arrival, so every replication setting sees the same operations for a seed.

use std::collections::VecDeque;

pub use crate::check::history::{Op, INSERT_TABLE, REGISTER_TABLE};
use crate::scenario::model::{Arrival, KeyDistribution, Workload as WorkloadSpec};
use crate::world::dist::sample_ns;
use crate::world::rng::Rng;

/// Open-loop arrivals waiting for a session beyond this are refused (counted, not queued), so
/// an overloaded run stays bounded in memory.
pub const MAX_BACKLOG_OPS: usize = 100_000;

/// An operation and when the application wanted it to start.
#[derive(Clone, Debug)]
pub struct PlannedOp {
    pub op_id: u64,
    pub op: Op,
    pub intended_ns: u64,
    /// A read's run time from its snapshot (`[workload] read_duration`; 0: answered at once).
    pub read_duration_ns: u64,
}

/// Zipfian keys, theta 0.99 (Gray et al., as YCSB draws them).
struct Zipf {
    n: u64,
    /// `0.5^theta`, the second key's share of the first's (a constant, drawn per sample it was
    /// a third of the sampler's time).
    half_pow_theta: f64,
    zeta_n: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64) -> Zipf {
        let theta = 0.99;
        let zeta = |count: u64| (1..=count).map(|i| 1.0 / libm::pow(i as f64, theta)).sum::<f64>();
        let zeta_n = zeta(n);
        let zeta_2 = zeta(2.min(n));
        let eta = (1.0 - libm::pow(2.0 / n as f64, 1.0 - theta)) / (1.0 - zeta_2 / zeta_n);
        Zipf { n, half_pow_theta: libm::pow(0.5, theta), zeta_n, eta }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + self.half_pow_theta {
            return 1.min(self.n - 1);
        }
        let rank = (self.n as f64 * pow_alpha(self.eta * u - self.eta + 1.0)) as u64;
        rank.min(self.n - 1)
    }
}

/// `x^alpha` for YCSB's `alpha = 1 / (1 - theta) = 100`, by squaring: eight multiplications
/// where `libm::pow` was 3 % of a loaded run (it was given `1.0 / (1.0 - 0.99)`, which rounds
/// to 99.99999999999991; the key draws of the swarm's seeds and the shipped scenarios came out
/// the same).
fn pow_alpha(x: f64) -> f64 {
    let x4 = (x * x) * (x * x);
    let x32 = {
        let x8 = x4 * x4;
        let x16 = x8 * x8;
        x16 * x16
    };
    x32 * x32 * x32 * x4
}

pub struct Workload {
    pub spec: WorkloadSpec,
    rng: Rng,
    /// Read durations come from a stream of their own, so the operations drawn do not change
    /// with `read_duration`.
    durations: Rng,
    zipf: Option<Zipf>,
    next_write_id: u64,
    next_op_id: u64,
    /// Sessions with nothing in flight (open loop).
    pub idle_sessions: VecDeque<u32>,
    /// Open-loop arrivals waiting for a session.
    pub backlog: VecDeque<PlannedOp>,
    pub refused_ops: u64,
    pub stopped: bool,
}

impl Workload {
    pub fn new(spec: WorkloadSpec, rng: Rng, durations: Rng) -> Workload {
        let zipf = (spec.key_distribution == KeyDistribution::Zipf).then(|| Zipf::new(spec.keys));
        let idle_sessions = (0..spec.clients).collect();
        Workload {
            spec,
            rng,
            durations,
            zipf,
            next_write_id: 1,
            next_op_id: 1,
            idle_sessions,
            backlog: VecDeque::new(),
            refused_ops: 0,
            stopped: false,
        }
    }

    pub fn is_open_loop(&self) -> bool {
        matches!(self.spec.arrival, Arrival::Open { .. })
    }

    /// Time to the next open-loop arrival.
    pub fn next_arrival_gap_ns(&mut self) -> u64 {
        match self.spec.arrival {
            Arrival::Open { ops_per_sec } => (self.rng.exponential(1e9 / ops_per_sec) as u64).max(1),
            Arrival::Closed { .. } => unreachable!("closed loop has no arrivals"),
        }
    }

    pub fn think_ns(&mut self) -> u64 {
        match &self.spec.arrival {
            Arrival::Closed { think } => sample_ns(think, &mut self.rng),
            Arrival::Open { .. } => 0,
        }
    }

    fn key(&mut self) -> u64 {
        match &self.zipf {
            Some(zipf) => zipf.sample(&mut self.rng),
            None => self.rng.below(self.spec.keys),
        }
    }

    /// Draws the next operation.
    pub fn plan(&mut self, now_ns: u64) -> PlannedOp {
        let op_id = self.next_op_id;
        self.next_op_id += 1;
        let is_write = self.rng.chance(self.spec.write_fraction) || self.spec.write_fraction >= 1.0;
        let key = self.key();
        let mut read_duration_ns = 0;
        let op = if is_write {
            let write_id = self.next_write_id;
            self.next_write_id += 1;
            let commit = !self.rng.chance(self.spec.abort_fraction);
            Op::Write { write_id, key, commit }
        } else {
            if let Some(dist) = &self.spec.read_duration {
                read_duration_ns = sample_ns(dist, &mut self.durations);
            }
            Op::Read { key }
        };
        PlannedOp { op_id, op, intended_ns: now_ns, read_duration_ns }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Dist;
    use crate::world::rng::stream;

    fn spec(distribution: KeyDistribution) -> WorkloadSpec {
        WorkloadSpec {
            clients: 4,
            arrival: Arrival::Closed { think: Dist::Constant { value_ns: 1 } },
            write_fraction: 0.3,
            keys: 1000,
            key_distribution: distribution,
            value_size_bytes: 100,
            abort_fraction: 0.0,
            router: repsim_engine::client::RouterKind::Primary,
            delay_threshold_bytes: 1024 * 1024,
            read_wait_ns: 100_000_000,
            statement_timeout_ns: 0,
            session_synchronous_commit: Vec::new(),
            read_duration: None,
            cancel_after_ns: 0,
            pin_duration_ns: 15_000_000_000,
        }
    }

    #[test]
    fn write_ids_are_unique_and_the_fraction_holds() {
        let mut w = Workload::new(spec(KeyDistribution::Uniform), stream(1, "workload"), stream(1, "read_duration"));
        let mut ids = std::collections::BTreeSet::new();
        let mut writes = 0;
        for _ in 0..10_000 {
            if let Op::Write { write_id, key, .. } = w.plan(0).op {
                assert!(ids.insert(write_id));
                assert!(key < 1000);
                writes += 1;
            }
        }
        assert!((2_700..3_300).contains(&writes), "{writes} writes");
    }

    /// Squaring agrees with `pow` to a few parts in 10^13 across the range the sampler uses.
    #[test]
    fn pow_alpha_is_pow_of_a_hundred() {
        let alpha = 1.0 / (1.0 - 0.99);
        for i in 1..=10_000 {
            let x = 0.7 + 0.3 * f64::from(i) / 10_000.0;
            let (ours, theirs) = (pow_alpha(x), libm::pow(x, alpha));
            assert!((ours - theirs).abs() <= theirs * 1e-12, "{x}: {ours} vs {theirs}");
        }
    }

    #[test]
    fn zipf_concentrates_on_the_first_keys() {
        let mut w = Workload::new(spec(KeyDistribution::Zipf), stream(1, "workload"), stream(1, "read_duration"));
        let mut hot = 0;
        let total = 20_000;
        for _ in 0..total {
            let key = match w.plan(0).op {
                Op::Write { key, .. } | Op::Read { key } => key,
            };
            assert!(key < 1000);
            hot += (key < 10) as u32;
        }
        // Uniform would put 1% on the first 10 keys; zipf(0.99) over 1000 puts about 39%.
        assert!(hot > total / 4, "only {hot} of {total} on the hottest keys");
    }
}
