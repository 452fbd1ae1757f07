//! Base backups into the archive store and restores from it (issue 13.4–13.6): the world runs
//! `pg_basebackup` piped to the store (WAL-G `backup-push`, Barman `backup`), and an
//! operator's restore: fetch the newest suitable backup (`backup-fetch`), start it with
//! `recovery.signal`, `restore_command` and the target (`engine/src/pitr.rs`), and point the
//! application at it once it promotes.
//!
//! One live oracle, `restore_complete`: recovery never replays past a gap in the archive, and
//! a restore to `latest` that the store never refused reaches the archive's end.

use repsim_engine::basebackup::{backup_image, image_checkpoint};
use repsim_engine::config::BootRole;
use repsim_engine::io::{Command, DiskImage, FileId};
use repsim_engine::pitr::RecoveryTarget;
use repsim_engine::timeline::History;
use repsim_engine::{Input, Lsn, NodeId, Role};

use crate::metrics::{Mark, MarkKind};
use crate::scenario::model::RestoreTarget;
use crate::world::archive_store::BaseBackup;
use crate::world::event::EventKind;
use crate::world::restore_log::RestoreRun;
use crate::world::World;

/// How long a restore waits before asking the store again when it refused the download.
const RESTORE_RETRY_NS: u64 = 5_000_000_000;

impl World {
    /// `pg_basebackup --checkpoint=fast` of `node` into the store: `pg_backup_start` asks for
    /// an immediate checkpoint (a standby uses its last restartpoint), then the data directory
    /// is copied (`snapshot_backup`).
    pub(crate) fn take_base_backup(&mut self, node: NodeId) {
        let slot = &self.nodes[node as usize];
        if !slot.engine.as_ref().is_some_and(|e| matches!(e.role(), Role::Primary | Role::Standby)) {
            let text = format!("base backup of {} failed: PostgreSQL is not running", slot.name);
            return self.ha_log.push((self.now_ns, text));
        }
        self.backups_waiting.push((node, slot.incarnation));
        self.step_node(node, Input::Admin(Command::Checkpoint));
    }

    /// The backup's checkpoint on `node` is done: copy its data directory now.
    pub(crate) fn backup_checkpoint_done(&mut self, node: NodeId) {
        let incarnation = self.nodes[node as usize].incarnation;
        let before = self.backups_waiting.len();
        self.backups_waiting.retain(|&(n, i)| !(n == node && i == incarnation));
        if self.backups_waiting.len() < before {
            self.snapshot_backup(node);
        }
    }

    /// The copy, as one snapshot of the durable data directory, uploaded at the store's
    /// bandwidth.
    fn snapshot_backup(&mut self, node: NodeId) {
        let slot = &self.nodes[node as usize];
        let Some(engine) = slot.engine.as_ref() else { return };
        let segment = self.scenario.replication.wal_segment_size_bytes;
        let timeline = engine.timeline();
        let source = slot.disk.durable_image();
        let (Some(copy), Some(control)) = (backup_image(&source, segment), image_checkpoint(&source)) else { return };
        let stop_lsn = Lsn(slot.disk.wal_extent(segment, u32::MAX).durable_end);
        if self.archive.is_down(self.now_ns) {
            self.archive.failed_requests += 1;
            let text = format!("base backup of {} failed: the archive store is down", slot.name);
            return self.ha_log.push((self.now_ns, text));
        }
        let backup = BaseBackup {
            from: node,
            started_ns: self.now_ns,
            finished_ns: 0,
            timeline,
            start_lsn: control.redo,
            start_segno: control.redo.segment(segment),
            stop_lsn,
            bytes: copy.copied_bytes,
            image: copy.image,
        };
        let at = self.now_ns + self.archive.request_ns(backup.bytes);
        self.schedule(at, EventKind::BackupUploaded { backup: Box::new(backup) });
        // pg_backup_stop on a primary forces a segment switch, so that the WAL the backup
        // needs is archived now (the backup-end record itself is not modelled).
        self.step_node(node, Input::Admin(Command::SwitchWal));
    }

    pub(crate) fn backup_uploaded(&mut self, mut backup: BaseBackup) {
        if self.archive.is_down(self.now_ns) {
            self.archive.failed_requests += 1;
            return;
        }
        backup.finished_ns = self.now_ns;
        let label = format!("base backup of {} stored", self.nodes[backup.from as usize].name);
        self.metrics.marks.push(Mark { at_ns: self.now_ns, kind: MarkKind::Note, label });
        self.archive.add_backup(backup);
    }

