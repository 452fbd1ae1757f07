//! The network: TCP-like connections between nodes. While up, a link is ordered and reliable;
//! it charges latency (a distribution per link), bandwidth (FIFO serialisation) and loss (each
//! loss costs a retransmission timeout, 200 ms doubling, and blocks everything behind it).
//! Partitions hold traffic until healed (TCP keeps retransmitting), unless the connection is
//! reset meanwhile. A connection is identified by an epoch per node pair: a reset, a close or a
//! crash starts a new epoch and everything still in flight on the old one is dropped.

use repsim_engine::NodeId;

use crate::scenario::model::{Dist, Network as NetworkSpec};
use crate::world::dist::{sample_ns, transfer_ns};
use crate::world::rng::Rng;

/// Bytes of TCP/IP headers per message.
pub const HEADER_OVERHEAD_BYTES: u64 = 40;
/// Linux's minimum and maximum retransmission timeouts.
pub const RTO_MIN_NS: u64 = 200_000_000;
pub const RTO_MAX_NS: u64 = 120_000_000_000;

/// What the network carries. It knows a payload only by its size on the wire and by the
/// in-band notice that a connection is gone (FIN or RST, so that it arrives before anything
/// sent on the next connection); the payload types live with their owners (`world::wire`).
pub trait Payload {
    fn wire_bytes(&self) -> u64;
    fn reset() -> Self;
    fn is_reset(&self) -> bool;
}

#[derive(Clone, Debug)]
struct LinkParams {
    latency: Dist,
    bandwidth_bytes_per_sec: u64,
    loss: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct LinkState {
    serial_free_at_ns: u64,
    /// In-order delivery holds per connection: the epoch of the last packet sent on this
    /// link, and when it arrives.
    last_epoch: u64,
    last_delivery_ns: u64,
    blocked: bool,
}

/// A packet held by a partition.
#[derive(Clone, Debug)]
pub struct Held<P> {
    pub from: NodeId,
    pub to: NodeId,
    pub epoch: u64,
    pub sent_at_ns: u64,
    pub packet: P,
}

pub struct Network<P> {
    nodes: usize,
    params: Vec<LinkParams>,
    state: Vec<LinkState>,
    /// Current epoch per unordered pair.
    epoch: Vec<u64>,
    /// Each endpoint's idea of its connection's epoch, per directed pair.
    view: Vec<u64>,
    /// After `from` closed its connection to `to` (FIN), data `from` had already sent on the old
    /// epoch is still delivered: per directed pair, that old epoch.
    fin_epoch: Vec<Option<u64>>,
    held: Vec<Held<P>>,
    rng: Rng,
    pub bytes_sent: u64,
    pub client_latency: Dist,
    /// Per node, where `[node.NAME] client_latency` overrides `client_latency`.
    pub client_latency_by_node: Vec<Option<Dist>>,
}

/// When and on which epoch a packet arrives.
pub struct Delivery {
    pub at_ns: u64,
    pub epoch: u64,
}

impl<P: Payload> Network<P> {
    pub fn new(spec: &NetworkSpec, nodes: usize, rng: Rng) -> Network<P> {
        let mut params = vec![
            LinkParams {
                latency: spec.latency.clone(),
                bandwidth_bytes_per_sec: spec.bandwidth_bytes_per_sec,
                loss: spec.loss,
            };
            nodes * nodes
        ];
        for link in &spec.links {
            let (a, b) = link.between;
            for index in [a * nodes + b, b * nodes + a] {
                let p = &mut params[index];
                if let Some(latency) = &link.latency {
                    p.latency = latency.clone();
                }
                if let Some(bandwidth) = link.bandwidth_bytes_per_sec {
                    p.bandwidth_bytes_per_sec = bandwidth;
                }
                if let Some(loss) = link.loss {
                    p.loss = loss;
                }
            }
        }
        Network {
            nodes,
            params,
            state: vec![LinkState::default(); nodes * nodes],
            epoch: vec![0; nodes * nodes],
            view: vec![0; nodes * nodes],
            fin_epoch: vec![None; nodes * nodes],
            held: Vec::new(),
            rng,
            bytes_sent: 0,
            client_latency: spec.client_latency.clone(),
            client_latency_by_node: Vec::new(),
        }
    }

    fn link(&self, from: NodeId, to: NodeId) -> usize {
        from as usize * self.nodes + to as usize
    }

