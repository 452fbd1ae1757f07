//! Kernel workloads for the benchmarks in `benches/benches/`: small, exactly defined message
//! patterns that exercise only the scheduler ([`EventQueue`]) and the network model
//! ([`Network`]), so their delivery rates can be compared with other discrete-event simulators.
//!
//! Both kernels run on a network with a constant 1 ms one-way latency, 1 Gbit/s
//! (125,000,000 bytes/s) per directed link, no loss and no per-link overrides. Every message
//! is charged `HEADER_OVERHEAD_BYTES + wire_bytes()` of serialisation, as in the simulator.
//! A delivery is one message arriving at its destination (popped from the event queue); the
//! simulated time of a run is the arrival time of its last delivery.
//!
//! * [`ping_pong`]: hosts A, B, C. A sends one message to B and one to C; each replies to A;
//!   when A has both replies it starts the next round. A round is 4 deliveries and takes
//!   2 ms plus two serialisation times (request, then reply).
//! * [`stream`]: A sends `messages` data messages (100-byte payload) to B, with at most
//!   `window` sent but unacknowledged; B acknowledges every `ack_every`-th message (an ack
//!   covers everything up to it); A sends more as acks arrive.

use repsim::scenario::model::{Dist, Network as NetworkSpec};
use repsim::world::net::{Network, HEADER_OVERHEAD_BYTES};
use repsim::world::rng::stream as rng_stream;
use repsim::world::scheduler::EventQueue;
use repsim::world::wire::Packet;
use repsim_engine::message::Message;
use repsim_engine::{Lsn, NodeId};

/// One-way latency of every link.
pub const LATENCY_NS: u64 = 1_000_000;
/// 1 Gbit/s.
pub const BANDWIDTH_BYTES_PER_SEC: u64 = 125_000_000;
/// Payload of a `stream` data message.
pub const STREAM_PAYLOAD_BYTES: usize = 100;
/// Seed of the network's random stream (the kernels draw nothing from it: latency is
/// constant and loss is zero).
const SEED: u64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelResult {
    /// Messages delivered.
    pub deliveries: u64,
    /// Arrival time of the last delivery.
    pub simulated_ns: u64,
}

/// What the `stream` kernel saw, for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamStats {
    pub data_delivered: u64,
    pub acks_delivered: u64,
    /// Most data messages ever sent but not yet acknowledged.
    pub max_unacked: u64,
}

/// The kernels' network: constant 1 ms, 1 Gbit/s, lossless.
pub fn network_spec() -> NetworkSpec {
    NetworkSpec {
        latency: Dist::Constant { value_ns: LATENCY_NS },
        bandwidth_bytes_per_sec: BANDWIDTH_BYTES_PER_SEC,
        loss: 0.0,
        client_latency: Dist::Constant { value_ns: 0 },
        links: Vec::new(),
    }
}

/// Time `msg` occupies a link, as the network charges it.
pub fn serial_ns(msg: &Message) -> u64 {
    (HEADER_OVERHEAD_BYTES + msg.wire_bytes()) * 1_000_000_000 / BANDWIDTH_BYTES_PER_SEC
}

/// The ping-pong request and reply (a keepalive, 23 bytes + 40 of headers).
pub fn ping_message(now_ns: u64) -> Message {
    Message::Keepalive { wal_end: Lsn(1), send_time_ns: now_ns, reply_requested: true }
}

/// A `stream` data message carrying sequence number `seq` (an XLogData, 100-byte payload).
pub fn data_message(seq: u64, now_ns: u64) -> Message {
    Message::XLogData {
        start: Lsn(seq),
        wal_end: Lsn(seq),
        send_time_ns: now_ns,
        bytes: vec![0xA5; STREAM_PAYLOAD_BYTES],
    }
}

/// A `stream` acknowledgement of everything up to `seq` (a standby status update).
pub fn ack_message(seq: u64, now_ns: u64) -> Message {
    Message::StatusUpdate {
        write: Lsn(seq),
        flush: Lsn(seq),
        apply: Lsn(seq),
        send_time_ns: now_ns,
        reply_requested: false,
    }
}

