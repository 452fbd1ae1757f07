//! `[[faults]]` and `[expect]`.

use super::diag::{did_you_mean, line_col, Diag};
use super::dist::read_dist;
use super::fields::{Field, Section, MAX_CLOCK_DRIFT_PPM, MAX_SLOW_DISK_FACTOR};
use super::model::{Dist, Expect, Fault, FaultKind, LossBound, RandomFaultKind, RandomFaults};
use super::sections::read_node_pair;
use super::units::{format_duration_ns, parse_duration_ns};
use repsim_engine::config::SyncCommitLevel;

const ACTIONS: &[&str] = &[
    "crash",
    "restart",
    "partition",
    "heal",
    "slow_disk",
    "reset",
    "partition_dcs",
    "kill_dcs",
    "archive_down",
    "pause",
    "clock_skew",
    "clock_drift",
    "promote",
    "switchover",
    "add_standby",
    "fsync_error",
    "lose_disk",
    "base_backup",
    "lose_site",
    "restore",
    "create_logical_slot",
    "drop_logical_slot",
    "skip_transaction",
];
const FAULT_KEYS: &[&str] = &[
    "at",
    "crash",
    "restart",
    "partition",
    "one_way",
    "heal",
    "slow_disk",
    "factor",
    "for",
    "reset",
    "partition_dcs",
    "kill_dcs",
    "archive_down",
    "pause",
    "clock_skew",
    "by",
    "clock_drift",
    "ppm",
    "promote",
    "switchover",
    "add_standby",
    "fsync_error",
    "lose_disk",
    "base_backup",
    "lose_site",
    "restore",
    "create_logical_slot",
    "drop_logical_slot",
    "slot",
    "skip_transaction",
];

const ACTIONS_HELP: &str = "a fault has `at` and exactly one action:\n  \
    crash = \"pg1\"\n  \
    restart = \"pg1\"\n  \
    partition = [[\"pg1\"], [\"pg2\", \"pg3\"]]    (optionally one_way = true)\n  \
    heal = true\n  \
    slow_disk = \"pg2\", factor = 10.0, for = \"5s\"\n  \
    reset = [\"pg1\", \"pg2\"]\n  \
    partition_dcs = \"pg1\"    (the node cannot reach the DCS until heal)\n  \
    kill_dcs = true\n  \
    archive_down = true, for = \"10min\"    (the archive store refuses every request)\n  \
    pause = \"pg1\", for = \"40s\"\n  \
    clock_skew = \"pg1\", by = \"-5s\"\n  \
    clock_drift = \"pg1\", ppm = 500.0\n  \
    promote = \"pg2\"    (pg_promote by an operator)\n  \
    switchover = \"pg2\"    (planned, through the HA manager)\n  \
    add_standby = \"pg4\"    (clone a `cluster.spare` node from the primary)\n  \
    fsync_error = \"pg2\"    (the next fsync fails: PostgreSQL PANICs)\n  \
    lose_disk = \"pg2\"    (power loss and an empty disk; re-cloned on restart)\n  \
    base_backup = \"pg2\"    (a base backup into the archive store)\n  \
    lose_site = [\"pg1\", \"pg2\"]    (each listed node loses power and its disk at once)\n  \
    restore = { node = \"pg4\", target = \"latest\" }    (a spare restored from the archive, then promoted)\n  \
    create_logical_slot = \"pg1\", slot = \"cdc\"    (a logical slot nothing consumes: it holds WAL)\n  \
    drop_logical_slot = \"pg1\", slot = \"cdc\"\n  \
    skip_transaction = \"copy\"    (ALTER SUBSCRIPTION copy SKIP: its worker skips the transaction it failed on)";

/// The run's timing, for checking fault times.
struct Timing {
    duration_ns: u64,
    settle_ns: u64,
}

/// Every `[[faults]]`: the scheduled ones sorted by `at` (stable), and the `random = { … }`
/// ones in file order.
pub(crate) fn read_faults(
    top: &Section,
    nodes: &[String],
    duration_ns: u64,
    settle_ns: u64,
    source: &str,
) -> Result<(Vec<Fault>, Vec<RandomFaults>), Diag> {
    let Some(field) = top.get("faults") else {
        return Ok((Vec::new(), Vec::new()));
    };
    let items = field.array("[{ at = \"20s\", crash = \"pg1\" }] (or use [[faults]] tables)")?;
    let timing = Timing { duration_ns, settle_ns };
    let mut faults = Vec::with_capacity(items.len());
    let mut random = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let fault_field = field.item(index, item);
        let section = fault_field.section()?;
        if section.get("random").is_some() {
            random.push(read_random(&section, nodes, &timing, source)?);
        } else {
            faults.push(read_fault(&section, nodes, &timing, source)?);
        }
    }
    faults.sort_by_key(|fault| fault.at_ns);
    Ok((faults, random))
}

