//! `summary.archive`: what reached the WAL archive, how far behind the primary it was, and the
//! base backups stored.

use serde::{Deserialize, Serialize};

use crate::metrics::Spread;

/// The WAL archive: what reached it, and how far behind the primary it was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveSummary {
    /// Segments the store accepted (a primary that restarts archives what it holds again).
    pub segments_archived: u64,
    /// `archive_command` runs that failed (the store down or unreachable).
    pub failed_attempts: u64,
    /// Segments standbys restored from the archive (`restore_command`).
    #[serde(default)]
    pub segments_restored: u64,
    /// Bytes uploaded (a segment `archive_timeout` closed early costs its full size).
    #[serde(default)]
    pub bytes_archived: u64,
    /// Flushed WAL on the application's primary not archived yet, sampled once a second.
    pub lag_bytes: Spread,
    /// The age of the oldest WAL not archived yet (since its segment began).
    pub lag_ns: Spread,
    /// The most WAL the application's primary held in `pg_wal`.
    pub pg_wal_max_bytes: u64,
    /// Base backups stored, their bytes, and the longest upload.
    #[serde(default)]
    pub backups_taken: u64,
    #[serde(default)]
    pub backup_bytes: u64,
    #[serde(default)]
    pub backup_duration_max_ns: u64,
}

impl ArchiveSummary {
    pub fn rows(&self) -> Vec<String> {
        let s = |ns: u64| format!("{:.1} s", ns as f64 / 1e9);
        let l = &self.lag_bytes;
        let mut rows = vec![
            format!(
                "| archive: segments archived ({:.1} MiB) / failed attempts / segments restored | {} / {} / {} |",
                self.bytes_archived as f64 / 1048576.0,
                self.segments_archived,
                self.failed_attempts,
                self.segments_restored
            ),
            format!(
                "| archive lag bytes p50 / p99 / max (age of the oldest unarchived WAL, max) | {} / {} / {} ({}) |",
                l.p50,
                l.p99,
                l.max,
                s(self.lag_ns.max)
            ),
            format!("| pg_wal on the primary, max | {:.1} MiB |", self.pg_wal_max_bytes as f64 / 1048576.0),
        ];
        if self.backups_taken > 0 {
            rows.push(format!(
                "| base backups stored ({:.1} MiB) / longest upload | {} / {} |",
                self.backup_bytes as f64 / 1048576.0,
                self.backups_taken,
                s(self.backup_duration_max_ns)
            ));
        }
        rows
    }
}
