//! The command line (DESIGN §7). Exit codes: 0 every expectation holds, 1 one is violated (or a
//! run failed), 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::run::{report_dir, write_report};
use crate::scenario::load_scenario;

#[derive(Parser, Debug)]
#[command(name = "repsim", version, about = "Deterministic simulation of PostgreSQL-style replication")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one scenario with one seed: summary on stdout, report in reports/<scenario>/seed-<seed>/.
    Run {
        scenario: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Override a scenario value, e.g. --set replication.synchronous_commit=off
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Print the summary as one JSON object (the same as summary.json).
        #[arg(long)]
        json: bool,
        /// Write every event as JSON lines to this file.
        #[arg(long, value_name = "FILE.jsonl")]
        trace: Option<PathBuf>,
        /// Write every client operation (invoke, completion, outcome, node, LSN, value) as JSON
        /// lines to this file.
        #[arg(long, value_name = "FILE.jsonl")]
        history: Option<PathBuf>,
        /// Put the report tree under this folder instead of reports/.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// Find the smallest variant of a failing (scenario, seed): fewer faults, earlier faults,
    /// shorter duration, fewer clients; writes it next to the report and prints how to run it.
    Shrink {
        scenario: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// Check scenario files without running them.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// Run one scenario over many seeds on worker threads; report in reports/<scenario>/sweep/.
    ///
    /// Prints the failing seeds, each with the command that reproduces it. Exit 0 when every
    /// seed passes, 1 when one fails or panics, 2 on bad input, 130 when Ctrl-C stopped it
    /// first (the seeds already running finish and are reported).
    Sweep {
        /// The scenario file.
        scenario: PathBuf,
        /// Seeds as a Rust range: 1..1000 is 1 to 999, 1..=1000 is 1 to 1000.
        #[arg(long, value_name = "A..B")]
        seeds: String,
        /// Worker threads (default: one per core).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Run only the I-th of N interleaved slices of the seeds (1-based: seeds at positions
        /// I-1, I-1+N, …); the N shards together cover the range once. The report goes to
        /// sweep/shard-I-of-N/.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Override a scenario value, e.g. --set replication.synchronous_commit=off
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Start no new seed after the first failure.
        #[arg(long)]
        fail_fast: bool,
        /// Put the report tree under this folder instead of reports/.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// No progress bar and no timing line.
        #[arg(long)]
        quiet: bool,
    },
    /// The CI gate: every *.toml under PATHS (default scenarios/), each over seeds 1..=N,
    /// against its [expect] and every invariant.
    ///
    /// One line per scenario; exit 0 when all pass, 1 when a seed fails or panics, 2 when a path
    /// or a scenario is bad, 130 when Ctrl-C stopped it first.
    Check {
        /// Scenario files, or folders searched recursively for *.toml (default: scenarios/).
        paths: Vec<PathBuf>,
        /// Run seeds 1..=N of each scenario.
        #[arg(long, value_name = "N", default_value_t = 10)]
        seeds: u64,
        /// Write a JUnit XML report (one testcase per scenario) to this file.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Worker threads (default: one per core).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// No progress bar and no timing line.
        #[arg(long)]
        quiet: bool,
    },
    /// Run one scenario under several settings, the same seeds under each; table on stdout,
    /// report in reports/<scenario>/compare/.
    ///
    /// Exit 0 unless the input is bad (2) or a run panicked (1): a comparison measures, it does
    /// not gate.
    Compare {
        scenario: PathBuf,
        /// KEY=V1,V2,…: the values to compare (commas inside an inline TOML table or array do
        /// not split); with several --set, every combination.
        #[arg(long = "set", value_name = "KEY=V1,V2,…", required = true)]
        sets: Vec<String>,
        /// Seeds as a Rust range: 1..=5 is 1 to 5, 1..5 is 1 to 4.
        #[arg(long, value_name = "A..B", default_value = "1..=5")]
        seeds: String,
        /// Worker threads (default: one per core).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Put the report tree under this folder instead of reports/.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

pub const EXIT_OK: u8 = 0;
pub const EXIT_VIOLATED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

pub fn main_with(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { scenario, seed, overrides, json, trace, history, out } => {
            run(scenario, seed, overrides, json, [trace, history], out)
        }
        Command::Validate { scenarios } => validate(scenarios),
        Command::Shrink { scenario, seed, overrides, out } => shrink(scenario, seed, overrides, out),
        Command::Sweep { scenario, seeds, jobs, shard, overrides, fail_fast, out, quiet } => {
            crate::sweep::sweep_command(crate::sweep::SweepArgs {
                scenario,
                seeds,
                jobs,
                shard,
                overrides,
                fail_fast,
                out,
                quiet,
            })
        }
        Command::Check { paths, seeds, junit, jobs, quiet } => {
            crate::check::check_command(crate::check::CheckArgs { paths, seeds, junit, jobs, quiet })
        }
        Command::Compare { scenario, sets, seeds, jobs, out, quiet } => {
            crate::compare::compare_command(crate::compare::CompareArgs { scenario, sets, seeds, jobs, out, quiet })
        }
    }
}

fn shrink(path: PathBuf, seed: u64, overrides: Vec<String>, out: PathBuf) -> ExitCode {
    let scenario = match load_scenario(&path, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let Some(shrunk) = crate::shrink::shrink(&scenario, seed) else {
        println!("{} seed {seed} does not fail: nothing to shrink", path.display());
        return ExitCode::from(EXIT_OK);
    };
    let dir = out.join(&scenario.name).join("shrink");
    match crate::shrink::write_shrunk(&path, &shrunk.scenario, &dir) {
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

fn validate(paths: Vec<PathBuf>) -> ExitCode {
    let mut code = EXIT_OK;
    for path in paths {
        match load_scenario(&path, &[]) {
            Ok(s) => println!("{}: ok ({} nodes, {} faults)", path.display(), s.cluster.nodes.len(), s.faults.len()),
            Err(e) => {
                eprintln!("{e}");
                code = EXIT_BAD_INPUT;
            }
        }
    }
    ExitCode::from(code)
}

type Sink = Option<Box<dyn std::io::Write + Send>>;

fn create_sink(file: &Option<PathBuf>) -> Result<Sink, String> {
    match file {
        None => Ok(None),
        Some(path) => std::fs::File::create(path)
            .map(|f| Some(Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write + Send>))
            .map_err(|e| format!("error: cannot create {}: {e}", path.display())),
    }
}

/// `files`: the trace and the history file, if asked for.
fn run(
    path: PathBuf,
    seed: u64,
    overrides: Vec<String>,
    json: bool,
    files: [Option<PathBuf>; 2],
    out: PathBuf,
) -> ExitCode {
    let scenario = match load_scenario(&path, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let [trace, history] = files;
    let (sink, history) = match (create_sink(&trace), create_sink(&history)) {
        (Ok(sink), Ok(history)) => (sink, history),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let summary = match crate::run::run_seed_with_history(&scenario, seed, sink, history) {
        Ok(s) => s,
        Err(failure) => {
            eprintln!("error: {failure}");
            return ExitCode::from(EXIT_VIOLATED);
        }
    };
    let dir = report_dir(&out, &summary.scenario, seed);
    if let Err(e) = write_report(&dir, &summary) {
        eprintln!("error: cannot write the report to {}: {e}", dir.display());
        return ExitCode::from(EXIT_BAD_INPUT);
    }
    if json {
        println!("{}", serde_json::to_string(&summary).expect("summary serialises"));
    } else {
        print!("{}", crate::report::render_text(&summary));
        println!("report: {}", dir.display());
    }
    ExitCode::from(if summary.ok { EXIT_OK } else { EXIT_VIOLATED })
}
