//! Draws added after the swarm's first release, made last so that every earlier draw stays
//! what it was for every seed (a seed's scenario only gains settings).

use std::fmt::Write as _;

use super::{dur, latency, pick, range, Shape, MS_NS, US_NS};
use crate::world::rng::Rng;

/// Per-node settings (issue 12.7) on one node `node()` did not override: a delayed standby
/// (at most 2 s, so that it still catches up within `settle`) and clients placed near or far
/// from it.
pub(super) fn node_settings(text: &mut String, rng: &mut Rng, s: &Shape, overridden: Option<&str>) {
    let (delay, client) = (rng.chance(0.15), rng.chance(0.15));
    let name = &s.names[rng.below(s.names.len() as u64) as usize];
    if !(delay || client) || overridden == Some(name.as_str()) {
        return;
    }
    put!(text, "\n[node.{name}]");
    if delay {
        put!(text, "recovery_min_apply_delay = \"{}\"", dur(range(rng, 10, 2_000) * MS_NS));
    }
    if client {
        let median_ns = range(rng, 20, 20_000) * US_NS;
        put!(text, "client_latency = {}", latency(rng, median_ns, false));
    }
}

/// Sessions that `SET synchronous_commit` to a level of their own (issue 12.7): a sub-table of
/// `[workload]`, so it can be drawn last.
pub(super) fn session_levels(text: &mut String, rng: &mut Rng, clients: u64) {
    if !rng.chance(0.2) {
        return;
    }
    let mut left = clients;
    let mut groups = Vec::new();
    for level in ["off", "local", "remote_write", "on", "remote_apply"] {
        if left > 0 && rng.chance(0.3) {
            let count = range(rng, 1, left);
            groups.push(format!("{level} = {count}"));
            left -= count;
        }
    }
    if !groups.is_empty() {
        put!(text, "\n[workload.session_synchronous_commit]\n{}", groups.join("\n"));
    }
}

/// Long reads against replay (issue 12.5): `read_duration` (at most 5 s, so that replay held
/// by the last queries still catches up within `settle`), `hot_standby_feedback` and
/// `max_standby_streaming_delay` (-1 too). Drawn last and written into the sections drawn
/// earlier, so that earlier draws stay what they were for every seed.
pub(super) fn hot_standby(text: &mut String, rng: &mut Rng) {
    let (reads, feedback, delay) = (rng.chance(0.2), rng.chance(0.2), rng.chance(0.3));
    let mut replication = String::new();
    if feedback {
        put!(replication, "hot_standby_feedback = true");
    }
    if delay {
        match pick(rng, &[0, 10, 100, 1_000, 5_000, 30_000, u64::MAX]) {
            u64::MAX => put!(replication, "max_standby_streaming_delay = -1"),
            ms => put!(replication, "max_standby_streaming_delay = \"{}\"", dur(ms * MS_NS)),
        }
    }
    insert_into_section(text, "[replication]", &replication);
    // A client-side timeout that sends cancel requests (issue 12.2).
    if rng.chance(0.1) {
        let line = format!("cancel_after = \"{}\"\n", dur(pick(rng, &[5, 50, 500, 5_000]) * MS_NS));
        insert_into_section(text, "[workload]", &line);
    }
    if reads {
        let max_ms = pick(rng, &[10, 100, 1_000, 5_000]);
        let min_ms = range(rng, 0, max_ms);
        let line = format!(
            "read_duration = {{ dist = \"uniform\", min = \"{}\", max = \"{}\" }}\n",
            dur(min_ms * MS_NS),
            dur(max_ms * MS_NS)
        );
        insert_into_section(text, "[workload]", &line);
    }
}

