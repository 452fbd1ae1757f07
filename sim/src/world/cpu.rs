//! A node's CPUs. Client statements run on `cpus` cores shared by all backends (an M/G/c queue:
//! work starts on the first free core, in arrival order). Single processes (a walsender, a
//! walreceiver, the startup process that replays WAL) run their work one piece at a time, so a
//! busy primary can outrun a standby's single-threaded replay, as on real servers.

use std::collections::BTreeMap;

use repsim_engine::NodeId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// The walsender (or walreceiver) process sending to a peer.
    Sender(NodeId),
    /// The process reading the connection from a peer.
    Connection(NodeId),
    /// The startup process: recovery and replay.
    Startup,
}

#[derive(Clone, Debug)]
pub struct Cpu {
    /// When each core is next free.
    cores_free_at_ns: Vec<u64>,
    lanes: BTreeMap<Lane, u64>,
    pub busy_ns: u64,
}

impl Cpu {
    pub fn new(cores: u32) -> Cpu {
        assert!(cores > 0);
        Cpu { cores_free_at_ns: vec![0; cores as usize], lanes: BTreeMap::new(), busy_ns: 0 }
    }

    /// Runs `cost_ns` of backend work arriving now; returns when it finishes.
    pub fn backend(&mut self, now_ns: u64, cost_ns: u64) -> u64 {
        let (index, free_at) =
            self.cores_free_at_ns.iter().copied().enumerate().min_by_key(|&(i, t)| (t, i)).expect("at least one core");
        let done = now_ns.max(free_at) + cost_ns;
        self.cores_free_at_ns[index] = done;
        self.busy_ns += cost_ns;
        done
    }

    /// Runs `cost_ns` of work on a single-process lane, after the lane's earlier work.
    pub fn lane(&mut self, lane: Lane, now_ns: u64, cost_ns: u64) -> u64 {
        let busy = self.lanes.entry(lane).or_insert(0);
        let done = now_ns.max(*busy) + cost_ns;
        *busy = done;
        self.busy_ns += cost_ns;
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_run_in_parallel_then_queue() {
        let mut cpu = Cpu::new(2);
        assert_eq!(cpu.backend(0, 10), 10);
        assert_eq!(cpu.backend(0, 10), 10);
        assert_eq!(cpu.backend(0, 10), 20);
        assert_eq!(cpu.backend(100, 10), 110);
    }

    #[test]
    fn a_lane_is_serial() {
        let mut cpu = Cpu::new(8);
        assert_eq!(cpu.lane(Lane::Startup, 0, 5), 5);
        assert_eq!(cpu.lane(Lane::Startup, 1, 5), 10);
        assert_eq!(cpu.lane(Lane::Sender(1), 1, 0), 1);
    }
}