const RANDOM_KEYS: &[&str] = &["rate", "kinds", "from", "until", "nodes", "for", "factor"];

const RANDOM_HELP: &str = "random faults are written\n  \
    random = { rate = \"1/10s\", kinds = [\"crash\", \"partition\", \"slow_disk\", \"reset\", \"pause\", \"partition_dcs\"] }\n\
    optionally with from = \"5s\", until = \"50s\" (default: the whole duration), nodes = [\"pg2\"] (default: every node),\n\
    for = \"2s\" or a distribution (how long each fault lasts; default uniform 1s..5s), factor = 10.0 (slow_disk)";

/// `[[faults]] random = { rate = "1/10s", kinds = [...] }`.
fn read_random(s: &Section, nodes: &[String], timing: &Timing, source: &str) -> Result<RandomFaults, Diag> {
    if let Some((key, _)) = s.table.entries.iter().find(|(key, _)| key.name != "random") {
        return Err(Diag::new(
            format!("a random fault takes all its settings inside `random = {{ … }}`; found `{}` beside it", key.name),
            key.span.clone(),
        )
        .help(format!("{RANDOM_HELP}\n(a random fault has no `at`: use `from` and `until` inside the table)")));
    }
    let field = s.get("random").expect("checked by the caller");
    let r = field.section()?;
    r.check_keys_with_help(RANDOM_KEYS, |_| false, RANDOM_HELP)?;
    let rate_per_sec = read_fault_rate(&r.required("rate", "rate = \"1/10s\"")?)?;
    let kinds = read_kinds(&r.required("kinds", "kinds = [\"crash\", \"partition\"]")?, nodes)?;
    let from_ns = r.opt("from", Field::duration_ns)?.unwrap_or(0);
    let until_ns = match r.get("until") {
        None => timing.duration_ns,
        Some(until) => {
            let ns = until.duration_ns()?;
            if ns > timing.duration_ns {
                return Err(until
                    .error(format!(
                        "random faults must heal before `settle`, but `until` ({}) is after `duration` ({})",
                        format_duration_ns(ns),
                        format_duration_ns(timing.duration_ns)
                    ))
                    .help(format!(
                        "use an `until` of at most {}, or omit it",
                        format_duration_ns(timing.duration_ns)
                    )));
            }
            ns
        }
    };
    if from_ns >= until_ns {
        let from = r.get("from").or_else(|| r.get("until"));
        let span = from.map_or_else(|| field.span(), |f| f.span());
        return Err(Diag::new(
            format!(
                "random faults start at `from` ({}) and must heal by `until` ({}): the window is empty",
                format_duration_ns(from_ns),
                format_duration_ns(until_ns)
            ),
            span,
        )
        .help("make `from` earlier than `until` (which defaults to `duration`)"));
    }
    let fault_nodes = match r.get("nodes") {
        None => (0..nodes.len()).collect(),
        Some(f) => read_node_list(&f, nodes)?,
    };
    let lasts = r.opt("for", read_dist)?.unwrap_or(Dist::Uniform { min_ns: 1_000_000_000, max_ns: 5_000_000_000 });
    let factor = match r.get("factor") {
        None => 10.0,
        Some(f) => {
            let factor = f.float("10.0")?;
            if factor < 1.0 {
                return Err(f
                    .error(format!("`factor` must be at least 1, found {factor}"))
                    .help("disk latencies are multiplied by `factor`; write e.g. `factor = 10.0`"));
            }
            f.float_in(1.0, MAX_SLOW_DISK_FACTOR, "10.0")?
        }
    };
    let span = s.span.clone().or_else(|| field.key_span.clone());
    let line = span.map_or(0, |span| line_col(source, span.start).0);
    Ok(RandomFaults { rate_per_sec, kinds, from_ns, until_ns, nodes: fault_nodes, lasts, factor, line })
}

const FAULT_RATE_HELP: &str =
    "a fault rate is a count per duration: \"1/10s\" (one every 10 s on average), \"3/min\", \"0.5/s\"";

