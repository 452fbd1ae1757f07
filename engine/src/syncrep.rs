//! Synchronous replication: `synchronous_standby_names` and the LSNs at which waiting commits
//! may be released (PostgreSQL `syncrep.c`).

use crate::lsn::Lsn;

/// How the listed standbys are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMethod {
    /// `FIRST n (…)`, `n (…)` or a bare list (`FIRST 1`): the n highest-priority candidates.
    Priority,
    /// `ANY n (…)`: any n candidates (quorum).
    Quorum,
}

/// A parsed `synchronous_standby_names`. Empty (`''`) means no synchronous replication.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncStandbyNames {
    pub method: SyncMethod,
    pub num_sync: u32,
    /// Lower-cased names; `*` matches any standby.
    pub names: Vec<String>,
}

impl SyncStandbyNames {
    pub fn empty() -> SyncStandbyNames {
        SyncStandbyNames { method: SyncMethod::Priority, num_sync: 0, names: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Parses PostgreSQL's grammar: `''`, `a, b`, `FIRST n (a, b)`, `n (a, b)`, `ANY n (a, b)`,
    /// with `*` and double-quoted names. `n > 0` is required; `n` above the list length is
    /// accepted, as PostgreSQL accepts it (commits then never release).
    pub fn parse(text: &str) -> Result<SyncStandbyNames, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(SyncStandbyNames::empty());
        }
        let (method, rest) = if let Some(rest) = strip_keyword(text, "first") {
            (Some(SyncMethod::Priority), rest)
        } else if let Some(rest) = strip_keyword(text, "any") {
            (Some(SyncMethod::Quorum), rest)
        } else {
            (None, text)
        };
        let digits_len = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if method.is_some() && digits_len == 0 {
            return Err(format!("expected a number after FIRST/ANY in '{text}'; write e.g. 'FIRST 1 (pg2, pg3)'"));
        }
        if digits_len > 0 {
            let num_sync: u32 = rest[..digits_len].parse().map_err(|_| format!("number too large in '{text}'"))?;
            if num_sync == 0 {
                return Err(format!("the number of synchronous standbys must be at least 1 in '{text}'"));
            }
            let list = rest[digits_len..].trim();
            let inner = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')).ok_or_else(|| {
                format!("expected a parenthesised list after the number in '{text}'; write e.g. 'ANY 1 (pg2, pg3)'")
            })?;
            let names = parse_list(inner, text)?;
            return Ok(SyncStandbyNames { method: method.unwrap_or(SyncMethod::Priority), num_sync, names });
        }
        let names = parse_list(text, text)?;
        Ok(SyncStandbyNames { method: SyncMethod::Priority, num_sync: 1, names })
    }

    /// Priority of a standby with this `application_name`: FIRST → 1-based position of the first
    /// matching entry; ANY → 1 if listed; 0 if not listed (asynchronous).
    pub fn priority(&self, application_name: &str) -> u32 {
        // Equal to the name lowercased (as the names are), without making that string: this
        // runs for every walsender on every standby reply.
        let matches = |n: &String| {
            n.len() == application_name.len()
                && n.bytes().zip(application_name.bytes()).all(|(a, b)| a == b.to_ascii_lowercase())
        };
        match self.names.iter().position(|n| n == "*" || matches(n)) {
            None => 0,
            Some(_) if self.method == SyncMethod::Quorum => 1,
            Some(index) => index as u32 + 1,
        }
    }

    /// The text PostgreSQL would show for this setting.
    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return String::new();
        }
        let method = match self.method {
            SyncMethod::Priority => "FIRST",
            SyncMethod::Quorum => "ANY",
        };
        format!("{method} {} ({})", self.num_sync, self.names.join(", "))
    }
}

fn strip_keyword<'a>(text: &'a str, keyword: &str) -> Option<&'a str> {
    let head = text.get(..keyword.len())?;
    let rest = &text[keyword.len()..];
    if head.eq_ignore_ascii_case(keyword) && rest.starts_with(|c: char| c.is_whitespace()) {
        Some(rest.trim_start())
    } else {
        None
    }
}

fn parse_list(inner: &str, whole: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for raw in inner.split(',') {
        let raw = raw.trim();
        let name = if let Some(quoted) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            quoted.to_string()
        } else {
            raw.to_ascii_lowercase()
        };
        let valid = !name.is_empty()
            && (name == "*" || name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        if !valid {
            return Err(format!("'{raw}' is not a standby name in '{whole}'; names are separated by commas"));
        }
        names.push(name);
    }
    Ok(names)
}

/// One walsender as the sync-rep code sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncCandidate {
    /// Walsender slot order (ties in priority are broken by it).
    pub slot: u32,
    pub priority: u32,
    /// In `streaming` or `stopping` state with a valid flush position reported.
    pub eligible: bool,
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
}

/// Released LSN per wait mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
}

/// Narrows `candidates`, in place, to the synchronous set: the candidates that currently
/// count. FIRST n: the n lowest priority numbers (ties by slot), in that order; ANY n: every
/// eligible candidate, in the order given.
fn narrow_to_sync_set(names: &SyncStandbyNames, candidates: &mut Vec<SyncCandidate>) {
    candidates.retain(|c| c.eligible && c.priority > 0);
    if names.method == SyncMethod::Priority {
        // Slots are unique, so the order is total.
        candidates.sort_unstable_by_key(|c| (c.priority, c.slot));
        candidates.truncate(names.num_sync as usize);
    }
}

/// The slots of the synchronous set (see `narrow_to_sync_set`).
pub fn sync_set(names: &SyncStandbyNames, candidates: &[SyncCandidate]) -> Vec<u32> {
    let mut set = candidates.to_vec();
    narrow_to_sync_set(names, &mut set);
    set.iter().map(|c| c.slot).collect()
}

