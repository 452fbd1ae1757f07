//! `[node]`, `[disk]`, `[network]` and `[workload]`.

use super::diag::{did_you_mean, Diag};
use super::dist::read_dist;
use super::fields::{Field, Section, MAX_CLIENTS, MAX_CLOCK_DRIFT_PPM, MAX_KEYS};
use super::model::{Arrival, DiskSpec, Dist, KeyDistribution, LinkSpec, Network, NodeSpec, Workload};
use super::tree::Kind;
use repsim_engine::config::SyncCommitLevel;

const US_NS: u64 = 1_000;
const MS_NS: u64 = 1_000_000;
const MB: u64 = 1024 * 1024;

const NODE_KEYS: &[&str] = &[
    "cpus",
    "statement_cpu",
    "commit_cpu",
    "read_cpu",
    "wal_send_cpu",
    "wal_receive_cpu",
    "replay_record_cpu",
    "ssl_cpu_per_mb",
    "clock_offset",
    "clock_drift_ppm",
    "recovery_min_apply_delay",
    "client_latency",
    "primary_conninfo",
];

fn default_node() -> NodeSpec {
    NodeSpec {
        name: String::new(),
        cpus: 2,
        statement_cpu_ns: 60 * US_NS,
        commit_cpu_ns: 20 * US_NS,
        read_cpu_ns: 30 * US_NS,
        wal_send_cpu_ns: 10 * US_NS,
        wal_receive_cpu_ns: 10 * US_NS,
        replay_record_cpu_ns: 5 * US_NS,
        ssl_cpu_per_mb_ns: 500 * US_NS,
        clock_offset_ns: 0,
        clock_drift_ppm: 0.0,
        recovery_min_apply_delay_ns: None,
        client_latency: None,
        primary_conninfo: None,
    }
}

fn apply_node_keys(s: &Section, spec: &mut NodeSpec) -> Result<(), Diag> {
    s.set("cpus", &mut spec.cpus, |f| f.u32_at_least(1, "2"))?;
    s.set("statement_cpu", &mut spec.statement_cpu_ns, Field::duration_ns)?;
    s.set("commit_cpu", &mut spec.commit_cpu_ns, Field::duration_ns)?;
    s.set("read_cpu", &mut spec.read_cpu_ns, Field::duration_ns)?;
    s.set("wal_send_cpu", &mut spec.wal_send_cpu_ns, Field::duration_ns)?;
    s.set("wal_receive_cpu", &mut spec.wal_receive_cpu_ns, Field::duration_ns)?;
    s.set("replay_record_cpu", &mut spec.replay_record_cpu_ns, Field::duration_ns)?;
    s.set("ssl_cpu_per_mb", &mut spec.ssl_cpu_per_mb_ns, Field::duration_ns)?;
    s.set("clock_offset", &mut spec.clock_offset_ns, Field::signed_duration_ns)?;
    s.set("clock_drift_ppm", &mut spec.clock_drift_ppm, |f| {
        f.float_in(-MAX_CLOCK_DRIFT_PPM, MAX_CLOCK_DRIFT_PPM, "50.0")
    })?;
    s.set("recovery_min_apply_delay", &mut spec.recovery_min_apply_delay_ns, |f| f.duration_ns().map(Some))?;
    s.set("client_latency", &mut spec.client_latency, |f| read_dist(f).map(Some))?;
    s.set("primary_conninfo", &mut spec.primary_conninfo, |f| f.str("\"pg2\"").map(|s| Some(s.to_string())))
}

/// `[node]` with the `[node.NAME]` overrides, one entry per node in `nodes` order.
pub(crate) fn read_nodes(top: &Section, nodes: &[String]) -> Result<Vec<NodeSpec>, Diag> {
    let mut specs = per_node(top, "node", NODE_KEYS, nodes, default_node(), apply_node_keys)?;
    for (spec, name) in specs.iter_mut().zip(nodes) {
        spec.name = name.clone();
    }
    Ok(specs)
}

