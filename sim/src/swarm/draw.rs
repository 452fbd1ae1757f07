//! Swarm testing: the scenario that swarm seed N runs, drawn from the seed alone. As
//! FoundationDB randomises its knobs and TigerBeetle's VOPR draws its swarm options, each seed
//! switches every fault kind on or off, spends a small fault budget on the kinds it switched
//! on, and draws every setting the scenario parser accepts. Faults that mask each other in a
//! uniform mix (a crash hides a slow disk) then get seeds where they run alone.
//!
//! The result is scenario TOML, the text a user could have written, so a failing seed is
//! reproduced and shrunk like any scenario file. Bounds keep nearly every draw valid for the
//! parser (DESIGN.md §4) and every run cheap: at most about 3000 operations per second,
//! periodic intervals of 1 ms or more, distribution tails that cannot outlast `settle`, and a
//! `settle` long enough for the HA manager to converge, so that a `converged` failure means
//! something.

use std::fmt::Write;

use crate::world::rng::{stream, Rng};

const US_NS: u64 = 1_000;
const MS_NS: u64 = 1_000_000;
const S_NS: u64 = 1_000_000_000;
const KB: u64 = 1024;
const MB: u64 = 1024 * KB;
const GB: u64 = 1024 * MB;

/// `writeln!` into a `String`, which cannot fail.
macro_rules! put {
    ($text:expr, $($arg:tt)*) => {
        writeln!($text, $($arg)*).expect("writing to a String cannot fail")
    };
}

/// The fault kinds a seed switches on or off (`Kind::ALL`), with the names the description uses.
macro_rules! kinds {
    ($($kind:ident = $name:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Kind { $($kind,)* }
        impl Kind {
            const ALL: &[Kind] = &[$(Kind::$kind,)*];
            fn name(self) -> &'static str {
                match self { $(Kind::$kind => $name,)* }
            }
        }
    };
}

kinds! {
    Crash = "crash",
    DoubleCrash = "double_crash", // the primary and a standby lose power in the same instant
    Partition = "partition",
    SlowDisk = "slow_disk",
    Reset = "reset",
    Pause = "pause",
    ClockSkew = "clock_skew",
    ClockDrift = "clock_drift",
    Promote = "promote",
    Switchover = "switchover",
    PartitionDcs = "partition_dcs",
    KillDcs = "kill_dcs",
    AddStandby = "add_standby",
    FsyncError = "fsync_error",
    LoseDisk = "lose_disk",
}

impl Kind {
    /// Whether the kind means anything in this cluster: a second running node to cut off,
    /// promote or re-clone from; an HA manager for the DCS and switchover; a spare to add.
    fn fits(self, s: &Shape) -> bool {
        let two_running = s.running >= 2;
        match self {
            Kind::DoubleCrash | Kind::Partition | Kind::Reset | Kind::Promote | Kind::LoseDisk => two_running,
            Kind::Switchover => two_running && s.ha.is_some(),
            Kind::PartitionDcs | Kind::KillDcs => s.ha.is_some(),
            Kind::AddStandby => s.names.len() > s.running,
            _ => true,
        }
    }
}

/// Patroni's timing, drawn before `settle` because `settle` must outlast it.
struct HaTiming {
    ttl_s: u64,
    loop_wait_s: u64,
    retry_timeout_s: u64,
}

/// What every section needs to know about the cluster and the run.
struct Shape {
    /// `pg1..pgN`: the running nodes first, then the spares.
    names: Vec<String>,
    /// How many nodes run from the start; `names[running..]` are spares.
    running: usize,
    primary: usize,
    ha: Option<HaTiming>,
    duration_ns: u64,
    settle_ns: u64,
}

impl Shape {
    /// A running node other than the initial primary (needs `running >= 2`).
    fn standby(&self, rng: &mut Rng) -> &str {
        let r = rng.below(self.running as u64 - 1) as usize;
        &self.names[if r >= self.primary { r + 1 } else { r }]
    }