    /// `[archive] backup_interval`: a backup of the application's primary, then the next.
    pub(crate) fn backup_due(&mut self) {
        if let Some(primary) = self.running_primary() {
            self.take_base_backup(primary);
        }
        let next = self.now_ns + self.scenario.archive.backup_interval_ns;
        if next < self.scenario.duration_ns {
            self.schedule(next, EventKind::BackupDue);
        }
    }

    /// `restore = { node, target }`: fetch the newest backup that fits the target onto the
    /// switched-off `node`; it recovers from the archive when the download lands.
    pub(crate) fn restore(&mut self, node: NodeId, target: RestoreTarget) {
        let slot = &self.nodes[node as usize];
        if slot.host_up || slot.engine.is_some() {
            let text = format!("restore onto {} refused: the host is running", slot.name);
            return self.ha_log.push((self.now_ns, text));
        }
        let lost_at_ns = self.nodes.iter().flat_map(|n| n.disk_losses_ns.iter().copied()).max();
        let mut run = RestoreRun {
            node: slot.name.clone(),
            target: describe(target),
            requested_at_ns: self.now_ns,
            lost_at_ns,
            node_index: node,
            to_latest: target == RestoreTarget::Latest,
            ..RestoreRun::default()
        };
        let fits = |b: &BaseBackup| match target {
            RestoreTarget::Latest => true,
            RestoreTarget::TimeNs(t) => b.started_ns <= t,
            RestoreTarget::Lsn(lsn) => b.stop_lsn.0 <= lsn,
        };
        let Some(backup) = self.archive.pick_backup(fits) else {
            run.outcome = "no base backup fits the target".into();
            return self.restores.push(run);
        };
        run.backup_from = self.nodes[backup.from as usize].name.clone();
        run.backup_taken_at_ns = backup.started_ns;
        run.backup_bytes = backup.bytes;
        run.backup_start_lsn = backup.start_lsn.to_string();
        run.backup_stop_lsn = backup.stop_lsn.0;
        let image = Box::new(backup.image.clone());
        let bytes = backup.bytes;
        self.restores.push(run);
        self.nodes[node as usize].host_up = true;
        self.nodes[node as usize].busy = true;
        self.fetch_backup(node, image, bytes, target);
    }

    fn fetch_backup(&mut self, node: NodeId, image: Box<DiskImage>, bytes: u64, target: RestoreTarget) {
        let incarnation = self.nodes[node as usize].incarnation;
        if self.archive.is_down(self.now_ns) {
            self.archive.failed_requests += 1;
            let at = self.now_ns + RESTORE_RETRY_NS;
            return self.schedule(at, EventKind::BackupFetched { node, incarnation, image, bytes, target, ok: false });
        }
        let at = self.now_ns + self.archive.request_ns(bytes);
        self.schedule(at, EventKind::BackupFetched { node, incarnation, image, bytes, target, ok: true });
    }

    /// The backup is on the node's disk: start PostgreSQL with `recovery.signal`, the target
    /// and `restore_command`, with the newest timeline's history file fetched from the
    /// archive (`recovery_target_timeline = latest`).
    pub(crate) fn backup_fetched(
        &mut self,
        node: NodeId,
        (mut image, bytes): (DiskImage, u64),
        ok: bool,
        target: RestoreTarget,
    ) {
        if !ok {
            return self.fetch_backup(node, Box::new(image), bytes, target);
        }
        if let Some((timeline, bytes)) = self.archive.newest_history() {
            image.files.insert(FileId::History(timeline), bytes.to_vec());
        }
        let now = self.now_ns;
        if let Some(run) = self.restore_of(node) {
            run.downloaded_at_ns = Some(now);
        }
        let slot = &mut self.nodes[node as usize];
        slot.busy = false;
        slot.disk_replaced = false;
        slot.disk.replace_image(image);
        slot.max_flushed = Lsn::INVALID;
        slot.config.restore_command = true;
        // The restored node starts alone: an operator clears `synchronous_standby_names`
        // (restored from the old primary's configuration, it would make every commit wait for
        // standbys that are gone).
        slot.config.synchronous_standby_names = repsim_engine::config::SyncStandbyNames::empty();
        slot.config.recovery_target = Some(match target {
            RestoreTarget::Latest => RecoveryTarget::Latest,
            RestoreTarget::TimeNs(ns) => RecoveryTarget::TimeNs(ns),
            RestoreTarget::Lsn(lsn) => RecoveryTarget::Lsn(Lsn(lsn)),
        });
        let label = format!("{} restoring from the archive", slot.name);
        self.metrics.marks.push(Mark { at_ns: now, kind: MarkKind::RoleChange, label });
        self.start_pg(node, BootRole::Standby, None);
    }

    /// The restore in progress on `node`, if any.
    fn restore_of(&mut self, node: NodeId) -> Option<&mut RestoreRun> {
        self.restores.iter_mut().rev().find(|r| r.node_index == node && r.promoted_at_ns.is_none())
    }

