//! `[multi_master]`: several writable primaries replicating to each other by logical
//! replication, as active-active PostgreSQL is built (PostgreSQL 16's `origin = none`, with
//! pglogical's conflict resolution).
//!
//! ```toml
//! [multi_master]
//! masters = ["east", "west"]                 # the cluster's primary and one or more others
//! conflict_resolution = "last_update_wins"   # or per table: { registers = "keep_local" }
//! ```
//!
//! Each master publishes every table and subscribes to every other master with
//! `origin = none`, so a change crosses once and does not come back; `track_commit_timestamp`
//! is on everywhere (conflict detection needs it). The clients are shared among the masters
//! (session `i` writes and reads on master `i mod n`). The masters other than the cluster's
//! primary are primaries of their own, outside the physical cluster, like subscribers.
//! `conflict_resolution` is one of `apply_remote` (PostgreSQL's own apply worker, the
//! default), `error`, `keep_local`, `last_update_wins` (pglogical's).

use repsim_engine::logical::conflict::{ConflictPolicies, ConflictResolution};

use super::diag::{did_you_mean, Diag};
use super::fields::{Field, Section};
use super::logical::{LogicalSpec, PublicationSpec, SubscriptionSpec, TABLE_NAMES};
use super::model::{Cluster, NodeSpec, Replication};
use super::tree::Kind;

#[derive(Clone, Debug, PartialEq)]
pub struct MultiMasterSpec {
    /// Indices into `cluster.nodes`; the cluster's primary first.
    pub masters: Vec<usize>,
    pub policies: ConflictPolicies,
}

impl MultiMasterSpec {
    /// The master a client session writes and reads on.
    pub fn master_of_session(&self, session: u32) -> usize {
        self.masters[session as usize % self.masters.len()]
    }

    /// Whether every table's conflicts go to the later commit, so that the masters must end
    /// equal once replication has caught up.
    pub fn promises_convergence(&self) -> bool {
        TABLE_NAMES.iter().all(|(_, table)| self.policies.for_table(*table) == ConflictResolution::LastUpdateWins)
    }
}

/// The publication every master has.
pub const PUBLICATION: &str = "multi_master";

const KEYS: &[&str] = &["masters", "conflict_resolution"];

/// Reads `[multi_master]` and adds its publication and subscriptions to `logical`.
pub(crate) fn read_multi_master(
    top: &Section,
    cluster: &Cluster,
    replication: &Replication,
    nodes: &[NodeSpec],
    logical: &mut LogicalSpec,
) -> Result<(), Diag> {
    let Some(field) = top.get("multi_master") else { return Ok(()) };
    let section = field.section()?;
    section.check_keys(KEYS)?;
    for (key, what) in [
        ("logical", "[[logical.*]] subscriptions"),
        ("ha", "an HA manager"),
        ("pooler", "a pooler"),
        ("endpoints", "endpoints"),
    ] {
        if top.get(key).is_some() {
            return Err(field
                .error(format!("`[multi_master]` with {what} (`{key}`) is not modelled"))
                .help(format!("remove `[{key}]`, or run the two in separate scenarios")));
        }
    }
    let masters_field = section.required("masters", "masters = [\"east\", \"west\"]")?;
    let mut masters = vec![cluster.primary];
    let mut primary_listed = false;
    for value in masters_field.array("[\"east\", \"west\"]")? {
        let element = masters_field.element(value);
        let node = element.node(&cluster.nodes)?;
        let name = &cluster.nodes[node];
        if node == cluster.primary && !primary_listed {
            primary_listed = true;
            continue;
        }
        if node == cluster.primary || masters.contains(&node) {
            return Err(element.error(format!("`{name}` is listed twice")).help("list each master once"));
        }
        check_other_master(&element, name, node, cluster, replication, nodes)?;
        masters.push(node);
    }
    if masters.len() < 2 || !primary_listed {
        let primary = &cluster.nodes[cluster.primary];
        return Err(masters_field
            .error("`masters` needs the cluster's primary and at least one other node")
            .help(format!("e.g. `masters = [\"{primary}\", \"west\"]`, with \"west\" in [cluster] nodes")));
    }
    let policies = match section.get("conflict_resolution") {
        None => ConflictPolicies::default(),
        Some(f) => read_policies(&f)?,
    };
    logical.publications.push(PublicationSpec { name: PUBLICATION.into(), tables: None, row_filter: None });
    for &subscriber in &masters {
        for &publisher in masters.iter().filter(|&&p| p != subscriber) {
            let name =
                format!("{}_from_{}", slot_part(&cluster.nodes[subscriber]), slot_part(&cluster.nodes[publisher]));
            logical.subscriptions.push(SubscriptionSpec {
                slot: name.clone(),
                name,
                node: subscriber,
                publications: vec![PUBLICATION.into()],
                disable_on_error: false,
                failover: false,
                at_ns: None,
                publisher: (publisher != cluster.primary).then_some(publisher),
                origin_none: true,
                trigger: None,
                synchronous_commit: false,
            });
        }
    }
    logical.multi_master = Some(MultiMasterSpec { masters, policies });
    Ok(())
}