    /// `["pg1", "pg3"]`.
    fn list(&self, nodes: &[usize]) -> String {
        let quoted: Vec<String> = nodes.iter().map(|&i| format!("\"{}\"", self.names[i])).collect();
        format!("[{}]", quoted.join(", "))
    }
}

/// The scenario that swarm seed `seed` runs, as TOML text (the same text `repsim swarm --seed N
/// --print` writes).
pub fn draw_toml(seed: u64) -> String {
    let mut rng = stream(seed, "swarm");
    let rng = &mut rng;
    let shape = draw_shape(rng);
    // Each kind is switched on with probability 1/2 (drawn for every kind, so the stream does
    // not depend on the cluster), then kept only if it means something here.
    let kinds: Vec<Kind> = Kind::ALL.iter().copied().filter(|k| rng.chance(0.5) && k.fits(&shape)).collect();
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let spares = shape.names.len() - shape.running;
    let mut text = String::new();
    put!(text, "name = \"swarm-{seed}\"");
    put!(
        text,
        "description = \"swarm seed {seed}: {} running node(s), {spares} spare(s), ha {}; kinds {}\"",
        shape.running,
        if shape.ha.is_some() { "on" } else { "off" },
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    );
    put!(text, "duration = \"{}\"", dur(shape.duration_ns));
    put!(text, "settle = \"{}\"", dur(shape.settle_ns));
    put!(text, "\n[cluster]\nnodes = {}", shape.list(&(0..shape.names.len()).collect::<Vec<_>>()));
    put!(text, "primary = \"{}\"", shape.names[shape.primary]);
    put!(text, "spare = {}", shape.list(&(shape.running..shape.names.len()).collect::<Vec<_>>()));
    replication(&mut text, rng, &shape);
    let can_rejoin = ha(&mut text, rng, &shape);
    let overridden = node(&mut text, rng, &shape);
    network(&mut text, rng, &shape);
    disk(&mut text, rng, &shape);
    let clients = workload(&mut text, rng);
    faults(&mut text, rng, &shape, &kinds, can_rejoin);
    // Drawn last, so that the draws above stay what they were for every seed.
    late::node_settings(&mut text, rng, &shape, overridden.as_deref());
    late::session_levels(&mut text, rng, clients);
    late::hot_standby(&mut text, rng);
    late::archive(&mut text, rng, &shape);
    late::cascade(&mut text, rng, &shape);
    late::pin_router(&mut text, rng);
    late::restore(&mut text, rng, &shape);
    late::ssl(&mut text, rng);
    late::pooler(&mut text, rng, &shape, clients);
    late::endpoints(&mut text, rng);
    late::logical_slot(&mut text, rng, &shape);
    late::subscription(&mut text, rng, &shape);
    late::multi_master(&mut text, rng, &shape);
    late::subscription_options(&mut text, rng, &shape);
    text
}

fn draw_shape(rng: &mut Rng) -> Shape {
    let running = range(rng, 1, 5) as usize;
    // Spares only sometimes, and at most six nodes in all: every node replicates every write.
    let spares = if rng.chance(0.3) { (range(rng, 1, 2) as usize).min(6 - running) } else { 0 };
    let names = (1..=running + spares).map(|i| format!("pg{i}")).collect();
    let primary = if rng.chance(0.7) { 0 } else { rng.below(running as u64) as usize };
    let ha = rng.chance(0.5).then(|| {
        let loop_wait_s = range(rng, 1, 5);
        let retry_timeout_s = range(rng, 1, 5);
        // Patroni's rule, checked by the parser: loop_wait + 2 * retry_timeout <= ttl.
        let ttl_s = loop_wait_s + 2 * retry_timeout_s + range(rng, 0, 5);
        HaTiming { ttl_s, loop_wait_s, retry_timeout_s }
    });
    let duration_ns = range(rng, 5_000, 20_000) * MS_NS;
    // Long enough for a lease to expire, the next loop to notice and a clone or rewind to
    // finish (at most 20 + 5 + 10 = 35 s, so the range below is never empty).
    let min_settle_s = ha.as_ref().map_or(20, |h| (h.ttl_s + h.loop_wait_s + 10).max(20));
    let settle_ns = range(rng, min_settle_s, 40) * S_NS;
    Shape { names, running, primary, ha, duration_ns, settle_ns }
}

