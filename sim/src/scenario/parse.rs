//! From the TOML tree to a validated [`Scenario`]: the top level, `[cluster]` and
//! `[replication]`; the other tables are in `sections.rs` and `faults.rs`.

use repsim_engine::config::{SyncCommitLevel, SyncStandbyNames};

use super::diag::{did_you_mean, Diag};
use super::faults::{read_expect, read_faults};
use super::fields::{Field, Section, TOP_KEYS};
use super::model::{Cluster, Replication, Scenario};
use super::sections::{read_disks, read_network, read_nodes, read_workload};
use super::tree::{Kind, Table};

const SECOND_NS: u64 = 1_000_000_000;
const MB: u64 = 1024 * 1024;

const CLUSTER_EXAMPLE: &str = "add a cluster table:\n  [cluster]\n  nodes = [\"pg1\", \"pg2\"]\n  primary = \"pg1\"";

/// Validates a whole scenario. `source` is the file text (for the line numbers of faults);
/// `source_path` and `overrides` are left empty for the caller to fill in.
pub(crate) fn validate(root: &Table, source: &str) -> Result<Scenario, Diag> {
    let top = Section::root(root);
    top.check_keys(TOP_KEYS)?;
    let name = read_name(&top.required("name", "name = \"my-scenario\"")?, "\"my-scenario\"")?;
    let description =
        top.opt("description", |f| f.str("\"what this scenario shows\"").map(str::to_string))?.unwrap_or_default();
    let duration_ns = top.required("duration", "duration = \"60s\"")?.positive_duration_ns()?;
    let settle_ns = top.opt("settle", Field::duration_ns)?.unwrap_or(10 * SECOND_NS);
    let cluster = read_cluster(&top)?;
    let replication = read_replication(&top, &cluster)?;
    let nodes = read_nodes(&top, &cluster.nodes)?;
    let network = read_network(&top, &cluster.nodes)?;
    let disks = read_disks(&top, &cluster.nodes)?;
    let workload = read_workload(&top)?;
    let (faults, mut random_faults) = read_faults(&top, &cluster.nodes, duration_ns, settle_ns, source)?;
    let ha = super::ha::read_ha(&top, &cluster.nodes)?;
    super::upstreams::check_upstreams(&top, &cluster, &nodes, ha.is_some())?;
    super::restore::check_restore_faults(&top, &cluster, &replication, ha.is_some())?;
    if ha.is_none() {
        check_faults_need_no_ha(&top)?;
    }
    let mut logical = super::logical::read_logical(&top, &cluster, &replication, &nodes)?;
    super::multimaster::read_multi_master(&top, &cluster, &replication, &nodes, &mut logical)?;
    super::logical::check_subscriber_faults(&top, &cluster, &logical)?;
    // A lost disk is cloned again from the primary: random `lose_disk` spares subscribers.
    for random in random_faults.iter_mut().filter(|r| r.kinds.contains(&super::model::RandomFaultKind::LoseDisk)) {
        random.nodes.retain(|&node| !logical.is_subscriber(node));
        if random.nodes.is_empty() {
            let field = top.get("faults").expect("a random fault came from [[faults]]");
            return Err(field
                .error("random `lose_disk` faults aimed only at subscribers, which are never cloned from the primary")
                .help("list a node of the physical cluster in `nodes`, or remove `lose_disk` from `kinds`"));
        }
    }
    let pooler = super::pooler::read_pooler(&top, &cluster, &workload)?;
    let endpoints = super::endpoints::read_endpoints(&top, &workload)?;
    Ok(Scenario {
        name,
        description,
        source_path: String::new(),
        overrides: Vec::new(),
        duration_ns,
        settle_ns,
        nodes,
        network,
        disks,
        workload,
        faults,
        random_faults,
        ha,
        archive: super::sections::read_archive(&top)?,
        pooler,
        endpoints,
        logical,
        expect: read_expect(&top)?,
        replication,
        cluster,
    })
}

/// Faults that act through the HA manager do nothing without one: reject them.
fn check_faults_need_no_ha(top: &Section) -> Result<(), Diag> {
    let Some(list) = top.get("faults") else { return Ok(()) };
    let Ok(items) = list.array("[]") else { return Ok(()) };
    for (i, item) in items.iter().enumerate() {
        let field = list.item(i, item);
        let Ok(fault) = field.section() else { continue };
        let needs_ha = |f: &Field, key: &str| {
            f.error(format!("a `{key}` fault needs an HA manager, and this scenario has no `[ha]` table")).help(
                "add `[ha]` (Patroni's defaults need no keys), or use `promote = \"pg2\"` for an operator's pg_promote",
            )
        };
        for key in ["switchover", "kill_dcs", "partition_dcs"] {
            if let Some(f) = fault.get(key) {
                return Err(needs_ha(&f, key));
            }
        }
        // Random faults drawn from kinds that act through the DCS.
        let random = fault.get("random");
        let random = random.as_ref().and_then(|r| r.section().ok());
        if let Some(kinds) = random.as_ref().and_then(|r| r.get("kinds")) {
            if let Ok(items) = kinds.array("[]") {
                if let Some(item) = items.iter().find(|k| matches!(&k.kind, Kind::Str(s) if s == "partition_dcs")) {
                    return Err(needs_ha(&kinds.element(item), "partition_dcs"));
                }
            }
        }
    }
    Ok(())
}

