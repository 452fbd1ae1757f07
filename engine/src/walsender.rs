//! The walsender: one per connected standby on a primary (PostgreSQL `walsender.c`).

use crate::io::{Instant, NodeId, Observation, Output, TimerId};
use crate::lagtracker::{LagKind, LagTracker};
use crate::lsn::{segment_file_name, Lsn};
use crate::message::Message;
use crate::node::{Node, Role};

/// Most WAL bytes in one `w` message (`MAX_SEND_SIZE`, 16 pages of 8 KiB).
pub const MAX_SEND_BYTES: u64 = 128 * 1024;
pub const WAL_PAGE_BYTES: u64 = 8 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalSenderState {
    Catchup,
    Streaming,
}

impl WalSenderState {
    pub fn name(self) -> &'static str {
        match self {
            WalSenderState::Catchup => "catchup",
            WalSenderState::Streaming => "streaming",
        }
    }
}

#[derive(Clone, Debug)]
pub struct WalSender {
    pub peer: NodeId,
    /// Walsender slot order: ties in sync priority are broken by it.
    pub slot: u32,
    pub state: WalSenderState,
    pub start: Lsn,
    pub sent: Lsn,
    /// Last reported positions; `Lsn::INVALID` until the first reply.
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
    pub write_lag_ns: Option<u64>,
    pub flush_lag_ns: Option<u64>,
    pub replay_lag_ns: Option<u64>,
    /// Standby-clock time of the last reply.
    pub reply_time_ns: Option<u64>,
    last_reply: Instant,
    ping_sent: bool,
    lag: LagTracker,
    /// Two consecutive replies with apply == sent reset the lags to idle (spec §5.2).
    apply_caught_up_replies: u32,
    /// `backend_xmin`: the standby's `hot_standby_feedback` when it has no slot.
    pub feedback_xmin: Option<u32>,
}

impl WalSender {
    /// Any standby message: the timeout restarts, and `reply_time` is its clock.
    pub(crate) fn note_reply(&mut self, now: Instant, send_time_ns: u64) {
        self.last_reply = now;
        self.ping_sent = false;
        self.reply_time_ns = Some(send_time_ns);
    }

    /// In the candidate set for synchronous replication: streaming with a valid flush.
    pub fn is_sync_eligible(&self) -> bool {
        self.state == WalSenderState::Streaming && self.flush.is_valid()
    }
}

impl Node {
    pub(crate) fn on_start_replication(
        &mut self,
        now: Instant,
        peer: NodeId,
        start: Lsn,
        timeline: u32,
        out: &mut Vec<Output>,
    ) {
        let refuse = |text: String, out: &mut Vec<Output>| {
            out.push(Output::Observe(Observation::WalSenderError { standby: peer, text: text.clone() }));
            out.push(Output::Send { to: peer, msg: Message::Error { text } });
            out.push(Output::Disconnect { peer });
        };
        // A standby serves cascaded standbys from the WAL it has received (spec §2.3); a node
        // still in crash recovery, or promoting, accepts no replication connection.
        if self.role != Role::Primary && self.role != Role::Standby {
            return refuse("the database system is starting up".into(), out);
        }
        if !self.history.contains(timeline, self.timeline) {
            return refuse(format!("requested timeline {timeline} is not in this server's history"), out);
        }
        if let Some(switch) = self.history.end_of(timeline) {
            // A standby on a parent timeline may follow only if it has nothing past the fork.
            if start > switch {
                return refuse(
                    format!("requested starting point {start} on timeline {timeline} is not in this server's history"),
                    out,
                );
            }
        }
        if start > self.flusher.flushed {
            return refuse(
                format!(
                    "requested starting point {start} is ahead of the WAL flush position of this server {}",
                    self.flusher.flushed
                ),
                out,
            );
        }
        if start < self.wal.start() {
            return refuse(self.segment_removed_error(start), out);
        }
        if self.cfg.replication_slots {
            // The slot reserves WAL from where the standby starts (Patroni creates one per member).
            let restart = self.slots.entry(peer).or_insert(start);
            *restart = (*restart).min(start).max(self.wal.start());
        }
        // A new connection from the same standby replaces the old walsender.
        self.walsenders.remove(&peer);
        let slot = self.next_walsender_slot;
        self.next_walsender_slot += 1;
        let sender = WalSender {
            peer,
            slot,
            state: WalSenderState::Catchup,
            start,
            sent: start,
            write: Lsn::INVALID,
            flush: Lsn::INVALID,
            apply: Lsn::INVALID,
            write_lag_ns: None,
            flush_lag_ns: None,
            replay_lag_ns: None,
            reply_time_ns: None,
            last_reply: now,
            ping_sent: false,
            lag: LagTracker::default(),
            apply_caught_up_replies: 0,
            feedback_xmin: None,
        };
        self.walsenders.insert(peer, sender);
        // Stands in for CopyBothResponse: the standby learns the stream is open.
        let msg = Message::StreamStart { timeline: self.timeline, history: self.history.clone() };
        out.push(Output::Send { to: peer, msg });
        self.send_wal(now, peer, out);
        self.arm_walsender_timer(peer, out);
    }

