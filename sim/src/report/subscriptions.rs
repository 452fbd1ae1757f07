//! `summary.subscriptions`: what each logical subscription's apply worker did.

use serde::{Deserialize, Serialize};

use crate::metrics::Percentiles;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionSummary {
    pub name: String,
    pub subscriber: String,
    pub applied_transactions: u64,
    /// The subscriber's clock at apply less the publisher's at commit, per transaction.
    pub apply_lag_ns: Percentiles,
    pub conflicts: u64,
    /// Stops that were not conflicts: errors from the publisher, lost connections.
    pub stream_errors: u64,
    pub disabled: bool,
    /// At the end, rows of the published tables the subscriber lacks, holds beyond the final
    /// primary, or holds with another value (`None`: one of them was not running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_missing_extra_different: Option<(u64, u64, u64)>,
    /// `at`: when it was made, when its initial copy committed and how many rows it held, and
    /// when it first applied a transaction within 100 ms of its commit after that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_at_ns: Option<u64>,
    #[serde(default)]
    pub rows_copied: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_up_at_ns: Option<u64>,
    /// The first stops of the worker and changes of publisher, with when.
    pub events: Vec<String>,
    /// Conflicts resolved by policy: `(kind, resolution, count)`, PostgreSQL's kind names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_conflicts: Vec<(String, String, u64)>,
}

impl SubscriptionSummary {
    pub fn rows(&self) -> Vec<String> {
        let ms = |ns: u64| format!("{:.2} ms", ns as f64 / 1e6);
        let lag = &self.apply_lag_ns;
        let state = if self.disabled { "; disabled" } else { "" };
        let mut rows = vec![format!(
            "| subscription {} on {} | {} transactions applied; apply lag p50 / p99 / max {} / {} / {}; {} conflicts, {} stream errors{state} |",
            self.name,
            self.subscriber,
            self.applied_transactions,
            ms(lag.p50),
            ms(lag.p99),
            ms(lag.max),
            self.conflicts,
            self.stream_errors,
        )];
        if let Some(created) = self.created_at_ns {
            let s = |ns: u64| format!("{:.3} s", ns as f64 / 1e9);
            let copied = self.copied_at_ns.map_or("never".to_string(), |at| {
                format!("{} rows copied at {} ({} after it was made)", self.rows_copied, s(at), s(at - created))
            });
            let caught_up = self.caught_up_at_ns.map_or("never".to_string(), s);
            rows.push(format!(
                "| subscription {} made at {} | {copied}; caught up (apply lag within 100 ms) at {caught_up} |",
                self.name,
                s(created)
            ));
        }
        if let Some((missing, extra, different)) = self.rows_missing_extra_different {
            rows.push(format!(
                "| subscription {} at the end, against the final primary | {missing} rows missing, {extra} extra, {different} different |",
                self.name
            ));
        }
        if !self.resolved_conflicts.is_empty() {
            let each: Vec<String> = self
                .resolved_conflicts
                .iter()
                .map(|(kind, resolution, n)| format!("{kind} {resolution} {n}"))
                .collect();
            rows.push(format!("| subscription {} conflicts | {} |", self.name, each.join(", ")));
        }
        rows.extend(self.events.iter().map(|e| format!("| subscription {} | {e} |", self.name)));
        rows
    }
}
