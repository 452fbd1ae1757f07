//! `[[logical.publications]]` and `[[logical.subscriptions]]`: logical replication from the
//! cluster's primary to subscriber nodes (PostgreSQL's names and defaults). A subscriber is a
//! node of `[cluster] nodes` that a subscription names: it is not part of the physical cluster
//! but a primary of its own, made by its own `initdb`, with no HA agent, no client traffic and
//! no place in `synchronous_standby_names`.
//!
//! ```toml
//! [[logical.publications]]
//! name = "app"
//! tables = ["inserts", "registers"]     # default: every table (FOR ALL TABLES)
//!
//! [[logical.subscriptions]]
//! name = "app_copy"
//! node = "sub1"
//! publications = ["app"]
//! slot = "app_copy"                     # default: the subscription's name
//! disable_on_error = false              # default
//! ```

use super::diag::{did_you_mean, Diag};
use super::fields::{Field, Section};
use super::model::{Cluster, NodeSpec, Replication};
/// The workload's table of unique inserts, one row per write: loss is checked against it.
pub const INSERT_TABLE: u32 = 1;

/// The workload's table of registers, updated by writes and read by reads.
pub const REGISTER_TABLE: u32 = 2;

/// The workload's tables, by the names scenarios give them.
pub const TABLE_NAMES: [(&str, u32); 2] = [("inserts", INSERT_TABLE), ("registers", REGISTER_TABLE)];

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogicalSpec {
    pub publications: Vec<PublicationSpec>,
    pub subscriptions: Vec<SubscriptionSpec>,
    /// `[multi_master]`, whose subscriptions are among `subscriptions`.
    pub multi_master: Option<super::multimaster::MultiMasterSpec>,
}

/// `CREATE PUBLICATION name FOR TABLE …` (or `FOR ALL TABLES`), on the cluster's primary; a
/// catalog object, so every physical node has it after a failover too.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicationSpec {
    pub name: String,
    /// Table ids; `None`: every table.
    pub tables: Option<Vec<u32>>,
    /// `row_filter = "key < 2500"` (PostgreSQL 15's `WHERE (…)`, on every table listed).
    pub row_filter: Option<repsim_engine::logical::decode::RowFilter>,
}

impl PublicationSpec {
    /// The publication as the engine's configuration holds it.
    pub fn to_engine(&self) -> repsim_engine::config::Publication {
        use repsim_engine::logical::decode::PublishedTables;
        repsim_engine::config::Publication {
            name: self.name.clone(),
            tables: self.tables.clone().map_or(PublishedTables::All, PublishedTables::Tables),
            row_filter: self.row_filter,
        }
    }
}

/// `CREATE SUBSCRIPTION name CONNECTION '…' PUBLICATION … WITH (slot_name, disable_on_error)`
/// on `node`, made before any client writes (so no table copy is needed).
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriptionSpec {
    pub name: String,
    /// Index into `cluster.nodes` of the subscriber.
    pub node: usize,
    pub publications: Vec<String>,
    pub slot: String,
    pub disable_on_error: bool,
    /// `failover = true` (PostgreSQL 17): its slot is a failover slot, which standbys with
    /// `sync_replication_slots` keep copies of. Default false.
    pub failover: bool,
    /// `at = "20s"`: made then, on the running publisher, with the initial copy of the
    /// published tables (`copy_data`). `None`: made with the empty database, before any write.
    pub at_ns: Option<u64>,
    /// The publisher's index in `cluster.nodes`; `None`: the cluster's primary, wherever the
    /// clients' primary moves (`[multi_master]` sets another master).
    pub publisher: Option<usize>,
    /// `origin = none` (`[multi_master]`).
    pub origin_none: bool,
    /// `capture = "trigger"`: SymmetricDS-style capture triggers and a router polling every
    /// `poll_interval` (default 5 s, `job.routing.period.time.ms`) for at most `batch_rows`
    /// (default 1000, a channel's `max_batch_size`). `None`: logical decoding (the default).
    pub trigger: Option<repsim_engine::logical::trigger::Polling>,
    /// `synchronous_commit = "on"` (or `local`, `remote_write`, `remote_apply`; default
    /// `"off"`): the apply worker flushes each transaction it applies at once.
    pub synchronous_commit: bool,
}

