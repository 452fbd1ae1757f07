//! What travels between endpoints: replication protocol messages (the engine's), HA traffic
//! (`world::ha`), and the in-band notice that a connection is gone. The network carries it
//! without knowing it, through `net::Payload`.

use repsim_engine::message::Message;

use crate::world::ha::{HaMsg, HA_MESSAGE_BYTES};
use crate::world::net::Payload;

#[derive(Clone, Debug)]
pub enum Packet {
    Msg(Message),
    /// The connection of `epoch`'s predecessor is gone (FIN or RST), in band so it arrives
    /// before anything sent on the new connection.
    Reset,
    /// HA traffic: agent <-> DCS requests and watches, agent <-> agent probes.
    Ha(Box<HaMsg>),
}

impl Payload for Packet {
    fn wire_bytes(&self) -> u64 {
        match self {
            Packet::Msg(msg) => msg.wire_bytes(),
            Packet::Reset => 0,
            Packet::Ha(_) => HA_MESSAGE_BYTES,
        }
    }

    fn reset() -> Self {
        Packet::Reset
    }

    fn is_reset(&self) -> bool {
        matches!(self, Packet::Reset)
    }
}
