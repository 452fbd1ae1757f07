//! `summary.multi_master`: what each master of `[multi_master]` holds at the end against the
//! final primary, and the updates its clients lost (`check::multimaster`).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MultiMasterSummary {
    /// The conflict resolution policy, e.g. `last_update_wins`, or per table.
    pub conflict_resolution: String,
    /// The final primary first.
    pub masters: Vec<MasterSummary>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MasterSummary {
    pub name: String,
    /// Rows it lacks, holds beyond the final primary, or holds with another value.
    pub rows_missing_extra_different: (u64, u64, u64),
    /// Acknowledged register writes begun after the write it ends with was acknowledged.
    pub lost_updates: u64,
    /// Register keys whose final write is not among those the checker keeps.
    pub keys_unjudged: u64,
}

impl MultiMasterSummary {
    pub fn of(world: &crate::world::World) -> Option<MultiMasterSummary> {
        let mm = world.scenario.logical.multi_master.as_ref()?;
        let policies = &mm.policies;
        let mut conflict_resolution = policies.default.name().to_string();
        for (table, policy) in &policies.by_table {
            let name = crate::scenario::logical::TABLE_NAMES.iter().find(|(_, t)| t == table).map_or("?", |(n, _)| n);
            conflict_resolution.push_str(&format!(", {name}: {}", policy.name()));
        }
        let end = world.end_state();
        let masters = crate::check::multimaster::master_outcomes(&end)
            .into_iter()
            .map(|o| MasterSummary {
                name: end.nodes[o.node].name.to_string(),
                rows_missing_extra_different: o.rows_missing_extra_different,
                lost_updates: o.lost_updates,
                keys_unjudged: o.keys_unjudged,
            })
            .collect();
        Some(MultiMasterSummary { conflict_resolution, masters })
    }

    pub fn rows(&self) -> Vec<String> {
        let reference = self.masters.first().map_or("", |m| m.name.as_str());
        self.masters
            .iter()
            .map(|m| {
                let (missing, extra, different) = m.rows_missing_extra_different;
                let against = if m.name == reference {
                    "the final primary".to_string()
                } else {
                    format!("{missing} rows missing, {extra} extra, {different} different against {reference}")
                };
                format!(
                    "| multi-master ({}) {} at the end | {against}; {} lost updates ({} keys not judged) |",
                    self.conflict_resolution, m.name, m.lost_updates, m.keys_unjudged
                )
            })
            .collect()
    }
}
