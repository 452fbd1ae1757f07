//! What each `restore` did, for `summary.restores`: the backup it started from, the WAL it
//! restored, where recovery ended, and the recovery time (RTO) from the loss to the first
//! write on the restored cluster.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreRun {
    pub node: String,
    /// `latest`, `time 270.000s` or `lsn 0/5000000`.
    pub target: String,
    pub requested_at_ns: u64,
    /// The latest loss of a disk before the restore was asked for (`lose_disk`, `lose_site`).
    pub lost_at_ns: Option<u64>,
    /// The base backup it started from: the node it was taken of, when, its size and its
    /// checkpoint's redo point.
    pub backup_from: String,
    pub backup_taken_at_ns: u64,
    pub backup_bytes: u64,
    pub backup_start_lsn: String,
    pub downloaded_at_ns: Option<u64>,
    /// Segments `restore_command` fetched, and requests the store refused (down).
    pub segments_restored: u64,
    pub archive_refusals: u64,
    /// End of recovery: the switch point of the new timeline, and when it was promoted.
    pub recovery_end_lsn: Option<String>,
    pub promoted_at_ns: Option<u64>,
    pub first_write_at_ns: Option<u64>,
    /// From the loss to the first write acknowledged by the restored node.
    pub rto_ns: Option<u64>,
    /// How long before the loss the oldest acknowledged write the final primary lacks was
    /// acknowledged (0: none lost); filled in by the summary.
    pub rpo_ns: Option<u64>,
    /// `promoted`, or why not (no backup fits the target, FATAL before the target).
    pub outcome: String,
    #[serde(skip)]
    pub node_index: u32,
    /// Where the restore's WAL starts (the backup's own WAL ends), and what the archive
    /// answered: for the `restore_complete` oracle.
    #[serde(skip)]
    pub backup_stop_lsn: u64,
    /// One past the highest segment the archive served.
    #[serde(skip)]
    pub served_end_segno: u64,
    /// The segment the archive last had no copy of (the store up), since the last one it served.
    #[serde(skip)]
    pub last_missing_segno: Option<u64>,
    /// A copy served was of an older timeline than the one that wrote the segment's end (good
    /// only up to that timeline's switch).
    #[serde(skip)]
    pub partial_served: bool,
    #[serde(skip)]
    pub to_latest: bool,
}
