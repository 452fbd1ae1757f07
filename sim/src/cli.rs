//! The command line (DESIGN §7). Exit codes: 0 every expectation holds, 1 one is violated (or a
//! run failed), 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::run::{report_dir, run_seed, write_report};
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
        /// Put the report tree under this folder instead of reports/.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// Check scenario files without running them.
    Validate {
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
}

pub const EXIT_OK: u8 = 0;
pub const EXIT_VIOLATED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;

pub fn main_with(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { scenario, seed, overrides, json, trace, out } => {
            run(scenario, seed, overrides, json, trace, out)
        }
        Command::Validate { scenarios } => validate(scenarios),
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

fn run(path: PathBuf, seed: u64, overrides: Vec<String>, json: bool, trace: Option<PathBuf>, out: PathBuf) -> ExitCode {
    let scenario = match load_scenario(&path, &overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let sink: Option<Box<dyn std::io::Write + Send>> = match &trace {
        None => None,
        Some(file) => match std::fs::File::create(file) {
            Ok(f) => Some(Box::new(std::io::BufWriter::new(f))),
            Err(e) => {
                eprintln!("error: cannot create trace file {}: {e}", file.display());
                return ExitCode::from(EXIT_BAD_INPUT);
            }
        },
    };
    let summary = match run_seed(&scenario, seed, sink) {
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
