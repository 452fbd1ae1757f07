//! The rules of `ARCHITECTURE.md`, checked over the sources: the simulator's layers import only
//! downwards, no module imports a module that imports it back (directly or around a loop), no
//! source file grows past the size a reader can hold, and the engine depends on nothing of ours.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the bottom up; a module may import its own layer and those below it.
const LAYERS: [&str; 7] = ["scenario", "metrics", "check", "world", "swarm", "report", "cmd"];
/// `report` and `swarm` sit side by side: neither imports the other.
const SIBLINGS: [(&str, &str); 1] = [("report", "swarm")];
const MAX_FILE_LINES: usize = 620;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `world/net.rs` -> `world::net`, `world/mod.rs` -> `world`.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src_dir()).unwrap().with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).filter(|p| p != "mod").collect();
    parts.join("::")
}

/// The code of a file without comments and without its test modules.
fn code_of(text: &str) -> String {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or("");
    before_tests.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every module a piece of code names through `crate::…`, including `use crate::a::{b, c::d}`.
fn imported_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while let Some(found) = code[at..].find("crate::") {
        let start = at + found + "crate::".len();
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':') {
            end += 1;
        }
        let base = code[start..end].trim_end_matches(':').to_string();
        if end < bytes.len() && bytes[end] == b'{' {
            let close = code[end..].find('}').map_or(code.len(), |c| end + c);
            for item in code[end + 1..close].split(',') {
                let item = item.split_whitespace().next().unwrap_or("");
                if item.is_empty() || item == "self" {
                    out.push(base.clone());
                } else {
                    out.push(format!("{base}::{item}"));
                }
            }
        } else {
            out.push(base);
        }
        at = end;
    }
    out
}

/// The longest known module that is a prefix of `path`.
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains(m))
}

fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let sources: BTreeMap<String, String> = files
        .iter()
        .map(|p| (module_of(p), std::fs::read_to_string(p).unwrap()))
        .filter(|(m, _)| m != "lib" && m != "main")
        .collect();
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(module, text)| {
            let targets = imported_paths(&code_of(text))
                .iter()
                .filter_map(|p| resolve(p, &modules))
                .filter(|t| t != module)
                .collect();
            (module.clone(), targets)
        })
        .collect()
}

fn layer(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn layers_import_only_downwards() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == layer(m)).unwrap_or_else(|| panic!("{m}: unknown layer"));
    let mut wrong = Vec::new();
    for (module, targets) in import_graph() {
        for target in targets {
            let (a, b) = (layer(&module), layer(&target));
            let sideways = SIBLINGS.iter().any(|&(x, y)| (a, b) == (x, y) || (a, b) == (y, x));
            if rank(&target) > rank(&module) || sideways {
                wrong.push(format!("{module} imports {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers of ARCHITECTURE.md:\n{}", wrong.join("\n"));
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = import_graph();
    // A depth-first search for a path from each target back to the module.
    let mut cycles = Vec::new();
    for (module, targets) in &graph {
        for target in targets {
            let mut stack = vec![vec![module.clone(), target.clone()]];
            let mut seen = BTreeSet::new();
            while let Some(path) = stack.pop() {
                let last = path.last().unwrap();
                if last == module {
                    cycles.push(path.join(" -> "));
                    break;
                }
                if !seen.insert(last.clone()) {
                    continue;
                }
                for next in graph.get(last).into_iter().flatten() {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn the_rule_finder_sees_imports_and_cycles() {
    // The parser the two tests above rely on, on a known input.
    let code = code_of("use crate::world::net::{Network, Payload};\n// crate::cmd::run\nuse crate::check::{self, view::EndState};\n#[cfg(test)]\nuse crate::report::x;");
    assert_eq!(
        imported_paths(&code),
        ["world::net::Network", "world::net::Payload", "check", "check::view::EndState"].map(String::from)
    );
}

#[test]
fn no_source_file_is_longer_than_a_reader_can_hold() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let long: Vec<String> = files
        .iter()
        .map(|p| (p, std::fs::read_to_string(p).unwrap().lines().count()))
        .filter(|(_, lines)| *lines > MAX_FILE_LINES)
        .map(|(p, lines)| format!("{} has {lines} lines", p.display()))
        .collect();
    assert!(long.is_empty(), "split these by concern:\n{}", long.join("\n"));
}

#[test]
fn the_engine_depends_on_nothing_of_ours_and_on_no_io_time_or_randomness() {
    let manifest = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or("").split("\n[").next().unwrap_or("");
    let named: Vec<&str> = deps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('=').next())
        .map(str::trim)
        .collect();
    // The one exception: CRC-32C, a pure function of its bytes (hardware instruction or table),
    // with no IO, clock or randomness (issue 11: the WAL checksum was the engine's largest cost).
    const ALLOWED: [&str; 1] = ["crc32c_crate"];
    let other: Vec<&&str> = named.iter().filter(|d| !ALLOWED.contains(d)).collect();
    assert!(other.is_empty(), "the engine must stay dependency-free (sans-IO) but for {ALLOWED:?}, found: {other:?}");
}
