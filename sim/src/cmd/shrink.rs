//! `repsim shrink`: the smallest scenario that still fails the same way with the same seed.
//!
//! Delta debugging over what a failure usually does not need: faults (random ones are first
//! expanded into the concrete list this seed runs), fault times, duration and client count. A
//! candidate is kept when the run still violates the same invariant or expectation. The result
//! is written as a scenario file whose reproduce command is printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATED};

use crate::cmd::run::run_seed;
use crate::report::summary::RunFailure;
use crate::report::summary::Summary;
use crate::scenario::load_scenario;
use crate::scenario::model::{Fault, FaultKind, Scenario};

/// What a failing run is failing at: its first violated invariant, else its first failed
/// expectation, else the panic.
pub fn failure_signature(result: &Result<Summary, RunFailure>) -> Option<String> {
    match result {
        Err(_) => Some("panic".into()),
        Ok(s) if s.ok => None,
        Ok(s) => s
            .violations
            .first()
            .map(|v| format!("invariant {}", v.invariant))
            .or_else(|| s.expectations.iter().find(|e| !e.ok).map(|e| format!("expectation {}", e.name))),
    }
}

pub struct Shrunk {
    pub scenario: Scenario,
    pub signature: String,
    pub runs: u32,
}

fn still_fails(candidate: &Scenario, seed: u64, signature: &str, runs: &mut u32) -> bool {
    *runs += 1;
    failure_signature(&run_seed(candidate, seed, None)).as_deref() == Some(signature)
}

/// Shrinks `original` (which must fail with `seed`). `None` if it does not fail.
pub fn shrink(original: &Scenario, seed: u64) -> Option<Shrunk> {
    let signature = failure_signature(&run_seed(original, seed, None))?;
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
    // Duration: halve while it still fails and the faults still fit.
    loop {
        let mut candidate = best.clone();
        candidate.duration_ns /= 2;
        let end = candidate.duration_ns + candidate.settle_ns;
        if candidate.duration_ns < 1_000_000_000 || candidate.faults.iter().any(|f| f.at_ns >= end) {
            break;
        }
        if !still_fails(&candidate, seed, &signature, &mut runs) {
            break;
        }
        best = candidate;
    }
    // Clients: halve while it still fails.
    while best.workload.clients > 1 {
        let mut candidate = best.clone();
        candidate.workload.clients /= 2;
        if !still_fails(&candidate, seed, &signature, &mut runs) {
            break;
        }
        best = candidate;
    }
    Some(Shrunk { scenario: best, signature, runs })
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
        FaultKind::Pause { node, for_ns } => format!("pause = {}, for = \"{}\"", n(*node), secs(*for_ns)),
        FaultKind::ClockSkew { node, by_ns } => format!("clock_skew = {}, by = \"{}ms\"", n(*node), by_ns / 1_000_000),
        FaultKind::ClockDrift { node, ppm } => format!("clock_drift = {}, ppm = {ppm:?}", n(*node)),
        FaultKind::Promote { node } => format!("promote = {}", n(*node)),
        FaultKind::Switchover { node } => format!("switchover = {}", n(*node)),
        FaultKind::AddStandby { node } => format!("add_standby = {}", n(*node)),
        FaultKind::FsyncError { node } => format!("fsync_error = {}", n(*node)),
        FaultKind::LoseDisk { node } => format!("lose_disk = {}", n(*node)),
    };
    format!("{{ at = \"{}\", {action} }}", secs(fault.at_ns))
}

/// The `--set` overrides that turn the original file into the shrunk scenario.
pub fn shrink_overrides(shrunk: &Scenario) -> Vec<String> {
    let faults: Vec<String> = shrunk.faults.iter().map(|f| fault_toml(f, &shrunk.cluster.nodes)).collect();
    let mut overrides = shrunk.overrides.clone();
    overrides.push(format!("duration={}", secs(shrunk.duration_ns)));
    overrides.push(format!("workload.clients={}", shrunk.workload.clients));
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

pub fn shrink_command(path: PathBuf, seed: u64, overrides: Vec<String>, out: PathBuf) -> ExitCode {
    let scenario = match load_scenario(&path, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let Some(shrunk) = shrink(&scenario, seed) else {
        println!("{} seed {seed} does not fail: nothing to shrink", path.display());
        return ExitCode::from(EXIT_OK);
    };
    let dir = out.join(&scenario.name).join("shrink");
    match write_shrunk(&path, &shrunk.scenario, &dir) {
        Ok(file) => {
            println!(
                "{} seed {seed} fails with {}; shrunk in {} runs to {} faults, {} s, {} clients",
                path.display(),
                shrunk.signature,
                shrunk.runs,
                shrunk.scenario.faults.len(),
                shrunk.scenario.duration_ns / 1_000_000_000,
                shrunk.scenario.workload.clients
            );
            println!("reproduce: repsim run {} --seed {seed}", file.display());
            ExitCode::from(EXIT_VIOLATED)
        }
        Err(e) => {
            eprintln!("error: cannot write the shrunk scenario: {e}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}