fn replication(text: &mut String, rng: &mut Rng, s: &Shape) {
    put!(text, "\n[replication]");
    let level = pick(rng, &["off", "local", "remote_write", "on", "remote_apply"]);
    put!(text, "synchronous_commit = \"{level}\"");
    put!(text, "synchronous_standby_names = \"{}\"", standby_names(rng, s));
    // Small segments make recycling (and `wal_keep_size` running out) happen within seconds.
    let segment_bytes = pick(rng, &[1, 2, 4, 16, 64]) * MB;
    put!(text, "wal_segment_size = \"{}\"", size(segment_bytes));
    // The parser requires max_wal_size >= 2 segments; 1GB is above 2 * 64MB.
    let max_wal_bytes = if rng.chance(0.3) { GB } else { segment_bytes * pick(rng, &[2, 3, 4, 8, 32]) };
    put!(text, "max_wal_size = \"{}\"", size(max_wal_bytes));
    let keep_bytes = pick(rng, &[0, 0, segment_bytes, 16 * MB, 256 * MB, GB]);
    put!(text, "wal_keep_size = \"{}\"", size(keep_bytes));
    put!(text, "checkpoint_timeout = \"{}\"", dur(pick(rng, &[1, 5, 30, 300]) * S_NS));
    let target = if rng.chance(0.7) { 0.9 } else { rng.unit() };
    put!(text, "checkpoint_completion_target = {target:.2}");
    // 1 ms is the floor for every periodic interval: below it the event queue floods.
    let writer_delay_ms = if rng.chance(0.1) { 1 } else { range(rng, 10, 200) };
    put!(text, "wal_writer_delay = \"{writer_delay_ms}ms\"");
    put!(text, "wal_writer_flush_after = \"{}\"", size(pick(rng, &[0, 8 * KB, MB, 16 * MB])));
    // 0 disables a timeout (rare: a dead peer then goes unnoticed until TCP says so).
    // A standby whose stream stalls (a packet in its seventh retransmission holds the
    // connection for 25 s) notices only after wal_receiver_timeout and then reconnects: that
    // must fit in `settle`, after the retry interval and the catch-up (seed 783).
    let receiver_timeout_max_ms = (s.settle_ns / MS_NS).saturating_sub(15_000).max(1_000);
    for key in ["wal_sender_timeout", "wal_receiver_timeout"] {
        let mut ms = if rng.chance(0.05) { 0 } else { range(rng, 1_000, 30_000) };
        if key == "wal_receiver_timeout" {
            // Never 0 (turned into the bound, so that later draws stay the same): behind a
            // packet lost eight times in a row at 16 % loss, a walreceiver with no timeout
            // waits 51 s of retransmissions, past settle, as PostgreSQL would (seed 14672).
            ms = if ms == 0 { receiver_timeout_max_ms } else { ms.min(receiver_timeout_max_ms) };
        }
        put!(text, "{key} = \"{}\"", dur(ms * MS_NS));
    }
    let status_ms = match rng.below(20) {
        0 => 0,
        1 => 1,
        _ => range(rng, 100, 10_000),
    };
    put!(text, "wal_receiver_status_interval = \"{}\"", dur(status_ms * MS_NS));
    // At most 5 s (PostgreSQL's default): a disconnected standby must retry within `settle`.
    let retry_ms = if rng.chance(0.05) { 1 } else { range(rng, 50, 5_000) };
    put!(text, "wal_retrieve_retry_interval = \"{}\"", dur(retry_ms * MS_NS));
    // Mostly 0; a delayed standby must still catch up within `settle`.
    let apply_delay_ms = if rng.chance(0.15) { range(rng, 10, 2_000) } else { 0 };
    put!(text, "recovery_min_apply_delay = \"{}\"", dur(apply_delay_ms * MS_NS));
    put!(text, "replication_slots = {}", rng.chance(0.4));
    if rng.chance(0.3) {
        put!(text, "max_slot_wal_keep_size = \"{}\"", size(segment_bytes * range(rng, 1, 16)));
    } else {
        put!(text, "max_slot_wal_keep_size = -1");
    }
}