impl SubscriptionSpec {
    /// The engine's subscription, connecting to `publisher`.
    pub fn engine_subscription(&self, publisher: u32) -> repsim_engine::logical::apply::Subscription {
        repsim_engine::logical::apply::Subscription {
            name: self.name.clone(),
            publisher,
            slot: self.slot.clone(),
            publications: self.publications.clone(),
            disable_on_error: self.disable_on_error,
            copy_data: self.at_ns.is_some(),
            failover: self.failover,
            origin_none: self.origin_none,
            trigger: self.trigger,
            flush_each_commit: self.synchronous_commit,
        }
    }
}

impl LogicalSpec {
    /// Whether node `i` is a subscriber of the cluster's primary (outside the physical
    /// cluster; a multi-master's other masters are).
    pub fn is_subscriber(&self, node: usize) -> bool {
        self.subscriptions.iter().any(|s| s.node == node && s.publisher.is_none())
    }

    /// Whether subscription `s` goes on whole after its publisher fails over to `promoted`: its
    /// slot is a failover slot, standbys keep copies of it (`sync_replication_slots`), and
    /// the walsender sends nothing `promoted` has not flushed (`synchronized_standby_slots`).
    /// Then the new primary holds every change the subscriber got, and a copy of the slot at
    /// or behind what the subscriber confirmed (if it was copied at all before the promotion).
    pub fn survives_failover_to(s: &SubscriptionSpec, r: &Replication, promoted: &str) -> bool {
        s.failover && r.sync_replication_slots && r.synchronized_standby_slots.iter().any(|n| n == promoted)
    }

    /// The tables the physical cluster's capture triggers cover: those of every trigger
    /// subscription's publications (`None`: no trigger subscription).
    pub fn trigger_capture(&self) -> Option<repsim_engine::logical::decode::PublishedTables> {
        use repsim_engine::logical::decode::PublishedTables;
        let mut tables = Vec::new();
        for s in self.subscriptions.iter().filter(|s| s.trigger.is_some()) {
            match self.tables_of(&s.publications) {
                None => return Some(PublishedTables::All),
                Some(t) => tables.extend(t),
            }
        }
        tables.sort_unstable();
        tables.dedup();
        self.subscriptions.iter().any(|s| s.trigger.is_some()).then_some(PublishedTables::Tables(tables))
    }

    /// The row filters of `publications` together, as the engine applies them (a table
    /// listed without a filter by one of them is published whole).
    pub fn row_filters(&self, publications: &[String]) -> repsim_engine::logical::decode::RowFilters {
        let engine: Vec<_> = self.publications.iter().map(PublicationSpec::to_engine).collect();
        repsim_engine::logical::decode::RowFilters::of(&engine, publications)
    }

    /// The published table ids of `publications` together; `None`: every table.
    pub fn tables_of(&self, publications: &[String]) -> Option<Vec<u32>> {
        let mut tables = Vec::new();
        for p in self.publications.iter().filter(|p| publications.contains(&p.name)) {
            tables.extend(p.tables.as_ref()?.iter().copied());
        }
        tables.sort_unstable();
        tables.dedup();
        Some(tables)
    }
}

const LOGICAL_KEYS: &[&str] = &["publications", "subscriptions"];
const PUBLICATION_KEYS: &[&str] = &["name", "tables", "row_filter"];
const SUBSCRIPTION_KEYS: &[&str] = &[
    "name",
    "node",
    "publications",
    "slot",
    "disable_on_error",
    "failover",
    "at",
    "capture",
    "poll_interval",
    "batch_rows",
    "synchronous_commit",
];

