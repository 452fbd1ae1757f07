//! The run summary: the `--json` object of DESIGN §6 (keys are a stable interface: extend,
//! never rename), the readable text for the terminal, and `summary.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::check::Violation;
use crate::metrics::{Percentiles, Spread};
pub use crate::report::archive::ArchiveSummary;
use crate::report::format::table_cell;
use crate::report::timeline::{Timeline, WindowKind};
use crate::scenario::Scenario;

/// The plot files a run's report holds (`report::plot::write_run_plots`), in the order
/// `summary.md` links them.
pub const RUN_PLOTS: [&str; 3] = ["lag.svg", "throughput.svg", "latency.svg"];

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StandbySummary {
    pub lag_bytes: Spread,
    pub write_lag_ns: Spread,
    pub flush_lag_ns: Spread,
    pub replay_lag_ns: Spread,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LossesByLevel {
    pub off: u64,
    pub local: u64,
    pub remote_write: u64,
    pub on: u64,
    pub remote_apply: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Expectation {
    pub name: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeSummary {
    pub role: String,
    pub crashes: u32,
    pub flush_lsn: String,
    pub replay_lsn: String,
    pub checkpoints: u64,
    /// WAL still held in memory and on disk (bounded by retention, not run length).
    pub wal_held_bytes: u64,
    pub disk_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub trace_hash: String,
    pub ok: bool,
    pub sim_duration_ns: u64,
    pub events: u64,
    pub wall_ms: u64,
    pub commits: u64,
    pub commits_per_sec: f64,
    pub rollbacks: u64,
    pub reads: u64,
    pub failed_ops: u64,
    pub indeterminate_ops: u64,
    pub refused_ops: u64,
    /// Commits reported committed after `statement_timeout` cancelled their wait for
    /// standbys: "committed locally, but might not have been replicated to the standby".
    #[serde(default)]
    pub committed_locally_unconfirmed: u64,
    /// Cancel requests clients sent after waiting `[workload] cancel_after`.
    #[serde(default)]
    pub cancel_requests: u64,
    pub commit_latency_ns: Percentiles,
    pub read_latency_ns: Percentiles,
    pub standbys: BTreeMap<String, StandbySummary>,
    pub lost_acked_writes: u64,
    pub lost_acked_writes_by_level: LossesByLevel,
    pub split_brain_writes: u64,
    pub stale_reads: u64,
    /// How long the value a stale read returned had been superseded, and by how many WAL bytes.
    pub staleness_ns: Spread,
    pub staleness_bytes: Spread,
    /// The read router of the run.
    pub router: String,
    /// The longest stretch without an acknowledged write while writes were asked for, if it
    /// lasted at least `metrics::OUTAGE_MIN_NS` (100 ms); else 0.
    pub unavailable_ns: u64,
    /// That stretch whatever its length (ordinary commit latency included).
    pub longest_write_gap_ns: u64,
    /// When the longest unavailability window began.
    pub unavailable_from_ns: u64,
    pub failovers: u64,
    /// Time during which two or more nodes ran as primary.
    pub dual_primary_ns: u64,
    /// Each promotion: when, which node, the timeline it started and its switch LSN.
    pub promotions: Vec<PromotionSummary>,
    /// What the HA agents decided, in order (at most the first 200).
    pub ha_events: Vec<String>,
    pub wal_bytes: u64,
    /// `wal_bytes` over the commits: what a transaction costs in WAL (records, full-page
    /// images after each checkpoint).
    #[serde(default)]
    pub wal_bytes_per_commit: u64,
    /// The final primary's CPU time over the run (backends, walsenders, replay, TLS).
    #[serde(default)]
    pub primary_cpu_busy_ns: u64,
    /// Long standby queries against replay (present when reads run for a while or
    /// `hot_standby_feedback` is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_standby: Option<HotStandbySummary>,
    /// The WAL archive (present with `archive_mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveSummary>,
    /// CPU spent on TLS by replication connections, both ends (present with `ssl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_tls_cpu_ns: Option<u64>,
    /// Managed-service endpoints (present with `[endpoints]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<crate::report::endpoints::EndpointsSummary>,
    /// The connection pooler (present with `[pooler]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooler: Option<crate::report::pooler::PoolerSummary>,
    /// Each `restore` from the archive (`report/restore.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restores: Vec<crate::world::restore_log::RestoreRun>,
    /// What happened to logical slots, in order (`create_logical_slot` and friends).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logical_slots: Vec<String>,
    /// Each logical subscription's apply worker (`[[logical.subscriptions]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<crate::report::subscriptions::SubscriptionSummary>,
    /// `[multi_master]`: each master against the final primary, and lost updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_master: Option<crate::report::multimaster::MultiMasterSummary>,
    pub net_bytes: u64,
    pub nodes: BTreeMap<String, NodeSummary>,
    /// Every invariant: `ok`, `violated` or `not_checked`.
    pub invariants: BTreeMap<String, String>,
    /// Why each `not_checked` invariant was not judged.
    pub not_checked: BTreeMap<String, String>,
    pub violations: Vec<Violation>,
    pub expectations: Vec<Expectation>,
    /// What the scenario asks for that is probably not meant (`Scenario::warnings`).
    pub warnings: Vec<String>,
    /// Client operations still waiting for an answer when the run ended (a commit waiting
    /// for a synchronous standby that never comes): not in the latency percentiles, which
    /// count only operations that finished.
    pub in_flight_at_end: u64,
    /// How long the oldest of them had waited.
    pub oldest_in_flight_ns: u64,
    pub overrides: Vec<String>,
    pub reproduce: String,
    /// What the plots draw (per-second series, fault windows, marks, percentile curves); not
    /// part of the JSON object (it goes to `series.json`). `None` for a summary built by hand;
    /// a caller keeping thousands of summaries may drop it to save memory.
    #[serde(skip)]
    pub timeline: Option<Box<Timeline>>,
    /// `pg_stat_replication` and `pg_stat_wal_receiver` at the instants `--snapshot` asked for
    /// (written to `monitoring.md` too); absent when none was asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<crate::report::monitoring::MonitoringView>,
}

/// What long queries on standbys cost (spec §4.3): cancelled queries, replay held back, and
/// the dead row versions the primary kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HotStandbySummary {
    /// Queries cancelled "due to conflict with recovery".
    pub standby_queries_cancelled: u64,
    /// Cleanup records whose replay waited for or cancelled queries, and the longest wait.
    pub replay_conflict_waits: u64,
    pub replay_conflict_wait_max_ns: u64,
    /// The most dead row versions a primary held at once (bloat behind the `xmin` horizon).
    pub dead_row_versions_max: u64,
}

impl HotStandbySummary {
    /// The summary's table rows.
    pub fn rows(&self) -> [String; 2] {
        [
            format!(
                "| standby queries cancelled (conflict with recovery) / replay held by queries | {} / {} times, longest {:.2} s |",
                self.standby_queries_cancelled,
                self.replay_conflict_waits,
                self.replay_conflict_wait_max_ns as f64 / 1e9
            ),
            format!("| dead row versions on the primary (peak) | {} |", self.dead_row_versions_max),
        ]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PromotionSummary {
    pub at_ns: u64,
    pub node: String,
    pub timeline: u32,
    pub switch_lsn: String,
    /// Time from the last acknowledged write before it to the promotion: how long the cluster
    /// took to replace its primary.
    pub since_last_write_ack_ns: u64,
    /// From `pg_promote()` reaching the node to its first write accepted: the history file,
    /// the end-of-recovery record and `pg_control` (`None`: it never finished).
    pub promotion_duration_ns: Option<u64>,
}

/// The rows of the parts a run may have (hot standby, archive, restores, logical slots and
/// subscriptions, pooler, endpoints), the same in the text and the Markdown summary.
fn part_rows(s: &Summary) -> Vec<String> {
    let mut rows: Vec<String> = s.hot_standby.iter().flat_map(HotStandbySummary::rows).collect();
    rows.extend(s.archive.iter().flat_map(ArchiveSummary::rows));
    rows.extend(crate::report::restore::rows(&s.restores));
    rows.extend(s.logical_slots.iter().map(|event| format!("| logical slot | {event} |")));
    rows.extend(s.subscriptions.iter().flat_map(crate::report::subscriptions::SubscriptionSummary::rows));
    rows.extend(s.multi_master.iter().flat_map(crate::report::multimaster::MultiMasterSummary::rows));
    rows.extend(s.pooler.iter().flat_map(crate::report::pooler::PoolerSummary::rows));
    rows.extend(s.endpoints.iter().flat_map(crate::report::endpoints::EndpointsSummary::rows));
    rows
}

fn ms(ns: u64) -> String {
    format!("{:.2} ms", ns as f64 / 1e6)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

/// The terminal summary (also the body of `summary.md`).
pub fn render_text(s: &Summary) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!("# {} seed {}: {}", s.scenario, s.seed, if s.ok { "OK" } else { "FAILED" }));
    line(String::new());
    line(format!(
        "trace hash `{}`, {} events, {:.1} s simulated",
        s.trace_hash,
        s.events,
        s.sim_duration_ns as f64 / 1e9
    ));
    if !s.overrides.is_empty() {
        line(format!("overrides: {}", s.overrides.join(" ")));
    }
    line(String::new());
    line("| metric | value |".into());
    line("| --- | --- |".into());
    line(format!("| commits | {} ({:.1}/s) |", s.commits, s.commits_per_sec));
    let c = &s.commit_latency_ns;
    line(format!(
        "| commit latency p50 / p99 / p99.9 / max | {} / {} / {} / {} |",
        ms(c.p50),
        ms(c.p99),
        ms(c.p999),
        ms(c.max)
    ));
    let r = &s.read_latency_ns;
    line(format!("| reads | {} (p50 {}, p99 {}) |", s.reads, ms(r.p50), ms(r.p99)));
    line(format!(
        "| failed / indeterminate / refused ops | {} / {} / {} |",
        s.failed_ops, s.indeterminate_ops, s.refused_ops
    ));
    if s.committed_locally_unconfirmed > 0 {
        line(format!(
            "| committed locally, unconfirmed (statement_timeout or a cancel ended the wait for standbys) | {} |",
            s.committed_locally_unconfirmed
        ));
    }
    if s.cancel_requests > 0 {
        line(format!("| cancel requests sent (workload.cancel_after) | {} |", s.cancel_requests));
    }
    let l = &s.lost_acked_writes_by_level;
    line(format!(
        "| lost acknowledged writes | {} (off {}, local {}, remote_write {}, on {}, remote_apply {}) |",
        s.lost_acked_writes, l.off, l.local, l.remote_write, l.on, l.remote_apply
    ));
    line(format!("| longest write unavailability | {} |", ms(s.unavailable_ns)));
    if !s.promotions.is_empty() {
        let took: Vec<String> =
            s.promotions.iter().map(|p| p.promotion_duration_ns.map_or("did not finish".to_string(), ms)).collect();
        line(format!("| promotion (pg_promote to writes accepted) | {} |", took.join(", ")));
    }
    for row in part_rows(s) {
        line(row);
    }
    if let Some(ns) = s.replication_tls_cpu_ns {
        line(format!("| TLS CPU on replication connections (both ends) | {} |", ms(ns)));
    }
    line(format!(
        "| WAL generated (per commit) / network bytes | {} ({} B) / {} |",
        kib(s.wal_bytes),
        s.wal_bytes_per_commit,
        kib(s.net_bytes)
    ));
    for (name, standby) in &s.standbys {
        line(format!(
            "| {name} lag bytes p50 / p99 / max | {} / {} / {} |",
            standby.lag_bytes.p50, standby.lag_bytes.p99, standby.lag_bytes.max
        ));
        line(format!(
            "| {name} replay_lag p50 / p99 / max | {} / {} / {} |",
            ms(standby.replay_lag_ns.p50),
            ms(standby.replay_lag_ns.p99),
            ms(standby.replay_lag_ns.max)
        ));
    }
    if s.in_flight_at_end > 0 {
        line(format!(
            "| still waiting at the end (not in the latencies) | {} (oldest {}) |",
            s.in_flight_at_end,
            ms(s.oldest_in_flight_ns)
        ));
    }
    line(String::new());
    for warning in &s.warnings {
        line(format!("- warning: {warning}"));
    }
    for (name, state) in &s.invariants {
        match s.not_checked.get(name) {
            Some(why) => line(format!("- invariant `{name}`: {state} ({why})")),
            None => line(format!("- invariant `{name}`: {state}")),
        }
    }
    for v in &s.violations {
        line(format!("  - VIOLATED `{}`: {}", v.invariant, v.detail));
    }
    for e in &s.expectations {
        line(format!(
            "- expect `{}` {}: actual {} — {}",
            e.name,
            e.expected,
            e.actual,
            if e.ok { "ok" } else { "VIOLATED" }
        ));
    }
    line(String::new());
    line(format!("reproduce: `{}`", s.reproduce));
    out
}

fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

fn spread_ms(s: &Spread) -> String {
    format!("{} / {} / {}", ms(s.p50), ms(s.p99), ms(s.max))
}

fn spread_bytes(s: &Spread) -> String {
    use crate::report::format::bytes;
    format!("{} / {} / {}", bytes(s.p50), bytes(s.p99), bytes(s.max))
}

/// `summary.md`: the same figures as `summary.json`, as tables for people, with the plots.
pub fn render_markdown(s: &Summary) -> String {
    use crate::report::format::thousands;
    use std::fmt::Write as _;
    let mut out = String::new();
    let o = &mut out;
    let verdict = if s.ok { "OK" } else { "FAILED" };
    let _ = writeln!(o, "# {} · seed {}: {verdict}\n", s.scenario, s.seed);
    let settle_ns = s.timeline.as_deref().map_or(0, |t| t.end_ns.saturating_sub(t.duration_ns));
    let _ = writeln!(
        o,
        "{} s of clients, then {} s of settle · {} events · trace hash `{}`\n",
        s.sim_duration_ns as f64 / 1e9,
        settle_ns as f64 / 1e9,
        thousands(s.events),
        s.trace_hash
    );
    if !s.overrides.is_empty() {
        let sets: Vec<String> = s.overrides.iter().map(|o| format!("`--set {o}`")).collect();
        let _ = writeln!(o, "Overrides: {}\n", sets.join(" "));
    }
    let _ = writeln!(o, "Reproduce: `{}`\n", s.reproduce);
    if s.timeline.is_some() {
        let links: Vec<String> = RUN_PLOTS.iter().map(|p| format!("[{p}]({p})")).collect();
        let _ = writeln!(o, "Plots: {} · plotted data: [series.json](series.json)\n", links.join(" · "));
    }

    for warning in &s.warnings {
        let _ = writeln!(o, "**Warning:** {warning}\n");
    }
    let _ = writeln!(o, "## Checks\n");
    let _ = writeln!(o, "| check | expected | actual | result |\n| --- | --- | --- | --- |");
    for (name, state) in &s.invariants {
        let result = match (state.as_str(), s.not_checked.get(name)) {
            ("ok", _) => "ok".to_string(),
            ("violated", _) => "**VIOLATED**".to_string(),
            (_, why) => format!("not checked: {}", table_cell(why.map_or("", String::as_str))),
        };
        let _ = writeln!(o, "| invariant `{name}` | holds | {state} | {result} |");
    }
    for e in &s.expectations {
        let result = if e.ok { "ok" } else { "**VIOLATED**" };
        let _ =
            writeln!(o, "| expect `{}` | {} | {} | {result} |", e.name, table_cell(&e.expected), table_cell(&e.actual));
    }
    if !s.violations.is_empty() {
        let _ = writeln!(o, "\nViolations:\n");
        for v in &s.violations {
            let _ = writeln!(o, "- `{}`: {}", v.invariant, v.detail);
        }
    }

    let _ = writeln!(o, "\n## Clients\n");
    let _ = writeln!(o, "| metric | value |\n| --- | --- |");
    let _ = writeln!(o, "| commits | {} ({:.1}/s) |", thousands(s.commits), s.commits_per_sec);
    let _ = writeln!(o, "| reads | {} |", thousands(s.reads));
    let _ = writeln!(o, "| rollbacks | {} |", thousands(s.rollbacks));
    let _ = writeln!(
        o,
        "| failed / indeterminate / refused ops | {} / {} / {} |",
        s.failed_ops, s.indeterminate_ops, s.refused_ops
    );
    let from = s.timeline.as_deref().and_then(|t| t.windows.iter().find(|w| w.kind == WindowKind::Unavailable));
    let unavailable = match from {
        Some(w) => format!("{} (from {} to {})", secs(s.unavailable_ns), secs(w.from_ns), secs(w.to_ns)),
        None => secs(s.unavailable_ns),
    };
    let _ = writeln!(o, "| longest write unavailability (gaps of 100 ms or more) | {unavailable} |");
    if s.in_flight_at_end > 0 {
        let _ = writeln!(
            o,
            "| still waiting at the end (not in the latencies) | {} (oldest {}) |",
            s.in_flight_at_end,
            secs(s.oldest_in_flight_ns)
        );
    }
    let _ = writeln!(o, "| failovers | {} |", s.failovers);
    for row in part_rows(s) {
        let _ = writeln!(o, "{row}");
    }
    if let Some(ns) = s.replication_tls_cpu_ns {
        let _ = writeln!(o, "| TLS CPU on replication connections (both ends) | {:.2} ms |", ns as f64 / 1e6);
    }
    let _ = writeln!(
        o,
        "| WAL generated (per commit) / network bytes | {} ({} B) / {} |",
        kib(s.wal_bytes),
        s.wal_bytes_per_commit,
        kib(s.net_bytes)
    );

    let _ = writeln!(o, "\n## Latency\n");
    let _ = writeln!(
        o,
        "| operation | p50 | p90 | p99 | p99.9 | p99.99 | max |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for (name, p) in [("commit", &s.commit_latency_ns), ("read", &s.read_latency_ns)] {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} |",
            ms(p.p50),
            ms(p.p90),
            ms(p.p99),
            ms(p.p999),
            ms(p.p9999),
            ms(p.max)
        );
    }

    let _ = writeln!(o, "\n## Replication (p50 / p99 / max)\n");
    let _ =
        writeln!(o, "| standby | lag in bytes | write_lag | flush_lag | replay_lag |\n| --- | --- | --- | --- | --- |");
    for (name, st) in &s.standbys {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} |",
            spread_bytes(&st.lag_bytes),
            spread_ms(&st.write_lag_ns),
            spread_ms(&st.flush_lag_ns),
            spread_ms(&st.replay_lag_ns)
        );
    }

    let l = &s.lost_acked_writes_by_level;
    let _ = writeln!(o, "\n## Durability\n");
    let _ = writeln!(o, "| lost acknowledged writes | off | local | remote_write | on | remote_apply | split-brain writes | stale reads |");
    let _ = writeln!(o, "| --- | --- | --- | --- | --- | --- | --- | --- |");
    let _ = writeln!(
        o,
        "| {} | {} | {} | {} | {} | {} | {} | {} |",
        s.lost_acked_writes, l.off, l.local, l.remote_write, l.on, l.remote_apply, s.split_brain_writes, s.stale_reads
    );

    if !s.promotions.is_empty() || s.dual_primary_ns > 0 {
        let _ = writeln!(o, "\n## Failovers\n");
        let _ = writeln!(o, "Time with two or more primaries: {}\n", secs(s.dual_primary_ns));
        if !s.promotions.is_empty() {
            let _ = writeln!(
                o,
                "| at | promoted | new timeline | switch LSN | promotion took (pg_promote to writes) |\n\
                 | --- | --- | --- | --- | --- |"
            );
            for p in &s.promotions {
                let took = p.promotion_duration_ns.map_or("did not finish".to_string(), ms);
                let _ = writeln!(o, "| {} | {} | {} | {} | {took} |", secs(p.at_ns), p.node, p.timeline, p.switch_lsn);
            }
        }
    }
    if !s.ha_events.is_empty() {
        let _ = writeln!(o, "\n<details><summary>HA agent decisions ({})</summary>\n", s.ha_events.len());
        for e in &s.ha_events {
            let _ = writeln!(o, "- {e}");
        }
        let _ = writeln!(o, "\n</details>");
    }

    if let Some(t) = s.timeline.as_deref() {
        if !t.windows.is_empty() || !t.marks.is_empty() {
            let _ = writeln!(o, "\n## Faults and events (shaded and marked on the plots)\n");
            let _ = writeln!(o, "| from | to | what |\n| --- | --- | --- |");
            let mut rows: Vec<(u64, String)> = t
                .windows
                .iter()
                .map(|w| (w.from_ns, format!("| {} | {} | {} |", secs(w.from_ns), secs(w.to_ns), table_cell(&w.label))))
                .collect();
            rows.extend(
                t.marks.iter().map(|m| (m.at_ns, format!("| {} | | {} |", secs(m.at_ns), table_cell(&m.label)))),
            );
            rows.sort_by_key(|r| r.0);
            for (_, row) in rows {
                let _ = writeln!(o, "{row}");
            }
        }
    }

    let _ = writeln!(o, "\n## Nodes at the end\n");
    let _ = writeln!(
        o,
        "| node | role | crashes | flush LSN | replay LSN | checkpoints | WAL held | durable disk |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (name, n) in &s.nodes {
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            n.role,
            n.crashes,
            n.flush_lsn,
            n.replay_lsn,
            n.checkpoints,
            kib(n.wal_held_bytes),
            kib(n.disk_bytes)
        );
    }

    if s.timeline.is_some() {
        let _ = writeln!(o, "\n## Plots\n");
        for (file, what) in RUN_PLOTS.iter().zip(["replication lag", "throughput", "latency"]) {
            let _ = writeln!(o, "![{what}]({file})\n");
        }
    }
    out
}

/// A run that did not finish: the simulation panicked (or its trace could not be written).
#[derive(Debug)]
pub struct RunFailure {
    pub seed: u64,
    pub message: String,
    pub reproduce: String,
    /// The run could not write its trace or history file: bad output, not a failed seed.
    pub io_error: bool,
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seed {} failed: {}\nreproduce: {}", self.seed, self.message, self.reproduce)
    }
}

/// The command that reproduces `(scenario, seed)` with its overrides.
pub fn reproduce_for(scenario: &Scenario, seed: u64) -> String {
    let mut cmd = format!("repsim run {} --seed {}", scenario.source_path, seed);
    for o in &scenario.overrides {
        cmd.push_str(&format!(" --set '{o}'"));
    }
    cmd
}
