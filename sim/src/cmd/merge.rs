//! `repsim merge DIR…`: the shards of one sweep (`repsim sweep --shard I/N`, run on as many
//! machines) combined into what a single sweep of the whole range writes: `seeds.jsonl`,
//! `summary.{md,json}`, `distributions.svg` and the failing-seed list, in
//! `<out>/<scenario>/sweep/`. It refuses shards of different scenarios, overrides, seed ranges
//! or builds, and a set that misses a shard.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::exit::{say, say_raw, EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATED};
use crate::cmd::sweep::{shard_seeds, write_sweep, SeedLines};
use crate::report::sweep::{sweep_dir, SeedRange, SeedResult, SeedRun, Shard, StoppedBy, SweepIdentity, SweepSummary};

/// One shard's folder, read back.
struct ShardOutput {
    dir: PathBuf,
    identity: SweepIdentity,
    range: SeedRange,
    shard: Shard,
    results: Vec<SeedResult>,
    stopped_by: Option<StoppedBy>,
}

/// What merge reads of a shard's `summary.json` (a `SweepSummary`).
#[derive(serde::Deserialize)]
struct ShardHeader {
    scenario: String,
    source: String,
    overrides: Vec<String>,
    scenario_fingerprint: String,
    build: String,
    seeds: String,
    shard: Option<String>,
    stopped_by: Option<StoppedBy>,
}

fn read_shard(dir: &Path) -> Result<ShardOutput, String> {
    let at = |file: &str| dir.join(file);
    let in_file = |file: &str, e: &dyn std::fmt::Display| format!("{}: {e}", at(file).display());
    let text = std::fs::read_to_string(at("summary.json")).map_err(|e| in_file("summary.json", &e))?;
    let h: ShardHeader = serde_json::from_str(&text).map_err(|e| in_file("summary.json", &e))?;
    let shard = h.shard.ok_or(format!("{} is not a shard (it was swept without --shard)", dir.display()))?;
    let lines = std::fs::read_to_string(at("seeds.jsonl")).map_err(|e| in_file("seeds.jsonl", &e))?;
    let results = lines
        .lines()
        .enumerate()
        .map(|(i, line)| {
            SeedResult::from_json_line(line).map_err(|e| format!("{}:{}: {e}", at("seeds.jsonl").display(), i + 1))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ShardOutput {
        dir: dir.to_path_buf(),
        identity: SweepIdentity {
            scenario: h.scenario,
            source: h.source,
            overrides: h.overrides,
            scenario_fingerprint: h.scenario_fingerprint,
            build: h.build,
        },
        range: SeedRange::parse(&h.seeds)?,
        shard: Shard::parse(&shard)?,
        results,
        stopped_by: h.stopped_by,
    })
}

/// The shards as one sweep: checked to belong together and to cover the range once.
fn combine(mut shards: Vec<ShardOutput>) -> Result<(SweepIdentity, SeedRange, SeedRun), String> {
    let first = shards.first().ok_or("no shard folders given")?;
    let (identity, range, count) = (first.identity.clone(), first.range, first.shard.count);
    for s in &shards {
        let differs =
            |what: &str| format!("{} and {} are shards of different {what}", first.dir.display(), s.dir.display());
        if s.identity.overrides != identity.overrides {
            return Err(differs("overrides"));
        }
        if s.identity.scenario != identity.scenario || s.identity.scenario_fingerprint != identity.scenario_fingerprint
        {
            return Err(differs("scenarios (or the same scenario file, edited)"));
        }
        if s.identity.build != identity.build {
            return Err(differs("builds of repsim (merge the outputs of one binary)"));
        }
        if s.range != range || s.shard.count != count {
            return Err(differs("seed ranges or shard counts"));
        }
    }
    let mut by_index: BTreeMap<u64, &ShardOutput> = BTreeMap::new();
    for s in &shards {
        if by_index.insert(s.shard.index, s).is_some() {
            return Err(format!("shard {}/{count} is given twice", s.shard.index));
        }
    }
    let missing: Vec<String> =
        (1..=count).filter(|i| !by_index.contains_key(i)).map(|i| format!("{i}/{count}")).collect();
    if !missing.is_empty() {
        return Err(format!("missing shards: {} (merge all {count} shards of the sweep)", missing.join(", ")));
    }
    let mut run = SeedRun { results: Vec::new(), not_run: Vec::new(), stopped_by: None };
    for s in &mut shards {
        let ran: std::collections::BTreeSet<u64> = s.results.iter().map(|r| r.seed).collect();
        run.not_run.extend(shard_seeds(range, Some(s.shard)).into_iter().filter(|seed| !ran.contains(seed)));
        run.stopped_by = std::cmp::max(run.stopped_by, s.stopped_by);
        run.results.append(&mut s.results);
    }
    run.results.sort_by_key(|r| r.seed);
    run.not_run.sort_unstable();
    Ok((identity, range, run))
}

pub fn merge_command(dirs: Vec<PathBuf>, out: PathBuf) -> ExitCode {
    let merged = dirs.iter().map(|d| read_shard(d)).collect::<Result<Vec<_>, _>>().and_then(combine);
    let (identity, range, run) = match merged {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let dir = sweep_dir(&out, &identity.scenario, None);
    let summary = SweepSummary::from_parts(identity, range, None, &run);
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| SeedLines::create(&dir.join("seeds.jsonl")))
        .and_then(|lines| {
            for (i, result) in run.results.iter().enumerate() {
                lines.finished(i, result.json_line(&summary.scenario));
            }
            lines.finish()
        })
        .and_then(|()| write_sweep(&dir, &run, &summary));
    if let Err(e) = written {
        eprintln!("error: cannot write the merged sweep to {}: {e}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    say_raw!("{}", summary.render_text());
    say!("report: {}", dir.display());
    ExitCode::from(if summary.all_passed() { EXIT_OK } else { EXIT_VIOLATED })
}