/// The WAL archive (issue 13): `archive_mode`, the store's latency, bandwidth and request
/// cost, and sometimes an outage of the store.
pub(super) fn archive(text: &mut String, rng: &mut Rng, s: &Shape) {
    if !rng.chance(0.25) {
        return;
    }
    insert_into_section(text, "[replication]", "archive_mode = true\n");
    if rng.chance(0.5) {
        insert_into_section(text, "[replication]", "restore_command = true\n");
    }
    // At least 10 s: each switch ships a whole segment of zeros (up to 64 MB) to every standby,
    // which must still catch up within `settle` (seeds 668 and 1209 drew 0.2 s and 1 s: 64 MB a
    // second, more than their links carry, as it would be for PostgreSQL).
    // Not with 64 MB segments (drawn, not written, so that later draws stay the same): seeds
    // 6104 and 7238 switched in their last seconds and a standby, behind partitions and a
    // crash, was still receiving the 64 MB when the run ended.
    if rng.chance(0.4) {
        let line = format!("archive_timeout = \"{}\"\n", dur(range(rng, 10_000, 30_000) * MS_NS));
        if !text.contains("wal_segment_size = \"64MB\"") {
            insert_into_section(text, "[replication]", &line);
        }
    }
    let median_ns = range(rng, 100, 50_000) * US_NS;
    put!(text, "\n[archive]\nlatency = {}", latency(rng, median_ns, false));
    put!(text, "bandwidth = \"{}MB\"", pick(rng, &[1, 10, 100, 1000]));
    put!(text, "request_cost = \"{}\"", dur(range(rng, 0, 20) * MS_NS));
    if rng.chance(0.5) {
        let at_ns = rng.below(s.duration_ns);
        let for_ns = range(rng, 100, 20_000) * MS_NS;
        put!(text, "\n[[faults]]\nat = \"{}\"\narchive_down = true\nfor = \"{}\"", dur(at_ns), dur(for_ns));
    }
}

/// Cascading replication (issue 15.3), without `[ha]` (Patroni's `replicatefrom` is not
/// modelled): one running standby streams from another.
pub(super) fn cascade(text: &mut String, rng: &mut Rng, s: &Shape) {
    let standbys: Vec<usize> = (0..s.running).filter(|&i| i != s.primary).collect();
    if !rng.chance(0.2) || s.ha.is_some() || standbys.len() < 2 {
        return;
    }
    let child = standbys[rng.below(standbys.len() as u64) as usize];
    let others: Vec<usize> = standbys.iter().copied().filter(|&i| i != child).collect();
    let upstream = others[rng.below(others.len() as u64) as usize];
    let line = format!("primary_conninfo = \"{}\"\n", s.names[upstream]);
    let header = format!("[node.{}]", s.names[child]);
    if text.contains(&format!("\n{header}\n")) {
        insert_into_section(text, &header, &line);
    } else {
        put!(text, "\n{header}\n{}", line.trim_end());
    }
}

/// `pin_after_write` (issue 15.4) replaces a replica-reading router in some seeds.
pub(super) fn pin_router(text: &mut String, rng: &mut Rng) {
    if !rng.chance(0.1) {
        return;
    }
    let pin_ms = pick(rng, &[1, 10, 100, 1_000, 15_000]);
    for router in ["replica", "round_robin", "lag_aware"] {
        let line = format!("router = \"{router}\"\n");
        if text.contains(&line) {
            *text = text.replace(&line, "router = \"pin_after_write\"\n");
            insert_into_section(text, "[workload]", &format!("pin_duration = \"{}\"\n", dur(pin_ms * MS_NS)));
            return;
        }
    }
}