    fn segment_removed_error(&self, lsn: Lsn) -> String {
        let segment = self.wal.segment_size_bytes();
        format!(
            "requested WAL segment {} has already been removed",
            segment_file_name(self.timeline, lsn.segment(segment), segment)
        )
    }

    pub(crate) fn send_to_all_walsenders(&mut self, now: Instant, out: &mut Vec<Output>) {
        let peers: Vec<NodeId> = self.walsenders.keys().copied().collect();
        for peer in peers {
            self.send_wal(now, peer, out);
        }
        self.send_to_all_logical_senders(now, out);
        self.send_flushed_copies(out);
    }

    /// A timeline switch here (promotion, or a cascading standby crossing to its upstream's
    /// new timeline) ends every stream we serve: each downstream standby asks again and crosses
    /// too (PostgreSQL's walsender ends the COPY at the end of the timeline it streams).
    pub(crate) fn end_streams_at_timeline_switch(&mut self, out: &mut Vec<Output>) {
        for peer in std::mem::take(&mut self.walsenders).into_keys() {
            out.push(Output::Disconnect { peer });
        }
        for peer in std::mem::take(&mut self.logical_senders).into_keys() {
            out.push(Output::Disconnect { peer });
        }
    }

    /// `XLogSendPhysical` until caught up or the socket buffers are full. The send limit is
    /// the WAL flushed here: on a cascading standby, what its walreceiver flushed
    /// (`GetStandbyFlushRecPtr`).
    pub(crate) fn send_wal(&mut self, now: Instant, peer: NodeId, out: &mut Vec<Output>) {
        let limit = self.flusher.flushed;
        let max_unacked = self.cfg.walsender_max_unacked_bytes;
        let Some(sender) = self.walsenders.get_mut(&peer) else {
            return;
        };
        sender.lag.write(limit, now.0);
        loop {
            if sender.sent >= limit {
                if sender.state == WalSenderState::Catchup {
                    sender.state = WalSenderState::Streaming;
                }
                return;
            }
            let acked = sender.write.max(sender.start);
            if sender.sent.bytes_since(acked) >= max_unacked {
                return; // socket backpressure: wait for the standby's replies
            }
            let mut end = Lsn(sender.sent.0 + MAX_SEND_BYTES);
            if end >= limit {
                end = limit;
            } else {
                end = Lsn(end.0 - end.0 % WAL_PAGE_BYTES);
            }
            let Some(bytes) = self.wal.read(sender.sent, end) else {
                let sent = sender.sent;
                let text = self.segment_removed_error(sent);
                self.walsenders.remove(&peer);
                out.push(Output::Observe(Observation::WalSenderError { standby: peer, text: text.clone() }));
                out.push(Output::Send { to: peer, msg: Message::Error { text } });
                out.push(Output::Disconnect { peer });
                return;
            };
            let msg = Message::XLogData { start: sender.sent, wal_end: limit, send_time_ns: now.0, bytes };
            out.push(Output::Send { to: peer, msg });
            sender.sent = end;
        }
    }

