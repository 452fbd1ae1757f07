//! `summary.restores`: what each `restore` did (`world/backup.rs`), with the recovery point
//! (the acknowledged writes the restored cluster lacks, and how far back before the loss the
//! oldest of them was acknowledged) and the recovery time.

use crate::check::history::INSERT_TABLE;
use crate::world::restore_log::RestoreRun;
use crate::world::World;

/// The restores, each with `rpo_ns` filled in from the final primary's data.
pub fn restores(world: &World) -> Vec<RestoreRun> {
    let mut runs = world.restores.clone();
    let final_store = world.end_state().final_primary().and_then(|p| world.nodes[p].engine.as_ref()).map(|e| e.store());
    for run in runs.iter_mut().filter(|r| r.promoted_at_ns.is_some()) {
        let (Some(store), Some(lost_at)) = (final_store, run.lost_at_ns) else { continue };
        let missing = world.history.acked_writes.iter().filter(|w| w.acked_at_ns <= lost_at);
        let oldest = missing.filter(|w| store.get(INSERT_TABLE, w.write_id).is_none()).map(|w| w.acked_at_ns).min();
        run.rpo_ns = Some(oldest.map_or(0, |acked| lost_at - acked));
    }
    runs
}

/// The summary's rows for each restore.
pub fn rows(runs: &[RestoreRun]) -> Vec<String> {
    let s = |ns: u64| format!("{:.1} s", ns as f64 / 1e9);
    let at = |ns: Option<u64>| ns.map_or("never".to_string(), |ns| format!("at {}", s(ns)));
    let mut out = Vec::new();
    for r in runs {
        out.push(format!(
            "| restore of {} (target {}) | backup of {} taken at {} ({:.1} MiB), downloaded {}, {} segments restored; {} |",
            r.node,
            r.target,
            r.backup_from,
            s(r.backup_taken_at_ns),
            r.backup_bytes as f64 / 1048576.0,
            at(r.downloaded_at_ns),
            r.segments_restored,
            r.outcome,
        ));
        if r.promoted_at_ns.is_some() {
            out.push(format!(
                "| {}: recovery ended at / RPO (oldest lost acknowledged write before the loss) / RTO (loss to first write) | {} / {} / {} |",
                r.node,
                r.recovery_end_lsn.as_deref().unwrap_or("-"),
                r.rpo_ns.map_or("-".to_string(), s),
                r.rto_ns.map_or("no write yet".to_string(), s),
            ));
        }
    }
    out
}
