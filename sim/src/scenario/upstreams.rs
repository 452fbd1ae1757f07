//! `[node.NAME] primary_conninfo = "pg2"`: cascading replication. Each standby's upstream must
//! be another node, and following upstreams from any standby must reach the primary.

use super::diag::Diag;
use super::fields::Section;
use super::model::{Cluster, NodeSpec};

/// Checks every `primary_conninfo` against the cluster (and `[ha]`, which re-points standbys
/// itself).
pub(crate) fn check_upstreams(top: &Section, cluster: &Cluster, nodes: &[NodeSpec], ha: bool) -> Result<(), Diag> {
    let Some(node_field) = top.get("node") else { return Ok(()) };
    let node_section = node_field.section()?;
    if let Some(field) = node_section.get("primary_conninfo") {
        return Err(field
            .error("`primary_conninfo` names one standby's upstream")
            .help("set it for that standby only, e.g. `[node.pg3]` then `primary_conninfo = \"pg2\"`"));
    }
    let names = &cluster.nodes;
    let upstream_of = |i: usize| -> Option<usize> {
        let name = nodes[i].primary_conninfo.as_ref()?;
        names.iter().position(|n| n == name)
    };
    for (i, name) in names.iter().enumerate() {
        let Some(per_node) = node_section.get(name) else { continue };
        let per_node = per_node.section()?;
        let Some(field) = per_node.get("primary_conninfo") else { continue };
        let upstream = field.node(names)?;
        if ha {
            return Err(field
                .error("cascading replication under `[ha]` is not modelled")
                .help("Patroni points every replica at the leader unless it has a `replicatefrom` tag, which repsim does not model; remove `primary_conninfo` or `[ha]`"));
        }
        if i == cluster.primary {
            return Err(field
                .error(format!("`{name}` is the primary: it has no upstream"))
                .help("remove `primary_conninfo` here; set it on a standby"));
        }
        if upstream == i {
            return Err(field
                .error(format!("`{name}` cannot stream from itself"))
                .help(format!("name another node, e.g. `primary_conninfo = \"{}\"`", names[cluster.primary])));
        }
        // A node without `primary_conninfo` streams from the primary.
        let mut at = upstream;
        for _ in 0..names.len() {
            if at == cluster.primary {
                break;
            }
            at = upstream_of(at).unwrap_or(cluster.primary);
        }
        if at != cluster.primary {
            return Err(field
                .error(format!("`{name}`'s upstreams go round in a circle and never reach the primary"))
                .help(format!("one of them must stream from `{}`", names[cluster.primary])));
        }
    }
    Ok(())
}
