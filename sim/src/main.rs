use clap::Parser;

fn main() -> std::process::ExitCode {
    repsim::cli::main_with(repsim::cli::Cli::parse())
}
