//! `[[faults]]` and `[expect]`.

use super::diag::{line_col, Diag};
use super::fields::{Field, Section};
use super::model::{Expect, Fault, FaultKind};
use super::sections::read_node_pair;
use super::units::format_duration_ns;

const ACTIONS: &[&str] = &["crash", "restart", "partition", "heal", "slow_disk", "reset"];
const FAULT_KEYS: &[&str] =
    &["at", "crash", "restart", "partition", "one_way", "heal", "slow_disk", "factor", "for", "reset"];

const ACTIONS_HELP: &str = "a fault has `at` and exactly one action:\n  \
    crash = \"pg1\"\n  \
    restart = \"pg1\"\n  \
    partition = [[\"pg1\"], [\"pg2\", \"pg3\"]]    (optionally one_way = true)\n  \
    heal = true\n  \
    slow_disk = \"pg2\", factor = 10.0, for = \"5s\"\n  \
    reset = [\"pg1\", \"pg2\"]";

/// The run's timing, for checking fault times.
struct Timing {
    duration_ns: u64,
    settle_ns: u64,
}

/// Every `[[faults]]`, sorted by `at` (stable).
pub(crate) fn read_faults(
    top: &Section,
    nodes: &[String],
    duration_ns: u64,
    settle_ns: u64,
    source: &str,
) -> Result<Vec<Fault>, Diag> {
    let Some(field) = top.get("faults") else {
        return Ok(Vec::new());
    };
    let items = field.array("[{ at = \"20s\", crash = \"pg1\" }] (or use [[faults]] tables)")?;
    let timing = Timing { duration_ns, settle_ns };
    let mut faults = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let fault_field = field.item(index, item);
        faults.push(read_fault(&fault_field.section()?, nodes, &timing, source)?);
    }
    faults.sort_by_key(|fault| fault.at_ns);
    Ok(faults)
}

fn read_fault(s: &Section, nodes: &[String], timing: &Timing, source: &str) -> Result<Fault, Diag> {
    s.check_keys(FAULT_KEYS)?;
    let at_field = s.required("at", "at = \"20s\"")?;
    let at_ns = read_at(&at_field, timing)?;
    let action = single_action(s)?;
    check_action_options(s, action.key())?;
    let kind = read_action(s, &action, nodes)?;
    let span = s.span.clone().or_else(|| at_field.key_span.clone());
    let line = span.map_or(0, |span| line_col(source, span.start).0);
    Ok(Fault { at_ns, kind, line })
}

fn read_at(field: &Field, timing: &Timing) -> Result<u64, Diag> {
    let at_ns = field.duration_ns()?;
    let end_ns = timing.duration_ns.saturating_add(timing.settle_ns);
    if at_ns < end_ns {
        return Ok(at_ns);
    }
    Err(field
        .error(format!(
            "fault at {} is not before the end of the run ({} = duration {} + settle {})",
            format_duration_ns(at_ns),
            format_duration_ns(end_ns),
            format_duration_ns(timing.duration_ns),
            format_duration_ns(timing.settle_ns),
        ))
        .help(format!("use an `at` below {}, or raise `duration` or `settle`", format_duration_ns(end_ns))))
}

fn single_action<'a>(s: &Section<'a>) -> Result<Field<'a>, Diag> {
    let mut actions = ACTIONS.iter().filter_map(|action| s.get(action));
    let Some(first) = actions.next() else {
        return Err(Diag::new(format!("the fault `{}` has no action", s.path), s.span.clone()).help(ACTIONS_HELP));
    };
    match actions.next() {
        None => Ok(first),
        Some(second) => Err(Diag::new(
            format!("the fault `{}` has two actions, `{}` and `{}`", s.path, first.key(), second.key()),
            second.key_span.clone(),
        )
        .help("give each action its own [[faults]] table (they may have the same `at`)")),
    }
}

/// `one_way` belongs to `partition`; `factor` and `for` belong to `slow_disk`.
fn check_action_options(s: &Section, action: &str) -> Result<(), Diag> {
    let owners = [("one_way", "partition"), ("factor", "slow_disk"), ("for", "slow_disk")];
    for (option, owner) in owners {
        if action == owner {
            continue;
        }
        if let Some(field) = s.get(option) {
            return Err(Diag::new(
                format!("`{option}` only applies to a `{owner}` fault, and this one is `{action}`"),
                field.key_span.clone(),
            )
            .help(format!("remove `{option}`")));
        }
    }
    Ok(())
}