/// Every form of `synchronous_standby_names`, over the nodes other than the primary (spares
/// included: they stream once added).
fn standby_names(rng: &mut Rng, s: &Shape) -> String {
    let standbys: Vec<&str> =
        s.names.iter().enumerate().filter(|&(i, _)| i != s.primary).map(|(_, n)| n.as_str()).collect();
    if standbys.is_empty() {
        return pick(rng, &["", "*"]).to_string();
    }
    let mut chosen: Vec<&str> = standbys.iter().copied().filter(|_| rng.chance(0.7)).collect();
    if chosen.is_empty() {
        chosen.push(standbys[rng.below(standbys.len() as u64) as usize]);
    }
    let list = if rng.chance(0.1) { "*".to_string() } else { chosen.join(", ") };
    // The parser accepts n above the number listed; commits at remote_write and above then
    // wait forever, as PostgreSQL's would. Rare.
    let n = if rng.chance(0.05) { chosen.len() as u64 + 1 } else { range(rng, 1, chosen.len() as u64) };
    match rng.below(5) {
        0 => String::new(),
        1 => "*".to_string(),
        2 => list,
        3 => format!("FIRST {n} ({list})"),
        _ => format!("ANY {n} ({list})"),
    }
}

/// Draws `[ha]`; returns whether a diverged member can rejoin on its own (pg_rewind or a
/// re-clone allowed). Patroni with neither leaves it for `patronictl reinit`.
fn ha(text: &mut String, rng: &mut Rng, s: &Shape) -> bool {
    let Some(h) = &s.ha else { return true };
    put!(text, "\n[ha]\nmanager = \"patroni\"");
    put!(text, "ttl = \"{}s\"\nloop_wait = \"{}s\"", h.ttl_s, h.loop_wait_s);
    put!(text, "retry_timeout = \"{}s\"", h.retry_timeout_s);
    put!(text, "maximum_lag_on_failover = \"{}\"", size(pick(rng, &[0, 64 * KB, MB, 16 * MB, GB])));
    let sync_mode = rng.chance(0.5);
    put!(text, "synchronous_mode = {sync_mode}\nsynchronous_mode_strict = {}", sync_mode && rng.chance(0.3));
    let rewind = rng.chance(0.5);
    let reclone = rng.chance(0.5);
    put!(text, "use_pg_rewind = {rewind}");
    put!(text, "remove_data_directory_on_rewind_failure = {reclone}");
    // Tag one standby nofailover only when another candidate is left.
    if s.running >= 3 && rng.chance(0.2) {
        put!(text, "nofailover = [\"{}\"]", s.standby(rng));
    }
    if s.running >= 2 && rng.chance(0.3) {
        put!(text, "failover_priority = {{ {} = {} }}", s.standby(rng), range(rng, 0, 3));
    }
    // HAProxy's `inter`; 100 ms keeps the health checks from dominating the event queue.
    put!(text, "check_interval = \"{}\"", dur(range(rng, 100, 3_000) * MS_NS));
    rewind || reclone
}

