//! The nemesis's random faults: `[[faults]] random = { rate = "1/10s", kinds = [...] }` expanded,
//! per seed, into concrete faults that the world schedules like the file's own.
//!
//! [`concrete_faults`] is a pure function of `(scenario, seed)`. It draws only from the named
//! stream `faults`, so the same seed gives the same faults, and adding random faults to a
//! scenario does not reshuffle the network, the disks or the workload (nor the other way round).
//!
//! How faults are drawn, per `random` table in file order, all from the one stream:
//! - arrivals are a Poisson process at `rate` over `from..until`: exponential gaps;
//! - at each arrival three draws, always in this order and always made (so that one skipped
//!   fault does not shift the faults after it): the kind (uniform over `kinds`), the node
//!   (uniform over `nodes`), how long the fault lasts (from `for`); a `reset` draws its peer too;
//! - every fault heals itself by `until` (which is at most `duration`): a crash is followed by a
//!   restart, a partition by a heal, a slow disk ends after its window. So the cluster enters
//!   `settle` with no random fault pending;
//! - a fault that would overlap one of the same kind still in force is skipped: a crash of a
//!   node that a random crash already has down, a slow disk already slowed, a pause of a paused
//!   node, a second random partition (of nodes or from the DCS) while one holds (a heal heals
//!   every partition, so overlapping partitions would cut each other short).
//!
//! Kinds: `crash` (then `restart`), `partition` (the node against all the others, then `heal`),
//! `slow_disk` (`factor`, for the drawn length), `reset` (the node's connections to a drawn peer),
//! `pause` (for the drawn length), `partition_dcs` (the node from the DCS, then `heal`).
//!
//! Explicit `[[faults]]` with `at` are kept as written; random faults are merged into them by
//! time (stable: at equal times the explicit fault comes first).

use crate::scenario::model::{Fault, FaultKind, RandomFaultKind, RandomFaults, Scenario};
use crate::world::dist::sample_ns;
use crate::world::rng::stream;

/// The name of the RNG stream random faults draw from.
pub const STREAM: &str = "faults";

/// Every fault of the run with `seed`: the scenario's scheduled faults and its random faults
/// drawn from the `faults` stream, sorted by time (stable).
pub fn concrete_faults(scenario: &Scenario, seed: u64) -> Vec<Fault> {
    if scenario.random_faults.is_empty() {
        return scenario.faults.clone();
    }
    let mut rng = stream(seed, STREAM);
    let mut faults = scenario.faults.clone();
    let node_count = scenario.cluster.nodes.len();
    for spec in &scenario.random_faults {
        expand(spec, node_count, &mut rng, &mut faults);
    }
    faults.sort_by_key(|fault| fault.at_ns);
    faults
}

