//! `replica_prefix`: where a standby and the primary both still hold WAL, the bytes agree.

use repsim_engine::Lsn;

use crate::check::verdict::Violation;
use crate::check::view::EndState;

/// `replica_prefix`: where a standby and the primary both still hold WAL, the bytes agree.
pub(crate) fn check_replica_prefix(end: &EndState) -> Vec<Violation> {
    let Some(primary_index) = end.final_primary() else { return Vec::new() };
    let Some(primary) = end.nodes[primary_index].engine else {
        return Vec::new();
    };
    let p = primary.status();
    let mut out = Vec::new();
    for (i, slot) in end.nodes.iter().enumerate() {
        let Some(standby) = slot.engine.filter(|_| i != primary_index) else {
            continue;
        };
        if standby.timeline() != primary.timeline() {
            continue; // not following the final primary (yet): `converged` reports it
        }
        let s = standby.status();
        let from = Lsn(p.wal_start_lsn.0.max(s.wal_start_lsn.0));
        let to = Lsn(p.flush_lsn.0.min(s.flush_lsn.0));
        if from >= to {
            continue;
        }
        let (Some(a), Some(b)) = (primary.wal_bytes(from, to), standby.wal_bytes(from, to)) else {
            continue;
        };
        if let Some(offset) = a.iter().zip(b).position(|(x, y)| x != y) {
            out.push(Violation {
                invariant: "replica_prefix",
                detail: format!(
                    "{}'s WAL differs from {}'s at {}",
                    slot.name,
                    end.nodes[primary_index].name,
                    Lsn(from.0 + offset as u64)
                ),
            });
        }
    }
    out
}