/// `[node]`, and one `[node.NAME]` override some of the time: returns that name.
fn node(text: &mut String, rng: &mut Rng, s: &Shape) -> Option<String> {
    if !rng.chance(0.5) {
        return None;
    }
    put!(text, "\n[node]\ncpus = {}", range(rng, 1, 8));
    let keys = ["statement_cpu", "commit_cpu", "read_cpu", "wal_send_cpu", "wal_receive_cpu", "replay_record_cpu"];
    for (key, default_us) in keys.into_iter().zip([60, 20, 30, 10, 10, 5]) {
        if rng.chance(0.3) {
            // A quarter to three times the default: enough to make replay the bottleneck.
            let us = (default_us * range(rng, 25, 300) / 100).max(1);
            put!(text, "{key} = \"{us}us\"");
        }
    }
    if rng.chance(0.1) {
        put!(text, "clock_drift_ppm = {:.1}", (rng.unit() * 2.0 - 1.0) * 200.0);
    }
    if rng.chance(0.3) {
        let name = &s.names[rng.below(s.names.len() as u64) as usize];
        put!(text, "\n[node.{name}]\ncpus = 1");
        if rng.chance(0.5) {
            put!(text, "replay_record_cpu = \"{}us\"", range(rng, 10, 50));
        }
        if rng.chance(0.5) {
            put!(text, "clock_offset = \"{}\"", signed_dur(rng, 5_000));
        }
        return Some(name.clone());
    }
    None
}

fn network(text: &mut String, rng: &mut Rng, s: &Shape) {
    put!(text, "\n[network]");
    // One way within a region: 50 us to 2 ms median, a heavy tail one time in five.
    let (median_ns, tail) = (range(rng, 50, 2_000) * US_NS, rng.chance(0.2));
    put!(text, "latency = {}", latency(rng, median_ns, tail));
    // 100 Mbit and up: a slower link cannot ship the WAL of 3000 writes/s and converge.
    put!(text, "bandwidth = \"{}\"", pick(rng, &["100Mbit", "1Gbit", "10Gbit", "500MB"]));
    put!(text, "loss = {:.3}", loss(rng));
    if rng.chance(0.3) {
        let median_ns = range(rng, 20, 1_000) * US_NS;
        put!(text, "client_latency = {}", latency(rng, median_ns, false));
    }
    if s.running >= 2 && rng.chance(0.25) {
        // A cross-region standby: 20-80 ms one way.
        let far = s.standby(rng);
        let (mean_ms, stddev_ms) = (range(rng, 20, 80), range(rng, 1, 10));
        put!(text, "\n[[network.links]]\nbetween = [\"{}\", \"{far}\"]", s.names[s.primary]);
        put!(text, "latency = {{ dist = \"normal\", mean = \"{mean_ms}ms\", stddev = \"{stddev_ms}ms\" }}");
        if rng.chance(0.3) {
            put!(text, "bandwidth = \"{}\"", pick(rng, &["100Mbit", "1Gbit"]));
        }
        if rng.chance(0.3) {
            put!(text, "loss = {:.3}", loss(rng));
        }
    }
}

/// Mostly none; otherwise up to 0.2 (each loss costs a 200 ms retransmission timeout).
fn loss(rng: &mut Rng) -> f64 {
    if rng.chance(0.2) {
        0.001 + rng.unit() * 0.199
    } else {
        0.0
    }
}

fn disk(text: &mut String, rng: &mut Rng, s: &Shape) {
    put!(text, "\n[disk]");
    let write_ns = range(rng, 5, 50) * US_NS;
    put!(text, "write = {}", latency(rng, write_ns, false));
    put!(text, "fsync = {}", fsync(rng));
    put!(text, "bandwidth = \"{}\"", pick(rng, &["50MB", "200MB", "500MB", "2GB"]));
    let torn = if rng.chance(0.3) { [0.5, 1.0, rng.unit()][rng.below(3) as usize] } else { 0.0 };
    put!(text, "torn_write_probability = {torn:.2}");
    if rng.chance(0.2) {
        let name = &s.names[rng.below(s.names.len() as u64) as usize];
        put!(text, "\n[disk.{name}]\nfsync = {}", fsync(rng));
    }
}