/// A master besides the primary is a primary of its own from the start.
fn check_other_master(
    element: &Field,
    name: &str,
    node: usize,
    cluster: &Cluster,
    replication: &Replication,
    nodes: &[NodeSpec],
) -> Result<(), Diag> {
    if cluster.spares.contains(&node) {
        return Err(element
            .error(format!("`{name}` is a spare"))
            .help("a master runs from the start: remove it from `spare`"));
    }
    if replication.synchronous_standby_names.names.iter().any(|n| n == name) {
        return Err(element
            .error(format!("`{name}` is named in `synchronous_standby_names`, but a master is not a standby"))
            .help("remove it from `synchronous_standby_names`"));
    }
    if nodes[node].primary_conninfo.is_some() {
        return Err(element
            .error(format!("`{name}` is a master, and `[node.{name}]` gives it a `primary_conninfo`"))
            .help("a master is a primary of its own: remove its `primary_conninfo`"));
    }
    if let Some(standby) = nodes.iter().find(|n| n.primary_conninfo.as_deref() == Some(name)) {
        return Err(element
            .error(format!(
                "`{}` streams WAL from `{name}`; only the cluster's primary has standbys here",
                standby.name
            ))
            .help(format!("point `[node.{}] primary_conninfo` at the cluster's primary", standby.name)));
    }
    Ok(())
}

/// A node name as part of a slot name (lower-case letters, digits and underscores).
fn slot_part(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

fn read_policy(field: &Field) -> Result<ConflictResolution, Diag> {
    let text = field.str("\"last_update_wins\"")?;
    let names = ConflictResolution::ALL.map(|p| p.name());
    ConflictResolution::ALL.into_iter().find(|p| p.name() == text).ok_or_else(|| {
        field.error(format!("unknown conflict resolution `{text}`")).help(format!(
            "{}use one of: {}",
            did_you_mean(text, names.iter().copied()),
            names.join(", ")
        ))
    })
}

/// One policy for every table, or a table of them by table name (unlisted: `apply_remote`).
fn read_policies(field: &Field) -> Result<ConflictPolicies, Diag> {
    if !matches!(field.value.kind, Kind::Table(_)) {
        return Ok(ConflictPolicies { default: read_policy(field)?, by_table: Vec::new() });
    }
    let section = field.section()?;
    let table_names: Vec<&str> = TABLE_NAMES.iter().map(|(n, _)| *n).collect();
    section.check_keys(&table_names)?;
    let mut policies = ConflictPolicies::default();
    for (name, table) in TABLE_NAMES {
        if let Some(f) = section.get(name) {
            policies.by_table.push((table, read_policy(&f)?));
        }
    }
    Ok(policies)
}
