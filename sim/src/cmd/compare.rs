//! `repsim compare`: one scenario under several settings, side by side.
//!
//! `--set key=v1,v2,…` gives the values of one setting; with several `--set`, every
//! combination runs (the first key varies slowest). Every combination runs the same seeds, and
//! since every random draw comes from a stream named by its purpose (`workload`, `faults`,
//! `network`, …), each seed sees the same workload and the same faults under every value:
//! the differences are the setting's, not the dice's (common random numbers).
//!
//! Output, under `<out>/<scenario>/compare/`: `compare.md` (the table, also printed),
//! `compare.json` (every seed's figures) and `compare.svg` (one panel per figure, a bar per
//! combination: the mean over seeds, with the min–max range).
//!
//! Exit 0 unless the input is bad (2) or a run panicked (1): a comparison measures, it does not
//! gate, so violated expectations are reported (the `runs ok` column), not failed on.

use crate::cmd::exit::{say, say_raw};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_OK, EXIT_VIOLATED};
use crate::cmd::progress::Progress;
use crate::cmd::run::run_seed;
use crate::cmd::sweep::{default_jobs, parallel_map};
use crate::report::compare::{
    compare_dir, render_markdown, render_table, Combination, Comparison, Figures, Panicked, Row,
};
use crate::report::sweep::SeedRange;
use crate::scenario::{load_scenario, Scenario};

/// One `--set key=v1,v2,…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<String>,
}