/// An fsync latency: usually 0.1-5 ms, sometimes a dying disk with p99 = 2 s. Its median is
/// 50-200 ms so that the p99/p50 ratio stays <= 40: with a 1 ms median and a 2 s p99, one
/// fsync in a run of ten thousand takes minutes, past any `settle`.
fn fsync(rng: &mut Rng) -> String {
    if rng.chance(0.1) {
        let p50_ms = pick(rng, &[50, 100, 200]);
        return format!("{{ dist = \"lognormal\", p50 = \"{p50_ms}ms\", p99 = \"2s\" }}");
    }
    let (median_ns, tail) = (range(rng, 100, 5_000) * US_NS, rng.chance(0.2));
    latency(rng, median_ns, tail)
}

/// A latency around `median_ns` in one of the parser's five forms (and the bare duration).
/// `tail` widens the lognormal and pareto tails, within bounds: over ~10^5 samples a p99/p50
/// ratio of 50, or a pareto alpha of 1.3, puts the worst sample near 10^4 medians.
fn latency(rng: &mut Rng, median_ns: u64, tail: bool) -> String {
    let m = (median_ns / US_NS).max(1) * US_NS;
    match rng.below(6) {
        0 => format!("\"{}\"", dur(m)),
        1 => format!("{{ dist = \"constant\", value = \"{}\" }}", dur(m)),
        2 => format!("{{ dist = \"uniform\", min = \"{}\", max = \"{}\" }}", dur(m / 2), dur(m + m / 2)),
        3 => format!("{{ dist = \"normal\", mean = \"{}\", stddev = \"{}\" }}", dur(m), dur(m / 4)),
        4 => {
            let ratio = if tail { range(rng, 10, 50) } else { range(rng, 2, 10) };
            format!("{{ dist = \"lognormal\", p50 = \"{}\", p99 = \"{}\" }}", dur(m), dur(m * ratio))
        }
        _ => {
            let alpha = if tail { 1.3 + rng.unit() * 0.4 } else { 1.8 + rng.unit() * 1.2 };
            format!("{{ dist = \"pareto\", min = \"{}\", alpha = {alpha:.2} }}", dur(m * 2 / 3))
        }
    }
}

/// `[workload]`; returns the number of clients.
fn workload(text: &mut String, rng: &mut Rng) -> u64 {
    put!(text, "\n[workload]");
    let clients = if rng.chance(0.5) { pick(rng, &[1, 2, 4, 8, 16, 32, 64]) } else { range(rng, 1, 64) };
    put!(text, "clients = {clients}");
    // About 3000 operations per second at most, so a run takes well under 2 s of wall time.
    let ops_per_sec = if rng.chance(0.6) {
        let rate = range(rng, 50, 3_000);
        put!(text, "arrival = {{ open = \"{rate}/s\" }}");
        rate
    } else {
        // Each client does at most one operation per think time: clients / think <= 3000/s.
        let think_ms = clients.div_ceil(3) * range(rng, 1, 4);
        let think = latency(rng, think_ms * MS_NS, false);
        put!(text, "arrival = {{ closed = {{ think = {think} }} }}");
        clients * 1_000 / think_ms
    };
    let write_fraction = if rng.chance(0.2) { pick(rng, &[0.0, 1.0]) } else { 0.1 + rng.unit() * 0.8 };
    put!(text, "write_fraction = {write_fraction:.2}");
    put!(text, "keys = {}", pick(rng, &[1, 10, 100, 1_000, 10_000, 100_000]));
    put!(text, "key_distribution = \"{}\"", pick(rng, &["uniform", "zipf"]));
    // At most ~4 MB/s of row data, which every link and disk drawn above carries.
    let sizes: Vec<u64> = [1, 100, KB, 4 * KB].into_iter().filter(|&b| b * ops_per_sec <= 4 * MB).collect();
    put!(text, "value_size = \"{}\"", size(pick(rng, &sizes)));
    let abort_fraction = if rng.chance(0.2) { rng.unit() * 0.3 } else { 0.0 };
    put!(text, "abort_fraction = {abort_fraction:.2}");
    let router = pick(rng, &["primary", "replica", "round_robin", "read_your_writes", "lag_aware"]);
    put!(text, "router = \"{router}\"");
    if router == "read_your_writes" {
        put!(text, "read_wait = \"{}\"", dur(pick(rng, &[0, 10, 100, 1_000]) * MS_NS));
    }
    if router == "lag_aware" {
        put!(text, "delay_threshold = \"{}\"", size(pick(rng, &[0, 64 * KB, MB, 16 * MB])));
    }
    // An application timeout that cancels waits for standbys (committed locally, unconfirmed).
    if rng.chance(0.15) {
        put!(text, "statement_timeout = \"{}\"", dur(pick(rng, &[5, 50, 500, 5_000]) * MS_NS));
    }
    clients
}

