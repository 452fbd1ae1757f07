//! The disaster-recovery actions (issue 13): `base_backup = "pg2"`, `lose_site = [...]` and
//! `restore = { node = "pg4", target = "latest" }`, and the rules they follow against the rest
//! of the scenario (an archive to back up into and restore from, a spare to restore onto, no
//! HA manager that would fight the operator).

use super::diag::Diag;
use super::fields::{Field, Section};
use super::model::{Cluster, FaultKind, Replication, RestoreTarget};

const RESTORE_KEYS: &[&str] = &["node", "target", "target_time", "target_lsn"];
const RESTORE_EXAMPLE: &str = "restore = { node = \"pg4\", target = \"latest\" }";

/// `restore = { node = "pg4", target = "latest" | target_time = "4m30s" | target_lsn = "0/5000000" }`.
pub(crate) fn read_restore(action: &Field, nodes: &[String]) -> Result<FaultKind, Diag> {
    let s = action.section().map_err(|e| e.help(format!("write e.g. `{RESTORE_EXAMPLE}`")))?;
    s.check_keys(RESTORE_KEYS)?;
    let node = s.required("node", "node = \"pg4\"")?.node(nodes)?;
    let targets: Vec<Field> = ["target", "target_time", "target_lsn"].iter().filter_map(|k| s.get(k)).collect();
    if let [_, second, ..] = targets.as_slice() {
        return Err(second
            .error("a restore has one target")
            .help("keep one of `target = \"latest\"`, `target_time = \"4m30s\"` and `target_lsn = \"0/5000000\"`"));
    }
    let target = match targets.first() {
        None => RestoreTarget::Latest,
        Some(f) if f.key() == "target" => match f.str("\"latest\"")? {
            "latest" => RestoreTarget::Latest,
            other => {
                return Err(f.error(format!("unknown restore target `{other}`")).help(
                    "write `target = \"latest\"`, or `target_time = \"4m30s\"` (simulated time) or `target_lsn = \"0/5000000\"`",
                ))
            }
        },
        Some(f) if f.key() == "target_time" => RestoreTarget::TimeNs(f.duration_ns()?),
        Some(f) => RestoreTarget::Lsn(read_lsn(f)?),
    };
    Ok(FaultKind::Restore { node, target })
}

/// An LSN as PostgreSQL prints it: two hexadecimal halves, `0/5000000`.
fn read_lsn(field: &Field) -> Result<u64, Diag> {
    let text = field.str("\"0/5000000\"")?;
    let parsed = text.split_once('/').and_then(|(hi, lo)| {
        let (hi, lo) = (u64::from_str_radix(hi, 16).ok()?, u64::from_str_radix(lo, 16).ok()?);
        (hi <= u64::from(u32::MAX) && lo <= u64::from(u32::MAX)).then_some((hi << 32) | lo)
    });
    parsed.ok_or_else(|| {
        field
            .error(format!("`{text}` is not an LSN"))
            .help("write it as PostgreSQL prints one: two hexadecimal numbers, e.g. `target_lsn = \"0/5000000\"`")
    })
}

/// The actions need an archive (`archive_mode`), a restore needs a spare to restore onto,
/// and neither is modelled beside an HA manager.
pub(crate) fn check_restore_faults(
    top: &Section,
    cluster: &Cluster,
    replication: &Replication,
    ha: bool,
) -> Result<(), Diag> {
    let Some(list) = top.get("faults") else { return Ok(()) };
    let Ok(items) = list.array("[]") else { return Ok(()) };
    for (i, item) in items.iter().enumerate() {
        let entry = list.item(i, item);
        let Ok(fault) = entry.section() else { continue };
        for key in ["base_backup", "restore"] {
            let Some(field) = fault.get(key) else { continue };
            if !replication.archive_mode {
                return Err(field
                    .error(format!("a `{key}` fault needs a WAL archive, and `replication.archive_mode` is off"))
                    .help("add `archive_mode = true` to `[replication]`"));
            }
            if key == "restore" && ha {
                return Err(field.error("`restore` beside `[ha]` is not modelled").help(
                    "Patroni bootstraps a new cluster from a backup with its own `bootstrap.method`; model the restore without `[ha]`",
                ));
            }
            let Ok(table) = field.section() else { continue };
            let Some(node) = table.get("node") else { continue };
            let index = node.node(&cluster.nodes)?;
            if key == "restore" && !cluster.spares.contains(&index) {
                return Err(node
                    .error(format!(
                        "`{}` runs from the start: a restore needs an empty, switched-off node",
                        cluster.nodes[index]
                    ))
                    .help(format!("list it in `[cluster] spare = [\"{}\"]`", cluster.nodes[index])));
            }
        }
    }
    Ok(())
}
