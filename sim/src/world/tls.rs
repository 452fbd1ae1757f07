//! What encrypting replication traffic costs (`[replication] ssl = true`; the seed's "encrypt
//! replication traffic using SSL"): a TLS handshake on both ends when a walreceiver connects,
//! then every XLogData message's bytes encrypted by the walsender and decrypted by the
//! walreceiver, on the process of that connection, at the node's `ssl_cpu_per_mb`. The TLS
//! records' own bytes on the wire (29 per record of up to 16 kB, 0.2 %) are not counted.

use repsim_engine::message::Message;

/// CPU of one end of a TLS 1.3 handshake (ECDHE key exchange, and an RSA-2048 signature on
/// the server), about 1 ms: an assumption, of the order OpenSSL's `speed` reports.
pub const TLS_HANDSHAKE_CPU_NS: u64 = 1_000_000;

const MB: u128 = 1024 * 1024;

/// The TLS work one end does for `msg` with `ssl` on, at `cpu_per_mb_ns`.
pub fn tls_cpu_ns(ssl: bool, cpu_per_mb_ns: u64, msg: &Message) -> u64 {
    if !ssl {
        return 0;
    }
    match msg {
        Message::XLogData { bytes, .. } => (bytes.len() as u128 * u128::from(cpu_per_mb_ns) / MB) as u64,
        Message::StartReplication { .. } => TLS_HANDSHAKE_CPU_NS,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repsim_engine::Lsn;

    #[test]
    fn a_megabyte_costs_the_per_mb_figure_and_a_connection_a_handshake() {
        let data = Message::XLogData { start: Lsn(0), wal_end: Lsn(0), send_time_ns: 0, bytes: vec![0; 1 << 20] };
        assert_eq!(tls_cpu_ns(true, 500_000, &data), 500_000);
        assert_eq!(tls_cpu_ns(false, 500_000, &data), 0, "ssl off costs nothing");
        let start = Message::StartReplication { start: Lsn(0), timeline: 1 };
        assert_eq!(tls_cpu_ns(true, 500_000, &start), TLS_HANDSHAKE_CPU_NS);
        let status = Message::StatusUpdate {
            write: Lsn(0),
            flush: Lsn(0),
            apply: Lsn(0),
            send_time_ns: 0,
            reply_requested: false,
        };
        assert_eq!(tls_cpu_ns(true, 500_000, &status), 0, "a few bytes: nothing measurable");
    }
}