/// A budget of 0-8 faults among the kinds switched on, at times in `[0, duration)`, sorted by
/// time (the parser sorts stably too, so two crashes at one instant keep their order).
fn faults(text: &mut String, rng: &mut Rng, s: &Shape, kinds: &[Kind], can_rejoin: bool) {
    if kinds.is_empty() {
        return;
    }
    let mut faults: Vec<(u64, String)> = Vec::new();
    for _ in 0..rng.below(9) {
        let kind = pick(rng, kinds);
        let at_ns = rng.below(s.duration_ns / MS_NS) * MS_NS;
        draw_fault(rng, s, kind, at_ns, &mut faults);
    }
    faults.sort_by_key(|(at_ns, _)| *at_ns);
    // Liveness is judged only where the fault plan lets the cluster recover on its own (as
    // FoundationDB checks recovery only under survivable fault sets): an operator's
    // `pg_promote` outside the HA manager can leave a member that needs a manual re-clone,
    // losing two disks can lose every copy, and an HA manager allowed neither pg_rewind nor a
    // re-clone leaves a diverged member for an operator. Safety invariants are checked either way.
    let promoted = faults.iter().any(|(_, a)| a.starts_with("promote"));
    let mut lost: Vec<&str> = faults.iter().filter_map(|(_, a)| a.strip_prefix("lose_disk = ")).collect();
    lost.sort_unstable();
    lost.dedup();
    if promoted || lost.len() >= 2 || (!can_rejoin && !faults.is_empty()) {
        put!(text, "\n[expect]\nliveness = false");
    }
    for (at_ns, action) in faults {
        put!(text, "\n[[faults]]\nat = \"{}\"\n{action}", dur(at_ns));
    }
}

