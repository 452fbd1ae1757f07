//! Promotion and timelines (PostgreSQL `StartupXLOG` end of recovery, `XLogInitNewTimeline`,
//! `rescanLatestTimeLine`): a standby becomes a primary on a new timeline; standbys cross to a
//! newer upstream timeline when they have nothing past its fork point.

use crate::io::{Command, FileId, Instant, Observation, Output, TimerId};
use crate::lsn::Lsn;
use crate::node::{EndOfRecovery, IoPurpose, Node, Role};
use crate::timeline::History;
use crate::wal::record::RecordBody;
use crate::walreceiver::ReceiverState;

impl Node {
    pub(crate) fn on_admin(&mut self, now: Instant, command: Command, out: &mut Vec<Output>) {
        match command {
            Command::Promote => self.request_promotion(now, out),
            Command::Checkpoint => self.admin_checkpoint(now, out),
            Command::SwitchWal => self.switch_wal(now, out),
            Command::Follow { upstream } => self.follow(now, upstream, out),
            Command::Shutdown => {
                if self.shutdown.is_none() {
                    self.shutdown = Some(false);
                    self.flush_wal(out);
                }
            }
            Command::CreateLogicalSlot { name, failover } => self.create_logical_slot(&name, failover, out),
            Command::DropLogicalSlot { name } => self.drop_logical_slot(&name, out),
            Command::SetPublisher { subscription, publisher } => self.set_publisher(&subscription, publisher, out),
            Command::SkipTransaction { subscription } => self.skip_transaction(now, &subscription, out),
            Command::CreateSubscription(subscription) => self.create_subscription(*subscription, out),
            Command::SetSyncStandbyNames(names) => {
                self.cfg.synchronous_standby_names = names;
                if self.role == Role::Primary {
                    // Emptying the setting wakes every waiter (spec §3.2); otherwise waiters
                    // are re-evaluated against the new set.
                    if self.cfg.synchronous_standby_names.is_empty() {
                        self.release_all_remote_waiters(out);
                    }
                    self.release_sync_waiters(out);
                }
            }
        }
    }

    fn follow(&mut self, now: Instant, upstream: u32, out: &mut Vec<Output>) {
        if self.cfg.primary_conninfo == Some(upstream) && self.receiver.state != ReceiverState::Waiting {
            return;
        }
        if let Some(old) = self.cfg.primary_conninfo {
            if self.receiver.state != ReceiverState::Stopped && self.receiver.state != ReceiverState::Waiting {
                out.push(Output::Disconnect { peer: old });
            }
        }
        self.cfg.primary_conninfo = Some(upstream);
        if self.role == Role::Standby && !self.promote_requested {
            // PostgreSQL 13+ restarts the walreceiver on a primary_conninfo reload at once.
            self.start_walreceiver(now, out);
        }
    }

    /// `pg_promote()`: stop streaming, replay what was flushed, then switch timeline.
    pub(crate) fn request_promotion(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role != Role::Standby || self.promote_requested {
            return;
        }
        self.promote_requested = true;
        self.promote_requested_at = now;
        if let Some(upstream) = self.cfg.primary_conninfo {
            if matches!(self.receiver.state, ReceiverState::Streaming | ReceiverState::Connecting) {
                out.push(Output::Disconnect { peer: upstream });
            }
        }
        self.receiver.state = ReceiverState::Stopped;
        // WalRcvDie: the exiting walreceiver fsyncs everything it wrote (XLogWalRcvFlush), and
        // the startup process replays all WAL already streamed into pg_wal before it ends
        // recovery (xlogrecovery.c, WaitForWALToBecomeAvailable).
        self.flush_wal(out);
        self.maybe_finish_promotion(now, out);
    }

    /// Called after every replay batch: promotion completes once replay has consumed every
    /// complete record that was flushed.
    pub(crate) fn maybe_finish_promotion(&mut self, now: Instant, out: &mut Vec<Output>) {
        if !self.promote_requested || self.replay_busy() || self.history_file_pending() {
            return;
        }
        // The walreceiver's last writes and their fsync first (`receiver_wal_flushed` calls
        // back here).
        if self.flusher.flushed < self.flusher.write_requested {
            return;
        }
        if self.replay_has_more() {
            self.kick_replay(now, out);
            return;
        }
        if self.recovery_target_satisfied(out) {
            self.finish_promotion(out);
        }
    }

