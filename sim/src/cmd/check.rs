//! `repsim check`: the CI gate. Every scenario file under the given paths (default
//! `scenarios/`), sorted by path, each run over seeds `1..=N` against its `[expect]` and every
//! invariant; one line per scenario on stdout, and optionally a JUnit XML report.
//!
//! Exit 0 when every seed of every scenario passes; 1 when one fails or panics; 2 when a path
//! does not exist or a scenario does not load (its error is printed, the others still run, and
//! the JUnit report marks it as an error); 130 when Ctrl-C stopped it before the end with no
//! failure found.

use crate::cmd::exit::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, EXIT_VIOLATED};
use crate::cmd::progress::{interrupt_flag, Progress};
use crate::cmd::sweep::{default_jobs, run_seeds, with_error_prefix};
use crate::report::junit::{self, TestCase, Verdict};
use crate::report::sweep::{CheckTally, FailingSeed, SeedRun, StoppedBy};
use crate::scenario::{load_scenario, Scenario};

/// The arguments of `repsim check`.
#[derive(Clone, Debug)]
pub struct CheckArgs {
    /// Files or folders; empty means `scenarios/`.
    pub paths: Vec<PathBuf>,
    /// Seeds `1..=seeds` for each scenario.
    pub seeds: u64,
    pub junit: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub quiet: bool,
}

/// Every `*.toml` file under `paths` (folders are searched recursively; a file named
/// explicitly is taken whatever its extension), sorted by path, without duplicates.
pub fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let default = [PathBuf::from("scenarios")];
    let paths = if paths.is_empty() { &default[..] } else { paths };
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_toml(path, &mut files).map_err(|e| format!("cannot read folder {}: {e}", path.display()))?;
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(format!("no such file or folder: {}", path.display()));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn collect_toml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_toml(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    Ok(())
}

/// What happened to one scenario file.
pub enum ScenarioOutcome {
    /// It did not load: the rendered scenario error.
    LoadError(String),
    Ran {
        run: SeedRun,
        seeds: u64,
    },
    /// Ctrl-C came before it started.
    NotRun,
}

pub struct ScenarioCheck {
    pub path: String,
    pub outcome: ScenarioOutcome,
    pub time_s: f64,
}

impl ScenarioCheck {
    fn failures(&self) -> Vec<FailingSeed> {
        match &self.outcome {
            ScenarioOutcome::Ran { run, .. } => run.results.iter().filter_map(FailingSeed::of).collect(),
            _ => Vec::new(),
        }
    }

    /// The invariants no seed judged.
    fn never_checked(&self) -> Vec<String> {
        let ScenarioOutcome::Ran { run, .. } = &self.outcome else { return Vec::new() };
        let summaries = run.results.iter().filter_map(|r| r.summary());
        CheckTally::of(summaries)
            .into_iter()
            .filter(|(_, t)| t.not_checked > 0 && t.ok == 0 && t.violated == 0)
            .map(|(name, _)| name)
            .collect()
    }

    /// The stdout line, e.g. `ok   scenarios/x.toml  10/10 seeds`.
    pub fn line(&self, width: usize) -> String {
        let path = &self.path;
        match &self.outcome {
            ScenarioOutcome::LoadError(_) => format!("BAD  {path:<width$}  does not load (error above)"),
            ScenarioOutcome::NotRun => format!("SKIP {path:<width$}  not run (interrupted)"),
            ScenarioOutcome::Ran { run, seeds } => {
                let passed = run.results.iter().filter(|r| r.passed()).count();
                let partial = if run.stopped_by == Some(StoppedBy::Interrupted) {
                    format!(" (interrupted: {} run)", run.results.len())
                } else {
                    String::new()
                };
                let unjudged = self.never_checked();
                let partial = if unjudged.is_empty() {
                    partial
                } else {
                    format!("{partial} (not checked: {})", unjudged.join(", "))
                };
                match self.failures().first() {
                    None => format!("ok   {path:<width$}  {passed}/{seeds} seeds{partial}"),
                    Some(first) => format!(
                        "FAIL {path:<width$}  {passed}/{seeds} seeds{partial}; first failing: {}",
                        first.reproduce
                    ),
                }
            }
        }
    }

    /// This scenario as a JUnit test case.
    pub fn test_case(&self) -> TestCase {
        let verdict = match &self.outcome {
            ScenarioOutcome::LoadError(message) => {
                Verdict::Error { message: "the scenario does not load".into(), body: message.clone() }
            }
            ScenarioOutcome::NotRun => Verdict::Skipped { message: "interrupted before it ran".into() },
            ScenarioOutcome::Ran { run, seeds } => {
                let failures = self.failures();
                match failures.first() {
                    None if run.stopped_by == Some(StoppedBy::Interrupted) => Verdict::Skipped {
                        message: format!("interrupted after {} of {seeds} seeds, all passed", run.results.len()),
                    },
                    None => Verdict::Passed,
                    Some(first) => {
                        let mut body = String::new();
                        for f in &failures {
                            body.push_str(&format!("seed {} {}: {}\n", f.seed, f.outcome, f.reasons.join("; ")));
                            body.push_str(&format!("  reproduce: {}\n", f.reproduce));
                        }
                        Verdict::Failed {
                            message: format!(
                                "{} of {seeds} seeds failed; first failing: {}",
                                failures.len(),
                                first.reproduce
                            ),
                            body,
                        }
                    }
                }
            }
        };
        let system_out = match &self.outcome {
            ScenarioOutcome::Ran { run, seeds } => {
                let passed = run.results.iter().filter(|r| r.passed()).count();
                let checks = CheckTally::of(run.results.iter().filter_map(|r| r.summary()));
                Some(format!("{passed} of {seeds} seeds passed\n\n{}", CheckTally::table(&checks)))
            }
            _ => None,
        };
        TestCase { name: self.path.clone(), classname: "repsim.check".into(), time_s: self.time_s, verdict, system_out }
    }
}