/// Disaster recovery (issue 13.4-13.6), with an archive, no HA manager and a spare no
/// `add_standby` starts: base backups (periodic, or one taken by hand), then in the second half
/// of the run every other node is lost with its site, and the spare is restored from the
/// archive to its end or to a time before the loss.
pub(super) fn restore(text: &mut String, rng: &mut Rng, s: &Shape) {
    let spares: Vec<usize> =
        (s.running..s.names.len()).filter(|&i| !text.contains(&format!("add_standby = \"{}\"", s.names[i]))).collect();
    if !text.contains("archive_mode = true\n") || s.ha.is_some() || spares.is_empty() || !rng.chance(0.5) {
        return;
    }
    let spare = &s.names[spares[rng.below(spares.len() as u64) as usize]];
    let loss_ns = s.duration_ns / 2 + rng.below(s.duration_ns / 4);
    if rng.chance(0.5) {
        let line = format!("backup_interval = \"{}\"\n", dur(range(rng, 1_000, 10_000) * MS_NS));
        insert_into_section(text, "[archive]", &line);
    } else {
        let at_ns = rng.below(loss_ns / 2);
        put!(text, "\n[[faults]]\nat = \"{}\"\nbase_backup = \"{}\"", dur(at_ns), s.names[s.primary]);
    }
    // Every other node is in the lost site, spares that `add_standby` may have started too.
    let site = s.list(&(0..s.names.len()).filter(|&i| s.names[i] != *spare).collect::<Vec<_>>());
    put!(text, "\n[[faults]]\nat = \"{}\"\nlose_site = {site}", dur(loss_ns));
    let target = match rng.chance(0.7) {
        true => "target = \"latest\"".to_string(),
        // After the first backup (the periodic one at 1 s, the one by hand before loss / 2).
        false => format!("target_time = \"{}\"", dur(loss_ns / 2 + rng.below(loss_ns / 2))),
    };
    let restore_ns = loss_ns + rng.below(s.duration_ns / 4);
    put!(text, "\n[[faults]]\nat = \"{}\"\nrestore = {{ node = \"{spare}\", {target} }}", dur(restore_ns));
}

/// Replication over TLS (issue 15.5): its CPU on every node's replication connections, at
/// the default cost or at one of a CPU without AES instructions.
pub(super) fn ssl(text: &mut String, rng: &mut Rng) {
    if !rng.chance(0.15) {
        return;
    }
    insert_into_section(text, "[replication]", "ssl = true\n");
    let line = format!("ssl_cpu_per_mb = \"{}\"\n", dur(pick(rng, &[500, 500, 2_000, 10_000]) * US_NS));
    if text.contains("\n[node]\n") {
        insert_into_section(text, "[node]", &line);
    } else {
        put!(text, "\n[node]\n{}", line.trim_end());
    }
}

/// A connection pooler (issue 15.1) between the clients and the nodes: PgBouncer with a pool
/// small or large against the clients, a client limit and a wait timeout sometimes below the
/// load; or PgPool-II balancing reads (only where the application's router sends everything to
/// the primary), with weights and a delay check.
pub(super) fn pooler(text: &mut String, rng: &mut Rng, s: &Shape, clients: u64) {
    if !rng.chance(0.2) {
        return;
    }
    let connect = dur(pick(rng, &[100, 2_000, 2_000, 20_000]) * US_NS);
    // PgPool-II routes every statement itself: only where the application sends everything to
    // one address (`router = "primary"`).
    let routed_by_app = text.contains("\nrouter = ") && !text.contains("\nrouter = \"primary\"\n");
    if rng.chance(0.6) || routed_by_app {
        put!(text, "\n[pooler]\nkind = \"pgbouncer\"\nserver_connect_cpu = \"{connect}\"");
        put!(text, "pool_mode = \"{}\"", pick(rng, &["session", "transaction", "transaction"]));
        put!(text, "default_pool_size = {}", range(rng, 1, clients.clamp(1, 40)));
        if rng.chance(0.2) {
            put!(text, "max_client_conn = {}", range(rng, 1, clients));
        }
        let timeout_ms = pick(rng, &[0, 50, 500, 5_000, 120_000]);
        put!(text, "query_wait_timeout = \"{}\"", dur(timeout_ms * MS_NS));
        return;
    }
    put!(text, "\n[pooler]\nkind = \"pgpool\"\nserver_connect_cpu = \"{connect}\"");
    put!(text, "num_init_children = {}", range(rng, 1, clients + 2));
    put!(text, "load_balance = \"{}\"", pick(rng, &["session", "statement", "off"]));
    let mut weights: Vec<u64> = s.names.iter().map(|_| pick(rng, &[0, 1, 1, 3])).collect();
    if weights.iter().all(|&w| w == 0) {
        weights[s.primary] = 1;
    }
    let pairs: Vec<String> = s.names.iter().zip(&weights).map(|(n, w)| format!("{n} = {w}")).collect();
    put!(text, "backend_weight = {{ {} }}", pairs.join(", "));
    put!(text, "delay_threshold = \"{}\"", pick(rng, &["0", "0", "8kB", "1MB"]));
    put!(text, "sr_check_period = \"{}\"", dur(pick(rng, &[100, 1_000, 10_000]) * MS_NS));
    let on_write = pick(rng, &["transaction", "trans_transaction", "always", "off"]);
    put!(text, "disable_load_balance_on_write = \"{on_write}\"");
}

