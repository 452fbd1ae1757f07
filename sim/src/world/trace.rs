//! The trace: every processed event folded into a hash (the run's fingerprint), and optionally
//! written as JSON lines. The hash folds fixed-width fields a word at a time
//! (`repsim_engine::fingerprint`), so it is the same on every machine and build.

use std::io::Write;

use repsim_engine::fingerprint::{fold_bytes, fold_u64, FINGERPRINT_START};
use repsim_engine::io::Input;
use repsim_engine::message::Message;

use crate::check::history::Outcome;
use crate::world::event::EventKind;
use crate::world::wire::Packet;

/// What the trace keeps of one event.
pub struct TraceRecord {
    pub event: &'static str,
    pub node: i64,
    pub peer: i64,
    pub detail: &'static str,
    pub value: u64,
}

fn input_detail(input: &Input) -> (&'static str, u64) {
    match input {
        Input::Boot(_) => ("boot", 0),
        Input::Message { from, msg } => (msg.kind(), *from as u64),
        Input::ConnectionLost { peer } => ("connection_lost", *peer as u64),
        Input::Timer(_) => ("timer", 0),
        Input::DiskDone(io) => ("disk_done", io.0),
        Input::DiskFailed(io) => ("disk_failed", io.0),
        Input::ComputeDone(_) => ("compute_done", 0),
        Input::Client { op_id, .. } => ("client", *op_id),
        Input::Admin(_) => ("admin", 0),
        Input::Restored { bytes, .. } => ("restored", bytes.as_ref().map_or(0, |b| b.len() as u64)),
        Input::ArchiveDone { file, ok } => match file {
            repsim_engine::io::FileId::WalSegment { segno, .. } => ("archive_done", segno << 1 | *ok as u64),
            _ => ("archive_done", *ok as u64),
        },
    }
}

fn message_value(msg: &Message) -> u64 {
    match msg {
        Message::XLogData { start, bytes, .. } => start.0 ^ ((bytes.len() as u64) << 48),
        Message::StatusUpdate { flush, .. } => flush.0,
        Message::Keepalive { wal_end, .. } | Message::LogicalKeepalive { wal_end, .. } => wal_end.0,
        Message::StartReplication { start, .. } => start.0,
        Message::Error { text } => text.len() as u64,
        Message::StreamStart { timeline, .. } => *timeline as u64,
        Message::HotStandbyFeedback { xmin, .. } => u64::from(*xmin),
        Message::StartLogicalReplication { start, .. } => start.0,
        Message::LogicalTxn { txn, .. } => txn.end_lsn.0,
        Message::FetchFailoverSlots => 0,
        Message::CreateSubscriptionSlot { .. } => 0,
        Message::InitialCopy { consistent_point, rows } => consistent_point.0 ^ ((rows.len() as u64) << 48),
        Message::FailoverSlots { slots } => slots.iter().fold(0, |h, s| h ^ s.confirmed_flush_lsn.0),
        Message::PollChanges { after, .. } => *after,
        Message::ChangeBatch { rows, .. } => rows.last().map_or(0, |r| r.data_id) ^ ((rows.len() as u64) << 48),
        Message::ChangesLoaded { through } => *through,
        Message::EndLogicalStream { stream } => *stream,
    }
}

fn ha_kind(msg: &crate::world::ha::HaMsg) -> &'static str {
    use crate::world::ha::HaMsg;
    match msg {
        HaMsg::DcsRequest { .. } => "dcs_request",
        HaMsg::DcsReply { .. } => "dcs_reply",
        HaMsg::Watch => "dcs_watch",
        HaMsg::Probe { .. } => "probe",
        HaMsg::ProbeReply { .. } => "probe_reply",
    }
}

