//! `slot_wal_kept`: a node removes a WAL segment only if no valid logical slot, as saved on its
//! disk, still needs it. After a crash PostgreSQL restarts decoding from a slot's saved
//! `restart_lsn`, so the saved position is the one that counts: WAL removed past it is lost
//! to the slot's consumer for good (PostgreSQL 17.6 and 18 fixed exactly this, keeping WAL
//! back to the last saved `restart_lsn`).

use repsim_engine::logical::slot::LogicalSlot;

/// The violation, if removing segment `segno` loses WAL one of `saved` still needs.
pub fn slot_wal_kept(node: &str, saved: &[LogicalSlot], segno: u64, segment_bytes: u64) -> Option<String> {
    let needs =
        saved.iter().filter(|s| s.invalidated.is_none()).find(|s| s.restart_lsn().segment(segment_bytes) <= segno)?;
    Some(format!(
        "{node} removed WAL segment {segno}, which logical slot \"{}\" (restart_lsn {}, as saved on disk) still needs",
        needs.name,
        needs.restart_lsn()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use repsim_engine::logical::decode::DecodePoint;
    use repsim_engine::Lsn;

    #[test]
    fn a_segment_a_valid_slot_needs_may_not_go() {
        let seg = 1 << 24;
        let slot = LogicalSlot::create("cdc", DecodePoint { at: Lsn(3 * seg + 100), prev: Lsn(3 * seg) }, false);
        assert_eq!(slot_wal_kept("pg1", std::slice::from_ref(&slot), 2, seg), None);
        assert!(slot_wal_kept("pg1", std::slice::from_ref(&slot), 3, seg).unwrap().contains("\"cdc\""));
        let lost = LogicalSlot { invalidated: Some("wal_removed"), ..slot };
        assert_eq!(slot_wal_kept("pg1", &[lost], 3, seg), None, "an invalidated slot holds nothing");
    }
}
