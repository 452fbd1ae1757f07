//! Conflicts between a change an apply worker receives and the row it finds here, and the
//! policy that resolves them.
//!
//! PostgreSQL 18 detects these (`replication/logical/conflict.c`, with
//! `track_commit_timestamp` for the `*_origin_differs` kinds: the local row was last written
//! by another origin than the one sending the change) and logs them, but resolves only one
//! way: the remote change is applied, and an insert of a key that exists is a unique violation
//! that stops the worker. pglogical's `pglogical.conflict_resolution` (`pglogical_conflict.c`)
//! offers the others: `error`, `keep_local`, `last_update_wins` (by commit timestamp, so the
//! clocks of the nodes decide). A change to a missing row is skipped under every policy, as
//! both do.

use crate::storage::RowOrigin;
use crate::wal::record::RowChange;

/// `conflict.c`'s conflict types that a change to one row can meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConflictKind {
    InsertExists,
    UpdateOriginDiffers,
    UpdateMissing,
    DeleteOriginDiffers,
    DeleteMissing,
}

impl ConflictKind {
    /// PostgreSQL's name for it (as in `pg_stat_subscription_stats`).
    pub fn name(self) -> &'static str {
        match self {
            ConflictKind::InsertExists => "insert_exists",
            ConflictKind::UpdateOriginDiffers => "update_origin_differs",
            ConflictKind::UpdateMissing => "update_missing",
            ConflictKind::DeleteOriginDiffers => "delete_origin_differs",
            ConflictKind::DeleteMissing => "delete_missing",
        }
    }
}

/// How a table's conflicts are resolved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConflictResolution {
    /// PostgreSQL's own apply worker: the remote change wins, except that an insert of a key
    /// that exists violates the unique constraint and stops the worker.
    #[default]
    ApplyRemote,
    /// pglogical `error`: every conflict stops the worker until someone resolves it.
    Error,
    /// pglogical `keep_local`: the local row stays.
    KeepLocal,
    /// pglogical `last_update_wins`: the version with the later commit timestamp stays; equal
    /// timestamps go to the higher node id (pglogical breaks ties by system identifier).
    LastUpdateWins,
}

impl ConflictResolution {
    pub const ALL: [ConflictResolution; 4] = [
        ConflictResolution::ApplyRemote,
        ConflictResolution::Error,
        ConflictResolution::KeepLocal,
        ConflictResolution::LastUpdateWins,
    ];

    /// The name scenarios give it (pglogical's).
    pub fn name(self) -> &'static str {
        match self {
            ConflictResolution::ApplyRemote => "apply_remote",
            ConflictResolution::Error => "error",
            ConflictResolution::KeepLocal => "keep_local",
            ConflictResolution::LastUpdateWins => "last_update_wins",
        }
    }
}

/// The policy of each table (`default` for those not listed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConflictPolicies {
    pub default: ConflictResolution,
    pub by_table: Vec<(u32, ConflictResolution)>,
}

impl ConflictPolicies {
    pub fn for_table(&self, table: u32) -> ConflictResolution {
        self.by_table.iter().find(|(t, _)| *t == table).map_or(self.default, |(_, p)| *p)
    }
}

/// What became of a conflicting change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The remote change was applied over the local row.
    AppliedRemote,
    /// The local row stays; the remote change is dropped.
    KeptLocal,
    /// The row is missing: nothing to change.
    Skipped,
    /// The worker stops with an error, the transaction not applied.
    Stopped,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::AppliedRemote => "applied_remote",
            Resolution::KeptLocal => "kept_local",
            Resolution::Skipped => "skipped",
            Resolution::Stopped => "stopped",
        }
    }
}

/// The local row a change meets: whether it exists, and its origin if tracked.
#[derive(Clone, Copy, Debug)]
pub struct LocalRow {
    pub exists: bool,
    pub origin: Option<RowOrigin>,
}