impl TraceRecord {
    pub fn of(kind: &EventKind) -> TraceRecord {
        let r = |event, node: i64, peer: i64, detail, value| TraceRecord { event, node, peer, detail, value };
        match kind {
            EventKind::Input { node, input, .. } => {
                let (detail, value) = input_detail(input);
                r("input", *node as i64, -1, detail, value)
            }
            EventKind::Received { node, input, .. } => {
                let (detail, value) = input_detail(input);
                r("input", *node as i64, -1, detail, value)
            }
            EventKind::Timer { node, generation, .. } => r("timer", *node as i64, -1, "", *generation),
            EventKind::DiskDone { node, io, .. } => r("disk_done", *node as i64, -1, "", io.0),
            EventKind::Arrive { from, to, packet, .. } => match packet {
                Packet::Msg(msg) => r("arrive", *to as i64, *from as i64, msg.kind(), message_value(msg)),
                Packet::Reset => r("arrive", *to as i64, *from as i64, "reset", 0),
                Packet::Ha(msg) => r("arrive", *to as i64, *from as i64, ha_kind(msg), 0),
            },
            EventKind::RequestArrives { session, .. } => r("request", -1, *session as i64, "", 0),
            EventKind::ReplyArrives { session, op_id, outcome } => {
                let detail = match outcome {
                    Outcome::Committed { .. } => "committed",
                    Outcome::RolledBack => "rolled_back",
                    Outcome::Read { .. } => "read",
                    Outcome::Failed => "failed",
                    Outcome::Indeterminate => "indeterminate",
                    Outcome::TooStale => "too_stale",
                };
                r("reply", -1, *session as i64, detail, *op_id)
            }
            EventKind::OpenArrival => r("arrival", -1, -1, "", 0),
            EventKind::SessionReady { session } => r("session_ready", -1, *session as i64, "", 0),
            EventKind::CancelDue { session, op_id } => r("cancel_due", -1, *session as i64, "", *op_id),
            EventKind::ArchiveUploaded { node, segno, fingerprint, .. } => {
                r("archive_uploaded", *node as i64, -1, "", segno ^ fingerprint)
            }
            EventKind::Fault { index } => r("fault", -1, -1, "", *index as u64),
            EventKind::Sample => r("sample", -1, -1, "", 0),
            EventKind::Settle => r("settle", -1, -1, "", 0),
            EventKind::HaTick { node, .. } => r("ha_tick", *node as i64, -1, "", 0),
            EventKind::DcsExpiry => r("dcs_expiry", -1, -1, "", 0),
            EventKind::ProxyCheck => r("proxy_check", -1, -1, "", 0),
            EventKind::PoolWaitTimeout { session, op_id, .. } => {
                r("pool_wait_timeout", -1, *session as i64, "", *op_id)
            }
            EventKind::PgpoolCheck => r("pgpool_check", -1, -1, "", 0),
            EventKind::EndpointUpdate { node } => r("endpoint_update", *node as i64, -1, "", 0),
            EventKind::DataCopied { node, upstream, .. } => r("data_copied", *node as i64, *upstream as i64, "", 0),
            EventKind::Resume { node } => r("resume", *node as i64, -1, "", 0),
            EventKind::BackupDue => r("backup_due", -1, -1, "", 0),
            EventKind::CreateSubscription { index } => r("create_subscription", -1, -1, "", *index as u64),
            EventKind::BackupUploaded { backup } => r("backup_uploaded", backup.from as i64, -1, "", backup.bytes),
            EventKind::BackupFetched { node, ok, .. } => r("backup_fetched", *node as i64, -1, "", *ok as u64),
            EventKind::RestartAfterPanic { node, .. } => r("restart_after_panic", *node as i64, -1, "", 0),
        }
    }
}

pub struct Trace {
    hash: u64,
    sink: Option<Box<dyn Write + Send>>,
    pub write_error: Option<String>,
}

impl Trace {
    pub fn new(sink: Option<Box<dyn Write + Send>>) -> Trace {
        Trace { hash: FINGERPRINT_START, sink, write_error: None }
    }

    pub fn record(&mut self, at_ns: u64, record: &TraceRecord) {
        let mut h = self.hash;
        h = fold_u64(h, at_ns);
        h = fold_bytes(h, record.event.as_bytes());
        h = fold_u64(h, record.node as u64);
        h = fold_u64(h, record.peer as u64);
        h = fold_bytes(h, record.detail.as_bytes());
        h = fold_u64(h, record.value);
        self.hash = h;
        if let Some(sink) = self.sink.as_mut() {
            let line = serde_json::json!({
                "t_ns": at_ns, "event": record.event, "node": record.node, "peer": record.peer,
                "detail": record.detail, "value": record.value,
            });
            if let Err(e) = writeln!(sink, "{line}") {
                self.write_error.get_or_insert(format!("cannot write the trace file: {e}"));
            }
        }
    }

    /// A line of narrative (an HA decision): folded into the hash and written to the trace.
    pub fn note(&mut self, at_ns: u64, text: &str) {
        self.hash = fold_bytes(fold_u64(self.hash, at_ns), text.as_bytes());
        if let Some(sink) = self.sink.as_mut() {
            let line = serde_json::json!({ "t_ns": at_ns, "event": "note", "detail": text });
            if let Err(e) = writeln!(sink, "{line}") {
                self.write_error.get_or_insert(format!("cannot write the trace file: {e}"));
            }
        }
    }

    /// Folds a final-state value (an LSN, a data hash) into the fingerprint.
    pub fn fold(&mut self, value: u64) {
        self.hash = fold_u64(self.hash, value);
    }

    pub fn hash_hex(&self) -> String {
        format!("{:016x}", self.hash)
    }

    pub fn flush(&mut self) {
        if let Some(sink) = self.sink.as_mut() {
            if let Err(e) = sink.flush() {
                self.write_error.get_or_insert(format!("cannot write the trace file: {e}"));
            }
        }
    }
}

/// An in-memory trace sink that can be read after the run (for comparing two runs).
#[derive(Clone, Default)]
pub struct SharedBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedBuffer {
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

/// The first line at which two JSON-lines traces differ: `(line_number, left, right)`.
pub fn first_divergence(left: &[u8], right: &[u8]) -> Option<(usize, String, String)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (l, r) = (text(left), text(right));
    let mut a = l.lines();
    let mut b = r.lines();
    let mut line = 1;
    loop {
        match (a.next(), b.next()) {
            (None, None) => return None,
            (x, y) if x == y => line += 1,
            (x, y) => {
                let show = |s: Option<&str>| s.unwrap_or("<end of trace>").to_string();
                return Some((line, show(x), show(y)));
            }
        }
    }
}

#[cfg(test)]
mod divergence_tests {
    use super::*;

    #[test]
    fn finds_the_first_differing_line() {
        assert_eq!(first_divergence(b"a\nb\nc\n", b"a\nb\nc\n"), None);
        assert_eq!(first_divergence(b"a\nb\nc\n", b"a\nx\nc\n"), Some((2, "b".into(), "x".into())));
        assert_eq!(first_divergence(b"a\n", b"a\nb\n"), Some((2, "<end of trace>".into(), "b".into())));
    }
}