/// Managed-service endpoints (issue 15.2): clients reach the writer (and, under the `replica`
/// router, a reader) through DNS, with a TTL, clients that cache longer, and a delay before the
/// record follows a new primary. Only where the application routes by `primary` or `replica`
/// and no pooler stands in between.
pub(super) fn endpoints(text: &mut String, rng: &mut Rng) {
    let routed = ["primary", "replica"].iter().any(|r| text.contains(&format!("\nrouter = \"{r}\"\n")));
    if !rng.chance(0.3) || !routed || text.contains("\n[pooler]\n") {
        return;
    }
    put!(text, "\n[endpoints]\ndns_ttl = \"{}\"", dur(pick(rng, &[0, 1_000, 5_000, 60_000]) * MS_NS));
    match pick(rng, &[0, 0, 1, 2]) {
        1 => put!(text, "client_dns_cache = \"{}\"", dur(pick(rng, &[100, 30_000]) * MS_NS)),
        2 => put!(text, "client_dns_cache = \"forever\""),
        _ => {}
    }
    put!(text, "update_delay = \"{}\"", dur(pick(rng, &[0, 0, 500, 5_000]) * MS_NS));
}

/// Appends `lines` (each ending in a newline) at the end of section `header` of `text`.
fn insert_into_section(text: &mut String, header: &str, lines: &str) {
    let start = text.find(&format!("\n{header}\n")).expect("the section was drawn") + 1;
    let end = text[start..].find("\n[").map_or(text.len(), |at| start + at);
    text.insert_str(end, lines);
}

/// An abandoned logical slot (issue 14): created on the initial primary (a standby refuses it)
/// and sometimes dropped again; `slot_wal_kept` judges every WAL removal after it.
pub(super) fn logical_slot(text: &mut String, rng: &mut Rng, s: &Shape) {
    if !rng.chance(0.15) {
        return;
    }
    let on = &s.names[s.primary];
    let at_ns = rng.below(s.duration_ns / MS_NS) * MS_NS;
    put!(text, "\n[[faults]]\nat = \"{}\"\ncreate_logical_slot = \"{on}\"\nslot = \"cdc\"", dur(at_ns));
    if rng.chance(0.4) {
        let drop_ns = at_ns + range(rng, 100, 30_000) * MS_NS;
        if drop_ns < s.duration_ns {
            put!(text, "\n[[faults]]\nat = \"{}\"\ndrop_logical_slot = \"{on}\"\nslot = \"cdc\"", dur(drop_ns));
        }
    }
}

