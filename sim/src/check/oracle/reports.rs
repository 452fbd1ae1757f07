//! Honest reports: a standby never reports write, flush or apply positions beyond what it
//! has written, made durable or could have replayed; a walsender never sends WAL past what
//! its primary has made durable (PostgreSQL streams up to `GetFlushRecPtr`).

use repsim_engine::Lsn;

use crate::check::oracle::WalFacts;

/// A standby's status update (`r` message) against its disk.
pub fn status_update(write: Lsn, flush: Lsn, apply: Lsn, wal: WalFacts) -> Option<String> {
    if flush.0 > wal.durable_end {
        return Some(format!(
            "reported flush {flush}, but its disk holds WAL durably only to {}",
            Lsn(wal.durable_end)
        ));
    }
    if write.0 > wal.written_end {
        return Some(format!("reported write {write}, but it has written WAL only to {}", Lsn(wal.written_end)));
    }
    if apply > flush && apply.is_valid() && flush.is_valid() {
        return Some(format!("reported apply {apply} past its flush {flush}: replay passed flush"));
    }
    None
}

/// WAL a primary sends, ending at `end`, against its own disk.
pub fn wal_sent(end: Lsn, wal: WalFacts) -> Option<String> {
    (end.0 > wal.durable_end)
        .then(|| format!("sent WAL up to {end}, but its disk holds WAL durably only to {}", Lsn(wal.durable_end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISK: WalFacts = WalFacts { written_end: 300, durable_end: 200 };

    #[test]
    fn a_status_update_may_report_only_what_the_disk_holds() {
        assert_eq!(status_update(Lsn(300), Lsn(200), Lsn(150), DISK), None);
        let flush = status_update(Lsn(300), Lsn(250), Lsn(150), DISK).expect("flush past durable");
        assert!(flush.contains("reported flush 0/FA"), "{flush}");
        assert!(status_update(Lsn(350), Lsn(200), Lsn(150), DISK).is_some(), "write past written");
        assert!(status_update(Lsn(300), Lsn(200), Lsn(210), DISK).is_some(), "replay past flush");
    }

    #[test]
    fn a_primary_sends_only_wal_its_disk_holds_durably() {
        assert_eq!(wal_sent(Lsn(200), DISK), None);
        assert!(wal_sent(Lsn(201), DISK).is_some());
    }
}