    pub(crate) fn on_status_update(
        &mut self,
        now: Instant,
        peer: NodeId,
        positions: (Lsn, Lsn, Lsn),
        send_time_ns: u64,
        reply_requested: bool,
        out: &mut Vec<Output>,
    ) {
        let Some(sender) = self.walsenders.get_mut(&peer) else {
            return;
        };
        let (write, flush, apply) = positions;
        sender.note_reply(now, send_time_ns);
        // Reported values never go back within a stream (I2.4); keep the maximum.
        sender.write = sender.write.max(write);
        sender.flush = sender.flush.max(flush);
        sender.apply = sender.apply.max(apply);
        if let Some(restart) = self.slots.get_mut(&peer) {
            // Physical slot: restart_lsn := the standby's flush.
            *restart = (*restart).max(flush);
        }
        let write_lag = sender.lag.read(LagKind::Write, write, now.0);
        let flush_lag = sender.lag.read(LagKind::Flush, flush, now.0);
        let apply_lag = sender.lag.read(LagKind::Apply, apply, now.0);
        if apply == sender.sent {
            sender.apply_caught_up_replies += 1;
        } else {
            sender.apply_caught_up_replies = 0;
        }
        if sender.apply_caught_up_replies >= 2 {
            // Idle: PostgreSQL overwrites all three lags, so they read NULL.
            sender.write_lag_ns = write_lag;
            sender.flush_lag_ns = flush_lag;
            sender.replay_lag_ns = apply_lag;
        } else {
            sender.write_lag_ns = write_lag.or(sender.write_lag_ns);
            sender.flush_lag_ns = flush_lag.or(sender.flush_lag_ns);
            sender.replay_lag_ns = apply_lag.or(sender.replay_lag_ns);
        }
        if reply_requested {
            let msg = Message::Keepalive { wal_end: sender.sent, send_time_ns: now.0, reply_requested: false };
            out.push(Output::Send { to: peer, msg });
        }
        self.release_sync_waiters(out);
        self.send_wal(now, peer, out);
        self.arm_walsender_timer(peer, out);
        if !self.cfg.synchronized_standby_slots.is_empty() {
            // A physical slot moved: failover slots' walsenders may send further.
            self.send_to_all_logical_senders(now, out);
        }
    }

    fn arm_walsender_timer(&self, peer: NodeId, out: &mut Vec<Output>) {
        let timeout = self.cfg.wal_sender_timeout_ns;
        let Some(sender) = self.walsenders.get(&peer) else {
            return;
        };
        if timeout == 0 {
            return;
        }
        let at = if sender.ping_sent { sender.last_reply.0 + timeout } else { sender.last_reply.0 + timeout / 2 };
        out.push(Output::SetTimer { id: TimerId::WalSender(peer), at: Instant(at) });
    }

    /// `WalSndKeepaliveIfNecessary` and `WalSndCheckTimeOut`.
    pub(crate) fn on_walsender_timer(&mut self, now: Instant, peer: NodeId, out: &mut Vec<Output>) {
        let timeout = self.cfg.wal_sender_timeout_ns;
        let Some(sender) = self.walsenders.get_mut(&peer) else {
            return;
        };
        if timeout == 0 {
            return;
        }
        if now.0 >= sender.last_reply.0 + timeout {
            self.walsenders.remove(&peer);
            out.push(Output::Observe(Observation::WalSenderError {
                standby: peer,
                text: "terminating walsender process due to replication timeout".into(),
            }));
            out.push(Output::Disconnect { peer });
            return;
        }
        if !sender.ping_sent && now.0 >= sender.last_reply.0 + timeout / 2 {
            sender.ping_sent = true;
            let msg = Message::Keepalive { wal_end: sender.sent, send_time_ns: now.0, reply_requested: true };
            out.push(Output::Send { to: peer, msg });
        }
        self.arm_walsender_timer(peer, out);
    }

    /// The standby's connection is gone: its walsender exits and leaves the sync set, and a
    /// `CREATE_REPLICATION_SLOT` answer it still owed (an initial copy waiting for its slot to
    /// be saved) dies with it (swarm seed 1623: a copy made for a dead connection went out on
    /// the subscriber's next one, whose request had remade the slot further on).
    pub(crate) fn drop_walsender(&mut self, peer: NodeId) {
        self.walsenders.remove(&peer);
        self.logical_senders.remove(&peer);
        self.pending_copies.retain(|(p, ..)| *p != peer);
    }
}