/// Duration of one ping-pong round: request out, reply back.
pub fn ping_pong_round_ns() -> u64 {
    2 * (LATENCY_NS + serial_ns(&ping_message(0)))
}

/// A message in flight, as the simulator schedules one.
struct Arrival {
    from: NodeId,
    to: NodeId,
    epoch: u64,
    packet: Packet,
}

/// The world's send path: the network decides the arrival, the queue holds the packet.
fn send(q: &mut EventQueue<Arrival>, net: &mut Network<Packet>, now_ns: u64, from: NodeId, to: NodeId, msg: Message) {
    // `Network::send` hands the packet back unless a partition holds it, as in the world.
    let (delivery, packet) = net.send(now_ns, from, to, Packet::Msg(msg)).expect("no partitions in the kernels");
    q.push(delivery.at_ns, Arrival { from, to, epoch: delivery.epoch, packet });
}

const A: NodeId = 0;
const B: NodeId = 1;
const C: NodeId = 2;

/// Runs ping-pong until `deliveries` messages have been delivered.
pub fn ping_pong(deliveries: u64) -> KernelResult {
    let mut net = Network::new(&network_spec(), 3, rng_stream(SEED, "network"));
    let mut q = EventQueue::with_capacity(4);
    let mut delivered = 0;
    let mut last_ns = 0;
    let mut replies = 0;
    if deliveries > 0 {
        send(&mut q, &mut net, 0, A, B, ping_message(0));
        send(&mut q, &mut net, 0, A, C, ping_message(0));
    }
    while delivered < deliveries {
        let (now_ns, arrival) = q.pop().expect("ping-pong never runs dry");
        debug_assert!(net.accepts(arrival.from, arrival.to, arrival.epoch));
        delivered += 1;
        last_ns = now_ns;
        let Packet::Msg(msg) = arrival.packet else { unreachable!("no resets in the kernels") };
        match arrival.to {
            A => {
                replies += 1;
                if replies == 2 {
                    replies = 0;
                    send(&mut q, &mut net, now_ns, A, B, ping_message(now_ns));
                    send(&mut q, &mut net, now_ns, A, C, ping_message(now_ns));
                }
            }
            peer => send(&mut q, &mut net, now_ns, peer, A, msg),
        }
    }
    KernelResult { deliveries: delivered, simulated_ns: last_ns }
}

/// Runs the windowed stream to completion (every message and every ack delivered).
pub fn stream(messages: u64, window: u64, ack_every: u64) -> KernelResult {
    stream_with_stats(messages, window, ack_every).0
}

/// [`stream`], also returning what it saw.
pub fn stream_with_stats(messages: u64, window: u64, ack_every: u64) -> (KernelResult, StreamStats) {
    assert!(ack_every >= 1 && window >= ack_every, "a window below the ack interval deadlocks");
    let mut net = Network::new(&network_spec(), 2, rng_stream(SEED, "network"));
    let mut q = EventQueue::with_capacity(window as usize + 1);
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut stats = StreamStats { data_delivered: 0, acks_delivered: 0, max_unacked: 0 };
    let mut last_ns = 0;
    let fill = |q: &mut EventQueue<Arrival>,
                net: &mut Network<Packet>,
                now_ns: u64,
                sent: &mut u64,
                acked: u64,
                stats: &mut StreamStats| {
        while *sent < messages && *sent - acked < window {
            *sent += 1;
            send(q, net, now_ns, A, B, data_message(*sent, now_ns));
        }
        stats.max_unacked = stats.max_unacked.max(*sent - acked);
    };
    fill(&mut q, &mut net, 0, &mut sent, acked, &mut stats);
    while let Some((now_ns, arrival)) = q.pop() {
        debug_assert!(net.accepts(arrival.from, arrival.to, arrival.epoch));
        last_ns = now_ns;
        match arrival.packet {
            Packet::Msg(Message::XLogData { start, .. }) => {
                stats.data_delivered += 1;
                if start.0 % ack_every == 0 {
                    send(&mut q, &mut net, now_ns, B, A, ack_message(start.0, now_ns));
                }
            }
            Packet::Msg(Message::StatusUpdate { write, .. }) => {
                stats.acks_delivered += 1;
                acked = acked.max(write.0);
                fill(&mut q, &mut net, now_ns, &mut sent, acked, &mut stats);
            }
            other => unreachable!("unexpected packet in the stream kernel: {other:?}"),
        }
    }
    let result = KernelResult { deliveries: stats.data_delivered + stats.acks_delivered, simulated_ns: last_ns };
    (result, stats)
}