    fn pair(&self, a: NodeId, b: NodeId) -> usize {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        self.link(lo, hi)
    }

    pub fn current_epoch(&self, a: NodeId, b: NodeId) -> u64 {
        self.epoch[self.pair(a, b)]
    }

    /// Sends on `from`'s view of the connection. `None` when a partition holds it.
    pub fn send(&mut self, now_ns: u64, from: NodeId, to: NodeId, packet: P) -> Option<(Delivery, P)> {
        let epoch = self.view[self.link(from, to)];
        self.send_on_epoch(now_ns, from, to, epoch, packet, now_ns)
    }

    fn send_on_epoch(
        &mut self,
        now_ns: u64,
        from: NodeId,
        to: NodeId,
        epoch: u64,
        packet: P,
        sent_at_ns: u64,
    ) -> Option<(Delivery, P)> {
        let index = self.link(from, to);
        if self.state[index].blocked {
            self.held.push(Held { from, to, epoch, sent_at_ns, packet });
            return None;
        }
        let bytes = HEADER_OVERHEAD_BYTES + packet.wire_bytes();
        self.bytes_sent += bytes;
        let params = &self.params[index];
        let serial_ns = transfer_ns(bytes, params.bandwidth_bytes_per_sec);
        let latency_ns = sample_ns(&params.latency, &mut self.rng);
        let mut retransmit_ns = 0;
        let mut rto = RTO_MIN_NS;
        let loss = params.loss;
        while self.rng.chance(loss) && rto <= RTO_MAX_NS {
            retransmit_ns += rto;
            rto *= 2;
        }
        let state = &mut self.state[index];
        let start = now_ns.max(state.serial_free_at_ns);
        state.serial_free_at_ns = start + serial_ns;
        let mut at_ns = state.serial_free_at_ns + latency_ns + retransmit_ns;
        // TCP delivers in order within a connection: a late (retransmitted) packet holds back
        // those behind it on the same connection, the FIN that closes it included (it is sent
        // on the connection it closes). A new connection is not held back by the old one's
        // retransmissions: its handshake is a socket of its own (swarm seed 4190: a standby's
        // reconnect queued 15 s behind the FIN of a connection stuck in retransmission). A
        // restart's notice (RST) is sent on the new epoch and waits for what went before.
        if epoch == state.last_epoch || (epoch > state.last_epoch && packet.is_reset()) {
            at_ns = at_ns.max(state.last_delivery_ns);
        }
        if epoch >= state.last_epoch {
            state.last_epoch = epoch;
            state.last_delivery_ns = at_ns;
        }
        Some((Delivery { at_ns, epoch }, packet))
    }

    /// Sends on the pair's current connection whatever the sender believed: a request that
    /// opens its own connection (HTTP to the DCS or to an agent's REST API).
    pub fn send_fresh(&mut self, now_ns: u64, from: NodeId, to: NodeId, packet: P) -> Option<(Delivery, P)> {
        let epoch = self.current_epoch(from, to);
        self.send_on_epoch(now_ns, from, to, epoch, packet, now_ns)
    }

    /// A packet arriving now is accepted only on the connection's current epoch, or on the one
    /// its sender closed (FIN: data sent before it is still delivered) while the receiver still
    /// reads that connection. A receiver that lost power since has no socket for it: TCP
    /// answers such data with RST, and a new process never sees it.
    pub fn accepts(&self, from: NodeId, to: NodeId, epoch: u64) -> bool {
        self.epoch[self.pair(from, to)] == epoch
            || (self.fin_epoch[self.link(from, to)] == Some(epoch) && self.view[self.link(to, from)] == epoch)
    }

    /// `to` still reads the connection of `epoch` from `from` (it has not learnt of a reset or
    /// opened another): data its kernel buffered on it can be read.
    pub fn receiver_on(&self, from: NodeId, to: NodeId, epoch: u64) -> bool {
        self.view[self.link(to, from)] == epoch
    }

    /// `to` has not moved past the connection of `epoch` from `from` (a reset on it is news).
    pub fn receiver_not_past(&self, from: NodeId, to: NodeId, epoch: u64) -> bool {
        self.view[self.link(to, from)] <= epoch
    }

