//! The walreceiver: a standby's one connection to its upstream (PostgreSQL `walreceiver.c`).

use crate::io::{Instant, Observation, Output, TimerId};
use crate::lsn::Lsn;
use crate::message::Message;
use crate::node::{Node, Role};

/// A walreceiver not streaming within this long counts as failed (spec §4.1).
pub const CONNECT_TIMEOUT_NS: u64 = 10_000_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReceiverState {
    #[default]
    Stopped,
    /// START_REPLICATION sent, no answer yet.
    Connecting,
    Streaming,
    /// Stream ended; the next attempt is due at `retry_at`.
    Waiting,
}

impl ReceiverState {
    /// `pg_stat_wal_receiver.status`.
    pub fn name(self) -> &'static str {
        match self {
            ReceiverState::Stopped => "stopped",
            ReceiverState::Connecting => "connecting",
            ReceiverState::Streaming => "streaming",
            ReceiverState::Waiting => "waiting",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WalReceiver {
    pub state: ReceiverState,
    /// Start of this stream (`receive_start_lsn`).
    pub receive_start_lsn: Lsn,
    /// `latest_end_lsn`: walEnd of the last message.
    pub latest_end_lsn: Lsn,
    /// Sender-clock time of the last message (`last_msg_send_time`).
    pub last_msg_send_time_ns: u64,
    /// Our clock when the last message arrived (`last_msg_receipt_time`).
    pub(crate) last_msg_receipt: Instant,
    attempt_started: Instant,
    retry_at: Instant,
    ping_sent: bool,
    last_status_sent: Instant,
    last_reported: (Lsn, Lsn, Lsn),
    /// When the last `h` went out in this stream (`None`: not yet; the first is forced).
    hs_feedback_sent: Option<Instant>,
}

impl Node {
    /// Opens a stream to `primary_conninfo` from our flushed position. PostgreSQL rounds the
    /// start down to the segment start and re-receives identical bytes; we start at the flushed
    /// position itself. That leaves the same WAL on disk because the current timeline's file
    /// already holds the segment's head (boot copies it there when the segment was loaded from
    /// an older timeline's file: `start_own_segment_if_borrowed` in recovery.rs).
    pub(crate) fn start_walreceiver(&mut self, now: Instant, out: &mut Vec<Output>) {
        let Some(upstream) = self.cfg.primary_conninfo else {
            return;
        };
        let start = self.flusher.flushed;
        self.receiver.state = ReceiverState::Connecting;
        self.receiver.receive_start_lsn = start;
        self.receiver.attempt_started = now;
        self.receiver.last_msg_receipt = now;
        self.receiver.ping_sent = false;
        self.receiver.last_reported = (Lsn::INVALID, Lsn::INVALID, Lsn::INVALID);
        self.receiver.hs_feedback_sent = None;
        out.push(Output::Send { to: upstream, msg: Message::StartReplication { start, timeline: self.timeline } });
        self.arm_walreceiver_timer(out);
    }

    /// The stream ended: wait `wal_retrieve_retry_interval` from the last attempt, then retry.
    pub(crate) fn stop_walreceiver(&mut self, now: Instant, reason: String, out: &mut Vec<Output>) {
        if self.receiver.state == ReceiverState::Waiting || self.receiver.state == ReceiverState::Stopped {
            return;
        }
        if let Some(upstream) = self.cfg.primary_conninfo {
            out.push(Output::Disconnect { peer: upstream });
        }
        self.receiver.state = ReceiverState::Waiting;
        let earliest = self.receiver.attempt_started.0 + self.cfg.wal_retrieve_retry_interval_ns;
        self.receiver.retry_at = Instant(earliest.max(now.0));
        out.push(Output::Observe(Observation::WalReceiverStopped { reason }));
        self.arm_walreceiver_timer(out);
        // The WAL source loop turns to the archive when streaming fails.
        self.try_restore(out);
    }

    fn note_upstream_message(&mut self, now: Instant, wal_end: Lsn, send_time_ns: u64) {
        if self.receiver.state == ReceiverState::Connecting {
            self.receiver.state = ReceiverState::Streaming;
        }
        self.receiver.last_msg_receipt = now;
        self.receiver.ping_sent = false;
        self.receiver.last_msg_send_time_ns = send_time_ns;
        self.receiver.latest_end_lsn = self.receiver.latest_end_lsn.max(wal_end);
    }

    pub(crate) fn on_xlogdata(
        &mut self,
        now: Instant,
        start: Lsn,
        wal_end: Lsn,
        send_time_ns: u64,
        bytes: &[u8],
        out: &mut Vec<Output>,
    ) {
        if self.role != Role::Standby || self.receiver.state == ReceiverState::Waiting {
            return;
        }
        self.note_upstream_message(now, wal_end, send_time_ns);
        if let Err(at) = self.wal.receive(start, bytes) {
            // Upstream's WAL differs from ours: we diverged (e.g. a torn tail survived).
            return self.stop_walreceiver(now, format!("received WAL at {at} differs from local WAL"), out);
        }
        self.write_wal(out);
        self.arm_walreceiver_timer(out);
    }

    pub(crate) fn on_keepalive(
        &mut self,
        now: Instant,
        wal_end: Lsn,
        send_time_ns: u64,
        reply_requested: bool,
        out: &mut Vec<Output>,
    ) {
        if self.role != Role::Standby || self.receiver.state == ReceiverState::Waiting {
            return;
        }
        self.note_upstream_message(now, wal_end, send_time_ns);
        if reply_requested {
            self.send_status(now, false, out);
        } else if self.receiver.last_reported.0 == Lsn::INVALID {
            // Stream start: a forced reply so the sender learns our positions.
            self.send_status(now, false, out);
        }
        self.arm_walreceiver_timer(out);
    }

    pub(crate) fn receiver_wal_written(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.send_status_if_moved(now, out);
        self.flush_wal_on_standby(out);
    }

    fn flush_wal_on_standby(&mut self, out: &mut Vec<Output>) {
        if self.flusher.written > self.flusher.flushed && self.flusher.fsync_in_flight.is_none() {
            // Only what has been written is fsynced: `write_requested` is at least `written`.
            self.flush_wal(out);
        }
    }

    pub(crate) fn receiver_wal_flushed(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.send_status_if_moved(now, out);
        // Cascaded standbys get what we flushed (`WalSndWakeup` after `XLogWalRcvFlush`).
        self.send_to_all_walsenders(now, out);
        self.kick_replay(now, out);
        self.maybe_finish_promotion(now, out);
    }

    fn send_status_if_moved(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.receiver.state != ReceiverState::Streaming || self.cfg.wal_receiver_status_interval_ns == 0 {
            return;
        }
        let (write, flush, _) = self.receiver.last_reported;
        if self.flusher.written > write || self.flusher.flushed > flush {
            self.send_status(now, false, out);
        }
    }

    /// An `r` message with our write, flush and apply positions.
    pub(crate) fn send_status(&mut self, now: Instant, reply_requested: bool, out: &mut Vec<Output>) {
        let Some(upstream) = self.cfg.primary_conninfo else {
            return;
        };
        if !matches!(self.receiver.state, ReceiverState::Streaming | ReceiverState::Connecting) {
            return;
        }
        let positions = (self.flusher.written, self.flusher.flushed, self.replay.lsn);
        self.receiver.last_reported = positions;
        self.receiver.last_status_sent = now;
        out.push(Output::Send {
            to: upstream,
            msg: Message::StatusUpdate {
                write: positions.0,
                flush: positions.1,
                apply: positions.2,
                send_time_ns: now.0,
                reply_requested,
            },
        });
        self.send_hot_standby_feedback(now, upstream, out);
    }

    /// `XLogWalRcvSendHSFeedback`: with `hot_standby_feedback`, an `h` with our oldest `xmin`
    /// at stream start and then at most once per `wal_receiver_status_interval`, beside the
    /// status updates.
    fn send_hot_standby_feedback(&mut self, now: Instant, upstream: u32, out: &mut Vec<Output>) {
        if !self.cfg.hot_standby_feedback {
            return;
        }
        let interval_ns = self.cfg.wal_receiver_status_interval_ns;
        if self.receiver.hs_feedback_sent.is_some_and(|at| now.0 < at.0.saturating_add(interval_ns)) {
            return;
        }
        self.receiver.hs_feedback_sent = Some(now);
        let xmin = self.oldest_xmin();
        out.push(Output::Send { to: upstream, msg: Message::HotStandbyFeedback { xmin, send_time_ns: now.0 } });
    }

    /// The next wake-up, as `WalRcvComputeNextWakeup` computes it.
    fn arm_walreceiver_timer(&self, out: &mut Vec<Output>) {
        let r = &self.receiver;
        let cfg = &self.cfg;
        let at = match r.state {
            ReceiverState::Stopped => return,
            ReceiverState::Waiting => r.retry_at.0,
            ReceiverState::Connecting => r.attempt_started.0 + CONNECT_TIMEOUT_NS,
            ReceiverState::Streaming => {
                let mut at = u64::MAX;
                if cfg.wal_receiver_timeout_ns > 0 {
                    let half = if r.ping_sent { cfg.wal_receiver_timeout_ns } else { cfg.wal_receiver_timeout_ns / 2 };
                    at = at.min(r.last_msg_receipt.0 + half);
                }
                if cfg.wal_receiver_status_interval_ns > 0 {
                    at = at.min(r.last_status_sent.0 + cfg.wal_receiver_status_interval_ns);
                }
                if at == u64::MAX {
                    return;
                }
                at
            }
        };
        out.push(Output::SetTimer { id: TimerId::WalReceiver, at: Instant(at) });
    }

    pub(crate) fn on_walreceiver_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.role != Role::Standby {
            return;
        }
        let timeout = self.cfg.wal_receiver_timeout_ns;
        match self.receiver.state {
            ReceiverState::Stopped => {}
            ReceiverState::Waiting => {
                if now >= self.receiver.retry_at {
                    self.start_walreceiver(now, out);
                } else {
                    self.arm_walreceiver_timer(out);
                }
            }
            ReceiverState::Connecting => {
                if now.0 >= self.receiver.attempt_started.0 + CONNECT_TIMEOUT_NS {
                    self.stop_walreceiver(now, "could not connect to the primary server: timeout".into(), out);
                } else {
                    self.arm_walreceiver_timer(out);
                }
            }
            ReceiverState::Streaming => {
                let silent_ns = now.0.saturating_sub(self.receiver.last_msg_receipt.0);
                if timeout > 0 && silent_ns >= timeout {
                    return self.stop_walreceiver(now, "terminating walreceiver due to timeout".into(), out);
                }
                if timeout > 0 && silent_ns >= timeout / 2 && !self.receiver.ping_sent {
                    self.receiver.ping_sent = true;
                    self.send_status(now, true, out);
                } else if self.cfg.wal_receiver_status_interval_ns > 0
                    && now.0 >= self.receiver.last_status_sent.0 + self.cfg.wal_receiver_status_interval_ns
                {
                    self.send_status(now, false, out);
                }
                self.arm_walreceiver_timer(out);
            }
        }
    }
}
