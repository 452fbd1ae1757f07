//! `logical_converged`: after settle, each subscriber holds exactly the rows its publications
//! cover on the final primary, unless something reported explains why it cannot (a conflict
//! stopped or disabled its worker, the slot was invalidated, or the publisher failed over and
//! its slot stayed behind on the old primary).

use repsim_engine::logical::decode::RowFilters;
use repsim_engine::Node;

use crate::check::verdict::Violation;
use crate::check::view::{EndState, SubscriptionView};
use crate::scenario::logical::TABLE_NAMES;

/// Why the subscription invariants are not judged in `[multi_master]`.
pub(crate) const MULTI_MASTER: &str =
    "`[multi_master]`: every master writes, so a subscriber's rows are not the publisher's alone; judged by `masters_converged`";

/// Why `logical_converged` is not judged for any subscription, if it is not.
pub(crate) fn why_not_judged(end: &EndState) -> Option<String> {
    if end.subscriptions.is_empty() {
        return Some("no `[[logical.subscriptions]]`".into());
    }
    if end.scenario.logical.multi_master.is_some() {
        return Some(MULTI_MASTER.into());
    }
    let reasons: Vec<String> = end.subscriptions.iter().filter_map(|s| excuse(end, s)).collect();
    (reasons.len() == end.subscriptions.len()).then(|| reasons.join("; "))
}

/// What explains a subscription that may not hold the publisher's rows at the end.
fn excuse(end: &EndState, s: &SubscriptionView) -> Option<String> {
    if !s.survived_failovers {
        return Some(format!(
            "{}: the publisher failed over to a node without a copy of its slot, or one the walsender did not wait for (`failover`, `sync_replication_slots`, `synchronized_standby_slots`)",
            s.name
        ));
    }
    if s.disabled {
        return Some(format!("{}: `disable_on_error` disabled it", s.name));
    }
    if s.conflicts > 0 {
        return Some(format!("{}: {} conflict(s) stopped its worker", s.name, s.conflicts));
    }
    let primary = end.final_primary()?;
    if s.publisher != primary {
        return Some(format!(
            "{}: its connection names {}, not the final primary {} (the clients' address was never moved to it)",
            s.name, end.nodes[s.publisher].name, end.nodes[primary].name
        ));
    }
    let publisher = end.nodes[primary].engine?;
    let spec = end.scenario.logical.subscriptions.iter().find(|spec| spec.name == s.name)?;
    let missing = publisher.synchronized_standby_slots_stuck();
    if spec.failover && !missing.is_empty() {
        return Some(format!(
            "{}: {} holds the failover slot's changes back for `synchronized_standby_slots` {}, whose slots on it are missing or left behind (no standby streams to them), as PostgreSQL does",
            s.name,
            end.nodes[primary].name,
            missing.join(", ")
        ));
    }
    let slot = &spec.slot;
    let lost = publisher.pg_replication_slots().iter().any(|row| &row.slot_name == slot && row.wal_status == "lost");
    lost.then(|| format!("{}: `max_slot_wal_keep_size` invalidated its slot", s.name))
}

pub(crate) fn check_logical_converged(end: &EndState) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(primary_index) = end.final_primary() else { return out };
    let Some(publisher) = end.nodes[primary_index].engine else { return out };
    for s in end.subscriptions.iter().filter(|s| excuse(end, s).is_none()) {
        let subscriber = &end.nodes[s.node];
        let Some(engine) = subscriber.engine else {
            let detail = format!("{}: the subscriber {} is not running at the end", s.name, subscriber.name);
            out.push(Violation { invariant: "logical_converged".into(), detail });
            continue;
        };
        let spec =
            end.scenario.logical.subscriptions.iter().find(|spec| spec.name == s.name).expect("from the scenario");
        let tables = end.scenario.logical.tables_of(&spec.publications);
        let filters = end.scenario.logical.row_filters(&spec.publications);
        for (table_name, table) in TABLE_NAMES {
            if tables.as_ref().is_some_and(|t| !t.contains(&table)) {
                continue;
            }
            if let Some(difference) = first_difference(publisher, engine, table, &filters) {
                out.push(Violation {
                    invariant: "logical_converged".into(),
                    detail: format!(
                        "{}: table {table_name} on {} differs from {} (the final primary): {difference}",
                        s.name, subscriber.name, end.nodes[primary_index].name
                    ),
                });
            }
        }
    }
    out
}

/// Rows of the tables `publications` cover (`None`: all) that `subscriber` lacks, holds beyond
/// `publisher`, or holds with another value: what a subscription lost or got twice (or from
/// a history the publisher no longer has).
pub fn row_differences(
    publisher: &Node,
    subscriber: &Node,
    tables: Option<&[u32]>,
    filters: &RowFilters,
) -> (u64, u64, u64) {
    let mut total = (0, 0, 0);
    for (_, table) in TABLE_NAMES.iter().filter(|(_, t)| tables.is_none_or(|list| list.contains(t))) {
        let (counts, _) = compare(publisher, subscriber, *table, filters);
        total = (total.0 + counts.0, total.1 + counts.1, total.2 + counts.2);
    }
    total
}

/// The counts of rows missing, extra and different, and the first of them, if any.
pub(crate) fn first_difference(
    publisher: &Node,
    subscriber: &Node,
    table: u32,
    filters: &RowFilters,
) -> Option<String> {
    let ((missing, extra, different), first) = compare(publisher, subscriber, table, filters);
    first.map(|f| format!("{missing} missing, {extra} extra, {different} different rows; first: {f}"))
}

/// `filters`: the publications' row filters (rows they leave out are not expected).
fn compare(publisher: &Node, subscriber: &Node, table: u32, filters: &RowFilters) -> ((u64, u64, u64), Option<String>) {
    let mut published = publisher.store().table(table).filter(|(key, _)| filters.passes(table, *key)).peekable();
    let mut copied = subscriber.store().table(table).peekable();
    let (mut missing, mut extra, mut different) = (0u64, 0u64, 0u64);
    let mut first = None;
    loop {
        let note = match (published.peek(), copied.peek()) {
            (None, None) => break,
            (Some(&(key, value)), None) => {
                published.next();
                missing += 1;
                format!("key {key} (write {}) is missing", value.write_id)
            }
            (None, Some(&(key, value))) => {
                copied.next();
                extra += 1;
                format!("key {key} (write {}) is not on the publisher", value.write_id)
            }
            (Some(&(pk, pv)), Some(&(ck, _))) if pk < ck => {
                published.next();
                missing += 1;
                format!("key {pk} (write {}) is missing", pv.write_id)
            }
            (Some(&(pk, _)), Some(&(ck, cv))) if ck < pk => {
                copied.next();
                extra += 1;
                format!("key {ck} (write {}) is not on the publisher", cv.write_id)
            }
            (Some(&(key, pv)), Some(&(_, cv))) => {
                published.next();
                copied.next();
                if pv == cv {
                    continue;
                }
                different += 1;
                format!("key {key} holds write {} there and write {} here", pv.write_id, cv.write_id)
            }
        };
        first.get_or_insert(note);
    }
    ((missing, extra, different), first)
}