/// A logical subscriber (issue 14): a node `sub1` outside the physical cluster, added to
/// `[cluster] nodes`, subscribing to one or both tables, sometimes with `disable_on_error`;
/// it may crash and restart, and be cut off from the primary for a while.
pub(super) fn subscription(text: &mut String, rng: &mut Rng, s: &Shape) {
    if !rng.chance(0.15) {
        return;
    }
    let cluster = format!("\n[cluster]\nnodes = {}", s.list(&(0..s.names.len()).collect::<Vec<_>>()));
    let with_subscriber = format!("{}, \"sub1\"]", cluster.trim_end_matches(']'));
    *text = text.replacen(&cluster, &with_subscriber, 1);
    let tables =
        pick(rng, &["", "tables = [\"inserts\"]", "tables = [\"registers\"]", "tables = [\"inserts\", \"registers\"]"]);
    put!(text, "\n[[logical.publications]]\nname = \"app\"\n{tables}");
    put!(text, "\n[[logical.subscriptions]]\nname = \"copy\"\nnode = \"sub1\"\npublications = [\"app\"]");
    if rng.chance(0.2) {
        put!(text, "disable_on_error = true");
    }
    // Failover slots (PostgreSQL 17), with their preconditions (physical slots and
    // hot_standby_feedback, switched on if the draw above left them off: a seed that draws a
    // subscription changes anyway); the walsender waits for every standby, or for none.
    if rng.chance(0.6) {
        put!(text, "failover = true");
        *text = text.replacen("replication_slots = false\n", "replication_slots = true\n", 1);
        let mut settings = "sync_replication_slots = true\n".to_string();
        if !text.contains("replication_slots = true\n") {
            settings.push_str("replication_slots = true\n");
        }
        if !text.contains("hot_standby_feedback = true\n") {
            settings.push_str("hot_standby_feedback = true\n");
        }
        if rng.chance(0.7) {
            let standbys: Vec<usize> = (0..s.running).filter(|&i| i != s.primary).collect();
            settings.push_str(&format!("synchronized_standby_slots = {}\n", s.list(&standbys)));
        }
        insert_into_section(text, "[replication]", &settings);
    }
    // Sometimes made on the running publisher, with the initial copy of its tables.
    if rng.chance(0.4) {
        put!(text, "at = \"{}\"", dur(rng.below(s.duration_ns / MS_NS) * MS_NS));
    }
    let primary = &s.names[s.primary];
    fault_then_undo(text, rng, s, "crash = \"sub1\"", "restart = \"sub1\"");
    let cut = format!("partition = [[\"{primary}\"], [\"sub1\"]]");
    fault_then_undo(text, rng, s, &cut, "heal = true");
    // Sometimes a row filter, where the publication lists its tables (drawn last here, so
    // the draws above stay what they were).
    if rng.chance(0.3) && !tables.is_empty() {
        let filter = pick(rng, &["key < 2500", "key >= 100", "key % 3 = 1", "key <> 7"]);
        *text = text.replacen("name = \"app\"\n", &format!("name = \"app\"\nrow_filter = \"{filter}\"\n"), 1);
    }
}

/// With probability 1/2, `fault` at a time within the run and `undo` 0.1 to 10 s later (if
/// that is still within it).
fn fault_then_undo(text: &mut String, rng: &mut Rng, s: &Shape, fault: &str, undo: &str) {
    if !rng.chance(0.5) {
        return;
    }
    let at_ns = rng.below(s.duration_ns / MS_NS) * MS_NS;
    let undo_ns = at_ns + range(rng, 100, 10_000) * MS_NS;
    put!(text, "\n[[faults]]\nat = \"{}\"\n{fault}", dur(at_ns));
    if undo_ns < s.duration_ns {
        put!(text, "\n[[faults]]\nat = \"{}\"\n{undo}", dur(undo_ns));
    }
}

/// `[multi_master]` between the primary and a second writable node `west` (not with an HA
/// manager, a pooler, endpoints or a subscription, which it is not modelled with), with a
/// policy, sometimes per table, sometimes a clock that disagrees, and faults on `west`.
pub(super) fn multi_master(text: &mut String, rng: &mut Rng, s: &Shape) {
    if !rng.chance(0.12) {
        return;
    }
    if ["\n[ha]", "\n[pooler]", "\n[endpoints]", "\n[[logical."].iter().any(|t| text.contains(t)) {
        return;
    }
    let cluster = format!("\n[cluster]\nnodes = {}", s.list(&(0..s.names.len()).collect::<Vec<_>>()));
    let with_west = format!("{}, \"west\"]", cluster.trim_end_matches(']'));
    *text = text.replacen(&cluster, &with_west, 1);
    let primary = &s.names[s.primary];
    // last_update_wins half the time: the one policy `masters_converged` judges.
    let policies = ["apply_remote", "error", "keep_local", "last_update_wins", "last_update_wins", "last_update_wins"];
    let policy = match rng.chance(0.25) {
        true => format!("{{ registers = \"{}\", inserts = \"{}\" }}", pick(rng, &policies), pick(rng, &policies)),
        false => format!("\"{}\"", pick(rng, &policies)),
    };
    put!(text, "\n[multi_master]\nmasters = [\"{primary}\", \"west\"]\nconflict_resolution = {policy}");
    if rng.chance(0.3) {
        let offset_ms = range(rng, 1, 2_000) as i64 * if rng.chance(0.5) { 1 } else { -1 };
        put!(text, "\n[node.west]\nclock_offset = \"{offset_ms}ms\"");
    }
    fault_then_undo(text, rng, s, "crash = \"west\"", "restart = \"west\"");
    let cut = format!("partition = [[\"{primary}\"], [\"west\"]]");
    fault_then_undo(text, rng, s, &cut, "heal = true");
}