/// A name (of the scenario or of a node): `[a-z0-9_-]+`.
pub(crate) fn read_name(field: &Field, example: &str) -> Result<String, Diag> {
    let text = field.str(example)?;
    let valid = |s: &str| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    if valid(text) {
        return Ok(text.to_string());
    }
    let lowered = text.trim().to_ascii_lowercase().replace([' ', '.'], "-");
    let suggestion = if valid(&lowered) { format!("write \"{lowered}\"; ") } else { String::new() };
    Err(field
        .error(format!("invalid name \"{text}\" in `{}`", field.path))
        .help(format!("{suggestion}names use only lowercase letters, digits, `_` and `-`, e.g. {example}")))
}

fn read_cluster(top: &Section) -> Result<Cluster, Diag> {
    let field = top.required("cluster", "[cluster]").map_err(|e| e.help(CLUSTER_EXAMPLE))?;
    let section = field.section()?;
    section.check_keys(&["nodes", "primary", "spare"])?;
    let nodes = read_node_names(&section.required("nodes", "nodes = [\"pg1\", \"pg2\"]")?)?;
    let primary_field = section.required("primary", &format!("primary = \"{}\"", nodes[0]))?;
    let primary_name = primary_field.str("\"pg1\"")?;
    let primary = nodes.iter().position(|n| n == primary_name).ok_or_else(|| {
        let suggestion = did_you_mean(primary_name, nodes.iter().map(String::as_str));
        primary_field
            .error(format!("the primary `{primary_name}` is not one of cluster.nodes"))
            .help(format!("{suggestion}the primary must be one of: {}", nodes.join(", ")))
    })?;
    let mut spares = Vec::new();
    if let Some(list) = section.get("spare") {
        for item in list.array("[\"pg4\"]")? {
            let element = list.element(item);
            let node = element.node(&nodes)?;
            if node == primary {
                return Err(element
                    .error(format!("the primary `{}` cannot be a spare", nodes[node]))
                    .help("a spare starts switched off; list only nodes added later with `add_standby`"));
            }
            spares.push(node);
        }
    }
    Ok(Cluster { nodes, primary, spares })
}

/// `cluster.nodes`: at least one, unique, valid names. Never returns an empty list.
fn read_node_names(field: &Field) -> Result<Vec<String>, Diag> {
    let items = field.array("[\"pg1\", \"pg2\", \"pg3\"]")?;
    if items.is_empty() {
        return Err(field
            .error("`cluster.nodes` is empty")
            .help("list at least one node, e.g. `nodes = [\"pg1\", \"pg2\", \"pg3\"]`"));
    }
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let element = field.element(item);
        let name = read_name(&element, "\"pg1\"")?;
        if names.contains(&name) {
            return Err(element
                .error(format!("duplicate node name `{name}` in `cluster.nodes`"))
                .help("each node needs a unique name, e.g. `nodes = [\"pg1\", \"pg2\", \"pg3\"]`"));
        }
        names.push(name);
    }
    Ok(names)
}

const REPLICATION_KEYS: &[&str] = &[
    "synchronous_commit",
    "synchronous_standby_names",
    "wal_segment_size",
    "wal_keep_size",
    "max_wal_size",
    "checkpoint_timeout",
    "checkpoint_completion_target",
    "wal_writer_delay",
    "wal_writer_flush_after",
    "wal_sender_timeout",
    "wal_receiver_timeout",
    "wal_receiver_status_interval",
    "wal_retrieve_retry_interval",
    "recovery_min_apply_delay",
    "replication_slots",
    "full_page_writes",
    "max_slot_wal_keep_size",
    "hot_standby_feedback",
    "max_standby_streaming_delay",
    "archive_mode",
    "restore_command",
    "archive_timeout",
    "ssl",
    "sync_replication_slots",
    "synchronized_standby_slots",
];