    /// `from` closes its connection to `to`: a new epoch begins at once for `from`, and `to`
    /// learns in band, from the FIN sent on the closed connection after its data. Returns the
    /// notice's delivery, if not held.
    pub fn close(&mut self, now_ns: u64, from: NodeId, to: NodeId) -> Option<Delivery> {
        let pair = self.pair(from, to);
        let from_view = self.link(from, to);
        let closed = self.view[from_view];
        self.fin_epoch[from_view] = Some(closed);
        // Closing the current connection ends it; closing an old one (the peer already closed
        // it and opened a newer one) leaves the newer one alone (swarm seed 12217: both ends
        // closed at once, and the second close killed the connection the first end had
        // opened, so its retried request was dropped unseen).
        if closed == self.epoch[pair] {
            let back = self.link(to, from);
            self.fin_epoch[back] = None;
            self.epoch[pair] += 1;
        }
        self.view[from_view] = self.epoch[pair];
        self.send_on_epoch(now_ns, from, to, closed, P::reset(), now_ns).map(|(d, _)| d)
    }

    /// Whether a packet of `epoch` from `from` opens a connection `to` has not seen yet (its
    /// view of the pair is older): `to` accepts it as a new connection, and the old one is gone.
    pub fn opens_new_connection(&self, from: NodeId, to: NodeId, epoch: u64) -> bool {
        self.view[self.link(to, from)] < epoch
    }

    /// `from` restarted: each peer's next packet would draw an RST, so each learns in band
    /// that the old connection is gone. No new epoch: the crash already began one.
    pub fn announce_restart(&mut self, now_ns: u64, from: NodeId, to: NodeId) -> Option<Delivery> {
        let epoch = self.current_epoch(from, to);
        let own = self.link(from, to);
        self.view[own] = epoch;
        self.send_on_epoch(now_ns, from, to, epoch, P::reset(), now_ns).map(|(d, _)| d)
    }

    /// A node crashed: every connection it had is dead; its peers do not know yet.
    pub fn crash(&mut self, node: NodeId) {
        for peer in 0..self.nodes as NodeId {
            if peer != node {
                let pair = self.pair(node, peer);
                self.epoch[pair] += 1;
                let own = self.link(node, peer);
                self.view[own] = self.epoch[pair];
                // A power loss sends no FIN: nothing more arrives from the old connection.
                self.fin_epoch[own] = None;
                let back = self.link(peer, node);
                self.fin_epoch[back] = None;
                // A host without power retransmits nothing: its next connection's notices are
                // not held behind packets it can no longer resend.
                self.state[own].last_delivery_ns = 0;
            }
        }
        self.held.retain(|h| h.from != node && h.to != node);
    }

    /// `to` has learnt that its connection to `from` is gone (a `Reset` arrived).
    pub fn learn_reset(&mut self, from: NodeId, to: NodeId, epoch: u64) {
        let index = self.link(to, from);
        self.view[index] = self.view[index].max(epoch);
        // The peer reset the connection: `to`'s kernel aborts it and stops retransmitting what
        // it sent there (dropped on arrival anyway), so its FIN and its next connection wait for
        // none of it (swarm seed 29197: reconnects queued for 25 s behind retransmitted status
        // updates of a connection the primary had reset).
        if self.state[index].last_epoch < epoch {
            self.state[index].last_delivery_ns = 0;
        }
    }

    /// Cut traffic from each node of `a` to each node of `b` (and back unless `one_way`).
    pub fn partition(&mut self, a: &[usize], b: &[usize], one_way: bool) {
        for &x in a {
            for &y in b {
                let forward = self.link(x as NodeId, y as NodeId);
                self.state[forward].blocked = true;
                if !one_way {
                    let back = self.link(y as NodeId, x as NodeId);
                    self.state[back].blocked = true;
                }
            }
        }
    }

    /// Heal every partition; held packets go out at their next retransmission, in order.
    pub fn heal(&mut self, now_ns: u64) -> Vec<(NodeId, NodeId, P, Delivery)> {
        for state in &mut self.state {
            state.blocked = false;
        }
        let held = std::mem::take(&mut self.held);
        let mut out = Vec::new();
        for h in held {
            if !self.accepts(h.from, h.to, h.epoch) {
                continue; // the connection died while the partition held it
            }
            let resend_at = next_retransmission(h.sent_at_ns, now_ns);
            if let Some((d, packet)) = self.send_on_epoch(resend_at, h.from, h.to, h.epoch, h.packet, h.sent_at_ns) {
                out.push((h.from, h.to, packet, d));
            }
        }
        out
    }

    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.state[self.link(from, to)].blocked
    }

