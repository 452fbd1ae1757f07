//! `repsim validate`: parse scenario files and report what is wrong, with file, line and column.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cmd::exit::{EXIT_BAD_INPUT, EXIT_OK};
use crate::scenario::load_scenario;

pub fn validate_command(paths: Vec<PathBuf>) -> ExitCode {
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
