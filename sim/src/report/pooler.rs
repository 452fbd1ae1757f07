//! `summary.pooler`: what the connection pooler cost the clients (waits, refusals, errors) and
//! the nodes (server connections opened, the storm after a failover), and PgPool-II's reads.

use serde::{Deserialize, Serialize};

use crate::metrics::Percentiles;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolerSummary {
    /// `pgbouncer` (with its `pool_mode`) or `pgpool`.
    pub pooler: String,
    /// How long operations waited for a server connection (PgBouncer) or a child process
    /// (PgPool-II); 0 when one was free at once.
    pub wait_ns: Percentiles,
    /// Operations that waited at all.
    pub waited_ops: u64,
    /// PgBouncer's `query_wait_timeout` errors.
    pub wait_timeouts: u64,
    /// Operations refused past `max_client_conn`.
    pub clients_refused: u64,
    /// Clients still waiting at the end (PgPool-II: sessions that never got a child).
    pub waiting_at_end: u64,
    pub max_waiting: u64,
    /// Server connections opened, and the most in one second (a failover's connection storm).
    pub server_connects: u64,
    pub peak_connects_per_sec: u64,
    /// The second that peak began in.
    pub peak_connects_at_ns: u64,
    /// PgPool-II: reads balanced to standbys, and those sent while the standby's delay was
    /// past `delay_threshold` (the check is up to `sr_check_period` old).
    pub reads_balanced_to_standbys: u64,
    pub reads_past_delay_threshold: u64,
}

impl PoolerSummary {
    pub fn rows(&self) -> Vec<String> {
        let ms = |ns: u64| format!("{:.2} ms", ns as f64 / 1e6);
        let w = &self.wait_ns;
        let mut rows = vec![
            format!(
                "| {} pool wait p50 / p99 / max (ops that waited) | {} / {} / {} ({}) |",
                self.pooler,
                ms(w.p50),
                ms(w.p99),
                ms(w.max),
                self.waited_ops
            ),
            format!(
                "| pool errors: wait timeouts / clients refused / still waiting at the end (most waiting) | {} / {} / {} ({}) |",
                self.wait_timeouts, self.clients_refused, self.waiting_at_end, self.max_waiting
            ),
            format!(
                "| server connections opened / peak per second (at {:.0} s) | {} / {} |",
                self.peak_connects_at_ns as f64 / 1e9,
                self.server_connects,
                self.peak_connects_per_sec
            ),
        ];
        if self.reads_balanced_to_standbys > 0 {
            rows.push(format!(
                "| reads balanced to standbys / sent past delay_threshold | {} / {} |",
                self.reads_balanced_to_standbys, self.reads_past_delay_threshold
            ));
        }
        rows
    }
}
