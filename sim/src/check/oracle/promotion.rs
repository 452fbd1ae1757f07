//! Promotion: a standby starts accepting writes only after replaying all the WAL it made
//! durable (PostgreSQL ends recovery at the end of the valid WAL, `StartupXLOG`); under
//! Patroni's `synchronous_mode`, the promoted node holds every commit acknowledged with a
//! synchronous standby's confirmation (Patroni promotes only a member of the `sync` key).

use repsim_engine::config::SyncCommitLevel;
use repsim_engine::storage::Store;
use repsim_engine::{Lsn, NodeId};

use crate::check::history::{AckedWrite, History, INSERT_TABLE};

/// A primary lost its WAL past `end` on `timeline` at `at_ns` (power loss or PANIC before the
/// bytes were durable). Writes it had acknowledged there exist nowhere, and crash recovery
/// writes other records at those LSNs on the same timeline.
#[derive(Clone, Copy, Debug)]
pub struct LostWal {
    pub node: NodeId,
    pub timeline: u32,
    pub end: u64,
    pub at_ns: u64,
}

fn lost(w: &AckedWrite, lost_wal: &[LostWal]) -> bool {
    lost_wal
        .iter()
        .any(|l| l.node == w.node && l.timeline == w.timeline && l.at_ns >= w.acked_at_ns && w.commit_lsn.0 > l.end)
}

/// The first write acknowledged by another node on `from_timeline` (not on a dead branch, not
/// lost with its primary's unflushed WAL) that `store` lacks and `also` selects, and how many
/// more there are.
fn missing(
    history: &History,
    node: NodeId,
    from_timeline: u32,
    store: &Store,
    lost_wal: &[LostWal],
    also: impl Fn(&AckedWrite) -> bool,
) -> Option<(AckedWrite, usize)> {
    let mut missing = history.acked_writes.iter().filter(|w| {
        w.node != node
            && w.timeline == from_timeline
            && !w.split_brain
            && also(w)
            && !lost(w, lost_wal)
            && store.get(INSERT_TABLE, w.write_id).is_none()
    });
    let first = missing.next()?;
    Some((first, missing.count()))
}

/// Writes acknowledged by another node on the timeline `node` leaves, whose commit record the
/// node's disk holds durably (`durable_end`), missing from its tables at promotion.
pub fn unreplayed(
    history: &History,
    node: NodeId,
    from_timeline: u32,
    durable_end: u64,
    store: &Store,
    lost_wal: &[LostWal],
) -> Option<String> {
    let (first, more) = missing(history, node, from_timeline, store, lost_wal, |w| w.commit_lsn.0 <= durable_end)?;
    Some(format!(
        "promoted with write {} (commit {}) durable in its WAL (to {}) but not replayed ({more} more)",
        first.write_id,
        first.commit_lsn,
        Lsn(durable_end),
    ))
}

/// Writes acknowledged on `from_timeline` with a synchronous standby's confirmation (level
/// `on` or `remote_apply`) that the promoted node does not hold.
pub fn missing_sync_commits(
    history: &History,
    node: NodeId,
    from_timeline: u32,
    store: &Store,
    lost_wal: &[LostWal],
) -> Option<String> {
    let (first, more) = missing(history, node, from_timeline, store, lost_wal, |w| {
        w.level >= SyncCommitLevel::On && w.confirmed_by_mask != 0
    })?;
    Some(format!(
        "promoted without write {} acknowledged under {} at {} with a synchronous confirmation ({more} more)",
        first.write_id,
        first.level.name(),
        first.commit_lsn,
    ))
}