/// `"1/10s"`, `"3/min"`, `"0.5/s"`: faults per second.
fn read_fault_rate(field: &Field) -> Result<f64, Diag> {
    let text = field.str("\"1/10s\"")?;
    let bad = |message: String| field.error(message).help(FAULT_RATE_HELP);
    let Some((count, per)) = text.split_once('/') else {
        return Err(bad(format!("`{text}` is not a fault rate: it has no `/`")));
    };
    let count: f64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c: &f64| c.is_finite() && *c > 0.0)
        .ok_or_else(|| bad(format!("the count `{}` in `{text}` must be a number above zero", count.trim())))?;
    let per = per.trim();
    let per_text =
        if per.starts_with(|c: char| c.is_ascii_digit() || c == '.') { per.to_string() } else { format!("1{per}") };
    let per_ns = parse_duration_ns(&per_text).map_err(|e| {
        field.error(format!("invalid `{}`: {}", field.path, e.message)).help(format!("{}; {FAULT_RATE_HELP}", e.help))
    })?;
    if per_ns == 0 {
        return Err(bad(format!("the duration in `{text}` must be above zero")));
    }
    Ok(count / (per_ns as f64 / 1e9))
}

fn read_kinds(field: &Field, nodes: &[String]) -> Result<Vec<RandomFaultKind>, Diag> {
    let valid: Vec<&str> = RandomFaultKind::ALL.iter().map(|k| k.name()).collect();
    let help = format!("the kinds of random fault are: {}", valid.join(", "));
    let items = field.array("[\"crash\", \"partition\"]")?;
    if items.is_empty() {
        return Err(field.error("`kinds` is empty").help(help));
    }
    let mut kinds = Vec::with_capacity(items.len());
    for item in items {
        let element = field.element(item);
        let name = element.str("\"crash\"")?;
        let Some(kind) = RandomFaultKind::ALL.into_iter().find(|k| k.name() == name) else {
            let suggestion = did_you_mean(name, valid.iter().copied());
            return Err(element
                .error(format!("unknown kind of random fault `{name}` in `{}`", field.path))
                .help(format!("{suggestion}{help}")));
        };
        if nodes.len() < 2
            && matches!(kind, RandomFaultKind::Partition | RandomFaultKind::Reset | RandomFaultKind::DoubleCrash)
        {
            return Err(element
                .error(format!("a `{name}` fault needs at least two nodes, and the cluster has one"))
                .help("remove it from `kinds`, or add nodes to `cluster.nodes`"));
        }
        kinds.push(kind);
    }
    Ok(kinds)
}

