//! The monitoring views as an operator reads them: `pg_stat_replication` rows (LSNs as
//! PostgreSQL prints them, the three lags, sync state) with the byte lags the usual monitoring
//! queries compute (`pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)`, `sent - replay`,
//! `flush - replay`), `pg_stat_wal_receiver` per standby and `pg_stat_subscription` per
//! subscriber. In `series.json` once per second;
//! in `monitoring.md` at the instants of `repsim run --snapshot`.

use std::fmt::Write as _;

use repsim_engine::Lsn;
use serde::{Deserialize, Serialize};

use crate::world::monitoring::MonitoringSample;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplicationView {
    pub application_name: String,
    pub state: String,
    pub sent_lsn: String,
    /// `None`: NULL (no reply yet).
    pub write_lsn: Option<String>,
    pub flush_lsn: Option<String>,
    pub replay_lsn: Option<String>,
    pub write_lag_ns: Option<u64>,
    pub flush_lag_ns: Option<u64>,
    pub replay_lag_ns: Option<u64>,
    pub sync_priority: u32,
    pub sync_state: String,
    /// `pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)`: the seed's `replication_lag`.
    pub current_minus_replay_bytes: Option<u64>,
    /// `pg_wal_lsn_diff(sent_lsn, replay_lsn)`: sent but not yet replayed.
    pub sent_minus_replay_bytes: Option<u64>,
    /// `pg_wal_lsn_diff(flush_lsn, replay_lsn)`: durable on the standby, not yet replayed.
    pub flush_minus_replay_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiverView {
    pub node: String,
    pub status: String,
    pub flushed_lsn: String,
    pub latest_end_lsn: String,
    /// The standby's clock when the last message arrived, and the sender's when it left.
    pub last_msg_receipt_time_ns: u64,
    pub last_msg_send_time_ns: u64,
    /// `pg_last_wal_replay_lsn()` on that standby.
    pub replay_lsn: String,
}

/// A `pg_stat_subscription` row; `None`: NULL (no worker runs, or no such message yet).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionView {
    pub node: String,
    pub subname: String,
    pub running: bool,
    pub received_lsn: Option<String>,
    /// The subscriber's clock when the last message arrived, the publisher's when it left.
    pub last_msg_send_time_ns: Option<u64>,
    pub last_msg_receipt_time_ns: Option<u64>,
    pub latest_end_lsn: Option<String>,
    pub latest_end_time_ns: Option<u64>,
    /// `last_msg_receipt_time - last_msg_send_time`: the message's transit, clock skew
    /// included (the time lag users read from this view).
    pub receipt_minus_send_ns: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitoringView {
    pub at_ns: u64,
    /// Where `pg_stat_replication` was read (the primary the application uses; `None`: down).
    pub primary: Option<String>,
    pub current_wal_lsn: Option<String>,
    pub replication: Vec<ReplicationView>,
    pub receivers: Vec<ReceiverView>,
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionView>,
}

fn diff(a: Option<Lsn>, b: Option<Lsn>) -> Option<u64> {
    Some(a?.bytes_since(b?))
}

impl MonitoringView {
    pub fn of(sample: &MonitoringSample, names: &[String]) -> MonitoringView {
        let current = sample.primary.map(|_| sample.current_wal_lsn);
        let replication = sample
            .replication
            .iter()
            .map(|r| ReplicationView {
                application_name: r.application_name.clone(),
                state: r.state.to_string(),
                sent_lsn: r.sent_lsn.to_string(),
                write_lsn: r.write_lsn.map(|l| l.to_string()),
                flush_lsn: r.flush_lsn.map(|l| l.to_string()),
                replay_lsn: r.replay_lsn.map(|l| l.to_string()),
                write_lag_ns: r.write_lag_ns,
                flush_lag_ns: r.flush_lag_ns,
                replay_lag_ns: r.replay_lag_ns,
                sync_priority: r.sync_priority,
                sync_state: r.sync_state.to_string(),
                current_minus_replay_bytes: diff(current, r.replay_lsn),
                sent_minus_replay_bytes: diff(Some(r.sent_lsn), r.replay_lsn),
                flush_minus_replay_bytes: diff(r.flush_lsn, r.replay_lsn),
            })
            .collect();
        let receivers = sample
            .receivers
            .iter()
            .map(|(node, r, replay)| ReceiverView {
                node: names[*node as usize].clone(),
                status: r.status.to_string(),
                flushed_lsn: r.flushed_lsn.to_string(),
                latest_end_lsn: r.latest_end_lsn.to_string(),
                last_msg_receipt_time_ns: r.last_msg_receipt_time_ns,
                last_msg_send_time_ns: r.last_msg_send_time_ns,
                replay_lsn: replay.to_string(),
            })
            .collect();
        let subscriptions = sample
            .subscriptions
            .iter()
            .map(|(node, s)| SubscriptionView {
                node: names[*node as usize].clone(),
                subname: s.subname.clone(),
                running: s.running,
                received_lsn: s.received_lsn.is_valid().then(|| s.received_lsn.to_string()),
                last_msg_send_time_ns: s.last_msg_send_time_ns,
                last_msg_receipt_time_ns: s.last_msg_receipt_time_ns,
                latest_end_lsn: s.latest_end_lsn.is_valid().then(|| s.latest_end_lsn.to_string()),
                latest_end_time_ns: s.latest_end_time_ns,
                receipt_minus_send_ns: s
                    .last_msg_receipt_time_ns
                    .zip(s.last_msg_send_time_ns)
                    .map(|(receipt, send)| receipt as i64 - send as i64),
            })
            .collect();
        MonitoringView {
            at_ns: sample.at_ns,
            primary: sample.primary.map(|p| names[p as usize].clone()),
            current_wal_lsn: current.map(|l| l.to_string()),
            replication,
            receivers,
            subscriptions,
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("NULL".to_string(), T::to_string)
}

fn lag(ns: Option<u64>) -> String {
    ns.map_or("NULL".to_string(), |ns| format!("{:.3} ms", ns as f64 / 1e6))
}

fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn opt_secs(ns: Option<u64>) -> String {
    ns.map_or("NULL".to_string(), secs)
}

/// `monitoring.md`: both views at each instant, as `psql` would show them.
pub fn render_monitoring(scenario: &str, seed: u64, views: &[MonitoringView]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {scenario} seed {seed}: monitoring snapshots\n");
    let _ = writeln!(
        o,
        "Each instant shows the state once every event up to it was handled. Lags in bytes are \
         `pg_wal_lsn_diff` of the columns named; times are each node's own clock.\n"
    );
    for v in views {
        let _ = writeln!(o, "## At {}\n", secs(v.at_ns));
        match (&v.primary, &v.current_wal_lsn) {
            (Some(p), Some(current)) => {
                let _ = writeln!(o, "`pg_stat_replication` on {p} (`pg_current_wal_lsn()` = {current}):\n");
                let _ = writeln!(
                    o,
                    "| application_name | state | sent_lsn | write_lsn | flush_lsn | replay_lsn | write_lag | \
                     flush_lag | replay_lag | sync_priority | sync_state | current - replay | sent - replay | \
                     flush - replay |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
                );
                for r in &v.replication {
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                        r.application_name,
                        r.state,
                        r.sent_lsn,
                        opt(&r.write_lsn),
                        opt(&r.flush_lsn),
                        opt(&r.replay_lsn),
                        lag(r.write_lag_ns),
                        lag(r.flush_lag_ns),
                        lag(r.replay_lag_ns),
                        r.sync_priority,
                        r.sync_state,
                        opt(&r.current_minus_replay_bytes),
                        opt(&r.sent_minus_replay_bytes),
                        opt(&r.flush_minus_replay_bytes),
                    );
                }
                if v.replication.is_empty() {
                    let _ = writeln!(o, "| (no rows: no standby is connected) |||||||||||||");
                }
            }
            _ => {
                let _ = writeln!(o, "No primary runs where the application writes: no `pg_stat_replication`.");
            }
        }
        let _ = writeln!(
            o,
            "\n`pg_stat_wal_receiver` on each standby (with `pg_last_wal_replay_lsn()`):\n\n\
             | node | status | flushed_lsn | latest_end_lsn | last_msg_send_time | last_msg_receipt_time | replay_lsn |\n\
             | --- | --- | --- | --- | --- | --- | --- |"
        );
        for r in &v.receivers {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.node,
                r.status,
                r.flushed_lsn,
                r.latest_end_lsn,
                secs(r.last_msg_send_time_ns),
                secs(r.last_msg_receipt_time_ns),
                r.replay_lsn
            );
        }
        if !v.subscriptions.is_empty() {
            let _ = writeln!(
                o,
                "\n`pg_stat_subscription` on each subscriber:\n\n\
                 | node | subname | pid | received_lsn | last_msg_send_time | last_msg_receipt_time | \
                 latest_end_lsn | latest_end_time | receipt - send |\n\
                 | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
            );
            for s in &v.subscriptions {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.node,
                    s.subname,
                    if s.running { "(running)" } else { "NULL" },
                    opt(&s.received_lsn),
                    opt_secs(s.last_msg_send_time_ns),
                    opt_secs(s.last_msg_receipt_time_ns),
                    opt(&s.latest_end_lsn),
                    opt_secs(s.latest_end_time_ns),
                    s.receipt_minus_send_ns.map_or("NULL".to_string(), |ns| format!("{:.3} ms", ns as f64 / 1e6)),
                );
            }
        }
        let _ = writeln!(o);
    }
    o
}
