//! The run's summary built from the finished world: metrics, losses, expectations. The one
//! place that reads the world to produce `report::summary::Summary`, which the report renders.

use crate::check::Verdict;
use crate::report::format::{bytes, duration};
use crate::report::monitoring::MonitoringView;
use crate::report::summary::{
    reproduce_for, ArchiveSummary, Expectation, HotStandbySummary, LossesByLevel, NodeSummary, PromotionSummary,
    StandbySummary, Summary,
};
use crate::report::timeline::Timeline;
use crate::scenario::model::LossBound;
use crate::world::World;

fn expectations(world: &World, summary: &Summary, verdict: &Verdict) -> Vec<Expectation> {
    let e = &world.scenario.expect;
    let mut out = Vec::new();
    let mut push = |name: &str, expected: String, actual: String, ok: bool| {
        out.push(Expectation { name: name.into(), expected, actual, ok })
    };
    match &e.lost_acked_writes {
        Some(LossBound::All(want)) => {
            let got = summary.lost_acked_writes;
            push("lost_acked_writes", format!("<= {want}"), got.to_string(), got <= *want);
        }
        Some(LossBound::PerLevel(bounds)) => {
            let (mut expected, mut actual, mut ok) = (Vec::new(), Vec::new(), true);
            for (i, bound) in bounds.iter().enumerate() {
                let Some(want) = bound else { continue };
                let name = repsim_engine::config::SyncCommitLevel::ALL[i].name();
                let got = verdict.losses.by_level[i];
                expected.push(format!("{name} <= {want}"));
                actual.push(format!("{name} {got}"));
                ok &= got <= *want;
            }
            push("lost_acked_writes", expected.join(", "), actual.join(", "), ok);
        }
        None => {}
    }
    if let Some(want) = e.converged {
        push("converged", format!("== {want}"), verdict.converged.to_string(), verdict.converged == want);
    }
    if let Some(want) = e.min_commits {
        push("min_commits", format!(">= {want}"), summary.commits.to_string(), summary.commits >= want);
    }
    if let Some(want) = e.max_commit_p99_ns {
        let got = summary.commit_latency_ns.p99;
        push("max_commit_p99", format!("<= {}", duration(want)), duration(got), got <= want);
    }
    if let Some(want) = e.max_lag_bytes_p99 {
        let got = summary.standbys.values().map(|s| s.lag_bytes.p99).max().unwrap_or(0);
        push("max_lag_bytes_p99", format!("<= {}", bytes(want)), bytes(got), got <= want);
    }
    if let Some(want) = e.split_brain_writes {
        let got = summary.split_brain_writes;
        push("split_brain_writes", format!("<= {want}"), got.to_string(), got <= want);
    }
    if let Some(want) = e.max_unavailable_ns {
        let got = summary.unavailable_ns;
        push("max_unavailable", format!("<= {}", duration(want)), duration(got), got <= want);
    }
    if let Some(want) = e.max_stale_reads {
        let got = summary.stale_reads;
        push("max_stale_reads", format!("<= {want}"), got.to_string(), got <= want);
    }
    if e.read_your_writes == Some(true) {
        let end = world.end_state();
        let got = crate::check::sessions::unexplained(&end, &world.reads.read_your_writes_by_expected, &[]).count;
        push("read_your_writes", "0 violations".into(), got.to_string(), got == 0);
    }
    if e.monotonic_reads == Some(true) {
        let end = world.end_state();
        let got = crate::check::sessions::unexplained(&end, &world.reads.monotonic_reads_by_expected, &[]).count;
        push("monotonic_reads", "0 violations".into(), got.to_string(), got == 0);
    }
    if let Some(want) = e.min_failovers {
        push("min_failovers", format!(">= {want}"), summary.failovers.to_string(), summary.failovers >= want);
    }
    out
}

