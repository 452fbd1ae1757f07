//! What a valid scenario asks for that the user probably did not mean: warned when it loads,
//! and listed in the run's summary. A warning never changes the run.

use repsim_engine::config::SyncCommitLevel;

use super::model::Scenario;

impl Scenario {
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(warning) = unsatisfiable_standby_names(self) {
            out.push(warning);
        }
        out
    }
}

/// `synchronous_standby_names` asks for more synchronous standbys than the cluster can ever
/// have: every commit at `remote_write` or above then waits forever, as PostgreSQL's would.
fn unsatisfiable_standby_names(s: &Scenario) -> Option<String> {
    let names = &s.replication.synchronous_standby_names;
    let waits = matches!(
        s.replication.synchronous_commit,
        SyncCommitLevel::RemoteWrite | SyncCommitLevel::On | SyncCommitLevel::RemoteApply
    );
    if names.is_empty() || !waits {
        return None;
    }
    let nodes = &s.cluster.nodes;
    // At most every node but the primary is a standby; with an HA manager any node may become
    // the primary, so a listed primary may later count.
    let others = nodes.len() as u32 - 1;
    // A logical subscription's walsender counts under its slot's name (its application_name);
    // trigger capture has no walsender.
    let listed_subscriptions = s
        .logical
        .subscriptions
        .iter()
        .filter(|sub| sub.trigger.is_none() && names.names.iter().any(|n| *n == sub.slot || n == "*"))
        .count() as u32;
    let possible = listed_subscriptions
        + if names.names.iter().any(|n| n == "*") {
            others
        } else {
            let mut listed: Vec<&String> = names.names.iter().filter(|n| nodes.contains(n)).collect();
            listed.sort();
            listed.dedup();
            let primary_listed = listed.iter().any(|n| **n == nodes[s.cluster.primary]);
            let standbys = listed.len() as u32 - u32::from(primary_listed && s.ha.is_none());
            standbys.min(others)
        };
    (names.num_sync > possible).then(|| {
        format!(
            "synchronous_standby_names asks for {} synchronous standbys, but at most {possible} of the nodes it \
             names can ever be one (standbys and subscriptions): every commit under synchronous_commit = {} will wait forever (as in PostgreSQL)",
            names.num_sync,
            s.replication.synchronous_commit.name()
        )
    })
}