const DISK_KEYS: &[&str] = &["write", "fsync", "bandwidth", "torn_write_probability"];

fn default_disk() -> DiskSpec {
    DiskSpec {
        write: Dist::Constant { value_ns: 20 * US_NS },
        fsync: Dist::log_normal(MS_NS, 8 * MS_NS),
        bandwidth_bytes_per_sec: 500 * MB,
        torn_write_probability: 0.0,
    }
}

fn apply_disk_keys(s: &Section, spec: &mut DiskSpec) -> Result<(), Diag> {
    s.set("write", &mut spec.write, read_dist)?;
    s.set("fsync", &mut spec.fsync, read_dist)?;
    s.set("bandwidth", &mut spec.bandwidth_bytes_per_sec, Field::bandwidth_bytes_per_sec)?;
    s.set("torn_write_probability", &mut spec.torn_write_probability, |f| f.probability(true))
}

/// `[disk]` with the `[disk.NAME]` overrides, one entry per node in `nodes` order.
pub(crate) fn read_disks(top: &Section, nodes: &[String]) -> Result<Vec<DiskSpec>, Diag> {
    per_node(top, "disk", DISK_KEYS, nodes, default_disk(), apply_disk_keys)
}

/// A table of defaults whose sub-tables named after nodes override them for one node.
fn per_node<T: Clone>(
    top: &Section,
    key: &str,
    fields: &[&str],
    nodes: &[String],
    defaults: T,
    apply: impl Fn(&Section, &mut T) -> Result<(), Diag>,
) -> Result<Vec<T>, Diag> {
    let mut base = defaults;
    let Some(field) = top.get(key) else {
        return Ok(vec![base; nodes.len()]);
    };
    let section = field.section()?;
    check_per_node_keys(&section, fields, nodes)?;
    apply(&section, &mut base)?;
    let mut specs = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut spec = base.clone();
        if let Some(node_field) = section.get(node) {
            let node_section = node_field.section()?;
            node_section.check_keys(fields)?;
            apply(&node_section, &mut spec)?;
        }
        specs.push(spec);
    }
    Ok(specs)
}

fn check_per_node_keys(section: &Section, fields: &[&str], nodes: &[String]) -> Result<(), Diag> {
    let is_node = |key: &str| nodes.iter().any(|n| n == key);
    let stray_table = section.table.entries.iter().find(|(key, value)| {
        matches!(value.kind, Kind::Table(_)) && !fields.contains(&key.name.as_str()) && !is_node(&key.name)
    });
    if let Some((key, _)) = stray_table {
        let suggestion = did_you_mean(&key.name, nodes.iter().map(String::as_str));
        return Err(Diag::new(
            format!("[{}.{}] names no node of the cluster", section.path, key.name),
            key.span.clone(),
        )
        .help(format!("{suggestion}a per-node table is named after a node in cluster.nodes: {}", nodes.join(", "))));
    }
    let extra_help = format!("; or a per-node table [{}.NAME] for one of: {}", section.path, nodes.join(", "));
    section.check_keys_or(fields, is_node, &extra_help)
}

const ARCHIVE_KEYS: &[&str] = &["latency", "bandwidth", "request_cost", "retention", "backup_interval", "keep_backups"];

/// `[archive]`: the object store `archive_command` uploads to.
pub(crate) fn read_archive(top: &Section) -> Result<super::model::ArchiveSpec, Diag> {
    let mut spec = super::model::ArchiveSpec {
        latency: Dist::Constant { value_ns: 10_000_000 },
        bandwidth_bytes_per_sec: 100 * MB,
        request_cost_ns: 0,
        retention_ns: 3_600 * 1_000_000_000,
        backup_interval_ns: 0,
        keep_backups: 2,
    };
    let Some(field) = top.get("archive") else {
        return Ok(spec);
    };
    let s = field.section()?;
    s.check_keys(ARCHIVE_KEYS)?;
    s.set("latency", &mut spec.latency, read_dist)?;
    s.set("bandwidth", &mut spec.bandwidth_bytes_per_sec, Field::bandwidth_bytes_per_sec)?;
    s.set("request_cost", &mut spec.request_cost_ns, Field::duration_ns)?;
    s.set("retention", &mut spec.retention_ns, Field::positive_duration_ns)?;
    s.set("backup_interval", &mut spec.backup_interval_ns, Field::duration_ns)?;
    s.set("keep_backups", &mut spec.keep_backups, |f| f.u32_at_least(1, "2"))?;
    Ok(spec)
}