impl Axis {
    /// Parses `key=v1,v2,…`. Commas inside `{…}`, `[…]` or quotes do not split, so an inline
    /// TOML table or array is one value: `network.latency={ dist = "constant", value = "5ms" },2ms`.
    pub fn parse(text: &str) -> Result<Axis, String> {
        let Some((key, values)) = text.split_once('=') else {
            return Err(format!("--set {text}: expected KEY=V1,V2,… (e.g. replication.synchronous_commit=off,on)"));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("--set {text}: the key before `=` is empty"));
        }
        let values = split_values(values)?;
        if values.iter().any(|v| v.is_empty()) {
            return Err(format!("--set {text}: an empty value (two commas in a row, or a trailing comma)"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = values.iter().find(|v| !seen.insert(v.as_str())) {
            return Err(format!("--set {text}: the value `{dup}` is listed twice"));
        }
        Ok(Axis { key: key.to_string(), values })
    }

    /// The last segment of the key: `synchronous_commit` for `replication.synchronous_commit`.
    pub fn short_key(&self) -> &str {
        self.key.rsplit('.').next().unwrap_or(&self.key)
    }
}

/// Splits on the commas that are not inside brackets, braces or quotes; values are trimmed.
pub fn split_values(text: &str) -> Result<Vec<String>, String> {
    let mut values = Vec::new();
    let mut current = String::new();
    let mut depth: i32 = 0;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '{' | '[') => depth += 1,
            (None, '}' | ']') => depth -= 1,
            (None, ',') if depth == 0 => {
                values.push(current.trim().to_string());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if quote.is_some() || depth != 0 {
        return Err(format!("`{text}`: unbalanced quotes, brackets or braces"));
    }
    values.push(current.trim().to_string());
    Ok(values)
}

/// Every combination of the axes' values; the first axis varies slowest.
pub fn combinations(axes: &[Axis]) -> Vec<Combination> {
    let mut combos: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
    for (a, axis) in axes.iter().enumerate() {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                (0..axis.values.len()).map(move |v| {
                    let mut c = prefix.clone();
                    c.push((a, v));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|picks| {
            let overrides = picks.iter().map(|&(a, v)| format!("{}={}", axes[a].key, axes[a].values[v])).collect();
            let varying: Vec<&str> = picks
                .iter()
                .filter(|&&(a, _)| axes[a].values.len() > 1)
                .map(|&(a, v)| axes[a].values[v].as_str())
                .collect();
            let label = if varying.is_empty() { "(as set)".to_string() } else { varying.join(", ") };
            Combination { overrides, label }
        })
        .collect()
}

/// Loads the scenario under every combination (any error is bad input), before running any.
pub fn load_all(path: &Path, combos: &[Combination]) -> Result<Vec<Scenario>, String> {
    combos.iter().map(|c| load_scenario(path, &c.overrides).map_err(|e| e.to_string())).collect()
}

/// Runs every `(combination, seed)` on `jobs` threads. Results are in combination then seed
/// order whatever the thread timing.
pub fn run_comparison(
    path: &Path,
    axes: &[Axis],
    seeds: &[u64],
    jobs: usize,
    progress: &Progress,
) -> Result<Comparison, String> {
    let combos = combinations(axes);
    let scenarios = load_all(path, &combos)?;
    let work_items: Vec<(usize, u64)> = (0..combos.len()).flat_map(|c| seeds.iter().map(move |&s| (c, s))).collect();
    let never = || false;
    let work = |&(c, seed): &(usize, u64)| {
        let result = run_seed(&scenarios[c], seed, None);
        progress.finish_one(result.is_err());
        result.map(|summary| Figures::of(&summary))
    };
    let results = parallel_map(&work_items, jobs, &never, &work);
    let mut rows: Vec<Row> =
        combos.into_iter().map(|combination| Row { combination, runs: Vec::new(), panicked: Vec::new() }).collect();
    for (&(c, seed), result) in work_items.iter().zip(results) {
        match result.expect("every item runs: nothing stops a comparison early") {
            Ok(figures) => rows[c].runs.push(figures),
            Err(failure) => {
                rows[c].panicked.push(Panicked { seed, error: failure.message, reproduce: failure.reproduce })
            }
        }
    }
    let name = scenarios.first().map_or(String::new(), |s| s.name.clone());
    let mut command = format!("repsim compare {}", path.display());
    for axis in axes {
        command.push_str(&format!(" --set '{}={}'", axis.key, axis.values.join(",")));
    }
    if let (Some(first), Some(last)) = (seeds.first(), seeds.last()) {
        command.push_str(&format!(" --seeds {first}..={last}"));
    }
    Ok(Comparison {
        scenario: name,
        source_path: path.display().to_string(),
        axes: axes.iter().map(|a| (a.key.clone(), a.values.clone())).collect(),
        seeds: seeds.to_vec(),
        command,
        rows,
    })
}

pub struct CompareArgs {
    pub scenario: PathBuf,
    pub sets: Vec<String>,
    pub seeds: String,
    pub jobs: Option<usize>,
    pub out: PathBuf,
    pub quiet: bool,
}

pub fn compare_command(args: CompareArgs) -> ExitCode {
    let bad = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_BAD_INPUT)
    };
    let axes = match args.sets.iter().map(|s| Axis::parse(s)).collect::<Result<Vec<_>, _>>() {
        Ok(axes) => axes,
        Err(e) => return bad(e),
    };
    let mut keys = std::collections::BTreeSet::new();
    if let Some(dup) = axes.iter().find(|a| !keys.insert(a.key.as_str())) {
        return bad(format!("--set {}: the key is given twice; list all its values in one --set", dup.key));
    }
    let range = match SeedRange::parse(&args.seeds) {
        Ok(r) => r,
        Err(e) => return bad(e),
    };
    let jobs = match default_jobs(args.jobs) {
        Ok(j) => j,
        Err(e) => return bad(e),
    };
    let seeds: Vec<u64> = (range.start..range.end).collect();
    let combos = combinations(&axes);
    // Validate every combination before running anything: a typo is exit 2, not a half run.
    if let Err(e) = load_all(&args.scenario, &combos) {
        eprintln!("{e}");
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    let total = (combos.len() * seeds.len()) as u64;
    let name = args.scenario.file_stem().map_or("compare".into(), |s| s.to_string_lossy().into_owned());
    let progress = Progress::new(total, &format!("compare {name}"), args.quiet);
    let comparison = match run_comparison(&args.scenario, &axes, &seeds, jobs, &progress) {
        Ok(c) => c,
        Err(e) => {
            progress.finish();
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    progress.finish();
    let dir = compare_dir(&args.out, &comparison.scenario);
    say_raw!("{}", render_table(&comparison));
    for row in &comparison.rows {
        for p in &row.panicked {
            eprintln!(
                "error: {} seed {} panicked: {}\nreproduce: {}",
                row.combination.label, p.seed, p.error, p.reproduce
            );
        }
    }
    if let Err(e) = write_comparison(&dir, &comparison) {
        eprintln!("error: cannot write the comparison to {}: {e}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    say!("report: {}", dir.display());
    ExitCode::from(if comparison.panicked() > 0 { EXIT_VIOLATED } else { EXIT_OK })
}

/// Writes `compare.md`, `compare.json` and `compare.svg` into `dir`.
pub fn write_comparison(dir: &Path, c: &Comparison) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("compare.md"), render_markdown(c))?;
    let json = serde_json::to_string_pretty(c).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("compare.json"), json + "\n")?;
    std::fs::write(dir.join("compare.svg"), crate::report::plot::compare::compare_svg(c)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::Stat;

    #[test]
    fn values_split_on_top_level_commas_only() {
        assert_eq!(split_values("off,local, on").unwrap(), ["off", "local", "on"]);
        assert_eq!(
            split_values(r#"{ dist = "constant", value = "5ms" },2ms"#).unwrap(),
            [r#"{ dist = "constant", value = "5ms" }"#, "2ms"]
        );
        assert_eq!(split_values(r#"["a", "b"],"x,y""#).unwrap(), [r#"["a", "b"]"#, r#""x,y""#]);
        assert!(split_values("{ a = 1").is_err());
        assert!(split_values("\"open").is_err());
    }

    #[test]
    fn bad_axes_are_refused_with_the_set_named() {
        assert!(Axis::parse("replication.synchronous_commit").unwrap_err().contains("KEY=V1,V2"));
        assert!(Axis::parse("=on").is_err());
        assert!(Axis::parse("k=a,,b").unwrap_err().contains("empty value"));
        assert!(Axis::parse("k=a,b,a").unwrap_err().contains("twice"));
        let axis = Axis::parse("replication.synchronous_commit=off,on").unwrap();
        assert_eq!(axis.short_key(), "synchronous_commit");
        assert_eq!(axis.values, ["off", "on"]);
    }

    #[test]
    fn every_combination_once_first_key_slowest() {
        let axes = [Axis::parse("a.x=1,2").unwrap(), Axis::parse("b=p,q,r").unwrap(), Axis::parse("c=z").unwrap()];
        let combos = combinations(&axes);
        assert_eq!(combos.len(), 6);
        assert_eq!(combos[0].overrides, ["a.x=1", "b=p", "c=z"]);
        assert_eq!(combos[1].label, "1, q");
        assert_eq!(combos[5].overrides, ["a.x=2", "b=r", "c=z"]);
        let labels: std::collections::BTreeSet<_> = combos.iter().map(|c| c.label.clone()).collect();
        assert_eq!(labels.len(), 6);
    }

    #[test]
    fn stats_show_a_range_only_when_seeds_differ() {
        let s = Stat::of([1e6, 3e6]).unwrap();
        assert_eq!(s.mean, 2e6);
        assert_eq!(s.text(1e6, 2), "2.00 (1.00–3.00)");
        assert_eq!(Stat::of([5.0, 5.0]).unwrap().text(1.0, 1), "5.0");
        assert_eq!(Stat::of(std::iter::empty()), None);
    }
}
