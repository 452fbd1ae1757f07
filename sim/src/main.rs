use clap::Parser;

fn main() -> std::process::ExitCode {
    repsim::cmd::main_with(repsim::cmd::Cli::parse())
}
