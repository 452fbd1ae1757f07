//! Base backups into the archive store and restores from it (issue 13.4–13.6): the world runs
//! `pg_basebackup` piped to the store (WAL-G `backup-push`, Barman `backup`), and an
//! operator's restore: fetch the newest suitable backup (`backup-fetch`), start it with
//! `recovery.signal`, `restore_command` and the target (`engine/src/pitr.rs`), and point the
//! application at it once it promotes.
//!
//! One live oracle, `restore_complete`: recovery never replays past the WAL its backup held
//! and the archive served, and where it ends for want of WAL (a restore to `latest`, or a time
//! or LSN target the archive does not reach) it asked for the next segment, found none, and
//! replayed what it was given.

use repsim_engine::basebackup::{backup_image, image_checkpoint};
use repsim_engine::config::BootRole;
use repsim_engine::io::{Command, DiskImage, FileId};
use repsim_engine::pitr::{RecoveryTarget, TARGET_NOT_REACHED};
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
        if let Some(at) = self.backups_waiting.iter().position(|&waiting| waiting == (node, incarnation)) {
            self.backups_waiting.remove(at);
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
        let stop_lsn = engine.status().flush_lsn;
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
        let slot = &mut self.nodes[node as usize];
        slot.host_up = true;
        slot.busy = true;
        // Nothing to boot until the backup lands: a power loss meanwhile leaves an empty disk.
        slot.disk_replaced = true;
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
        let chain = repsim_engine::basebackup::image_checkpoint(&image).map(|c| (c.timeline, c.redo));
        if let Some((timeline, bytes)) = chain.and_then(|(t, redo)| self.archive.newest_history_from(t, redo)) {
            image.files.insert(FileId::History(timeline), bytes.to_vec().into());
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
    /// `found`: the timeline of the copy served; `refused`: the store was down.
    pub(crate) fn note_restore_request(&mut self, node: NodeId, segno: u64, found: Option<u32>, refused: bool) {
        let segment = self.scenario.replication.wal_segment_size_bytes;
        // The timeline that wrote the segment's end, in the history the node follows: an older
        // timeline's copy holds it only up to that timeline's switch.
        let last_writer = self.nodes[node as usize]
            .engine
            .as_ref()
            .map(|e| e.timeline_history().timeline_at(Lsn((segno + 1) * segment - 1), e.timeline()));
        let Some(run) = self.restore_of(node) else { return };
        match (found, refused) {
            (Some(timeline), _) => {
                run.segments_restored += 1;
                run.served_end_segno = run.served_end_segno.max(segno + 1);
                run.partial_served |= Some(timeline) != last_writer;
                run.last_missing_segno = None;
            }
            (None, true) => run.archive_refusals += 1,
            // The latest miss, not the first: a restore that failed on a segment not archived
            // yet is booted again by settle and may get further (swarm seed 31172).
            (None, false) => run.last_missing_segno = Some(segno),
        }
    }

    /// The restoring `node` lost power before its backup landed.
    pub(crate) fn restore_interrupted(&mut self, node: NodeId) {
        if let Some(run) = self.restore_of(node).filter(|r| r.downloaded_at_ns.is_none() && r.outcome.is_empty()) {
            run.outcome = "interrupted: the host lost power during the download".into();
        }
    }

    /// A restoring node stopped with FATAL short of its time or LSN target: it stays down (an
    /// operator must choose another target).
    pub(crate) fn restore_failed(&mut self, node: NodeId, replayed_to: Lsn) {
        if let Some(run) = self.restore_of(node) {
            run.outcome = format!("FATAL: {TARGET_NOT_REACHED} (replayed to {replayed_to})");
        }
        // Recovery gave up for want of WAL: the archive must have had no more.
        self.judge_restore_end(node, replayed_to, true);
        self.stop_pg(node);
    }

    /// A restoring node promoted at `switch`: record it, and judge where recovery ended
    /// against what the archive served.
    pub(crate) fn restore_promoted(&mut self, node: NodeId, switch: Lsn) {
        let now = self.now_ns;
        let Some(run) = self.restore_of(node) else { return };
        let to_latest = run.to_latest;
        self.judge_restore_end(node, switch, to_latest);
        let Some(run) = self.restore_of(node) else { return };
        run.promoted_at_ns = Some(now);
        run.recovery_end_lsn = Some(switch.to_string());
        run.outcome = "promoted".into();
    }

    /// `restore_complete`: recovery on `node` ended at `end`. It must not be past the WAL the
    /// backup held and the archive served; and where it ended for want of WAL
    /// (`at_archive_end`), unless the store refused a request or served only an older
    /// timeline's part of a segment, it must have asked for the next segment, found it
    /// missing, and replayed what it was given (to within the record that spans the gap).
    fn judge_restore_end(&mut self, node: NodeId, end: Lsn, at_archive_end: bool) {
        let segment = self.scenario.replication.wal_segment_size_bytes;
        let now = self.now_ns;
        let Some(run) = self.restore_of(node) else { return };
        let (stop, name) = (run.backup_stop_lsn, run.node.clone());
        let next_segno = if run.served_end_segno == 0 { stop / segment } else { run.served_end_segno };
        let limit = (run.served_end_segno * segment).max(stop);
        let judged = at_archive_end && run.archive_refusals == 0 && !run.partial_served;
        let finding = if end.0 > limit {
            Some(format!(
                "{name} recovered to {end}, past the WAL its backup held and the archive served ({})",
                Lsn(limit)
            ))
        } else if judged && run.last_missing_segno != Some(next_segno) {
            Some(format!("{name} ended recovery at {end} without asking the archive for segment {next_segno}"))
        } else if judged && end.0 + segment < limit {
            Some(format!(
                "{name} ended recovery at {end}, a segment or more before the WAL the archive served ({})",
                Lsn(limit)
            ))
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
        let run = self.restores.iter_mut().rev().find(|r| r.node_index == node && r.promoted_at_ns.is_some());
        if let Some(run) = run.filter(|r| r.first_write_at_ns.is_none()) {
            run.first_write_at_ns = Some(now);
            run.rto_ns = run.lost_at_ns.map(|lost| now.saturating_sub(lost));
        }
    }
}

fn describe(target: RestoreTarget) -> String {
    match target {
        RestoreTarget::Latest => "latest".into(),
        RestoreTarget::TimeNs(ns) => format!("time {:.3}s", ns as f64 / 1e9),
        RestoreTarget::Lsn(lsn) => format!("lsn {}", Lsn(lsn)),
    }
}