fn expand(spec: &RandomFaults, node_count: usize, rng: &mut crate::world::rng::Rng, out: &mut Vec<Fault>) {
    let mean_gap_ns = 1e9 / spec.rate_per_sec;
    // When each node's random crash / slow disk ends, and when the random partition heals.
    let mut down_until = vec![0u64; node_count];
    let mut slow_until = vec![0u64; node_count];
    let mut paused_until = vec![0u64; node_count];
    let mut partitioned_until = 0u64;
    let mut t = spec.from_ns as f64;
    let line = spec.line;
    loop {
        t += rng.exponential(mean_gap_ns);
        if t >= spec.until_ns as f64 {
            break;
        }
        let at = t as u64;
        let kind = spec.kinds[rng.below(spec.kinds.len() as u64) as usize];
        let node = spec.nodes[rng.below(spec.nodes.len() as u64) as usize];
        let lasts = sample_ns(&spec.lasts, rng);
        // The reset peer: any other node of the cluster, drawn for every fault (see the module doc).
        let peer_offset = 1 + rng.below(node_count.saturating_sub(1).max(1) as u64) as usize;
        let peer = (node + peer_offset) % node_count;
        let end = at.saturating_add(lasts).min(spec.until_ns);
        let mut push = |at_ns: u64, kind: FaultKind| out.push(Fault { at_ns, kind, line });
        match kind {
            RandomFaultKind::Crash => {
                if down_until[node] > at {
                    continue;
                }
                down_until[node] = end.max(at + 1);
                push(at, FaultKind::Crash { node });
                push(end, FaultKind::Restart { node });
            }
            RandomFaultKind::Partition => {
                if partitioned_until > at {
                    continue;
                }
                partitioned_until = end.max(at + 1);
                let rest: Vec<usize> = (0..node_count).filter(|&n| n != node).collect();
                push(at, FaultKind::Partition { a: vec![node], b: rest, one_way: false });
                push(end, FaultKind::Heal);
            }
            RandomFaultKind::SlowDisk => {
                if slow_until[node] > at {
                    continue;
                }
                let for_ns = (end - at).max(1);
                slow_until[node] = at + for_ns;
                push(at, FaultKind::SlowDisk { node, factor: spec.factor, for_ns });
            }
            RandomFaultKind::PartitionDcs => {
                if partitioned_until > at {
                    continue;
                }
                partitioned_until = end.max(at + 1);
                push(at, FaultKind::PartitionDcs { node });
                push(end, FaultKind::Heal);
            }
            RandomFaultKind::Pause => {
                if paused_until[node] > at {
                    continue;
                }
                let for_ns = (end - at).max(1);
                paused_until[node] = at + for_ns;
                push(at, FaultKind::Pause { node, for_ns });
            }
            RandomFaultKind::DoubleCrash => {
                if down_until[node] > at || down_until[peer] > at || peer == node {
                    continue;
                }
                for n in [node, peer] {
                    down_until[n] = end.max(at + 1);
                    push(at, FaultKind::Crash { node: n });
                }
                for n in [node, peer] {
                    push(end, FaultKind::Restart { node: n });
                }
            }
            RandomFaultKind::FsyncError | RandomFaultKind::LoseDisk => {
                if down_until[node] > at {
                    continue;
                }
                down_until[node] = end.max(at + 1);
                let fault = match kind {
                    RandomFaultKind::FsyncError => FaultKind::FsyncError { node },
                    _ => FaultKind::LoseDisk { node },
                };
                push(at, fault);
                push(end, FaultKind::Restart { node });
            }
            RandomFaultKind::Reset => {
                if peer != node {
                    push(at, FaultKind::Reset { a: node, b: peer });
                }
            }
        }
    }
}

/// When a fault is over: its own time, or the end of a slow disk's window. (A crash or a
/// partition is over at its restart or heal, which are faults of their own.)
pub fn fault_end_ns(fault: &Fault) -> u64 {
    match fault.kind {
        FaultKind::SlowDisk { for_ns, .. } | FaultKind::Pause { for_ns, .. } => fault.at_ns.saturating_add(for_ns),
        _ => fault.at_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_scenario;

    const BASE: &str = r#"
name = "nemesis"
duration = "60s"
settle = "5s"
[cluster]
nodes = ["pg1", "pg2", "pg3"]
primary = "pg1"
[[faults]]
at = "1s"
crash = "pg3"
[[faults]]
random = { rate = "1/5s", kinds = ["crash", "partition", "slow_disk", "reset"] }
"#;

    #[test]
    fn no_random_faults_is_the_scheduled_list_and_draws_nothing() {
        let source = BASE.replace(
            "[[faults]]\nrandom = { rate = \"1/5s\", kinds = [\"crash\", \"partition\", \"slow_disk\", \"reset\"] }\n",
            "",
        );
        let s = parse_scenario(&source, "x.toml", &[]).unwrap();
        assert!(s.random_faults.is_empty());
        assert_eq!(concrete_faults(&s, 7), s.faults);
    }

    #[test]
    fn random_faults_keep_the_scheduled_ones_and_stay_in_the_window() {
        let s = parse_scenario(BASE, "x.toml", &[]).unwrap();
        let faults = concrete_faults(&s, 3);
        assert!(faults.iter().any(|f| f.at_ns == 1_000_000_000 && f.kind == FaultKind::Crash { node: 2 }));
        assert!(faults.len() > 5, "{faults:?}");
        assert!(faults.windows(2).all(|w| w[0].at_ns <= w[1].at_ns));
        assert!(faults.iter().all(|f| fault_end_ns(f) <= s.duration_ns));
        assert!(faults.iter().all(|f| f.line > 0));
    }
}