    /// `restore_command` on `node` fetched a segment (`ok`) or was refused by a store that is down.
    pub(crate) fn note_restore_request(&mut self, node: NodeId, fetched: bool, refused: bool) {
        if let Some(run) = self.restore_of(node) {
            run.segments_restored += fetched as u64;
            run.archive_refusals += refused as u64;
        }
    }

    /// A restoring node stopped with FATAL short of its target: it stays down (an operator
    /// must choose another target). Returns whether `node` was restoring.
    pub(crate) fn restore_failed(&mut self, node: NodeId, reason: &str) -> bool {
        let config_restoring = self.nodes[node as usize].config.recovery_target.is_some();
        let Some(run) = self.restore_of(node).filter(|_| config_restoring) else { return false };
        run.outcome = format!("FATAL: {reason}");
        // Recovery gave up for want of WAL: the archive must have had no more.
        if let Some(engine) = self.nodes[node as usize].engine.as_ref() {
            let (end, history, timeline) = (engine.replay_lsn(), engine.timeline_history().clone(), engine.timeline());
            self.judge_restore_end(node, end, (&history, timeline), true);
        }
        true
    }

    /// A restoring node promoted at `switch`: record it, and judge where recovery ended
    /// against what the archive held.
    pub(crate) fn restore_promoted(&mut self, node: NodeId, switch: Lsn, (history, timeline): (&History, u32)) {
        self.nodes[node as usize].config.recovery_target = None;
        let now = self.now_ns;
        let Some(run) = self.restore_of(node) else { return };
        let to_latest = run.to_latest;
        // The history recovery followed: without the switch the promotion just made.
        let followed = History { switches: history.switches[..history.switches.len().saturating_sub(1)].to_vec() };
        self.judge_restore_end(node, switch, (&followed, timeline - 1), to_latest);
        let Some(run) = self.restore_of(node) else { return };
        run.promoted_at_ns = Some(now);
        run.recovery_end_lsn = Some(switch.to_string());
        run.outcome = "promoted".into();
    }

    /// `restore_complete`: recovery on `node` ended at `end`. It must not be past the first
    /// segment the store lacks; and where it ended for want of WAL (`at_archive_end`), unless
    /// the store refused a request, within the segment before that gap.
    fn judge_restore_end(&mut self, node: NodeId, end: Lsn, chain: (&History, u32), at_archive_end: bool) {
        let segment = self.scenario.replication.wal_segment_size_bytes;
        let now = self.now_ns;
        let Some(run) = self.restore_of(node) else { return };
        let (stop, refused, name) = (run.backup_stop_lsn, run.archive_refusals > 0, run.node.clone());
        // The first segment from the backup's end on that the store holds no copy of, on the
        // timelines of the node's history that wrote it.
        let gap = self.archive.first_gap(stop / segment, |segno| last_writer(chain, segno, segment));
        let limit = (gap * segment).max(stop);
        let finding = if end.0 > limit {
            Some(format!("{name} recovered to {end}, past the archive's gap at segment {gap}"))
        } else if at_archive_end && !refused && end.0 + segment < limit {
            Some(format!("{name} ended recovery at {end}, a segment or more before the archive's end ({})", Lsn(limit)))
        } else {
            None
        };
        if let Some(text) = finding {
            self.live.record("restore_complete", now, || text);
        }
    }

    /// The first write a restored node acknowledged: the end of the outage (RTO).
    pub(crate) fn note_write_on(&mut self, node: NodeId) {
        let now = self.now_ns;
        let run = self.restores.iter_mut().find(|r| r.node_index == node && r.promoted_at_ns.is_some());
        if let Some(run) = run.filter(|r| r.first_write_at_ns.is_none()) {
            run.first_write_at_ns = Some(now);
            run.rto_ns = run.lost_at_ns.map(|lost| now.saturating_sub(lost));
        }
    }
}

/// The timeline of `history` that wrote the end of segment `segno`: its copy is the one that
/// holds the whole segment as the restoring node follows it (an older timeline's copy is good
/// only up to that timeline's switch).
fn last_writer((history, current): (&History, u32), segno: u64, segment: u64) -> std::ops::RangeInclusive<u32> {
    let timeline = history.timeline_at(Lsn((segno + 1) * segment - 1), current);
    timeline..=timeline
}

fn describe(target: RestoreTarget) -> String {
    match target {
        RestoreTarget::Latest => "latest".into(),
        RestoreTarget::TimeNs(ns) => format!("time {:.3}s", ns as f64 / 1e9),
        RestoreTarget::Lsn(lsn) => format!("lsn {}", Lsn(lsn)),
    }
}