/// The LSNs that `n` synchronous standbys have confirmed, per kind, or `None` when fewer than
/// `num_sync` candidates are eligible (commits then wait, forever if need be). `candidates` is
/// the caller's scratch: it is narrowed to the synchronous set and reordered.
pub fn released(names: &SyncStandbyNames, candidates: &mut Vec<SyncCandidate>) -> Option<Released> {
    if names.is_empty() {
        return None;
    }
    narrow_to_sync_set(names, candidates);
    let n = names.num_sync as usize;
    if candidates.len() < n {
        return None;
    }
    let mut pick = |value: fn(&SyncCandidate) -> Lsn| -> Lsn {
        match names.method {
            // FIRST: the minimum over the chosen ones.
            SyncMethod::Priority => candidates.iter().map(value).min().unwrap_or(Lsn::INVALID),
            // ANY: the n-th highest.
            SyncMethod::Quorum => {
                candidates.sort_unstable_by_key(|c| std::cmp::Reverse(value(c)));
                value(&candidates[n - 1])
            }
        }
    };
    Some(Released { write: pick(|c| c.write), flush: pick(|c| c.flush), apply: pick(|c| c.apply) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(slot: u32, priority: u32, write: u64, flush: u64, apply: u64) -> SyncCandidate {
        SyncCandidate { slot, priority, eligible: true, write: Lsn(write), flush: Lsn(flush), apply: Lsn(apply) }
    }

    #[test]
    fn parses_every_form() {
        let first = SyncStandbyNames::parse("FIRST 2 (pg2, \"PG3\", pg4)").unwrap();
        assert_eq!(first.method, SyncMethod::Priority);
        assert_eq!(first.num_sync, 2);
        assert_eq!(first.names, vec!["pg2", "PG3", "pg4"]);
        let bare_number = SyncStandbyNames::parse("2 (a, b)").unwrap();
        assert_eq!((bare_number.method, bare_number.num_sync), (SyncMethod::Priority, 2));
        let any = SyncStandbyNames::parse("any 1 (a, b)").unwrap();
        assert_eq!((any.method, any.num_sync), (SyncMethod::Quorum, 1));
        let list = SyncStandbyNames::parse("a, B").unwrap();
        assert_eq!(
            (list.method, list.num_sync, list.names.clone()),
            (SyncMethod::Priority, 1, vec!["a".into(), "b".into()])
        );
        assert!(SyncStandbyNames::parse("").unwrap().is_empty());
        assert_eq!(SyncStandbyNames::parse("*").unwrap().priority("anything"), 1);
        assert!(SyncStandbyNames::parse("FIRST 0 (a)").is_err());
        assert!(SyncStandbyNames::parse("FIRST (a)").is_err());
        assert!(SyncStandbyNames::parse("ANY 1 a, b").is_err());
        assert!(SyncStandbyNames::parse("a,,b").is_err());
    }

    #[test]
    fn priorities_follow_list_position_for_first_and_are_one_for_any() {
        let first = SyncStandbyNames::parse("FIRST 1 (pg2, pg3)").unwrap();
        assert_eq!((first.priority("pg2"), first.priority("PG3"), first.priority("pg4")), (1, 2, 0));
        let any = SyncStandbyNames::parse("ANY 1 (pg2, pg3)").unwrap();
        assert_eq!((any.priority("pg2"), any.priority("pg3"), any.priority("pg4")), (1, 1, 0));
    }

    #[test]
    fn first_n_releases_at_the_minimum_of_the_chosen_standbys() {
        let names = SyncStandbyNames::parse("FIRST 2 (a, b, c)").unwrap();
        // c (priority 3) is far ahead but not chosen while a and b are eligible.
        let candidates = [cand(0, 1, 500, 400, 300), cand(1, 2, 450, 350, 250), cand(2, 3, 900, 900, 900)];
        let released = released(&names, &mut candidates.to_vec()).unwrap();
        assert_eq!(released, Released { write: Lsn(450), flush: Lsn(350), apply: Lsn(250) });
        assert_eq!(sync_set(&names, &candidates), vec![0, 1]);
    }

    #[test]
    fn first_falls_back_to_the_next_priority_when_one_is_ineligible() {
        let names = SyncStandbyNames::parse("FIRST 1 (a, b)").unwrap();
        let mut a = cand(0, 1, 100, 100, 100);
        a.eligible = false;
        let candidates = [a, cand(1, 2, 700, 600, 500)];
        assert_eq!(released(&names, &mut candidates.to_vec()).unwrap().flush, Lsn(600));
    }

    #[test]
    fn any_n_releases_at_the_nth_highest() {
        let names = SyncStandbyNames::parse("ANY 2 (a, b, c)").unwrap();
        let candidates = [cand(0, 1, 100, 100, 100), cand(1, 1, 300, 250, 200), cand(2, 1, 200, 200, 150)];
        let released = released(&names, &mut candidates.to_vec()).unwrap();
        assert_eq!(released, Released { write: Lsn(200), flush: Lsn(200), apply: Lsn(150) });
    }

    #[test]
    fn too_few_candidates_release_nothing() {
        let names = SyncStandbyNames::parse("ANY 2 (a, b)").unwrap();
        let candidates = [cand(0, 1, 100, 100, 100), cand(1, 0, 300, 300, 300)];
        assert_eq!(released(&names, &mut candidates.to_vec()), None);
        assert_eq!(released(&SyncStandbyNames::empty(), &mut candidates.to_vec()), None);
    }
}
