//! `summary.endpoints`: the writer record's changes, how long clients kept reaching the old
//! writer through cached answers and open connections, and the errors per endpoint.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointFlip {
    pub at_ns: u64,
    pub node: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointsSummary {
    pub dns_ttl_ns: u64,
    /// How long a client uses an answer (the TTL, or its own cache's lifetime; `null`: for
    /// ever).
    pub answer_lifetime_ns: Option<u64>,
    /// Each change of the writer record.
    pub writer_flips: Vec<EndpointFlip>,
    /// Operations through the writer endpoint sent to a node the record no longer named.
    pub stale_writer_ops: u64,
    /// From the last flip to the last such operation: how long clients kept the old writer.
    pub old_writer_used_for_ns: u64,
    pub writer_errors: u64,
    pub reader_errors: u64,
    pub dns_queries: u64,
    pub connects: u64,
}

impl EndpointsSummary {
    pub fn rows(&self) -> Vec<String> {
        let s = |ns: u64| format!("{:.1} s", ns as f64 / 1e9);
        let flips: Vec<String> = self.writer_flips.iter().map(|f| format!("{} at {}", f.node, s(f.at_ns))).collect();
        vec![
            format!(
                "| writer endpoint repointed (DNS TTL {}, clients keep answers {}) | {} |",
                s(self.dns_ttl_ns),
                self.answer_lifetime_ns.map_or("for ever".into(), s),
                if flips.is_empty() { "never".into() } else { flips.join(", ") }
            ),
            format!(
                "| writes sent to the old writer after the flip / for how long | {} / {} |",
                self.stale_writer_ops,
                s(self.old_writer_used_for_ns)
            ),
            format!(
                "| endpoint errors writer / reader (DNS queries, connections) | {} / {} ({}, {}) |",
                self.writer_errors, self.reader_errors, self.dns_queries, self.connects
            ),
        ]
    }
}