/// Options of the subscription [`subscription`] drew (issue 14): trigger capture where it
/// applies (no failover slot, no `at`, no row filter), the subscription's own
/// `synchronous_commit`, its name in `synchronous_standby_names` (a synchronous logical
/// subscriber), and `ALTER SUBSCRIPTION … SKIP` at some instant; under `[multi_master]`, the
/// skip aimed at one master's subscription.
pub(super) fn subscription_options(text: &mut String, rng: &mut Rng, s: &Shape) {
    let header = "[[logical.subscriptions]]";
    if let Some(start) = text.find("\n[[logical.subscriptions]]\nname = \"copy\"\n") {
        let end = text[start + 1..].find("\n[").map_or(text.len(), |at| start + 1 + at);
        let section = &text[start..end];
        let plain = !section.contains("failover = true") && !section.contains("\nat = ");
        let trigger = plain && !text.contains("row_filter = ") && rng.chance(0.25);
        if trigger {
            let poll_ms = range(rng, 10, 3_000);
            // Batches big enough to keep up with any drawn workload within `settle` (a router
            // loading two rows a round trip falls minutes behind: swarm seed 15521, not a bug).
            let lines = format!(
                "capture = \"trigger\"\npoll_interval = \"{poll_ms}ms\"\nbatch_rows = {}\n",
                range(rng, 500, 2_000)
            );
            insert_into_section(text, header, &lines);
        }
        if rng.chance(0.25) {
            let level = pick(rng, &["local", "on", "remote_apply"]);
            insert_into_section(text, header, &format!("synchronous_commit = \"{level}\"\n"));
        }
        if !trigger && rng.chance(0.2) {
            // With the cluster's standbys, if it has them.
            let standbys: Vec<&str> = (0..s.running).filter(|&i| i != s.primary).map(|i| s.names[i].as_str()).collect();
            let names = match (rng.below(4), standbys.as_slice()) {
                (1, [a, ..]) => format!("FIRST 1 (copy, {a})"),
                (2, [a, ..]) => format!("ANY 1 ({a}, copy)"),
                (3, [a, b, ..]) => format!("ANY 2 (copy, {a}, {b})"),
                _ => "copy".to_string(),
            };
            set_line(text, "synchronous_standby_names = ", &format!("\"{names}\""));
        }
        if rng.chance(0.2) {
            put!(text, "\n[[faults]]\nat = \"{}\"\nskip_transaction = \"copy\"", dur(rng.below(s.duration_ns)));
        }
    }
    if text.contains("\n[multi_master]\n") && rng.chance(0.4) {
        let primary = &s.names[s.primary];
        let name = match rng.chance(0.5) {
            true => format!("{primary}_from_west"),
            false => format!("west_from_{primary}"),
        };
        put!(text, "\n[[faults]]\nat = \"{}\"\nskip_transaction = \"{name}\"", dur(rng.below(s.duration_ns)));
    }
}

/// Replaces the value of the first line that starts with `prefix`.
fn set_line(text: &mut String, prefix: &str, value: &str) {
    let Some(start) = text.find(&format!("\n{prefix}")).map(|at| at + 1) else { return };
    let end = text[start..].find('\n').map_or(text.len(), |at| start + at);
    text.replace_range(start..end, &format!("{prefix}{value}"));
}