/// The HA log for people: an event a node repeats with nothing else from that node in between
/// is shown once, with how many times and until when ("×12 to 141.000s").
pub fn collapse_repeats(log: &[(u64, String)]) -> Vec<String> {
    // (first time, text, count, last time)
    let mut groups: Vec<(u64, &str, u64, u64)> = Vec::new();
    let mut last_of_node: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (at, text) in log {
        let node = text.split_once(": ").map_or("", |(node, _)| node);
        if let Some(&i) = last_of_node.get(node) {
            if groups[i].1 == text.as_str() {
                groups[i].2 += 1;
                groups[i].3 = *at;
                continue;
            }
        }
        last_of_node.insert(node, groups.len());
        groups.push((*at, text, 1, *at));
    }
    groups
        .into_iter()
        .map(|(first, text, count, last)| {
            let line = format!("{:.3}s {text}", first as f64 / 1e9);
            if count == 1 {
                line
            } else {
                format!("{line} (×{count} to {:.3}s)", last as f64 / 1e9)
            }
        })
        .collect()
}

/// The command that reproduces this run.
pub fn reproduce_command(world: &World) -> String {
    reproduce_for(&world.scenario, world.seed)
}

pub fn summarize(world: &World, verdict: &Verdict, trace_hash: String, wall_ms: u64) -> Summary {
    let m = &world.metrics;
    let losses = &verdict.losses.by_level;
    let multi_master = world.scenario.logical.multi_master.is_some();
    let primary = world.end_state().final_primary().unwrap_or(world.scenario.cluster.primary);
    let wal_bytes = world.nodes[primary]
        .engine
        .as_ref()
        .map_or(0, |e| e.status().insert_lsn.0.saturating_sub(world.scenario.replication.wal_segment_size_bytes));
    let standbys = m
        .standbys
        .iter()
        .map(|(name, s)| {
            (
                name.clone(),
                StandbySummary {
                    lag_bytes: s.lag_bytes.spread(),
                    write_lag_ns: s.write_lag_ns.spread(),
                    flush_lag_ns: s.flush_lag_ns.spread(),
                    replay_lag_ns: s.replay_lag_ns.spread(),
                },
            )
        })
        .collect();
    let nodes = world
        .nodes
        .iter()
        .map(|slot| {
            let status = slot.engine.as_ref().map(|e| e.status());
            (
                slot.name.clone(),
                NodeSummary {
                    role: status.as_ref().map_or("down".into(), |s| format!("{:?}", s.role).to_lowercase()),
                    crashes: slot.crashes,
                    flush_lsn: status.as_ref().map_or(String::new(), |s| s.flush_lsn.to_string()),
                    replay_lsn: status.as_ref().map_or(String::new(), |s| s.replay_lsn.to_string()),
                    checkpoints: status.as_ref().map_or(0, |s| s.checkpoints),
                    wal_held_bytes: status.as_ref().map_or(0, |s| s.insert_lsn.bytes_since(s.wal_start_lsn)),
                    disk_bytes: slot.disk.durable_bytes(),
                },
            )
        })
        .collect();
    // Operations with no answer when the run ended, and how long each had waited.
    let in_flight: Vec<u64> = world
        .sessions
        .iter()
        .filter_map(|s| s.current.as_ref())
        .map(|f| world.now_ns.saturating_sub(f.planned.intended_ns))
        .collect();
    let mut summary = Summary {
        scenario: world.scenario.name.clone(),
        seed: world.seed,
        trace_hash,
        ok: false,
        sim_duration_ns: world.scenario.duration_ns,
        events: world.events,
        wall_ms,
        commits: m.commits,
        commits_per_sec: m.commits as f64 / (world.scenario.duration_ns as f64 / 1e9),
        rollbacks: m.rollbacks,
        reads: m.reads,
        failed_ops: m.failed_ops,
        indeterminate_ops: m.indeterminate_ops,
        committed_locally_unconfirmed: m.committed_locally_unconfirmed,
        cancel_requests: m.cancel_requests,
        refused_ops: world.workload.refused_ops,
        commit_latency_ns: m.commit_latency_ns.percentiles(),
        read_latency_ns: m.read_latency_ns.percentiles(),
        standbys,
        lost_acked_writes: verdict.losses.total(),
        lost_acked_writes_by_level: LossesByLevel {
            off: losses[0],
            local: losses[1],
            remote_write: losses[2],
            on: losses[3],
            remote_apply: losses[4],
        },
        split_brain_writes: world.history.split_brain_writes,
        stale_reads: world.reads.stale_reads,
        staleness_ns: world.reads.staleness_ns.spread(),
        staleness_bytes: world.reads.staleness_bytes.spread(),
        router: world.scenario.workload.router.name().to_string(),
        warnings: world.scenario.warnings(),
        in_flight_at_end: in_flight.len() as u64,
        oldest_in_flight_ns: in_flight.iter().max().copied().unwrap_or(0),
        unavailable_ns: m.unavailable.outage_ns(),
        longest_write_gap_ns: m.unavailable.longest_ns,
        unavailable_from_ns: m.unavailable.longest_from_ns,
        failovers: world.promotions.len() as u64,
        dual_primary_ns: world.dual_primary_ns,
        promotions: world
            .promotions
            .iter()
            .map(|p| PromotionSummary {
                at_ns: p.at_ns,
                node: world.nodes[p.node as usize].name.clone(),
                timeline: p.timeline,
                switch_lsn: p.switch.to_string(),
                since_last_write_ack_ns: p.since_last_write_ack_ns,
                promotion_duration_ns: p.duration_ns,
            })
            .collect(),
        ha_events: collapse_repeats(&world.ha_log).into_iter().take(200).collect(),
        wal_bytes,
        wal_bytes_per_commit: wal_bytes / m.commits.max(1),
        primary_cpu_busy_ns: world.nodes[primary].cpu.busy_ns,
        hot_standby: (world.scenario.workload.read_duration.is_some()
            || world.scenario.replication.hot_standby_feedback)
            .then_some(HotStandbySummary {
                standby_queries_cancelled: m.standby_queries_cancelled,
                replay_conflict_waits: m.replay_conflict_waits,
                replay_conflict_wait_max_ns: m.replay_conflict_wait_max_ns,
                dead_row_versions_max: m.dead_row_versions_max,
            }),
        archive: world.scenario.replication.archive_mode.then(|| ArchiveSummary {
            segments_archived: world.archive.uploads,
            failed_attempts: world.archive.failed_requests,
            segments_restored: world.archive.restores,
            bytes_archived: world.archive.bytes,
            lag_bytes: m.archive_lag.lag_bytes.spread(),
            lag_ns: m.archive_lag.replay_lag_ns.spread(),
            pg_wal_max_bytes: m.pg_wal_max_bytes,
            backups_taken: world.archive.backups_taken,
            backup_bytes: world.archive.backup_bytes,
            backup_duration_max_ns: world.archive.backup_duration_max_ns,
        }),
        restores: crate::report::restore::restores(world),
        logical_slots: world.logical_slot_events.clone(),
        subscriptions: world
            .subscriptions
            .iter()
            .zip(&world.scenario.logical.subscriptions)
            .map(|(r, spec)| crate::report::subscriptions::SubscriptionSummary {
                name: spec.name.clone(),
                subscriber: world.nodes[r.node as usize].name.clone(),
                applied_transactions: r.applied_transactions,
                apply_lag_ns: r.apply_lag_ns.percentiles(),
                conflicts: r.conflicts,
                stream_errors: r.stream_errors,
                disabled: r.disabled,
                // Against the final primary; `multi_master` compares masters instead.
                rows_missing_extra_different: world.running_primary().filter(|_| !multi_master).and_then(|p| {
                    let publisher = world.nodes[p as usize].engine.as_ref()?;
                    let subscriber = world.nodes[r.node as usize].engine.as_ref()?;
                    let tables = world.scenario.logical.tables_of(&spec.publications);
                    let filters = world.scenario.logical.row_filters(&spec.publications);
                    Some(crate::check::logical::row_differences(publisher, subscriber, tables.as_deref(), &filters))
                }),
                created_at_ns: r.created_at_ns,
                copied_at_ns: r.copied_at_ns,
                rows_copied: r.rows_copied,
                caught_up_at_ns: r.caught_up_at_ns,
                events: r.events.clone(),
                resolved_conflicts: r
                    .resolved_conflicts
                    .iter()
                    .map(|(kind, resolution, n)| (kind.name().to_string(), resolution.name().to_string(), *n))
                    .collect(),
            })
            .collect(),
        multi_master: crate::report::multimaster::MultiMasterSummary::of(world),
        pooler: world.pooler.as_ref().map(pooler_summary),
        endpoints: world.endpoints.as_ref().map(|e| endpoints_summary(e, world)),
        replication_tls_cpu_ns: world.scenario.replication.ssl.then_some(world.tls_cpu_ns),
        net_bytes: world.net.bytes_sent,
        nodes,
        invariants: verdict.invariants.iter().map(|(k, v)| (k.to_string(), v.name().to_string())).collect(),
        not_checked: verdict
            .invariants
            .iter()
            .filter_map(|(k, v)| v.why().map(|why| (k.to_string(), why.to_string())))
            .collect(),
        violations: verdict.violations.clone(),
        expectations: Vec::new(),
        overrides: world.scenario.overrides.clone(),
        reproduce: reproduce_command(world),
        timeline: Some(Box::new(Timeline::new(&world.scenario, &world.metrics))),
        snapshots: world.snapshots.iter().map(|s| MonitoringView::of(s, &world.scenario.cluster.nodes)).collect(),
    };
    if let Some(timeline) = summary.timeline.as_mut() {
        timeline.monitoring =
            world.monitoring.iter().map(|s| MonitoringView::of(s, &world.scenario.cluster.nodes)).collect();
    }
    summary.expectations = expectations(world, &summary, verdict);
    summary.ok = verdict.violations.is_empty() && summary.expectations.iter().all(|e| e.ok);
    summary
}

