//! The HA side of the world: one Patroni-style agent per node (`repsim_engine::ha`), the DCS as
//! a network endpoint, leader-race probes between agents, the HAProxy health check clients use
//! to find the primary, and what the agents ask of PostgreSQL (start, promote, demote, follow,
//! rewind, re-clone, graceful stop).

use repsim_engine::ha::{DcsOp, DcsResult, HaAgent, HaConfig, MemberState};
use repsim_engine::{Instant, NodeId};

use crate::scenario::model::Ha;
use crate::world::dcs::Dcs;

/// Bytes on the wire of one agent or DCS message (a small JSON body over HTTP/gRPC).
pub const HA_MESSAGE_BYTES: u64 = 300;

#[derive(Clone, Debug)]
pub enum HaMsg {
    DcsRequest {
        request: u64,
        op: DcsOp,
    },
    DcsReply {
        request: u64,
        result: DcsResult,
    },
    /// The DCS watch: the leader key changed.
    Watch,
    Probe {
        request: u64,
    },
    ProbeReply {
        request: u64,
        state: MemberState,
    },
}

pub struct HaWorld {
    pub spec: Ha,
    pub dcs: Dcs,
    /// The DCS's network endpoint: one past the last node.
    pub dcs_endpoint: NodeId,
    /// One per node; `None` while the host is down.
    pub agents: Vec<Option<HaAgent>>,
    /// Bumped when an agent dies, so its pending ticks are dropped.
    pub agent_incarnation: Vec<u64>,
}

impl HaWorld {
    /// Agents run on every node but the `spares` (switched off: a node that is off runs no
    /// agent; one starts when the spare is added).
    pub fn new(spec: Ha, names: &[String], primary: usize, spares: &[usize]) -> HaWorld {
        let n = names.len();
        let mut world = HaWorld {
            dcs: Dcs::new(spec.ttl_ns, Some(names[primary].clone()), 0),
            dcs_endpoint: n as NodeId,
            agents: (0..n).map(|_| None).collect(),
            agent_incarnation: vec![0; n],
            spec,
        };
        for node in (0..n).filter(|node| !spares.contains(node)) {
            let mut agent = HaAgent::new(world.agent_config(names, node));
            if node == primary {
                // Bootstrap: the initial primary took the leader key at time 0.
                agent.leader_until = Some(Instant(world.spec.ttl_ns));
            }
            world.agents[node] = Some(agent);
        }
        world
    }

    pub fn agent_config(&self, names: &[String], node: usize) -> HaConfig {
        let s = &self.spec;
        HaConfig {
            name: names[node].clone(),
            node: node as NodeId,
            members: names.iter().enumerate().map(|(i, n)| (n.clone(), i as NodeId)).collect(),
            ttl_ns: s.ttl_ns,
            loop_wait_ns: s.loop_wait_ns,
            retry_timeout_ns: s.retry_timeout_ns,
            maximum_lag_on_failover_bytes: s.maximum_lag_on_failover_bytes,
            synchronous_mode: s.synchronous_mode,
            synchronous_mode_strict: s.synchronous_mode_strict,
            nofailover: s.nofailover.contains(&node),
            failover_priority: s.failover_priority[node],
            use_pg_rewind: s.use_pg_rewind,
            remove_data_directory_on_rewind_failure: s.remove_data_directory_on_rewind_failure,
        }
    }
}