/// Lower-case letters, digits and underscores, at most 63 (what replication slot names allow,
/// and a subscription's name is its slot's by default).
fn read_identifier(field: &Field, example: &str) -> Result<String, Diag> {
    let name = field.str(example)?;
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.is_empty() || name.len() > 63 || !name.chars().all(valid) {
        return Err(field
            .error(format!("`{} = \"{name}\"` is not a valid name here", field.key()))
            .help(format!("use lower-case letters, digits and underscores, at most 63 of them: e.g. {example}")));
    }
    Ok(name.to_string())
}

/// The names `[[logical.subscriptions]]` gives, read ahead of validation (for
/// `synchronous_standby_names`, which may list them).
pub(crate) fn subscription_names(top: &Section) -> Vec<String> {
    let Some(field) = top.get("logical") else { return Vec::new() };
    let Ok(logical) = field.section() else { return Vec::new() };
    let Some(list) = logical.get("subscriptions") else { return Vec::new() };
    let Ok(items) = list.array("[]") else { return Vec::new() };
    let named = items.iter().enumerate().filter_map(|(i, item)| {
        let entry = list.item(i, item);
        let section = entry.section().ok()?;
        let name = section.get("name")?.str("\"copy\"").ok()?.to_string();
        Some(name)
    });
    named.collect()
}

pub(crate) fn read_logical(
    top: &Section,
    cluster: &Cluster,
    replication: &Replication,
    nodes: &[NodeSpec],
) -> Result<LogicalSpec, Diag> {
    let Some(field) = top.get("logical") else { return Ok(LogicalSpec::default()) };
    let section = field.section()?;
    section.check_keys(LOGICAL_KEYS)?;
    let mut spec = LogicalSpec::default();
    if let Some(list) = section.get("publications") {
        for (i, item) in list.array("[{ name = \"app\" }] (or use [[logical.publications]] tables)")?.iter().enumerate()
        {
            let entry = list.item(i, item);
            let p = read_publication(&entry.section()?)?;
            if spec.publications.iter().any(|q| q.name == p.name) {
                return Err(entry
                    .error(format!("publication `{}` is defined twice", p.name))
                    .help("give each one its own name"));
            }
            spec.publications.push(p);
        }
    }
    if let Some(list) = section.get("subscriptions") {
        for (i, item) in list.array("[{ name = \"copy\", node = \"sub1\" }]")?.iter().enumerate() {
            let entry = list.item(i, item);
            let s = read_subscription(&entry.section()?, &spec, cluster, replication)?;
            let name = &cluster.nodes[s.node];
            if nodes[s.node].primary_conninfo.is_some() {
                return Err(entry
                    .error(format!("`{name}` subscribes, and `[node.{name}]` gives it a `primary_conninfo`"))
                    .help("a subscriber is a primary of its own: remove its `primary_conninfo`"));
            }
            if let Some(standby) = nodes.iter().find(|n| n.primary_conninfo.as_deref() == Some(name.as_str())) {
                return Err(entry
                    .error(format!(
                        "`{}` streams WAL from `{name}`, a subscriber outside the physical cluster",
                        standby.name
                    ))
                    .help(format!(
                        "point `[node.{}] primary_conninfo` at a node of the physical cluster",
                        standby.name
                    )));
            }
            if let Some(other) =
                spec.subscriptions.iter().find(|o| o.name == s.name || o.slot == s.slot || o.node == s.node)
            {
                let what = if other.node == s.node {
                    format!(
                        "`{}` already subscribes (as `{}`): one subscription per subscriber node is modelled",
                        cluster.nodes[s.node], other.name
                    )
                } else {
                    format!("subscription `{}` or its slot `{}` is used twice", s.name, s.slot)
                };
                return Err(entry.error(what).help("give each subscription its own name, slot and node"));
            }
            spec.subscriptions.push(s);
        }
    }
    Ok(spec)
}

