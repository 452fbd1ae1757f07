//! An independent reference model of which standbys a synchronous commit must wait for
//! (PostgreSQL `syncrep.c`, spec §3): `synchronous_standby_names` as `FIRST n (list)` (or a
//! plain list, `FIRST 1`) takes the n eligible standbys with the best priority (the lowest
//! position in the list, `*` matching any name at its position); `ANY n (list)` takes any n
//! eligible named standbys. A standby is eligible when its walsender streams and has
//! reported a flush position. With fewer than n eligible, commits wait. Written apart from
//! the engine's `syncrep.rs` on purpose: a bug there must not hide here.

use repsim_engine::syncrep::{SyncMethod, SyncStandbyNames};

/// One connected standby as the oracle sees it.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub name: &'a str,
    /// Streaming, with a flush position reported.
    pub eligible: bool,
    /// The world holds the commit on this standby at the level asked for (written in its
    /// OS, durable on its disk, or applied to its tables).
    pub holds: bool,
}

/// The 1-based position of `name` (or of `*`) in the list; 0 when not listed.
pub fn priority(names: &[String], name: &str) -> usize {
    names.iter().position(|n| n == "*" || n.eq_ignore_ascii_case(name)).map_or(0, |i| i + 1)
}

/// Whether releasing a commit now keeps the promise of `names`: `Err` says why not.
pub fn audit(names: &SyncStandbyNames, candidates: &[Candidate]) -> Result<(), String> {
    let needed = names.num_sync as usize;
    let mut listed: Vec<(usize, &Candidate)> = candidates
        .iter()
        .filter(|c| c.eligible)
        .map(|c| (priority(&names.names, c.name), c))
        .filter(|(p, _)| *p > 0)
        .collect();
    if listed.len() < needed {
        return Err(format!("released with {} eligible synchronous standbys of the {needed} required", listed.len()));
    }
    match names.method {
        SyncMethod::Quorum => {
            if listed.iter().filter(|(_, c)| c.holds).count() < needed {
                let holding: Vec<&str> = listed.iter().filter(|(_, c)| c.holds).map(|(_, c)| c.name).collect();
                return Err(format!("ANY {needed}: only {} eligible standbys hold it ({holding:?})", holding.len()));
            }
        }
        SyncMethod::Priority => {
            // Walk the priorities from the best: a whole group within what is still needed
            // must hold it; in the group that crosses the count, ties may go either way, so
            // enough of that group must.
            listed.sort_by_key(|(p, _)| *p);
            let mut still = needed;
            let mut i = 0;
            while still > 0 && i < listed.len() {
                let p = listed[i].0;
                let group = &listed[i..i + listed[i..].iter().take_while(|(q, _)| *q == p).count()];
                let holds = group.iter().filter(|(_, c)| c.holds).count();
                let must = group.len().min(still);
                if holds < must {
                    let missing: Vec<&str> = group.iter().filter(|(_, c)| !c.holds).map(|(_, c)| c.name).collect();
                    return Err(format!(
                        "FIRST {needed}: priority {p} standbys {missing:?} are synchronous and do not hold it"
                    ));
                }
                still -= must;
                i += group.len();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> SyncStandbyNames {
        SyncStandbyNames::parse(text).unwrap()
    }

    fn c(name: &str, eligible: bool, holds: bool) -> Candidate<'_> {
        Candidate { name, eligible, holds }
    }

    #[test]
    fn first_waits_for_the_best_priorities_and_ties_go_either_way() {
        let n = names("FIRST 1 (pg2, pg3)");
        assert!(audit(&n, &[c("pg2", true, true), c("pg3", true, false)]).is_ok());
        assert!(audit(&n, &[c("pg2", true, false), c("pg3", true, true)]).is_err(), "pg2 is the sync one");
        assert!(audit(&n, &[c("pg2", false, false), c("pg3", true, true)]).is_ok(), "pg2 not streaming");
        assert!(audit(&n, &[c("pg2", false, false), c("pg3", false, true)]).is_err(), "nobody eligible");
        let star = names("FIRST 1 (*)");
        assert!(audit(&star, &[c("pg2", true, false), c("pg3", true, true)]).is_ok(), "a tie: either");
        assert!(audit(&star, &[c("pg2", true, false), c("pg3", true, false)]).is_err());
    }

    #[test]
    fn any_counts_holders_among_listed_eligible_standbys_only() {
        let n = names("ANY 2 (pg2, pg3, pg4)");
        assert!(audit(&n, &[c("pg2", true, true), c("pg3", true, false), c("pg4", true, true)]).is_ok());
        assert!(
            audit(&n, &[c("pg2", true, true), c("pg3", true, false), c("pg5", true, true)]).is_err(),
            "pg5 unlisted"
        );
        assert!(audit(&n, &[c("pg2", true, true), c("pg3", false, true)]).is_err(), "pg3 not eligible");
    }
}