/// Loads and runs every scenario; prints one line per scenario as it completes.
pub fn check_all(files: &[PathBuf], seeds: u64, jobs: usize, progress: &Progress) -> Vec<ScenarioCheck> {
    let interrupt = interrupt_flag();
    let width = files.iter().map(|p| p.display().to_string().chars().count()).max().unwrap_or(0);
    let loaded: Vec<(String, Result<Scenario, String>)> =
        files.iter().map(|p| (p.display().to_string(), load_scenario(p, &[]).map_err(|e| e.message))).collect();
    for (_, result) in &loaded {
        if let Err(message) = result {
            eprintln!("{}", with_error_prefix(message));
        }
    }
    let seed_list: Vec<u64> = (1..=seeds).collect();
    let mut checks = Vec::with_capacity(loaded.len());
    for (path, result) in loaded {
        let started = Instant::now();
        let outcome = match result {
            Err(message) => ScenarioOutcome::LoadError(message),
            Ok(_) if interrupt.load(std::sync::atomic::Ordering::SeqCst) => ScenarioOutcome::NotRun,
            Ok(scenario) => {
                progress.set_label(&scenario.name);
                let run = run_seeds(&scenario, &seed_list, jobs, false, interrupt, progress, None);
                ScenarioOutcome::Ran { run, seeds }
            }
        };
        let check = ScenarioCheck { path, outcome, time_s: started.elapsed().as_secs_f64() };
        progress.println(&check.line(width));
        checks.push(check);
    }
    checks
}

/// `repsim check`.
pub fn check_command(args: CheckArgs) -> ExitCode {
    let setup = (|| {
        if args.seeds == 0 {
            return Err("--seeds must be at least 1".to_string());
        }
        let jobs = default_jobs(args.jobs)?;
        let files = scenario_files(&args.paths)?;
        if files.is_empty() {
            return Err("no scenario files (*.toml) found under the given paths".to_string());
        }
        Ok((jobs, files))
    })();
    let (jobs, files) = match setup {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let progress = Progress::new(files.len() as u64 * args.seeds, "check", args.quiet);
    let started = Instant::now();
    let checks = check_all(&files, args.seeds, jobs, &progress);
    progress.finish();
    let bad = checks.iter().filter(|c| matches!(c.outcome, ScenarioOutcome::LoadError(_))).count();
    let failed = checks.iter().filter(|c| !c.failures().is_empty()).count();
    let interrupted = checks.iter().any(|c| match &c.outcome {
        ScenarioOutcome::NotRun => true,
        ScenarioOutcome::Ran { run, .. } => run.stopped_by.is_some(),
        ScenarioOutcome::LoadError(_) => false,
    });
    let seeds_run: usize = checks
        .iter()
        .map(|c| match &c.outcome {
            ScenarioOutcome::Ran { run, .. } => run.results.len(),
            _ => 0,
        })
        .sum();
    say!(
        "check: {} scenarios, {} seeds each: {} ok, {failed} failed, {bad} did not load{}",
        checks.len(),
        args.seeds,
        checks.len() - failed - bad - checks.iter().filter(|c| matches!(c.outcome, ScenarioOutcome::NotRun)).count(),
        if interrupted { ", interrupted" } else { "" }
    );
    if !args.quiet {
        let elapsed = started.elapsed().as_secs_f64();
        eprintln!("{seeds_run} seeds in {elapsed:.1} s on {jobs} threads");
    }
    if let Some(path) = &args.junit {
        let cases: Vec<TestCase> = checks.iter().map(ScenarioCheck::test_case).collect();
        let xml = junit::render("repsim check", &cases);
        let written = path.parent().filter(|p| !p.as_os_str().is_empty()).map_or(Ok(()), std::fs::create_dir_all);
        if let Err(e) = written.and_then(|()| std::fs::write(path, xml)) {
            eprintln!("error: cannot write the JUnit report {}: {e}", path.display());
            return ExitCode::from(EXIT_BAD_INPUT);
        }
        say!("junit: {}", path.display());
    }
    let code = if bad > 0 {
        EXIT_BAD_INPUT
    } else if failed > 0 {
        EXIT_VIOLATED
    } else if interrupted {
        EXIT_INTERRUPTED
    } else {
        EXIT_OK
    };
    ExitCode::from(code)
}
