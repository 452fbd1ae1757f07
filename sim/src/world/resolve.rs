//! Managed-service endpoints on the client path (`[endpoints]`, spec ha-and-routing §5.3): a
//! writer and a reader DNS name. The writer record follows the control plane's primary after
//! `update_delay`; each client caches an answer for its lifetime and keeps a connection until it
//! breaks or a query on it fails, so after a failover clients go on reaching the old writer
//! until both have lapsed. One live oracle, `endpoint_rules`: a client connects only to an
//! address DNS gave for that name within the answer's lifetime.

use repsim_engine::{NodeId, Role};

use crate::world::endpoints::{ClientEnd, Endpoint};
use crate::world::event::EventKind;
use crate::world::World;

impl World {
    /// Where an operation through `endpoint` goes for `session`: its open connection if that
    /// still works, else a new one to the cached answer while fresh, else to a new answer.
    pub(crate) fn endpoint_route(&mut self, session: u32, endpoint: Endpoint) -> Option<NodeId> {
        let now = self.now_ns;
        let ends = self.endpoints.as_ref()?;
        let (end, lifetime_ns) = (ends.clients[session as usize][endpoint as usize], ends.spec.answer_lifetime_ns());
        let live = |world: &World, node: NodeId| world.is_up(node).then(|| world.nodes[node as usize].incarnation);
        // The common case, once per operation: the open connection still works.
        if let Some((node, incarnation)) = end.connection {
            if live(self, node) == Some(incarnation) {
                return Some(node);
            }
        }
        let (node, resolved_ns) = match end.cached {
            Some((node, resolved_ns)) if now.saturating_sub(resolved_ns) < lifetime_ns => (node, resolved_ns),
            _ => (self.resolve(endpoint), now),
        };
        let connection = live(self, node).map(|incarnation| (node, incarnation));
        let ends = self.endpoints.as_mut()?;
        ends.stats.connects += 1;
        ends.clients[session as usize][endpoint as usize] = ClientEnd { cached: Some((node, resolved_ns)), connection };
        if endpoint == Endpoint::Writer {
            self.check_writer_answer(session, node, resolved_ns);
        }
        Some(node)
    }

    /// A DNS query for `endpoint`: the writer record, or a running standby for the reader
    /// (Aurora's reader endpoint answers the writer when no reader runs).
    fn resolve(&mut self, endpoint: Endpoint) -> NodeId {
        let readers: Vec<NodeId> = match endpoint {
            Endpoint::Writer => Vec::new(),
            Endpoint::Reader => (0..self.nodes.len() as NodeId)
                .filter(|&n| {
                    self.is_up(n) && self.nodes[n as usize].engine.as_ref().is_some_and(|e| e.role() == Role::Standby)
                })
                .collect(),
        };
        let ends = self.endpoints.as_mut().expect("resolving needs [endpoints]");
        ends.stats.dns_queries += 1;
        match readers.is_empty() {
            true => ends.writer_record,
            false => readers[ends.rng.below(readers.len() as u64) as usize],
        }
    }

    /// A query through `endpoint` failed: the client drops that connection and reconnects
    /// for its next operation (to its cached answer while fresh).
    pub(crate) fn endpoint_failed(&mut self, session: u32, endpoint: Endpoint) {
        let Some(ends) = self.endpoints.as_mut() else { return };
        ends.clients[session as usize][endpoint as usize].connection = None;
        match endpoint {
            Endpoint::Writer => ends.stats.writer_errors += 1,
            Endpoint::Reader => ends.stats.reader_errors += 1,
        }
    }

    /// An operation was sent through the writer endpoint to `node`: counted if the record
    /// names another node by now.
    pub(crate) fn endpoint_sent(&mut self, node: NodeId) {
        let now = self.now_ns;
        let Some(ends) = self.endpoints.as_mut() else { return };
        if node != ends.writer_record {
            ends.stats.stale_writer_ops += 1;
            ends.stats.last_stale_writer_op_ns = Some(now);
        }
    }

    /// The control plane's primary changed (HAProxy's check, or an operator's promotion): the
    /// writer record follows it after `update_delay`.
    pub(crate) fn endpoint_follow(&mut self) {
        let Some(primary) = self.router_primary else { return };
        let Some(ends) = self.endpoints.as_mut() else { return };
        if ends.pending == Some(primary) || (ends.pending.is_none() && ends.writer_record == primary) {
            return;
        }
        ends.pending = Some(primary);
        let at = self.now_ns + ends.spec.update_delay_ns;
        self.schedule(at, EventKind::EndpointUpdate { node: primary });
    }

    pub(crate) fn endpoint_update(&mut self, node: NodeId) {
        let now = self.now_ns;
        let Some(ends) = self.endpoints.as_mut() else { return };
        if ends.pending != Some(node) {
            return; // superseded by a later change
        }
        ends.pending = None;
        if ends.writer_record != node {
            ends.writer_record = node;
            ends.stats.flips.push((now, node));
            ends.history.push((now, node));
            let label = format!("writer endpoint -> {}", self.nodes[node as usize].name);
            self.metrics.mark(now, crate::metrics::MarkKind::Note, label);
        }
    }

    /// `endpoint_rules`: a client connects through the writer endpoint only to an answer the
    /// record gave within the answer's lifetime before now.
    fn check_writer_answer(&mut self, session: u32, node: NodeId, resolved_ns: u64) {
        let now = self.now_ns;
        let Some(ends) = self.endpoints.as_ref() else { return };
        let lifetime_ns = ends.spec.answer_lifetime_ns();
        let from_ns = now.saturating_sub(lifetime_ns);
        if ends.writer_answered(node, from_ns, now) {
            return;
        }
        let name = self.nodes[node as usize].name.clone();
        self.live.record("endpoint_rules", now, || {
            format!(
                "session {session} connected through the writer endpoint to {name}, an answer resolved at {:.3}s that the record did not give within the last {:.3} s",
                resolved_ns as f64 / 1e9,
                lifetime_ns as f64 / 1e9
            )
        });
    }
}