const NETWORK_KEYS: &[&str] = &["latency", "bandwidth", "loss", "client_latency", "links"];
const LINK_KEYS: &[&str] = &["between", "latency", "bandwidth", "loss"];

pub(crate) fn read_network(top: &Section, nodes: &[String]) -> Result<Network, Diag> {
    let mut network = Network {
        latency: Dist::log_normal(MS_NS / 2, 2 * MS_NS),
        bandwidth_bytes_per_sec: 125_000_000,
        loss: 0.0,
        client_latency: Dist::Constant { value_ns: MS_NS / 10 },
        links: Vec::new(),
    };
    let Some(field) = top.get("network") else {
        return Ok(network);
    };
    let s = field.section()?;
    s.check_keys(NETWORK_KEYS)?;
    s.set("latency", &mut network.latency, read_dist)?;
    s.set("bandwidth", &mut network.bandwidth_bytes_per_sec, Field::bandwidth_bytes_per_sec)?;
    s.set("loss", &mut network.loss, |f| f.probability(false))?;
    s.set("client_latency", &mut network.client_latency, read_dist)?;
    s.set("links", &mut network.links, |f| read_links(f, nodes))?;
    Ok(network)
}

fn read_links(field: &Field, nodes: &[String]) -> Result<Vec<LinkSpec>, Diag> {
    let items = field.array("[{ between = [\"pg1\", \"pg2\"], latency = \"40ms\" }]")?;
    let mut links: Vec<LinkSpec> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let link_field = field.item(index, item);
        let link = read_link(&link_field.section()?, nodes)?;
        let pair = |l: &LinkSpec| (l.between.0.min(l.between.1), l.between.0.max(l.between.1));
        if let Some(earlier) = links.iter().position(|l| pair(l) == pair(&link)) {
            let between = link_field.section()?.get("between").map_or(link_field.span(), |f| f.span());
            return Err(Diag::new(
                format!("the link between `{}` and `{}` is given twice", nodes[link.between.0], nodes[link.between.1]),
                between,
            )
            .help(format!("merge it into the earlier one, network.links.{earlier}")));
        }
        links.push(link);
    }
    Ok(links)
}

fn read_link(s: &Section, nodes: &[String]) -> Result<LinkSpec, Diag> {
    s.check_keys(LINK_KEYS)?;
    let between = read_node_pair(&s.required("between", "between = [\"pg1\", \"pg2\"]")?, nodes)?;
    Ok(LinkSpec {
        between,
        latency: s.opt("latency", read_dist)?,
        bandwidth_bytes_per_sec: s.opt("bandwidth", Field::bandwidth_bytes_per_sec)?,
        loss: s.opt("loss", |f| f.probability(false))?,
    })
}

/// `["pg1", "pg2"]`: two distinct nodes.
pub(crate) fn read_node_pair(field: &Field, nodes: &[String]) -> Result<(usize, usize), Diag> {
    let example = format!("[\"{}\", \"{}\"]", nodes[0], nodes.get(1).unwrap_or(&nodes[0]));
    let items = field.array(&example)?;
    let [first, second] = items else {
        return Err(field
            .error(format!("`{}` must name exactly two nodes, found {}", field.path, items.len()))
            .help(format!("write e.g. `{} = {example}`", field.key())));
    };
    let a = field.element(first).node(nodes)?;
    let b = field.element(second).node(nodes)?;
    if a == b {
        return Err(field
            .error(format!("`{}` names `{}` twice", field.path, nodes[a]))
            .help("name two different nodes"));
    }
    Ok((a, b))
}

