//! `repsim validate`: parse scenario files and report what is wrong, with file, line and column.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cmd::exit::{say, EXIT_BAD_INPUT, EXIT_OK};
use crate::scenario::load_scenario;

pub fn validate_command(paths: Vec<PathBuf>) -> ExitCode {
    let mut code = EXIT_OK;
    for path in paths {
        match load_scenario(&path, &[]) {
            Ok(s) => {
                let random = match s.random_faults.len() {
                    0 => String::new(),
                    1 => ", 1 random fault rule".into(),
                    n => format!(", {n} random fault rules"),
                };
                say!("{}: ok ({} nodes, {} faults{random})", path.display(), s.cluster.nodes.len(), s.faults.len());
                for warning in s.warnings() {
                    eprintln!("warning: {}: {warning}", path.display());
                }
            }
            Err(e) => {
                eprintln!("{e}");
                code = EXIT_BAD_INPUT;
            }
        }
    }
    ExitCode::from(code)
}