/// PostgreSQL's defaults, taken from the engine's so that there is one list of them.
fn default_replication() -> Replication {
    let d = repsim_engine::config::NodeConfig::with_defaults(0, vec![String::new()]);
    Replication {
        synchronous_commit: d.synchronous_commit,
        synchronous_standby_names: d.synchronous_standby_names,
        wal_segment_size_bytes: d.wal_segment_size_bytes,
        wal_keep_size_bytes: d.wal_keep_size_bytes,
        max_wal_size_bytes: d.max_wal_size_bytes,
        checkpoint_timeout_ns: d.checkpoint_timeout_ns,
        checkpoint_completion_target: d.checkpoint_completion_target,
        wal_writer_delay_ns: d.wal_writer_delay_ns,
        wal_writer_flush_after_bytes: d.wal_writer_flush_after_bytes,
        wal_sender_timeout_ns: d.wal_sender_timeout_ns,
        wal_receiver_timeout_ns: d.wal_receiver_timeout_ns,
        wal_receiver_status_interval_ns: d.wal_receiver_status_interval_ns,
        wal_retrieve_retry_interval_ns: d.wal_retrieve_retry_interval_ns,
        recovery_min_apply_delay_ns: d.recovery_min_apply_delay_ns,
        replication_slots: d.replication_slots,
        full_page_writes: d.full_page_writes,
        max_slot_wal_keep_size_bytes: d.max_slot_wal_keep_size_bytes,
        hot_standby_feedback: d.hot_standby_feedback,
        max_standby_streaming_delay_ns: d.max_standby_streaming_delay_ns,
        archive_mode: d.archive_mode,
        restore_command: d.restore_command,
        archive_timeout_ns: d.archive_timeout_ns,
        sync_replication_slots: d.sync_replication_slots,
        synchronized_standby_slots: d.synchronized_standby_slots,
        // Not an engine setting: its cost is CPU, which the world charges.
        ssl: false,
    }
}

fn read_replication(top: &Section, cluster: &Cluster) -> Result<Replication, Diag> {
    let mut r = default_replication();
    let Some(field) = top.get("replication") else {
        return Ok(r);
    };
    let s = field.section()?;
    s.check_keys(REPLICATION_KEYS)?;
    s.set("synchronous_commit", &mut r.synchronous_commit, read_sync_commit)?;
    let subscriptions = super::logical::subscription_names(top);
    s.set("synchronous_standby_names", &mut r.synchronous_standby_names, |f| {
        read_standby_names(f, cluster, &subscriptions)
    })?;
    s.set("wal_segment_size", &mut r.wal_segment_size_bytes, read_segment_size)?;
    s.set("wal_keep_size", &mut r.wal_keep_size_bytes, Field::size_bytes)?;
    s.set("max_wal_size", &mut r.max_wal_size_bytes, Field::size_bytes)?;
    s.set("checkpoint_timeout", &mut r.checkpoint_timeout_ns, |f| f.interval_ns(false))?;
    s.set("checkpoint_completion_target", &mut r.checkpoint_completion_target, |f| f.probability(true))?;
    s.set("wal_writer_delay", &mut r.wal_writer_delay_ns, |f| f.interval_ns(false))?;
    s.set("wal_writer_flush_after", &mut r.wal_writer_flush_after_bytes, Field::size_bytes)?;
    s.set("wal_sender_timeout", &mut r.wal_sender_timeout_ns, |f| f.interval_ns(true))?;
    s.set("wal_receiver_timeout", &mut r.wal_receiver_timeout_ns, |f| f.interval_ns(true))?;
    s.set("wal_receiver_status_interval", &mut r.wal_receiver_status_interval_ns, |f| f.interval_ns(true))?;
    s.set("wal_retrieve_retry_interval", &mut r.wal_retrieve_retry_interval_ns, |f| f.interval_ns(false))?;
    s.set("recovery_min_apply_delay", &mut r.recovery_min_apply_delay_ns, Field::duration_ns)?;
    s.set("replication_slots", &mut r.replication_slots, Field::bool)?;
    s.set("full_page_writes", &mut r.full_page_writes, Field::bool)?;
    if let Some(field) = s.get("max_slot_wal_keep_size") {
        r.max_slot_wal_keep_size_bytes = read_slot_keep(&field)?;
    }
    s.set("hot_standby_feedback", &mut r.hot_standby_feedback, Field::bool)?;
    s.set("archive_mode", &mut r.archive_mode, Field::bool)?;
    s.set("restore_command", &mut r.restore_command, Field::bool)?;
    s.set("archive_timeout", &mut r.archive_timeout_ns, |f| f.interval_ns(true))?;
    s.set("ssl", &mut r.ssl, Field::bool)?;
    if let Some(field) = s.get("max_standby_streaming_delay") {
        r.max_standby_streaming_delay_ns = read_standby_delay(&field)?;
    }
    check_max_wal_size(&s, &r)?;
    super::logical::read_slot_sync(&s, cluster, &mut r)?;
    Ok(r)
}