const WORKLOAD_KEYS: &[&str] = &[
    "clients",
    "arrival",
    "write_fraction",
    "keys",
    "key_distribution",
    "value_size",
    "abort_fraction",
    "router",
    "delay_threshold",
    "read_wait",
    "statement_timeout",
    "session_synchronous_commit",
    "read_duration",
    "cancel_after",
    "pin_duration",
];

pub(crate) fn read_workload(top: &Section) -> Result<Workload, Diag> {
    let mut w = Workload {
        clients: 8,
        arrival: Arrival::Open { ops_per_sec: 1000.0 },
        write_fraction: 0.5,
        keys: 1000,
        key_distribution: KeyDistribution::Uniform,
        value_size_bytes: 100,
        abort_fraction: 0.0,
        router: repsim_engine::client::RouterKind::Primary,
        delay_threshold_bytes: 1024 * 1024,
        read_wait_ns: 100_000_000,
        statement_timeout_ns: 0,
        session_synchronous_commit: Vec::new(),
        read_duration: None,
        cancel_after_ns: 0,
        pin_duration_ns: 15 * 1_000_000_000,
    };
    let Some(field) = top.get("workload") else {
        return Ok(w);
    };
    let s = field.section()?;
    s.check_keys(WORKLOAD_KEYS)?;
    s.set("clients", &mut w.clients, |f| f.u64_in(1, MAX_CLIENTS, "8").map(|n| n as u32))?;
    s.set("arrival", &mut w.arrival, read_arrival)?;
    s.set("write_fraction", &mut w.write_fraction, |f| f.probability(true))?;
    s.set("keys", &mut w.keys, |f| f.u64_in(1, MAX_KEYS, "1000"))?;
    s.set("key_distribution", &mut w.key_distribution, read_key_distribution)?;
    s.set("value_size", &mut w.value_size_bytes, read_value_size)?;
    s.set("abort_fraction", &mut w.abort_fraction, |f| f.probability(true))?;
    s.set("router", &mut w.router, read_router)?;
    s.set("delay_threshold", &mut w.delay_threshold_bytes, Field::size_bytes)?;
    s.set("read_wait", &mut w.read_wait_ns, Field::duration_ns)?;
    s.set("statement_timeout", &mut w.statement_timeout_ns, Field::duration_ns)?;
    s.set("cancel_after", &mut w.cancel_after_ns, Field::duration_ns)?;
    s.set("pin_duration", &mut w.pin_duration_ns, Field::duration_ns)?;
    s.set("read_duration", &mut w.read_duration, |f| super::dist::read_dist(f).map(Some))?;
    if let Some(groups) = s.get("session_synchronous_commit") {
        w.session_synchronous_commit = read_session_levels(&groups, w.clients)?;
    }
    Ok(w)
}

const SESSION_LEVELS_HELP: &str = "write e.g. `session_synchronous_commit = { off = 8 }`: 8 sessions SET \
     synchronous_commit = off, the others use the server's";

/// `{ off = 8, remote_apply = 2 }`: how many sessions set each level, in total at most `clients`.
fn read_session_levels(field: &Field, clients: u32) -> Result<Vec<(SyncCommitLevel, u32)>, Diag> {
    let table = field.section().map_err(|e| e.help(SESSION_LEVELS_HELP))?;
    let names: Vec<&str> = SyncCommitLevel::ALL.iter().map(|l| l.name()).collect();
    let mut groups = Vec::new();
    for (key, _) in &table.table.entries {
        let level = SyncCommitLevel::parse(&key.name).ok_or_else(|| {
            let suggestion = did_you_mean(&key.name, names.iter().copied());
            Diag::new(format!("`{}` is not a synchronous_commit level", key.name), key.span.clone())
                .help(format!("{suggestion}expected one of: {}", names.join(", ")))
        })?;
        let count = table.get(&key.name).expect("listed key").u64_in(1, u64::from(clients), "8")? as u32;
        groups.push((level, count));
    }
    groups.sort_by_key(|(level, _)| SyncCommitLevel::ALL.iter().position(|l| l == level));
    let total: u32 = groups.iter().map(|(_, n)| n).sum();
    if total > clients {
        return Err(field
            .error(format!("`session_synchronous_commit` names {total} sessions; `clients` is {clients}"))
            .help("name at most `clients` sessions in all"));
    }
    Ok(groups)
}

