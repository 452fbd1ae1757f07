//! `acked_writes_durable`: every acknowledged write is in the final primary, judged against the
//! promise it carried.

use repsim_engine::config::SyncCommitLevel;

use crate::check::history::INSERT_TABLE;
use crate::check::verdict::{level_index, Losses};
use crate::check::view::EndState;

/// `acked_writes_durable`: every acknowledged insert must be in the final primary, unless its
/// promise did not cover that node (an `off` commit covers nothing durable; a `local` one only
/// the node that acknowledged it). A promise is judged by what it survives: a node's own
/// fsynced WAL survives its power loss but not the loss of its disk; a standby's
/// `remote_write` confirmation (WAL in its OS, not fsynced) survives neither.
pub fn check_losses(end: &EndState) -> Losses {
    let mut losses = Losses::default();
    let Some(primary) = end.final_primary() else { return losses };
    let Some(engine) = end.nodes[primary].engine else {
        return losses;
    };
    let store = engine.store();
    for write in end.history.acked_writes.iter() {
        if store.get(INSERT_TABLE, write.write_id).is_some() {
            continue;
        }
        losses.by_level[level_index(write.level)] += 1;
        let kept = &end.nodes[primary];
        // A loss from the commit's arrival on, as the live oracle judges it (`world/oracles.rs`):
        // a standby that confirmed the write while the commit waited may lose it before the
        // ack goes out (swarm seed 42489: a remote_write confirmation, then a failed fsync).
        let lost_after_ack = |times: &[u64]| times.iter().any(|&t| t >= write.arrived_at_ns);
        let promise_survived = !lost_after_ack(kept.disk_losses_ns)
            && (write.level != SyncCommitLevel::RemoteWrite
                || write.node as usize == primary
                || !(lost_after_ack(kept.power_losses_ns) || lost_after_ack(kept.cache_losses_ns)));
        let kept_node_confirmed =
            (write.node as usize == primary || write.confirmed_by_mask & (1 << primary) != 0) && promise_survived;
        // A split-brain write is counted as such (`no_split_brain`), not as a broken promise.
        if write.level >= SyncCommitLevel::Local && kept_node_confirmed && !write.split_brain {
            losses.broken_promises.push(write);
        }
    }
    losses
}