fn read_action(s: &Section, action: &Field, nodes: &[String]) -> Result<FaultKind, Diag> {
    match action.key() {
        "crash" => Ok(FaultKind::Crash { node: action.node(nodes)? }),
        "restart" => Ok(FaultKind::Restart { node: action.node(nodes)? }),
        "partition" => read_partition(s, action, nodes),
        "heal" => read_heal(action),
        "slow_disk" => read_slow_disk(s, action, nodes),
        _ => {
            let (a, b) = read_node_pair(action, nodes)?;
            Ok(FaultKind::Reset { a, b })
        }
    }
}

fn read_heal(action: &Field) -> Result<FaultKind, Diag> {
    if action.bool()? {
        return Ok(FaultKind::Heal);
    }
    Err(action
        .error("`heal = false` does nothing")
        .help("write `heal = true` to heal every partition, or remove this fault"))
}

fn read_slow_disk(s: &Section, action: &Field, nodes: &[String]) -> Result<FaultKind, Diag> {
    let node = action.node(nodes)?;
    let factor_field = s.required("factor", "factor = 10.0")?;
    let factor = factor_field.float("10.0")?;
    if factor < 1.0 {
        return Err(factor_field
            .error(format!("`factor` must be at least 1, found {factor}"))
            .help("disk latencies are multiplied by `factor`; write e.g. `factor = 10.0`"));
    }
    let for_ns = s.required("for", "for = \"5s\"")?.positive_duration_ns()?;
    Ok(FaultKind::SlowDisk { node, factor, for_ns })
}

const PARTITION_HELP: &str =
    "write e.g. `partition = [[\"pg1\"], [\"pg2\", \"pg3\"]]`: two disjoint, non-empty groups of nodes";

fn read_partition(s: &Section, action: &Field, nodes: &[String]) -> Result<FaultKind, Diag> {
    let groups = action.array("[[\"pg1\"], [\"pg2\", \"pg3\"]]")?;
    let [first, second] = groups else {
        return Err(action
            .error(format!("`{}` must have exactly two groups, found {}", action.path, groups.len()))
            .help(PARTITION_HELP));
    };
    let a = read_group(&action.element(first), nodes, &[])?;
    let b = read_group(&action.element(second), nodes, &a)?;
    let one_way = s.opt("one_way", Field::bool)?.unwrap_or(false);
    Ok(FaultKind::Partition { a, b, one_way })
}

/// One side of a partition; `other` is the side already read (the groups must be disjoint).
fn read_group(field: &Field, nodes: &[String], other: &[usize]) -> Result<Vec<usize>, Diag> {
    let items = field.array("[\"pg1\"]").map_err(|e| e.help(PARTITION_HELP))?;
    if items.is_empty() {
        return Err(field.error("a partition group is empty").help(PARTITION_HELP));
    }
    let mut group = Vec::with_capacity(items.len());
    for item in items {
        let element = field.element(item);
        let node = element.node(nodes)?;
        let place = if other.contains(&node) { "in both groups of" } else { "twice in" };
        if group.contains(&node) || other.contains(&node) {
            return Err(element
                .error(format!("`{}` is listed {place} `{}`", nodes[node], field.path))
                .help(PARTITION_HELP));
        }
        group.push(node);
    }
    Ok(group)
}

const EXPECT_KEYS: &[&str] = &["lost_acked_writes", "converged", "min_commits", "max_commit_p99", "max_lag_bytes_p99"];

pub(crate) fn read_expect(top: &Section) -> Result<Expect, Diag> {
    let Some(field) = top.get("expect") else {
        return Ok(Expect::default());
    };
    let s = field.section()?;
    s.check_keys(EXPECT_KEYS)?;
    Ok(Expect {
        lost_acked_writes: s.opt("lost_acked_writes", |f| f.u64_at_least(0, "0"))?,
        converged: s.opt("converged", Field::bool)?,
        min_commits: s.opt("min_commits", |f| f.u64_at_least(0, "1000"))?,
        max_commit_p99_ns: s.opt("max_commit_p99", Field::duration_ns)?,
        max_lag_bytes_p99: s.opt("max_lag_bytes_p99", Field::size_bytes)?,
    })
}