/// `summary.pooler` from the pooler's measurements.
fn pooler_summary(pool: &crate::world::pooler::Pooler) -> crate::report::pooler::PoolerSummary {
    use crate::scenario::model::{PoolMode, PoolerKind};
    let stats = &pool.stats;
    let name = match (pool.spec.kind, pool.spec.pool_mode) {
        (PoolerKind::Pgbouncer, PoolMode::Session) => "pgbouncer (session)",
        (PoolerKind::Pgbouncer, PoolMode::Transaction) => "pgbouncer (transaction)",
        (PoolerKind::Pgpool, _) => "pgpool",
    };
    // The busiest second; the earliest of equals.
    let peak = stats.connects_by_second.iter().max_by_key(|&(second, n)| (*n, std::cmp::Reverse(*second)));
    crate::report::pooler::PoolerSummary {
        pooler: name.into(),
        wait_ns: stats.wait_ns.percentiles(),
        waited_ops: stats.waited_ops,
        wait_timeouts: stats.wait_timeouts,
        clients_refused: stats.clients_refused,
        waiting_at_end: pool.waiting.len() as u64,
        max_waiting: stats.max_waiting as u64,
        server_connects: stats.server_connects,
        peak_connects_per_sec: peak.map_or(0, |(_, n)| u64::from(*n)),
        peak_connects_at_ns: peak.map_or(0, |(second, _)| second * 1_000_000_000),
        reads_balanced_to_standbys: stats.reads_balanced_to_standbys,
        reads_past_delay_threshold: stats.reads_past_delay_threshold,
    }
}