/// `["pg1", "pg2"]`: at least one node, each once.
fn read_node_list(field: &Field, nodes: &[String]) -> Result<Vec<usize>, Diag> {
    let items = field.array("[\"pg2\", \"pg3\"]")?;
    if items.is_empty() {
        return Err(field
            .error(format!("`{}` is empty", field.path))
            .help("list at least one node, or omit `nodes` for every node"));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let element = field.element(item);
        let node = element.node(nodes)?;
        if out.contains(&node) {
            return Err(element
                .error(format!("`{}` is listed twice in `{}`", nodes[node], field.path))
                .help("list each node once"));
        }
        out.push(node);
    }
    Ok(out)
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
    let owners = [
        ("one_way", "partition"),
        ("factor", "slow_disk"),
        ("for", "slow_disk"),
        ("for", "pause"),
        ("for", "archive_down"),
        ("by", "clock_skew"),
        ("ppm", "clock_drift"),
    ];
    for (option, owner) in owners {
        if action == owner || owners.iter().any(|(o, w)| *o == option && *w == action) {
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
        "partition_dcs" => Ok(FaultKind::PartitionDcs { node: action.node(nodes)? }),
        "kill_dcs" => match action.bool()? {
            true => Ok(FaultKind::KillDcs),
            false => Err(action.error("`kill_dcs = false` does nothing").help("write `kill_dcs = true`")),
        },
        "archive_down" => match action.bool()? {
            true => {
                Ok(FaultKind::ArchiveDown { for_ns: s.required("for", "for = \"10min\"")?.positive_duration_ns()? })
            }
            false => Err(action.error("`archive_down = false` does nothing").help("write `archive_down = true`")),
        },
        "pause" => Ok(FaultKind::Pause {
            node: action.node(nodes)?,
            for_ns: s.required("for", "for = \"40s\"")?.positive_duration_ns()?,
        }),
        "clock_skew" => Ok(FaultKind::ClockSkew {
            node: action.node(nodes)?,
            by_ns: s.required("by", "by = \"-5s\"")?.signed_duration_ns()?,
        }),
        "clock_drift" => Ok(FaultKind::ClockDrift {
            node: action.node(nodes)?,
            ppm: s.required("ppm", "ppm = 500.0")?.float_in(-MAX_CLOCK_DRIFT_PPM, MAX_CLOCK_DRIFT_PPM, "500.0")?,
        }),
        "promote" => Ok(FaultKind::Promote { node: action.node(nodes)? }),
        "switchover" => Ok(FaultKind::Switchover { node: action.node(nodes)? }),
        "add_standby" => Ok(FaultKind::AddStandby { node: action.node(nodes)? }),
        "fsync_error" => Ok(FaultKind::FsyncError { node: action.node(nodes)? }),
        "lose_disk" => Ok(FaultKind::LoseDisk { node: action.node(nodes)? }),
        "base_backup" => Ok(FaultKind::BaseBackup { node: action.node(nodes)? }),
        "lose_site" => Ok(FaultKind::LoseSite { nodes: read_node_list(action, nodes)? }),
        "restore" => super::restore::read_restore(action, nodes),
        "create_logical_slot" => {
            Ok(FaultKind::CreateLogicalSlot { node: action.node(nodes)?, slot: read_slot_name(s)? })
        }
        "drop_logical_slot" => Ok(FaultKind::DropLogicalSlot { node: action.node(nodes)?, slot: read_slot_name(s)? }),
        "skip_transaction" => Ok(FaultKind::SkipTransaction { subscription: action.str("\"copy\"")?.to_string() }),
        _ => {
            let (a, b) = read_node_pair(action, nodes)?;
            Ok(FaultKind::Reset { a, b })
        }
    }
}

/// `slot = "cdc"` (the default): PostgreSQL's slot names are lower-case letters, digits and
/// underscores, at most 63 of them (`ReplicationSlotValidateName`).
fn read_slot_name(s: &Section) -> Result<String, Diag> {
    let Some(field) = s.get("slot") else { return Ok("cdc".to_string()) };
    let name = field.str("\"cdc\"")?;
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.is_empty() || name.len() > 63 || !name.chars().all(valid) {
        return Err(field
            .error(format!("`slot = \"{name}\"` is not a valid replication slot name"))
            .help("use lower-case letters, digits and underscores, at most 63 of them: e.g. `slot = \"cdc\"`"));
    }
    Ok(name.to_string())
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
    factor_field.float_in(1.0, MAX_SLOW_DISK_FACTOR, "10.0")?;
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

const EXPECT_KEYS: &[&str] = &[
    "lost_acked_writes",
    "converged",
    "min_commits",
    "max_commit_p99",
    "max_lag_bytes_p99",
    "split_brain_writes",
    "max_unavailable",
    "min_failovers",
    "read_your_writes",
    "monotonic_reads",
    "max_stale_reads",
    "max_commit_wait",
    "liveness",
];

/// `lost_acked_writes = 0`, or per level: `lost_acked_writes = { off = 1000, local = 0 }`.
fn loss_bound(field: &Field) -> Result<LossBound, Diag> {
    let Ok(levels) = field.section() else {
        return Ok(LossBound::All(field.u64_at_least(0, "0 (or { off = 1000, local = 0 })")?));
    };
    let names: Vec<&str> = SyncCommitLevel::ALL.iter().map(|l| l.name()).collect();
    levels.check_keys_with_help(&names, |_| false, "the keys are synchronous_commit levels")?;
    let mut bound = [None; 5];
    for (i, name) in names.iter().enumerate() {
        bound[i] = levels.opt(name, |f| f.u64_at_least(0, "0"))?;
    }
    Ok(LossBound::PerLevel(bound))
}

pub(crate) fn read_expect(top: &Section) -> Result<Expect, Diag> {
    let Some(field) = top.get("expect") else {
        return Ok(Expect::default());
    };
    let s = field.section()?;
    s.check_keys(EXPECT_KEYS)?;
    Ok(Expect {
        lost_acked_writes: s.opt("lost_acked_writes", loss_bound)?,
        converged: s.opt("converged", Field::bool)?,
        min_commits: s.opt("min_commits", |f| f.u64_at_least(0, "1000"))?,
        max_commit_p99_ns: s.opt("max_commit_p99", Field::duration_ns)?,
        max_lag_bytes_p99: s.opt("max_lag_bytes_p99", Field::size_bytes)?,
        split_brain_writes: s.opt("split_brain_writes", |f| f.u64_at_least(0, "0"))?,
        max_unavailable_ns: s.opt("max_unavailable", Field::duration_ns)?,
        min_failovers: s.opt("min_failovers", |f| f.u64_at_least(0, "1"))?,
        read_your_writes: s.opt("read_your_writes", Field::bool)?,
        monotonic_reads: s.opt("monotonic_reads", Field::bool)?,
        max_stale_reads: s.opt("max_stale_reads", |f| f.u64_at_least(0, "0"))?,
        max_commit_wait_ns: s.opt("max_commit_wait", Field::duration_ns)?,
        liveness: s.opt("liveness", Field::bool)?.unwrap_or(true),
    })
}