fn read_publication(s: &Section) -> Result<PublicationSpec, Diag> {
    s.check_keys(PUBLICATION_KEYS)?;
    let name = read_identifier(&s.required("name", "name = \"app\"")?, "\"app\"")?;
    let row_filter = s.opt("row_filter", read_row_filter)?;
    let Some(field) = s.get("tables") else {
        if let Some(f) = s.get("row_filter") {
            return Err(f
                .error("a row filter needs the tables it filters")
                .help("add `tables = [\"registers\"]`: PostgreSQL allows WHERE only with FOR TABLE"));
        }
        return Ok(PublicationSpec { name, tables: None, row_filter });
    };
    let known: Vec<&str> = TABLE_NAMES.iter().map(|(n, _)| *n).collect();
    let mut tables = Vec::new();
    for value in field.array("[\"inserts\", \"registers\"]")? {
        let element = field.element(value);
        let text = element.str("\"inserts\"")?;
        let Some(&(_, id)) = TABLE_NAMES.iter().find(|(n, _)| *n == text) else {
            return Err(element.error(format!("unknown table `{text}`")).help(format!(
                "{}the workload's tables are: {}",
                did_you_mean(text, known.iter().copied()),
                known.join(", ")
            )));
        };
        tables.push(id);
    }
    if tables.is_empty() {
        return Err(field
            .error("a publication of no tables publishes nothing")
            .help("name a table, or remove `tables` to publish them all"));
    }
    Ok(PublicationSpec { name, tables: Some(tables), row_filter })
}

/// `"key < 2500"` (also <=, >, >=, =, <>) or `"key % 4 = 1"`.
fn read_row_filter(field: &Field) -> Result<repsim_engine::logical::decode::RowFilter, Diag> {
    use repsim_engine::logical::decode::RowFilter;
    let text = field.str("\"key < 2500\"")?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let number = |w: &str| w.parse::<u64>().ok();
    let filter = match words.as_slice() {
        ["key", "%", m, "=", r] => match (number(m), number(r)) {
            (Some(modulus), Some(remainder)) if modulus > 0 => Some(RowFilter::Modulo { modulus, remainder }),
            _ => None,
        },
        ["key", op, v] => number(v).and_then(|v| match *op {
            "<" => Some(RowFilter::Less(v)),
            "<=" => Some(RowFilter::LessEq(v)),
            ">" => Some(RowFilter::Greater(v)),
            ">=" => Some(RowFilter::GreaterEq(v)),
            "=" => Some(RowFilter::Equal(v)),
            "<>" | "!=" => Some(RowFilter::NotEqual(v)),
            _ => None,
        }),
        _ => None,
    };
    filter.ok_or_else(|| {
        field
            .error(format!("`row_filter = \"{text}\"` is not a filter repsim models"))
            .help("filter on the row's key, with spaces between the parts: \"key < 2500\" (<, <=, >, >=, =, <>) or \"key % 4 = 1\"")
    })
}