    /// One way between a client and `node` (or the proxy, for a connection it refuses).
    pub fn sample_client_latency(&mut self, node: Option<NodeId>) -> u64 {
        let by_node = node.and_then(|n| self.client_latency_by_node.get(n as usize)).and_then(Option::as_ref);
        let dist = by_node.unwrap_or(&self.client_latency).clone();
        sample_ns(&dist, &mut self.rng)
    }
}

/// The first retransmission of a packet sent at `sent_at_ns` (RTO 200 ms doubling up to
/// 120 s) at or after `now_ns`.
pub fn next_retransmission(sent_at_ns: u64, now_ns: u64) -> u64 {
    let mut at = sent_at_ns;
    let mut rto = RTO_MIN_NS;
    while at < now_ns {
        at += rto;
        rto = (rto * 2).min(RTO_MAX_NS);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::rng::stream;

    fn spec(latency_ns: u64, bandwidth: u64, loss: f64) -> NetworkSpec {
        NetworkSpec {
            latency: Dist::Constant { value_ns: latency_ns },
            bandwidth_bytes_per_sec: bandwidth,
            loss,
            client_latency: Dist::Constant { value_ns: 0 },
            links: Vec::new(),
        }
    }

    /// A payload of `len` bytes plus 30 bytes of message header, like an `XLogData`.
    #[derive(Debug)]
    enum TestPacket {
        Data(u64),
        Reset,
    }

    impl Payload for TestPacket {
        fn wire_bytes(&self) -> u64 {
            match self {
                TestPacket::Data(bytes) => *bytes,
                TestPacket::Reset => 0,
            }
        }
        fn reset() -> Self {
            TestPacket::Reset
        }
        fn is_reset(&self) -> bool {
            matches!(self, TestPacket::Reset)
        }
    }

    fn msg(len: usize) -> TestPacket {
        TestPacket::Data(len as u64 + 30)
    }

    #[test]
    fn bandwidth_serialises_and_latency_adds() {
        // 1 MB/s: a 1000-byte message takes about 1 ms on the wire.
        let mut net = Network::new(&spec(5_000_000, 1_000_000, 0.0), 2, stream(1, "n"));
        let (first, _) = net.send(0, 0, 1, msg(1000 - 70)).unwrap();
        let (second, _) = net.send(0, 0, 1, msg(1000 - 70)).unwrap();
        assert_eq!(first.at_ns, 1_000_000 + 5_000_000);
        assert_eq!(second.at_ns, 2_000_000 + 5_000_000);
    }

    #[test]
    fn loss_delays_by_retransmission_and_blocks_the_line() {
        let mut net = Network::new(&spec(1_000_000, 1_000_000_000, 0.5), 2, stream(3, "n"));
        let mut last = 0;
        let mut saw_retransmit = false;
        for i in 0..200 {
            let (d, _) = net.send(i * 10, 0, 1, msg(10)).unwrap();
            assert!(d.at_ns >= last, "out of order");
            saw_retransmit |= d.at_ns >= i * 10 + RTO_MIN_NS;
            last = d.at_ns;
        }
        assert!(saw_retransmit);
    }

    #[test]
    fn partition_holds_until_heal_and_close_kills_held_traffic() {
        let mut net = Network::new(&spec(1_000, 1_000_000_000, 0.0), 3, stream(1, "n"));
        net.partition(&[0], &[1], false);
        assert!(net.send(0, 0, 1, msg(10)).is_none());
        assert!(net.send(0, 1, 0, msg(10)).is_none());
        assert!(net.send(0, 0, 2, msg(10)).is_some());
        net.partition(&[0], &[2], true);
        assert!(net.send(0, 0, 2, msg(10)).is_none());
        assert!(net.send(0, 2, 0, msg(10)).is_some());
        let healed = net.heal(1_000_000_000);
        assert_eq!(healed.len(), 3);
        // Sent at 0, healed at 1 s: retransmissions at 0.2, 0.6, 1.4 s -> 1.4 s.
        assert!(healed.iter().all(|(_, _, _, d)| d.at_ns >= 1_400_000_000));
        net.partition(&[0], &[1], false);
        assert!(net.send(0, 0, 1, msg(10)).is_none());
        net.crash(0);
        assert!(net.heal(5).is_empty());
    }

    /// Seed 783 of the swarm: a packet retransmitted seven times (25 s) on one connection held
    /// back every packet of the next connection on that link, so a standby could not reconnect.
    #[test]
    fn a_new_connection_is_not_held_behind_the_old_ones_retransmissions_but_its_fin_is() {
        const LINK_0_1: usize = 1; // from 0 to 1 of 2 nodes
        let mut net = Network::new(&spec(1_000, 1_000_000_000, 0.0), 2, stream(1, "n"));
        // A packet from 0 to 1 that takes 25.4 s of retransmissions.
        net.params[LINK_0_1].loss = 1.0;
        let (stuck, _) = net.send(0, 0, 1, msg(10)).unwrap();
        assert!(stuck.at_ns > 25_000_000_000);
        net.params[LINK_0_1].loss = 0.0;
        // Node 1 gives up on the connection: its FIN to 0 is on the other direction.
        net.close(1_000, 1, 0).unwrap();
        net.learn_reset(1, 0, net.current_epoch(0, 1));
        let (fresh, _) = net.send(2_000, 0, 1, msg(10)).unwrap();
        assert!(
            fresh.epoch > stuck.epoch && fresh.at_ns < 1_000_000,
            "held behind the old connection: {}",
            fresh.at_ns
        );
        // Within one connection the order holds, and a FIN from 0 follows what 0 sent before it.
        let (next, _) = net.send(3_000, 0, 1, msg(10)).unwrap();
        assert!(next.at_ns >= fresh.at_ns);
        net.params[LINK_0_1].loss = 1.0;
        let (late, _) = net.send(4_000, 0, 1, msg(10)).unwrap();
        net.params[LINK_0_1].loss = 0.0;
        let fin = net.close(5_000, 0, 1).unwrap();
        assert!(fin.at_ns >= late.at_ns, "the FIN overtook the data before it");
        // The closer's next connection is a socket of its own: not held behind the FIN
        // (swarm seed 4190).
        let (after_fin, _) = net.send(6_000, 0, 1, msg(10)).unwrap();
        assert!(after_fin.epoch > fin.epoch, "the FIN is on the closed connection");
        assert!(after_fin.at_ns < fin.at_ns, "the closer's next connection waited for its FIN");
    }

    /// Seed 29197 of the swarm: after the primary reset the connection, a standby's FIN (its
    /// walreceiver stopping) and its next connection waited behind status updates it was still
    /// retransmitting on the reset connection.
    #[test]
    fn after_the_peer_reset_a_connection_neither_the_fin_nor_the_next_connection_waits_for_it() {
        const LINK_0_1: usize = 1; // from 0 to 1 of 2 nodes
        let mut net = Network::new(&spec(1_000, 1_000_000_000, 0.0), 2, stream(1, "n"));
        net.params[LINK_0_1].loss = 1.0;
        let (stuck, _) = net.send(0, 0, 1, msg(10)).unwrap();
        assert!(stuck.at_ns > 25_000_000_000);
        net.params[LINK_0_1].loss = 0.0;
        net.close(1_000, 1, 0).unwrap();
        net.learn_reset(1, 0, net.current_epoch(0, 1));
        let fin = net.close(2_000, 0, 1).unwrap();
        let (next, _) = net.send(3_000, 0, 1, msg(10)).unwrap();
        assert!(fin.at_ns < 1_000_000, "the FIN waited for the reset connection: {}", fin.at_ns);
        assert!(next.at_ns < 1_000_000 && next.at_ns >= fin.at_ns, "{} {}", next.at_ns, fin.at_ns);
    }

    #[test]
    fn a_closed_connection_drops_packets_of_the_old_epoch() {
        let mut net = Network::new(&spec(1_000, 1_000_000_000, 0.0), 2, stream(1, "n"));
        let (old, _) = net.send(0, 1, 0, msg(10)).unwrap();
        net.close(0, 0, 1).unwrap();
        assert!(!net.accepts(1, 0, old.epoch));
        // Node 1 has not learnt yet: it still sends on the old epoch, which is dropped.
        let (stale, _) = net.send(1, 1, 0, msg(10)).unwrap();
        assert!(!net.accepts(1, 0, stale.epoch));
        net.learn_reset(0, 1, net.current_epoch(0, 1));
        let (fresh, _) = net.send(2, 1, 0, msg(10)).unwrap();
        assert!(net.accepts(1, 0, fresh.epoch));
    }
}