    /// End of recovery, first half (`StartupXLOG`): cut the WAL at the last complete record
    /// replayed and write the new timeline's history file. PostgreSQL writes and fsyncs that
    /// file (`writeTimeLineHistory` in timeline.c, a failed fsync PANICs) before it writes any
    /// WAL on the new timeline, so a crash here leaves no new-timeline WAL without its history.
    /// The switch itself waits for that fsync ([`Node::history_file_durable`]).
    fn finish_promotion(&mut self, out: &mut Vec<Output>) {
        // E: the end of the last complete record replayed. Anything after it (a partial record)
        // is not part of the new history; everything streamed was flushed and replayed first.
        let switch = self.replay.lsn;
        self.cut_old_timeline_after(switch, out);
        self.wal.truncate(switch.min(self.wal.end()), self.replay.prev);
        self.replay.discard_pending();
        self.ios.retain(|_, p| !matches!(p, IoPurpose::WalWrite { .. } | IoPurpose::WalFsync { .. }));
        self.flusher.reset_to(switch);
        let new_timeline = self.timeline + 1;
        let history = self.history.child(self.timeline, switch);
        let file = FileId::History(new_timeline);
        let io = self.new_io(IoPurpose::Meta);
        let bytes = history.encode();
        out.push(Output::Write { io, file, offset: 0, cost_bytes: bytes.len() as u64, bytes });
        let io = self.new_io(IoPurpose::PromotionHistory { switch });
        out.push(Output::Fsync { io, file });
    }

    /// The end of archive recovery renames the old timeline's last segment to `.partial` and
    /// removes later ones (`CleanupAfterArchiveRecovery`, xlog.c), so that no WAL past the
    /// switch point (a restore stopped at its target; a torn record) is read as this
    /// history's: the segment file holding the switch is cut there and later ones removed.
    fn cut_old_timeline_after(&self, switch: Lsn, out: &mut Vec<Output>) {
        let segment = self.cfg.wal_segment_size_bytes;
        let (switch_segno, end_segno) = (switch.segment(segment), self.wal.end().segment(segment));
        if self.wal.end() <= switch {
            return;
        }
        let file = |segno| FileId::WalSegment { timeline: self.timeline, segno };
        out.push(Output::Truncate { file: file(switch_segno), len: switch.0 % segment });
        for segno in switch_segno + 1..=end_segno {
            out.push(Output::Remove { file: file(segno) });
        }
    }

    fn history_file_pending(&self) -> bool {
        self.ios.values().any(|p| matches!(p, IoPurpose::PromotionHistory { .. }))
    }

    /// End of recovery, second half: the history file is durable, so the new timeline begins.
    /// (PostgreSQL unlinks `standby.signal` just before writing the history file; here the
    /// node's boot role flips with the switch, which differs only if that fsync fails.)
    /// Writes wait for the end-of-recovery record and `pg_control` ([`EndOfRecovery`]).
    pub(crate) fn history_file_durable(&mut self, now: Instant, switch: Lsn, out: &mut Vec<Output>) {
        if !self.promote_requested || self.role != Role::Standby {
            return;
        }
        self.promote_requested = false;
        // recovery.signal is removed with the switch: a later restart recovers as a primary.
        self.cfg.recovery_target = None;
        let (old_timeline, new_timeline) = (self.timeline, self.timeline + 1);
        self.history = self.history.child(self.timeline, switch);
        self.timeline = new_timeline;
        self.end_streams_at_timeline_switch(out);
        self.start_timeline_file(switch, out);
        self.role = Role::Primary;
        self.next_xid_past_replayed();
        self.cfg.boot_role = crate::config::BootRole::Primary;
        self.cfg.primary_conninfo = None;
        out.push(Output::Observe(Observation::Promoted { timeline: new_timeline, switch }));
        out.push(Output::SetTimer { id: TimerId::WalWriter, at: Instant(now.0 + self.cfg.wal_writer_delay_ns) });
        // Fast promotion (PostgreSQL 9.3+): no end-of-recovery checkpoint, only a record that
        // marks the end of recovery, flushed at once (`CreateEndOfRecoveryRecord`).
        let body =
            RecordBody::EndOfRecovery { timeline: new_timeline, prev_timeline: old_timeline, timestamp_ns: now.0 };
        let (_, record_end) = self.wal.append(0, body);
        self.end_of_recovery = Some(EndOfRecovery::RecordFlush { record_end });
        self.flush_wal(out);
    }

    pub(crate) fn end_of_recovery_waits_for_flush(&self) -> bool {
        matches!(self.end_of_recovery, Some(EndOfRecovery::RecordFlush { record_end }) if self.flusher.flushed < record_end)
    }

