//! Scenario files (DESIGN.md §4): reading, validating, `--set` overrides, and error messages
//! that point at the offending text and say what to write instead.
//!
//! The file is parsed into a tree of values that remember their spans (`tree`), then checked
//! table by table (`parse`, `sections`, `faults`, `dist`) into the types of [`model`]. Every
//! table rejects unknown keys. Overrides are applied to the tree one at a time and the whole
//! scenario is validated again after each, so an override gets the same checks as the file.

pub mod access;
mod diag;
mod dist;
mod endpoints;
mod faults;
mod fields;
mod ha;
pub mod logical;
pub mod model;
pub mod multimaster;
mod overrides;
mod parse;
mod pooler;
mod restore;
mod sections;
mod tree;
pub mod units;
mod upstreams;
mod warnings;

use std::fmt;
use std::path::Path;

pub use model::{
    Arrival, Cluster, DiskSpec, Dist, Expect, Fault, FaultKind, KeyDistribution, LinkSpec, Network, NodeSpec,
    Replication, Scenario, Workload,
};

use diag::Diag;

/// Why a scenario could not be loaded: a complete, human-readable message (several lines:
/// location, source line with a marker, and a `help:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Reads and validates the scenario file at `path`, then applies the `--set` `overrides`.
pub fn load_scenario(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let bytes = std::fs::read(path).map_err(|error| ScenarioError {
        message: format!(
            "error: cannot read scenario file `{}`: {error}\nhelp: check the path; the bundled scenarios are in scenarios/",
            path.display()
        ),
    })?;
    let source_text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let prefix = std::str::from_utf8(valid).expect("valid up to here");
        let (line, column) = diag::line_col(prefix, prefix.len());
        ScenarioError {
            message: format!(
                "error: `{}` is not valid UTF-8: the byte at line {line}, column {column} (byte offset {}) is not \
                 part of a UTF-8 character\nhelp: save the file as UTF-8 (scenario files are TOML, which is UTF-8)",
                path.display(),
                valid.len()
            ),
        }
    })?;
    parse_scenario(&source_text, &path.display().to_string(), overrides)
}

/// Validates the scenario text `source_text` (read from `source_path`, used in messages), then
/// applies the `--set` `overrides` (`key.path=value`) in order and validates the result once,
/// so that the order of the overrides does not matter (`--set duration=2s --set settle=100s`).
pub fn parse_scenario(source_text: &str, source_path: &str, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let file_error = |d: Diag| ScenarioError { message: diag::render(&d, source_text, source_path) };
    let mut root = tree::parse_document(source_text).map_err(|e| file_error(syntax_error(&e, source_text)))?;
    let mut scenario = parse::validate(&root, source_text).map_err(file_error)?;
    let mut keys = Vec::new();
    for text in overrides {
        let override_error =
            |d: Diag| ScenarioError { message: diag::render_override(&d, text, source_text, source_path) };
        let parsed = overrides::parse_override(text).map_err(override_error)?;
        keys.push(parsed.path.join("."));
        overrides::apply_override(&mut root, parsed).map_err(override_error)?;
    }
    if !overrides.is_empty() {
        scenario = parse::validate(&root, source_text).map_err(|d| {
            // Name the override the message is about, else all of them.
            let names = |k: &String| {
                let last = k.rsplit('.').next().unwrap_or(k);
                d.message.contains(&format!("`{k}`")) || d.message.contains(&format!("`{last}`"))
            };
            let blamed = keys.iter().rposition(names);
            let text = blamed.map_or_else(|| overrides.join(" --set "), |i| overrides[i].clone());
            ScenarioError { message: diag::render_override(&d, &text, source_text, source_path) }
        })?;
    }
    scenario.source_path = source_path.to_string();
    scenario.overrides = overrides.to_vec();
    Ok(scenario)
}

/// A TOML syntax error, with a hint for the most common mistake: an unquoted string.
fn syntax_error(error: &toml::de::Error, source_text: &str) -> Diag {
    let mut lines = error.message().lines().map(str::trim).filter(|l| !l.is_empty());
    let what = lines.next().unwrap_or("unexpected end of input");
    let detail: Vec<&str> = lines.collect();
    let message = if detail.is_empty() {
        format!("invalid TOML: {what}")
    } else {
        format!("invalid TOML: {what} ({})", detail.join("; "))
    };
    let help = if error.message().contains("duplicate key") {
        "a key may appear only once in a table; remove or rename the repeated one".to_string()
    } else {
        let line = error.span().map(|span| line_at(source_text, span.start)).unwrap_or("");
        quote_hint(line).unwrap_or_else(|| {
            "strings need double quotes (`latency = \"5ms\"`), tables are written `[name]`; see https://toml.io"
                .to_string()
        })
    };
    Diag::new(message, error.span()).help(help)
}

/// The whole line of `source` containing byte `offset`.
fn line_at(source: &str, offset: usize) -> &str {
    let offset = offset.min(source.len());
    let start = source.get(..offset).and_then(|s| s.rfind('\n')).map_or(0, |i| i + 1);
    let rest = source.get(start..).unwrap_or("");
    rest.lines().next().unwrap_or("")
}

/// For `latency = 5ms`: "write `latency = \"5ms\"`".
fn quote_hint(line: &str) -> Option<String> {
    let (key, value) = line.split_once('=')?;
    let (key, value) = (key.trim(), value.split(" #").next().unwrap_or("").trim());
    let starts_structured = value.starts_with(['"', '\'', '[', '{']);
    let wordy = value.chars().any(char::is_alphabetic) && value != "true" && value != "false";
    if key.is_empty() || !wordy || starts_structured || key.starts_with('[') {
        return None;
    }
    Some(format!("strings need double quotes: write `{key} = \"{value}\"`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_hint_for_bare_words() {
        assert_eq!(
            quote_hint("latency = 5ms").as_deref(),
            Some("strings need double quotes: write `latency = \"5ms\"`")
        );
        assert_eq!(quote_hint("latency = \"5ms"), None);
        assert_eq!(quote_hint("[network"), None);
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let err = load_scenario(Path::new("/nonexistent/dir/x.toml"), &[]).expect_err("missing file");
        assert!(err.message.contains("/nonexistent/dir/x.toml"), "{err}");
    }
}
