//! The command line (DESIGN §7). Exit codes: 0 every expectation holds, 1 one is violated (or a
//! run failed), 2 bad input.

pub mod check;
pub mod compare;
pub mod exit;
pub mod merge;
pub mod progress;
pub mod run;
pub mod shrink;
pub mod summarize;
pub mod swarm;
pub mod sweep;
pub mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "repsim", version, about = "Deterministic simulation of PostgreSQL-style replication")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses a command line (the program name first), as `main` would.
    pub fn try_parse_from_args(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one scenario with one seed: summary on stdout, report in reports/<scenario>/seed-<seed>/.
    Run {
        scenario: PathBuf,
        /// A seed: 0 to 18446744073709551615.
        #[arg(long, default_value_t = 42, allow_negative_numbers = true)]
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
        /// Also write monitoring.md: pg_stat_replication, pg_stat_wal_receiver and pg_stat_subscription at these
        /// instants of simulated time, e.g. --snapshot 20s,45s (the run is the same with or
        /// without it).
        #[arg(long, value_name = "TIMES")]
        snapshot: Option<String>,
    },
    /// Find the smallest variant of a failing (scenario, seed): fewer faults, earlier faults,
    /// shorter duration, fewer clients; writes it next to the report and prints how to run it.
    Shrink {
        scenario: PathBuf,
        #[arg(long, allow_negative_numbers = true)]
        seed: u64,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// The failing check to keep, e.g. lost_acked_writes or read_your_writes (default: the
        /// first failing check: the scenario's [expect] entries, then the invariants).
        #[arg(long, value_name = "CHECK")]
        keep: Option<String>,
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
    /// Combine the shard folders of one sweep (`sweep --shard I/N`, each from its own machine)
    /// into the report a single sweep of the whole range writes, in <out>/<scenario>/sweep/.
    /// Refuses shards of different scenarios, overrides, seed ranges or builds, and a set with
    /// a shard missing. Exit as `sweep`: 0 every seed passed, 1 one failed, 2 bad input.
    Merge {
        /// The shard folders, e.g. reports/failover/sweep/shard-*-of-8
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Put the merged report under this folder instead of reports/.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// Swarm testing: random scenarios drawn from the whole scenario space, one per seed, each
    /// checked by every invariant; failing seeds are written as scenario files and shrunk.
    ///
    /// Exit 0 when every seed passes, 1 when one fails or panics, 2 on bad input, 130 on Ctrl-C.
    Swarm {
        /// Seeds as a Rust range: 1..1000 is 1 to 999, 1..=1000 is 1 to 1000.
        #[arg(long, value_name = "A..B")]
        seeds: Option<String>,
        /// One seed (with --print: write its scenario and exit).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        seed: Option<u64>,
        /// Run seeds from 1 (or --seeds' start) until this much wall-clock time has passed, e.g.
        /// 10m; the range that ran is printed, so the run can be repeated exactly.
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
        /// With --seed: print the drawn scenario (TOML) instead of running it.
        #[arg(long)]
        print: bool,
        /// Worker threads (default: one per core).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Put seeds.jsonl and the failing scenarios under this folder instead of reports/.
        #[arg(long, default_value = "reports")]
        out: PathBuf,
        /// Do not shrink failing seeds (shrinking reruns a failing seed a few dozen times).
        #[arg(long)]
        no_shrink: bool,
        /// No progress bar.
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

pub fn main_with(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run { scenario, seed, overrides, json, trace, history, out, snapshot } => {
            crate::cmd::run::run_command(scenario, seed, overrides, json, [trace, history], out, snapshot)
        }
        Command::Validate { scenarios } => crate::cmd::validate::validate_command(scenarios),
        Command::Merge { dirs, out } => crate::cmd::merge::merge_command(dirs, out),
        Command::Shrink { scenario, seed, overrides, keep, out } => {
            crate::cmd::shrink::shrink_command(scenario, seed, overrides, keep, out)
        }
        Command::Sweep { scenario, seeds, jobs, shard, overrides, fail_fast, out, quiet } => {
            crate::cmd::sweep::sweep_command(crate::cmd::sweep::SweepArgs {
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
        Command::Swarm { seeds, seed, for_, print, jobs, out, no_shrink, quiet } => {
            crate::cmd::swarm::swarm_command(crate::cmd::swarm::SwarmArgs {
                seeds,
                seed,
                for_,
                print,
                jobs,
                out,
                shrink: !no_shrink,
                quiet,
            })
        }
        Command::Check { paths, seeds, junit, jobs, quiet } => {
            crate::cmd::check::check_command(crate::cmd::check::CheckArgs { paths, seeds, junit, jobs, quiet })
        }
        Command::Compare { scenario, sets, seeds, jobs, out, quiet } => {
            crate::cmd::compare::compare_command(crate::cmd::compare::CompareArgs {
                scenario,
                sets,
                seeds,
                jobs,
                out,
                quiet,
            })
        }
    }
}
