//! `logical_converged`: after settle, each subscriber holds exactly the rows its publications
//! cover on the final primary, unless something reported explains why it cannot (a conflict
//! stopped or disabled its worker, the slot was invalidated, or the publisher failed over and
//! its slot stayed behind on the old primary).

use repsim_engine::Node;

use crate::check::verdict::Violation;
use crate::check::view::{EndState, SubscriptionView};
use crate::scenario::logical::TABLE_NAMES;

/// Why `logical_converged` is not judged for any subscription, if it is not.
pub(crate) fn why_not_judged(end: &EndState) -> Option<String> {
    if end.subscriptions.is_empty() {
        return Some("no `[[logical.subscriptions]]`".into());
    }
    let reasons: Vec<String> = end.subscriptions.iter().filter_map(|s| excuse(end, s)).collect();
    (reasons.len() == end.subscriptions.len()).then(|| reasons.join("; "))
}

/// What explains a subscription that may not hold the publisher's rows at the end.
fn excuse(end: &EndState, s: &SubscriptionView) -> Option<String> {
    if !end.promoted.is_empty() {
        // Failover slots (PostgreSQL 17's `sync_replication_slots`) are not modelled yet.
        return Some(format!("{}: the publisher failed over, and its slot stayed on the old primary", s.name));
    }
    if s.disabled {
        return Some(format!("{}: `disable_on_error` disabled it", s.name));
    }
    if s.conflicts > 0 {
        return Some(format!("{}: {} conflict(s) stopped its worker", s.name, s.conflicts));
    }
    let publisher = end.final_primary().and_then(|p| end.nodes[p].engine)?;
    let slot = end.scenario.logical.subscriptions.iter().find(|spec| spec.name == s.name).map(|spec| &spec.slot)?;
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
        for (table_name, table) in TABLE_NAMES {
            if tables.as_ref().is_some_and(|t| !t.contains(&table)) {
                continue;
            }
            if let Some(difference) = first_difference(publisher, engine, table) {
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

/// The counts of rows missing, extra and different, and the first of them, if any.
fn first_difference(publisher: &Node, subscriber: &Node, table: u32) -> Option<String> {
    let mut published = publisher.store().table(table).peekable();
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
    first.map(|f| format!("{missing} missing, {extra} extra, {different} different rows; first: {f}"))
}