/// `summary.endpoints` from the endpoints' measurements.
fn endpoints_summary(
    ends: &crate::world::endpoints::Endpoints,
    world: &World,
) -> crate::report::endpoints::EndpointsSummary {
    let stats = &ends.stats;
    let last_flip_ns = stats.flips.last().map(|&(at, _)| at);
    let old_writer_used_for_ns = match (last_flip_ns, stats.last_stale_writer_op_ns) {
        (Some(flip), Some(last)) => last.saturating_sub(flip),
        _ => 0,
    };
    let lifetime_ns = ends.spec.answer_lifetime_ns();
    crate::report::endpoints::EndpointsSummary {
        dns_ttl_ns: ends.spec.dns_ttl_ns,
        answer_lifetime_ns: (lifetime_ns != u64::MAX).then_some(lifetime_ns),
        writer_flips: stats
            .flips
            .iter()
            .map(|&(at_ns, node)| crate::report::endpoints::EndpointFlip {
                at_ns,
                node: world.nodes[node as usize].name.clone(),
            })
            .collect(),
        stale_writer_ops: stats.stale_writer_ops,
        old_writer_used_for_ns,
        writer_errors: stats.writer_errors,
        reader_errors: stats.reader_errors,
        dns_queries: stats.dns_queries,
        connects: stats.connects,
    }
}
