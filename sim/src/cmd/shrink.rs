//! `repsim shrink`: the smallest scenario that still fails the same way with the same seed.
//!
//! Delta debugging over what a failure usually does not need: faults (random ones are first
//! expanded into the concrete list this seed runs), fault times, duration and client count. A
//! candidate is kept when the run still violates the same invariant or expectation. The result
//! is written as a scenario file whose reproduce command is printed.

use crate::cmd::exit::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATED};

use crate::cmd::run::run_seed;
use crate::report::summary::RunFailure;
use crate::report::summary::Summary;
use crate::scenario::load_scenario;
use crate::scenario::model::{Fault, FaultKind, RestoreTarget, Scenario};

/// Every check a run fails, named as the report names them: its `[expect]` entries first, in
/// file order (what the user wrote about this scenario), then the invariants, in the verdict's
/// order (safety first); `panic` for a run that panicked. Empty for a passing run.
pub fn failing_checks(result: &Result<Summary, RunFailure>) -> Vec<String> {
    match result {
        Err(_) => vec!["panic".into()],
        Ok(s) => {
            let mut out: Vec<String> =
                s.expectations.iter().filter(|e| !e.ok).map(|e| format!("expectation {}", e.name)).collect();
            for v in &s.violations {
                let name = format!("invariant {}", v.invariant);
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            out
        }
    }
}

/// What a failing run is failing at: its first failing check (see [`failing_checks`]).
pub fn failure_signature(result: &Result<Summary, RunFailure>) -> Option<String> {
    failing_checks(result).into_iter().next()
}

pub struct Shrunk {
    pub scenario: Scenario,
    /// The failing check every candidate kept.
    pub signature: String,
    /// The other checks the original run failed.
    pub also_failing: Vec<String>,
    pub runs: u32,
}

fn still_fails(candidate: &Scenario, seed: u64, signature: &str, runs: &mut u32) -> bool {
    *runs += 1;
    failing_checks(&run_seed(candidate, seed, None)).iter().any(|c| c == signature)
}

/// `keep` as a user writes it (`lost_acked_writes`, `invariant read_your_writes`) matched
/// against the failing checks.
fn chosen(failing: &[String], keep: &str) -> Option<String> {
    failing.iter().find(|c| c.as_str() == keep || c.split_once(' ').is_some_and(|(_, name)| name == keep)).cloned()
}

/// Shrinks `original` (which must fail with `seed`), keeping the failure of the check `keep`
/// (default: the first failing check). `Ok(None)` if it does not fail; `Err` with the failing
/// checks if `keep` is not one of them.
pub fn shrink_keeping(original: &Scenario, seed: u64, keep: Option<&str>) -> Result<Option<Shrunk>, Vec<String>> {
    let failing = failing_checks(&run_seed(original, seed, None));
    let Some(first) = failing.first().cloned() else { return Ok(None) };
    let signature = match keep {
        None => first,
        Some(keep) => chosen(&failing, keep).ok_or_else(|| failing.clone())?,
    };
    let also_failing = failing.into_iter().filter(|c| *c != signature).collect();
    let mut runs = 1;
    let mut best = original.clone();
    best.faults = crate::world::nemesis::concrete_faults(original, seed);
    best.random_faults.clear();
    // Faults: drop chunks, halving the chunk size (ddmin), then each one.
    let mut chunk = best.faults.len().max(1);
    while chunk >= 1 && !best.faults.is_empty() {
        let mut start = 0;
        while start < best.faults.len() {
            let mut candidate = best.clone();
            let end = (start + chunk).min(candidate.faults.len());
            candidate.faults.drain(start..end);
            if still_fails(&candidate, seed, &signature, &mut runs) {
                best = candidate;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 {
            break;
        }
        chunk /= 2;
    }
    // Fault times: earlier is simpler to read (and shortens what comes before).
    for index in 0..best.faults.len() {
        let mut candidate = best.clone();
        candidate.faults[index].at_ns /= 2;
        candidate.faults.sort_by_key(|f| f.at_ns);
        if still_fails(&candidate, seed, &signature, &mut runs) {
            best = candidate;
        }
    }
    shorten_duration(&mut best, seed, &signature, &mut runs);
    // Clients: halve while it still fails.
    while best.workload.clients > 1 {
        let mut candidate = best.clone();
        candidate.workload.clients /= 2;
        candidate.workload.fit_session_levels();
        if !still_fails(&candidate, seed, &signature, &mut runs) {
            break;
        }
        best = candidate;
    }
    Ok(Some(Shrunk { scenario: best, signature, also_failing, runs }))
}

/// Shrinks keeping the first failing check; `None` if `original` passes with `seed`.
pub fn shrink(original: &Scenario, seed: u64) -> Option<Shrunk> {
    shrink_keeping(original, seed, None).ok().flatten()
}

/// The shortest duration (to about a sixteenth, never under 1 s or before the last fault)
/// that still fails: a bisection, so a failure at 30 s of a 60 s run ends near 30 s, where
/// halving alone would stop at 60 s.
fn shorten_duration(best: &mut Scenario, seed: u64, signature: &str, runs: &mut u32) {
    const SECOND_NS: u64 = 1_000_000_000;
    let last_fault_ns = best.faults.iter().map(|f| f.at_ns).max().unwrap_or(0);
    // Faults may fall in the settle phase; the scenario must still hold them.
    let mut lo = SECOND_NS.max(last_fault_ns.saturating_sub(best.settle_ns));
    let mut hi = best.duration_ns;
    while hi > lo && hi - lo > SECOND_NS.max(hi / 16) {
        let mid = lo + (hi - lo) / 2;
        let mut candidate = best.clone();
        candidate.duration_ns = mid;
        if still_fails(&candidate, seed, signature, runs) {
            hi = mid;
            *best = candidate;
        } else {
            lo = mid;
        }
    }
}

fn secs(ns: u64) -> String {
    format!("{}ms", ns / 1_000_000)
}

/// One fault as a TOML inline table, in the scenario file's own syntax.
pub fn fault_toml(fault: &Fault, names: &[String]) -> String {
    let n = |i: usize| format!("\"{}\"", names[i]);
    let group = |g: &[usize]| format!("[{}]", g.iter().map(|&i| n(i)).collect::<Vec<_>>().join(", "));
    let action = match &fault.kind {
        FaultKind::Crash { node } => format!("crash = {}", n(*node)),
        FaultKind::Restart { node } => format!("restart = {}", n(*node)),
        FaultKind::Partition { a, b, one_way } => {
            format!("partition = [{}, {}], one_way = {one_way}", group(a), group(b))
        }
        FaultKind::Heal => "heal = true".into(),
        FaultKind::SlowDisk { node, factor, for_ns } => {
            format!("slow_disk = {}, factor = {factor:?}, for = \"{}\"", n(*node), secs(*for_ns))
        }
        FaultKind::Reset { a, b } => format!("reset = [{}, {}]", n(*a), n(*b)),
        FaultKind::PartitionDcs { node } => format!("partition_dcs = {}", n(*node)),
        FaultKind::KillDcs => "kill_dcs = true".into(),
        FaultKind::ArchiveDown { for_ns } => format!("archive_down = true, for = \"{}\"", secs(*for_ns)),
        FaultKind::Pause { node, for_ns } => format!("pause = {}, for = \"{}\"", n(*node), secs(*for_ns)),
        FaultKind::ClockSkew { node, by_ns } => format!("clock_skew = {}, by = \"{}ms\"", n(*node), by_ns / 1_000_000),
        FaultKind::ClockDrift { node, ppm } => format!("clock_drift = {}, ppm = {ppm:?}", n(*node)),
        FaultKind::Promote { node } => format!("promote = {}", n(*node)),
        FaultKind::Switchover { node } => format!("switchover = {}", n(*node)),
        FaultKind::AddStandby { node } => format!("add_standby = {}", n(*node)),
        FaultKind::CreateLogicalSlot { node, slot } => format!("create_logical_slot = {}, slot = \"{slot}\"", n(*node)),
        FaultKind::DropLogicalSlot { node, slot } => format!("drop_logical_slot = {}, slot = \"{slot}\"", n(*node)),
        FaultKind::SkipTransaction { subscription } => format!("skip_transaction = \"{subscription}\""),
        FaultKind::FsyncError { node } => format!("fsync_error = {}", n(*node)),
        FaultKind::LoseDisk { node } => format!("lose_disk = {}", n(*node)),
        FaultKind::BaseBackup { node } => format!("base_backup = {}", n(*node)),
        FaultKind::LoseSite { nodes } => format!("lose_site = {}", group(nodes)),
        FaultKind::Restore { node, target } => {
            let target = match target {
                RestoreTarget::Latest => "target = \"latest\"".to_string(),
                RestoreTarget::TimeNs(ns) => format!("target_time = \"{}\"", secs(*ns)),
                RestoreTarget::Lsn(lsn) => format!("target_lsn = \"{}\"", repsim_engine::Lsn(*lsn)),
            };
            format!("restore = {{ node = {}, {target} }}", n(*node))
        }
    };
    format!("{{ at = \"{}\", {action} }}", secs(fault.at_ns))
}

/// The `--set` overrides that turn the original file into the shrunk scenario.
pub fn shrink_overrides(shrunk: &Scenario) -> Vec<String> {
    let faults: Vec<String> = shrunk.faults.iter().map(|f| fault_toml(f, &shrunk.cluster.nodes)).collect();
    let mut overrides = shrunk.overrides.clone();
    overrides.push(format!("duration={}", secs(shrunk.duration_ns)));
    overrides.push(format!("workload.clients={}", shrunk.workload.clients));
    if !shrunk.workload.session_synchronous_commit.is_empty() {
        overrides.push(format!("workload.session_synchronous_commit={}", shrunk.workload.session_levels_toml()));
    }
    overrides.push(format!("faults=[{}]", faults.join(", ")));
    overrides
}

/// Writes the shrunk scenario as a file: the original text with the shrunk values set.
pub fn write_shrunk(original_path: &Path, shrunk: &Scenario, out: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(original_path).map_err(|e| format!("{}: {e}", original_path.display()))?;
    let mut table: toml::Table = text.parse().map_err(|e| format!("{}: {e}", original_path.display()))?;
    for o in shrink_overrides(shrunk) {
        let (key, value) = o.split_once('=').ok_or_else(|| format!("bad override {o}"))?;
        let value: toml::Value = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.to_string()));
        set_path(&mut table, key, value);
    }
    let body = toml::to_string(&table).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let file = out.join(format!("{}-shrunk.toml", shrunk.name));
    let header = format!(
        "# Shrunk by `repsim shrink {}`: the smallest variant found that still fails the same way.\n",
        original_path.display()
    );
    std::fs::write(&file, header + &body).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(file)
}

fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("non-empty key");
    let mut here = table;
    for part in parts {
        let entry = here.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(next) = entry else { return };
        here = next;
    }
    here.insert(last.to_string(), value);
}