fn read_subscription(
    s: &Section,
    spec: &LogicalSpec,
    cluster: &Cluster,
    replication: &Replication,
) -> Result<SubscriptionSpec, Diag> {
    s.check_keys(SUBSCRIPTION_KEYS)?;
    let name = read_identifier(&s.required("name", "name = \"copy\"")?, "\"copy\"")?;
    let node_field =
        s.required("node", "node = \"sub1\" (a node of [cluster] nodes that is not in the physical cluster)")?;
    let node = node_field.node(&cluster.nodes)?;
    let node_name = &cluster.nodes[node];
    if node == cluster.primary {
        return Err(node_field
            .error(format!("`{node_name}` is the cluster's primary, the publisher"))
            .help("add a node of its own to [cluster] nodes, e.g. \"sub1\", and name it here"));
    }
    if cluster.spares.contains(&node) {
        return Err(node_field
            .error(format!("`{node_name}` is a spare"))
            .help("a subscriber runs from the start: remove it from `spare`"));
    }
    if replication.synchronous_standby_names.names.iter().any(|n| n == node_name) {
        return Err(node_field
            .error(format!("`{node_name}` is named in `synchronous_standby_names`, but a subscriber is not a standby"))
            .help("remove it from `synchronous_standby_names`"));
    }
    let publications_field = s.required("publications", "publications = [\"app\"]")?;
    let mut publications = Vec::new();
    for value in publications_field.array("[\"app\"]")? {
        let element = publications_field.element(value);
        let text = element.str("\"app\"")?;
        if !spec.publications.iter().any(|p| p.name == text) {
            let names: Vec<&str> = spec.publications.iter().map(|p| p.name.as_str()).collect();
            return Err(element.error(format!("no publication `{text}`")).help(format!(
                "{}define it in a [[logical.publications]] table above; defined: {}",
                did_you_mean(text, names.iter().copied()),
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            )));
        }
        publications.push(text.to_string());
    }
    if publications.is_empty() {
        return Err(publications_field
            .error("a subscription needs a publication")
            .help("e.g. `publications = [\"app\"]`"));
    }
    let slot = match s.get("slot") {
        Some(f) => read_identifier(&f, "\"copy\"")?,
        None => name.clone(),
    };
    let disable_on_error = s.opt("disable_on_error", Field::bool)?.unwrap_or(false);
    let failover = s.opt("failover", Field::bool)?.unwrap_or(false);
    let at_ns = s.opt("at", Field::duration_ns)?;
    let trigger = read_capture(s, failover, at_ns)?;
    let filtered = spec.publications.iter().find(|p| publications.contains(&p.name) && p.row_filter.is_some());
    if let (Some(_), Some(publication)) = (trigger, filtered) {
        let field = s.get("capture").expect("a trigger subscription names its capture");
        return Err(field
            .error(format!(
                "publication `{}` has a row filter, and trigger capture does not read publications' filters",
                publication.name
            ))
            .help("remove `row_filter` from the publication, or use `capture = \"logical\"`"));
    }
    let synchronous_commit = s
        .opt("synchronous_commit", |f| {
            let text = f.str("\"on\"")?;
            repsim_engine::config::SyncCommitLevel::parse(text)
                .map(|l| l != repsim_engine::config::SyncCommitLevel::Off)
                .ok_or_else(|| {
                    f.error(format!("unknown synchronous_commit `{text}`"))
                        .help("use off (the default), local, remote_write, on or remote_apply")
                })
        })?
        .unwrap_or(false);
    Ok(SubscriptionSpec {
        name,
        node,
        publications,
        slot,
        disable_on_error,
        failover,
        at_ns,
        publisher: None,
        origin_none: false,
        trigger,
        synchronous_commit,
    })
}

/// `capture = "logical" | "trigger"`, and a trigger subscription's polling.
fn read_capture(
    s: &Section,
    failover: bool,
    at_ns: Option<u64>,
) -> Result<Option<repsim_engine::logical::trigger::Polling>, Diag> {
    let capture = s.opt("capture", |f| {
        let text = f.str("\"trigger\"")?;
        match text {
            "logical" => Ok(false),
            "trigger" => Ok(true),
            _ => Err(f.error(format!("unknown capture `{text}`")).help(format!(
                "{}use \"logical\" (decoding, the default) or \"trigger\" (SymmetricDS-style triggers)",
                did_you_mean(text, ["logical", "trigger"].into_iter())
            ))),
        }
    })?;
    if capture != Some(true) {
        for key in ["poll_interval", "batch_rows"] {
            if let Some(f) = s.get(key) {
                return Err(f
                    .error(format!("`{key}` is for `capture = \"trigger\"`"))
                    .help("add `capture = \"trigger\"`, or remove it"));
            }
        }
        return Ok(None);
    }
    let field = s.get("capture").expect("read above");
    if failover {
        return Err(field.error("a trigger subscription has no slot to fail over").help("remove `failover = true`"));
    }
    if at_ns.is_some() {
        return Err(field
            .error("a trigger subscription made on a running source needs SymmetricDS's initial load, which is not modelled")
            .help("remove `at`: the triggers are made with the empty database"));
    }
    let poll_interval_ns = s.opt("poll_interval", Field::positive_duration_ns)?.unwrap_or(5_000_000_000);
    let batch_rows = s.opt("batch_rows", |f| f.u32_at_least(1, "1000"))?.unwrap_or(1000);
    Ok(Some(repsim_engine::logical::trigger::Polling { poll_interval_ns, batch_rows }))
}