/// xorshift64: tiny, deterministic, good enough for bench inputs (no RNG dependency).
pub struct XorShift(pub u64);

impl XorShift {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialisation_times_are_what_the_kernel_definition_says() {
        // 40 bytes of TCP/IP headers + CopyData framing + PostgreSQL field sizes, at 8 ns/byte.
        assert_eq!(serial_ns(&ping_message(0)), (40 + 23) * 8);
        assert_eq!(serial_ns(&data_message(1, 0)), (40 + 130) * 8);
        assert_eq!(serial_ns(&ack_message(1, 0)), (40 + 39) * 8);
    }

    #[test]
    fn ping_pong_takes_two_ms_per_round_plus_serialisation() {
        let r = ping_pong(400);
        assert_eq!(r.deliveries, 400);
        // 100 rounds of (1 ms + 504 ns) out and (1 ms + 504 ns) back.
        assert_eq!(r.simulated_ns, 100 * ping_pong_round_ns());
        assert_eq!(r.simulated_ns, 100 * 2_001_008);
    }

    #[test]
    fn ping_pong_stops_mid_round() {
        // Deliveries 1, 2 are the requests (at 1 ms + 504 ns), 3 the first reply.
        let r = ping_pong(3);
        assert_eq!(r.deliveries, 3);
        assert_eq!(r.simulated_ns, ping_pong_round_ns());
        let r = ping_pong(6);
        assert_eq!(r.simulated_ns, ping_pong_round_ns() + ping_pong_round_ns() / 2);
        assert_eq!(ping_pong(0), KernelResult { deliveries: 0, simulated_ns: 0 });
    }

    #[test]
    fn stream_within_one_window_ends_one_round_trip_after_the_last_send() {
        let s = serial_ns(&data_message(1, 0));
        let a = serial_ns(&ack_message(1, 0));
        let (r, stats) = stream_with_stats(100, 1000, 100);
        assert_eq!(stats.data_delivered, 100);
        assert_eq!(stats.acks_delivered, 1);
        assert_eq!(stats.max_unacked, 100);
        assert_eq!(r.deliveries, 101);
        // All 100 go out back to back; the ack of the 100th ends the run.
        assert_eq!(r.simulated_ns, 100 * s + LATENCY_NS + a + LATENCY_NS);
    }

    #[test]
    fn stream_is_window_limited_and_never_exceeds_the_window() {
        let s = serial_ns(&data_message(1, 0));
        let a = serial_ns(&ack_message(1, 0));
        let (r, stats) = stream_with_stats(1000, 200, 100);
        assert_eq!(stats.data_delivered, 1000);
        assert_eq!(stats.acks_delivered, 10);
        assert_eq!(stats.max_unacked, 200);
        assert_eq!(r.deliveries, 1010);
        // Batches of 100: batches 2k and 2k+1 go out back to back, starting when the ack of
        // batch 2k-2 arrives (100 s + 2 L + a after batch 2k-2 started). The last batch (9)
        // starts at 4 such periods + 100 s and its ack arrives one period later.
        let period = 100 * s + 2 * LATENCY_NS + a;
        assert_eq!(r.simulated_ns, 5 * period + 100 * s);
    }

    #[test]
    fn stream_with_a_ragged_tail_delivers_everything() {
        for (messages, window, ack_every) in [(1234, 300, 100), (7, 5, 3), (1, 1, 1), (0, 10, 5)] {
            let (r, stats) = stream_with_stats(messages, window, ack_every);
            assert_eq!(stats.data_delivered, messages);
            assert_eq!(stats.acks_delivered, messages / ack_every);
            assert!(stats.max_unacked <= window);
            assert_eq!(r.deliveries, messages + messages / ack_every);
        }
    }
}