pub fn shrink_command(
    path: PathBuf,
    seed: u64,
    overrides: Vec<String>,
    keep: Option<String>,
    out: PathBuf,
) -> ExitCode {
    let scenario = match load_scenario(&path, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let shrunk = match shrink_keeping(&scenario, seed, keep.as_deref()) {
        Ok(Some(shrunk)) => shrunk,
        Ok(None) => {
            say!("{} seed {seed} does not fail: nothing to shrink", path.display());
            return ExitCode::from(EXIT_OK);
        }
        Err(failing) => {
            eprintln!(
                "error: --keep {}: seed {seed} does not fail that check\nhelp: it fails: {}",
                keep.unwrap_or_default(),
                failing.join(", ")
            );
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let dir = out.join(&scenario.name).join("shrink");
    match write_shrunk(&path, &shrunk.scenario, &dir) {
        Ok(file) => {
            say!(
                "{} seed {seed}: kept the failure of `{}`; shrunk in {} runs to {} faults, {:.1} s, {} clients",
                path.display(),
                shrunk.signature,
                shrunk.runs,
                shrunk.scenario.faults.len(),
                shrunk.scenario.duration_ns as f64 / 1e9,
                shrunk.scenario.workload.clients
            );
            if !shrunk.also_failing.is_empty() {
                let names: Vec<&str> =
                    shrunk.also_failing.iter().map(|c| c.split_once(' ').map_or(c.as_str(), |(_, n)| n)).collect();
                say!(
                    "the original run also failed: {} (keep one of those instead with --keep {})",
                    shrunk.also_failing.join(", "),
                    names[0]
                );
            }
            say!("reproduce: repsim run {} --seed {seed}", file.display());
            ExitCode::from(EXIT_VIOLATED)
        }
        Err(e) => {
            eprintln!("error: cannot write the shrunk scenario: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