fn draw_fault(rng: &mut Rng, s: &Shape, kind: Kind, at_ns: u64, faults: &mut Vec<(u64, String)>) {
    let node = s.names[rng.below(s.running as u64) as usize].as_str();
    let restart = |node: &str| format!("restart = \"{node}\"");
    let heal = || "heal = true".to_string();
    // The action at `at_ns`, and its follow-up if drawn: restart what crashed (mostly; the
    // settle phase restarts the rest), heal what was cut.
    let (action, follow_up) = match kind {
        Kind::Crash => (format!("crash = \"{node}\""), rng.chance(0.8).then(|| restart(node))),
        Kind::DoubleCrash => {
            let primary = s.names[s.primary].as_str();
            let follow_up = rng.chance(0.8).then(|| restart(primary));
            push(rng, s, (at_ns, format!("crash = \"{primary}\"")), follow_up, faults);
            let standby = s.standby(rng);
            (format!("crash = \"{standby}\""), rng.chance(0.8).then(|| restart(standby)))
        }
        Kind::Partition => {
            let mut order: Vec<usize> = (0..s.running).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let (a, b) = order.split_at(range(rng, 1, s.running as u64 - 1) as usize);
            let one_way = if rng.chance(0.3) { "\none_way = true" } else { "" };
            (format!("partition = [{}, {}]{one_way}", s.list(a), s.list(b)), rng.chance(0.8).then(heal))
        }
        Kind::SlowDisk => {
            let factor = 2.0 + rng.unit() * 48.0;
            (format!("slow_disk = \"{node}\"\nfactor = {factor:.1}\nfor = \"{}ms\"", range(rng, 100, 5_000)), None)
        }
        Kind::Reset => {
            let a = rng.below(s.running as u64) as usize;
            let b = (a + 1 + rng.below(s.running as u64 - 1) as usize) % s.running;
            (format!("reset = {}", s.list(&[a, b])), None)
        }
        Kind::Pause => {
            // Past the lease sometimes: the leader wakes up after another took over.
            let max_ms = s.ha.as_ref().map_or(10_000, |h| (h.ttl_s + 5) * 1_000);
            (format!("pause = \"{node}\"\nfor = \"{}ms\"", range(rng, 100, max_ms)), None)
        }
        Kind::ClockSkew => (format!("clock_skew = \"{node}\"\nby = \"{}\"", signed_dur(rng, 10_000)), None),
        // Real clocks drift by tens of ppm; 1000 ppm is a broken one.
        Kind::ClockDrift => (format!("clock_drift = \"{node}\"\nppm = {:.1}", (rng.unit() * 2.0 - 1.0) * 1e3), None),
        Kind::Promote => (format!("promote = \"{}\"", s.standby(rng)), None),
        Kind::Switchover => (format!("switchover = \"{}\"", s.standby(rng)), None),
        Kind::PartitionDcs => (format!("partition_dcs = \"{node}\""), rng.chance(0.8).then(heal)),
        Kind::KillDcs => ("kill_dcs = true".to_string(), None),
        Kind::AddStandby => {
            let spare = s.running + rng.below((s.names.len() - s.running) as u64) as usize;
            (format!("add_standby = \"{}\"", s.names[spare]), None)
        }
        Kind::FsyncError => (format!("fsync_error = \"{node}\""), None),
        Kind::LoseDisk => {
            // Without an HA manager nobody fails over from a primary whose disk is gone: the
            // loss would be certain and uninteresting, so then only a standby loses its disk.
            let target = if s.ha.is_some() { node } else { s.standby(rng) };
            (format!("lose_disk = \"{target}\""), rng.chance(0.6).then(|| restart(target)))
        }
    };
    push(rng, s, (at_ns, action), follow_up, faults);
}

/// Adds a fault, and its follow-up 0.1-10 s later if that is still within `duration`.
fn push(rng: &mut Rng, s: &Shape, fault: (u64, String), follow_up: Option<String>, faults: &mut Vec<(u64, String)>) {
    let then_ns = fault.0 + range(rng, 100, 10_000) * MS_NS;
    faults.push(fault);
    if let Some(follow_up) = follow_up.filter(|_| then_ns < s.duration_ns) {
        faults.push((then_ns, follow_up));
    }
}

/// Uniform in `lo..=hi`.
fn range(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    lo + rng.below(hi - lo + 1)
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

/// A duration as the parser reads it, in the largest unit that is exact: `"1500ms"`, `"2s"`.
fn dur(ns: u64) -> String {
    if ns == 0 {
        return "0".to_string();
    }
    let unit = [("s", S_NS), ("ms", MS_NS), ("us", US_NS)].into_iter().find(|&(_, per)| ns.is_multiple_of(per));
    unit.map_or_else(|| format!("{ns}ns"), |(name, per)| format!("{}{name}", ns / per))
}

/// `"-1234ms"` or `"1234ms"`: 1 ms to `max_ms`, either sign.
fn signed_dur(rng: &mut Rng, max_ms: u64) -> String {
    let sign = if rng.chance(0.5) { "-" } else { "" };
    format!("{sign}{}", dur(range(rng, 1, max_ms) * MS_NS))
}

/// A size as the parser reads it, in the largest unit that is exact: `"16MB"`, `"100B"`.
fn size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    let unit = [("GB", GB), ("MB", MB), ("kB", KB)].into_iter().find(|&(_, per)| bytes.is_multiple_of(per));
    unit.map_or_else(|| format!("{bytes}B"), |(name, per)| format!("{}{name}", bytes / per))
}

mod late;
#[cfg(test)]
mod tests;