/// Faults that only mean something for a member of the physical cluster, refused on a
/// subscriber: it cannot be promoted, cloned from the primary or switched over to.
pub(crate) fn check_subscriber_faults(top: &Section, cluster: &Cluster, logical: &LogicalSpec) -> Result<(), Diag> {
    let Some(list) = top.get("faults") else { return Ok(()) };
    let Ok(items) = list.array("[]") else { return Ok(()) };
    for (i, item) in items.iter().enumerate() {
        let entry = list.item(i, item);
        let Ok(fault) = entry.section() else { continue };
        for key in ["promote", "add_standby", "base_backup", "switchover", "lose_disk"] {
            let Some(field) = fault.get(key) else { continue };
            let Ok(node) = field.node(&cluster.nodes) else { continue };
            if logical.is_subscriber(node) {
                return Err(field
                    .error(format!("`{}` is a subscriber, outside the physical cluster: `{key}` does not apply", cluster.nodes[node]))
                    .help("aim it at a node of the physical cluster; a subscriber takes crash, restart, pause, partition, reset, slow_disk, fsync_error and clock faults"));
            }
        }
        if let Some(field) = fault.get("skip_transaction") {
            let Ok(name) = field.str("\"copy\"") else { continue };
            if !logical.subscriptions.iter().any(|s| s.name == name) {
                let names: Vec<&str> = logical.subscriptions.iter().map(|s| s.name.as_str()).collect();
                return Err(field.error(format!("no subscription `{name}` to skip a transaction of")).help(format!(
                    "{}the subscriptions are: {}",
                    did_you_mean(name, names.iter().copied()),
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                )));
            }
        }
        if let Some(field) = fault.get("lose_site") {
            let names = field.array("[\"pg1\"]")?;
            for value in names {
                let Ok(node) = field.element(value).node(&cluster.nodes) else { continue };
                if logical.is_subscriber(node) {
                    return Err(field
                        .error(format!(
                            "`{}` is a subscriber: a lost site's nodes are cloned again from the primary",
                            cluster.nodes[node]
                        ))
                        .help("list only nodes of the physical cluster"));
                }
            }
        }
    }
    Ok(())
}

/// `sync_replication_slots` and `synchronized_standby_slots` in `[replication]`, with
/// PostgreSQL 17's preconditions: slot sync needs the standby's physical slot
/// (`primary_slot_name`) and `hot_standby_feedback`; the standby slots named must exist, so
/// `replication_slots` (one per standby, named after it) must be on.
pub(crate) fn read_slot_sync(s: &Section, cluster: &Cluster, r: &mut Replication) -> Result<(), Diag> {
    s.set("sync_replication_slots", &mut r.sync_replication_slots, Field::bool)?;
    if let Some(field) = s.get("synchronized_standby_slots") {
        for value in field.array("[\"pg2\"]")? {
            let node = field.element(value).node(&cluster.nodes)?;
            r.synchronized_standby_slots.push(cluster.nodes[node].clone());
        }
    }
    let needs_slots = |key: &str| {
        s.get(key).map(|f| {
            f.error(format!("`{key}` needs `replication_slots = true`"))
                .help("PostgreSQL 17 synchronises and waits for physical slots: add `replication_slots = true`")
        })
    };
    if r.sync_replication_slots && !r.replication_slots {
        return Err(needs_slots("sync_replication_slots").expect("set above"));
    }
    if !r.synchronized_standby_slots.is_empty() && !r.replication_slots {
        return Err(needs_slots("synchronized_standby_slots").expect("set above"));
    }
    if r.sync_replication_slots && !r.hot_standby_feedback {
        let field = s.get("sync_replication_slots").expect("set above");
        return Err(field
            .error("`sync_replication_slots` needs `hot_standby_feedback = true`")
            .help("PostgreSQL 17's slot sync worker does not start without it: add `hot_standby_feedback = true`"));
    }
    Ok(())
}