fn read_router(field: &Field) -> Result<repsim_engine::client::RouterKind, Diag> {
    use repsim_engine::client::RouterKind;
    let names: Vec<&str> = RouterKind::ALL.iter().map(|r| r.name()).collect();
    let text = field.str("\"read_your_writes\"")?;
    RouterKind::parse(text).ok_or_else(|| {
        let suggestion = super::diag::did_you_mean(text, names.iter().copied());
        field
            .error(format!("unknown router \"{text}\""))
            .help(format!("{suggestion}expected one of: {}", names.join(", ")))
    })
}

const ARRIVAL_HELP: &str =
    "write `arrival = { open = \"2000/s\" }` (Poisson arrivals) or `arrival = { closed = { think = \"1ms\" } }`";

fn read_arrival(field: &Field) -> Result<Arrival, Diag> {
    let s = field.section().map_err(|e| e.help(ARRIVAL_HELP))?;
    s.check_keys_with_help(&["open", "closed"], |_| false, ARRIVAL_HELP)?;
    match (s.get("open"), s.get("closed")) {
        (Some(open), None) => read_open(&open),
        (None, Some(closed)) => {
            let think_section = closed.section().map_err(|e| e.help(ARRIVAL_HELP))?;
            think_section.check_keys(&["think"])?;
            let think = read_dist(&think_section.required("think", "think = \"1ms\"")?)?;
            Ok(Arrival::Closed { think })
        }
        (Some(_), Some(closed)) => {
            Err(closed.error(format!("`{}` has both `open` and `closed`", field.path)).help(ARRIVAL_HELP))
        }
        (None, None) => Err(field.error(format!("`{}` is empty", field.path)).help(ARRIVAL_HELP)),
    }
}

fn read_open(field: &Field) -> Result<Arrival, Diag> {
    let text = match &field.value.kind {
        Kind::Str(text) => text,
        Kind::Int(n) => return Err(field.type_error("a rate string", format!("write `open = \"{n}/s\"`"))),
        Kind::Float(n) => return Err(field.type_error("a rate string", format!("write `open = \"{n}/s\"`"))),
        _ => return Err(field.type_error("a rate string", ARRIVAL_HELP)),
    };
    let ops_per_sec = super::units::parse_rate_per_sec(text)
        .map_err(|e| field.error(format!("invalid `{}`: {}", field.path, e.message)).help(e.help))?;
    Ok(Arrival::Open { ops_per_sec })
}

fn read_key_distribution(field: &Field) -> Result<KeyDistribution, Diag> {
    match field.str("\"uniform\"")? {
        "uniform" => Ok(KeyDistribution::Uniform),
        "zipf" => Ok(KeyDistribution::Zipf),
        other => Err(field
            .error(format!("unknown key distribution \"{other}\""))
            .help(format!("{}expected one of: uniform, zipf (theta 0.99)", did_you_mean(other, ["uniform", "zipf"])))),
    }
}

fn read_value_size(field: &Field) -> Result<u32, Diag> {
    let bytes = field.size_bytes()?;
    u32::try_from(bytes).map_err(|_| {
        field
            .error(format!("`{}` is too large: {bytes} bytes", field.path))
            .help("a value is at most 4GB; write e.g. \"100B\" or \"8kB\"")
    })
}