/// `max_standby_streaming_delay`: a duration, or -1 (wait for queries forever).
fn read_standby_delay(field: &Field) -> Result<Option<u64>, Diag> {
    match &field.value.kind {
        Kind::Int(-1) => Ok(None),
        Kind::Str(text) if text.trim() == "-1" => Ok(None),
        _ => field.duration_ns().map(Some),
    }
}

/// `max_slot_wal_keep_size`: a size, or -1 (PostgreSQL's default: unlimited).
fn read_slot_keep(field: &Field) -> Result<Option<u64>, Diag> {
    match &field.value.kind {
        Kind::Int(-1) => Ok(None),
        Kind::Str(text) if text.trim() == "-1" => Ok(None),
        _ => field.size_bytes().map(Some),
    }
}

fn read_sync_commit(field: &Field) -> Result<SyncCommitLevel, Diag> {
    let names: Vec<&str> = SyncCommitLevel::ALL.iter().map(|level| level.name()).collect();
    let help = format!("expected one of: {}", names.join(", "));
    match &field.value.kind {
        Kind::Bool(true) => Ok(SyncCommitLevel::On),
        Kind::Bool(false) => Ok(SyncCommitLevel::Off),
        Kind::Str(text) => SyncCommitLevel::parse(text).ok_or_else(|| {
            let suggestion = did_you_mean(text, names.iter().copied());
            field.error(format!("invalid `{}`: \"{text}\"", field.path)).help(format!("{suggestion}{help}"))
        }),
        _ => Err(field.type_error("a string", format!("write e.g. `synchronous_commit = \"on\"`; {help}"))),
    }
}

const STANDBY_NAMES_HELP: &str =
    "write e.g. \"FIRST 1 (pg2, pg3)\", \"ANY 1 (pg2, pg3)\", \"pg2, pg3\", \"*\", or \"\" for none";

/// `subscriptions`: the names of `[[logical.subscriptions]]`, which may be listed too (a
/// synchronous logical standby, by its `application_name`).
fn read_standby_names(field: &Field, cluster: &Cluster, subscriptions: &[String]) -> Result<SyncStandbyNames, Diag> {
    let text = field.str("\"FIRST 1 (pg2, pg3)\"")?;
    let names = SyncStandbyNames::parse(text)
        .map_err(|message| field.error(format!("invalid `{}`: {message}", field.path)).help(STANDBY_NAMES_HELP))?;
    let primary = &cluster.nodes[cluster.primary];
    let standbys: Vec<&str> = cluster.nodes.iter().filter(|n| *n != primary).map(String::as_str).collect();
    let mut standby_list = if standbys.is_empty() { "(none)".to_string() } else { standbys.join(", ") };
    if !subscriptions.is_empty() {
        standby_list.push_str(&format!("; the subscriptions: {}", subscriptions.join(", ")));
    }
    // The primary's own name may be listed, as PostgreSQL allows: it is never a standby of
    // itself (and after a failover it may be one of the new primary's).
    for name in names.names.iter().filter(|n| *n != "*") {
        if !cluster.nodes.contains(name) && !subscriptions.contains(name) {
            let suggestion =
                did_you_mean(name, standbys.iter().copied().chain(subscriptions.iter().map(String::as_str)));
            return Err(field
                .error(format!("unknown standby `{name}` in `{}`", field.path))
                .help(format!("{suggestion}the standbys are: {standby_list}")));
        }
    }
    Ok(names)
}

fn read_segment_size(field: &Field) -> Result<u64, Diag> {
    let bytes = field.size_bytes()?;
    if bytes.is_power_of_two() && (MB..=1024 * MB).contains(&bytes) {
        return Ok(bytes);
    }
    Err(field
        .error(format!("`{}` must be a power of two between 1MB and 1GB", field.path))
        .help("write e.g. \"16MB\" (PostgreSQL's default) or \"64MB\""))
}

/// PostgreSQL requires `max_wal_size` to be at least two WAL segments.
fn check_max_wal_size(section: &Section, r: &Replication) -> Result<(), Diag> {
    if r.max_wal_size_bytes >= 2 * r.wal_segment_size_bytes {
        return Ok(());
    }
    let help = format!(
        "with wal_segment_size = \"{}MB\", write max_wal_size = \"{}MB\" or more",
        r.wal_segment_size_bytes / MB,
        2 * r.wal_segment_size_bytes / MB
    );
    let message = "`max_wal_size` must be at least twice `wal_segment_size`";
    let span = section
        .get("max_wal_size")
        .or_else(|| section.get("wal_segment_size"))
        .map_or(section.span.clone(), |field| field.span());
    Err(Diag::new(message, span).help(help))
}