    /// Called after every WAL flush: once the end-of-recovery record is durable, `pg_control`
    /// is updated (its minimum recovery point moves to the record, so a crash cannot go back
    /// past the promotion).
    pub(crate) fn end_of_recovery_after_flush(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(EndOfRecovery::RecordFlush { record_end }) = self.end_of_recovery else { return };
        if self.flusher.flushed < record_end {
            return;
        }
        // The control file keeps the last checkpoint or restartpoint: crash recovery replays
        // from it across the switch (the new timeline's history file is durable).
        let Some(control) = self.checkpointer.last else {
            self.end_of_recovery = None;
            return self.accept_writes(now, out);
        };
        self.write_and_fsync(IoPurpose::PromotionControl, FileId::Control, control.encode(), out);
        self.end_of_recovery = Some(EndOfRecovery::Control { pending: 2 });
    }

    /// A control-file write or fsync of the promotion completed.
    pub(crate) fn promotion_control_done(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(EndOfRecovery::Control { pending }) = self.end_of_recovery else { return };
        if pending > 1 {
            self.end_of_recovery = Some(EndOfRecovery::Control { pending: pending - 1 });
            return;
        }
        self.end_of_recovery = None;
        self.accept_writes(now, out);
    }

    /// `SharedRecoveryState = RECOVERY_STATE_DONE`: sessions may write. Then, as PostgreSQL
    /// does after a promotion, a checkpoint is requested and not waited for
    /// (`RequestCheckpoint(CHECKPOINT_FORCE)` at the end of `StartupXLOG`).
    fn accept_writes(&mut self, now: Instant, out: &mut Vec<Output>) {
        let duration_ns = now.0.saturating_sub(self.promote_requested_at.0);
        out.push(Output::Observe(Observation::PromotionComplete { timeline: self.timeline, duration_ns }));
        self.request_checkpoint(now, out);
        // The new timeline's first segment is ours to archive; those before it were the old
        // primary's.
        let switch = self.history.switches.last().map_or(self.wal.start(), |s| s.switch);
        let from = switch.0 / self.cfg.wal_segment_size_bytes;
        self.start_archiving(now, from, out);
        self.start_apply_workers(out);
    }

    fn write_history_file(&mut self, timeline: u32, out: &mut Vec<Output>) {
        self.write_and_fsync(IoPurpose::Meta, FileId::History(timeline), self.history.encode(), out);
    }

    /// The new timeline's segment holding `at` starts as a copy of the old one up to `at`.
    pub(crate) fn start_timeline_file(&mut self, at: Lsn, out: &mut Vec<Output>) {
        let segment = self.wal.segment_size_bytes();
        let seg_start = at.segment_start(segment);
        let Some(bytes) = self.wal.read(seg_start, at) else { return };
        let file = FileId::WalSegment { timeline: self.timeline, segno: at.segment(segment) };
        self.write_and_fsync(IoPurpose::Meta, file, bytes, out);
    }

    /// The upstream opened a stream and told us its timeline. If it is newer and forked at or
    /// after our position (the walsender checked), cross to it, as
    /// `recovery_target_timeline = latest` does.
    pub(crate) fn on_stream_start(&mut self, now: Instant, timeline: u32, history: History, out: &mut Vec<Output>) {
        // PostgreSQL checks the upstream's timeline history before following it
        // (`rescanLatestTimeLine` in xlogrecovery.c): a timeline number is not an identity (two
        // promotions off timeline 1 without a shared archive both create "timeline 2"), so the
        // upstream's history must extend ours, and a newer timeline must fork off at or after
        // all the WAL we hold.
        let held = self.wal.end().max(self.replay.lsn);
        let extends = history.switches.starts_with(&self.history.switches);
        let follows = match timeline.cmp(&self.timeline) {
            std::cmp::Ordering::Equal => history == self.history,
            std::cmp::Ordering::Greater => {
                extends && history.end_of(self.timeline).is_some_and(|switch| switch >= held)
            }
            std::cmp::Ordering::Less => false,
        };
        if !follows {
            let reason = format!(
                "new timeline {timeline} forked off current timeline {} before current recovery point {held}: \
                 not in this server's history",
                self.timeline
            );
            return self.stop_walreceiver(now, reason, out);
        }
        if self.receiver.state == ReceiverState::Connecting {
            self.receiver.state = ReceiverState::Streaming;
        }
        if timeline > self.timeline {
            self.history = history;
            let old = self.timeline;
            self.timeline = timeline;
            for tli in (old + 1)..=timeline {
                self.write_history_file(tli, out);
            }
            self.start_timeline_file(self.flusher.write_requested, out);
            self.end_streams_at_timeline_switch(out);
            out.push(Output::Observe(Observation::TimelineAdopted { timeline }));
        }
        // Stream start: a forced reply so the sender learns our positions.
        self.send_status(now, false, out);
    }
}