/// Decides one change: `None` if it meets no conflict (apply it), else the conflict and what
/// `policy` makes of it. `remote` is the change's origin (its publisher and commit time);
/// `local_node` identifies this database in a tie.
pub fn resolve(
    change: &RowChange,
    local: LocalRow,
    remote: RowOrigin,
    local_node: u32,
    policy: ConflictResolution,
) -> Option<(ConflictKind, Resolution)> {
    // The local row was last written by another origin than the one sending this change
    // (not knowable without `track_commit_timestamp`).
    let origin_differs = local.origin.is_some_and(|o| o.node != remote.node);
    let kind = match (change, local.exists) {
        (RowChange::Insert { .. }, true) => ConflictKind::InsertExists,
        (RowChange::Update { .. }, false) => ConflictKind::UpdateMissing,
        (RowChange::Delete { .. }, false) => ConflictKind::DeleteMissing,
        (RowChange::Update { .. }, true) if origin_differs => ConflictKind::UpdateOriginDiffers,
        (RowChange::Delete { .. }, true) if origin_differs => ConflictKind::DeleteOriginDiffers,
        _ => return None,
    };
    let resolution = match (kind, policy) {
        (ConflictKind::UpdateMissing | ConflictKind::DeleteMissing, _) => Resolution::Skipped,
        (ConflictKind::InsertExists, ConflictResolution::ApplyRemote) | (_, ConflictResolution::Error) => {
            Resolution::Stopped
        }
        (_, ConflictResolution::ApplyRemote) => Resolution::AppliedRemote,
        (_, ConflictResolution::KeepLocal) => Resolution::KeptLocal,
        (_, ConflictResolution::LastUpdateWins) => {
            // A row whose origin is unknown (written before tracking began) counts as oldest.
            let local_version = local.origin.map_or((0, 0), |o| (o.commit_ts_ns, o.node.unwrap_or(local_node)));
            let remote_version = (remote.commit_ts_ns, remote.node.unwrap_or(local_node));
            if remote_version > local_version {
                Resolution::AppliedRemote
            } else {
                Resolution::KeptLocal
            }
        }
    };
    Some((kind, resolution))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPDATE: RowChange = RowChange::Update { table: 2, key: 7, write_id: 9, value_len: 4 };
    const INSERT: RowChange = RowChange::Insert { table: 2, key: 7, write_id: 9, value_len: 4 };

    fn remote(ts: u64) -> RowOrigin {
        RowOrigin { node: Some(1), commit_ts_ns: ts }
    }

    fn local_row(ts: u64) -> LocalRow {
        LocalRow { exists: true, origin: Some(RowOrigin { node: None, commit_ts_ns: ts }) }
    }

    #[test]
    fn a_row_last_written_by_the_same_origin_is_no_conflict() {
        let local = LocalRow { exists: true, origin: Some(remote(5)) };
        for policy in ConflictResolution::ALL {
            assert_eq!(resolve(&UPDATE, local, remote(1), 0, policy), None);
        }
    }

    #[test]
    fn without_commit_timestamps_only_unique_violations_and_missing_rows_are_seen() {
        let untracked = LocalRow { exists: true, origin: None };
        assert_eq!(resolve(&UPDATE, untracked, remote(1), 0, ConflictResolution::Error), None);
        let found = resolve(&INSERT, untracked, remote(1), 0, ConflictResolution::ApplyRemote);
        assert_eq!(found, Some((ConflictKind::InsertExists, Resolution::Stopped)));
        let missing = LocalRow { exists: false, origin: None };
        let found = resolve(&UPDATE, missing, remote(1), 0, ConflictResolution::Error);
        assert_eq!(found, Some((ConflictKind::UpdateMissing, Resolution::Skipped)));
    }

    #[test]
    fn each_policy_resolves_an_update_of_a_locally_written_row_its_own_way() {
        let kind = ConflictKind::UpdateOriginDiffers;
        let cases = [
            (ConflictResolution::ApplyRemote, Resolution::AppliedRemote),
            (ConflictResolution::Error, Resolution::Stopped),
            (ConflictResolution::KeepLocal, Resolution::KeptLocal),
        ];
        for (policy, expected) in cases {
            assert_eq!(resolve(&UPDATE, local_row(10), remote(20), 0, policy), Some((kind, expected)), "{policy:?}");
        }
    }

    #[test]
    fn last_update_wins_compares_commit_timestamps_then_node_ids() {
        let lww = ConflictResolution::LastUpdateWins;
        let newer = resolve(&UPDATE, local_row(10), remote(20), 0, lww);
        assert_eq!(newer.map(|(_, r)| r), Some(Resolution::AppliedRemote));
        let older = resolve(&UPDATE, local_row(30), remote(20), 0, lww);
        assert_eq!(older.map(|(_, r)| r), Some(Resolution::KeptLocal));
        // Equal timestamps: the higher node id wins, on both sides alike.
        assert_eq!(
            resolve(&UPDATE, local_row(20), remote(20), 0, lww).map(|(_, r)| r),
            Some(Resolution::AppliedRemote)
        );
        assert_eq!(resolve(&UPDATE, local_row(20), remote(20), 2, lww).map(|(_, r)| r), Some(Resolution::KeptLocal));
        // An insert of a key that exists is decided the same way.
        let insert = resolve(&INSERT, local_row(10), remote(20), 0, lww);
        assert_eq!(insert, Some((ConflictKind::InsertExists, Resolution::AppliedRemote)));
    }

    #[test]
    fn policies_are_per_table() {
        let policies = ConflictPolicies {
            default: ConflictResolution::Error,
            by_table: vec![(2, ConflictResolution::LastUpdateWins)],
        };
        assert_eq!(policies.for_table(2), ConflictResolution::LastUpdateWins);
        assert_eq!(policies.for_table(1), ConflictResolution::Error);
    }
}
