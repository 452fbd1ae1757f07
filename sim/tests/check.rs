//! `repsim check`: one line per scenario, exit codes, and a JUnit report that parses.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repsim_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_repsim")).current_dir(dir).args(args).output().expect("binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A fresh folder for one test.
fn workdir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("repsim-check-test-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scenarios/more")).unwrap();
    dir
}

/// A short three-node scenario; `level` is its synchronous_commit, with a crash of the primary
/// at 1 s and a restart at 1.5 s, expecting no lost acknowledged write (standbys retry their
/// connection every 200 ms, so the cluster converges within the 2 s of settle).
fn scenario(name: &str, level: &str) -> String {
    format!(
        r#"name = "{name}"
duration = "2s"
settle = "2s"

[cluster]
nodes = ["pg1", "pg2", "pg3"]
primary = "pg1"

[replication]
synchronous_commit = "{level}"
wal_retrieve_retry_interval = "200ms"

[workload]
clients = 8
arrival = {{ open = "500/s" }}
write_fraction = 0.7

[[faults]]
at = "1s"
crash = "pg1"

[[faults]]
at = "1500ms"
restart = "pg1"

[expect]
lost_acked_writes = 0
"#
    )
}

fn write(dir: &Path, rel: &str, text: &str) {
    std::fs::write(dir.join(rel), text).unwrap();
}

#[test]
fn all_passing_is_exit_0_with_one_line_per_scenario_in_path_order() {
    let dir = workdir("pass");
    write(&dir, "scenarios/b.toml", &scenario("b", "local"));
    write(&dir, "scenarios/more/a.toml", &scenario("a", "on"));
    write(&dir, "scenarios/notes.txt", "not a scenario");
    // No path: scenarios/ under the working directory.
    let (code, stdout, stderr) = repsim_in(&dir, &["check", "--seeds", "2", "--quiet", "--jobs", "2"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok ") || l.starts_with("FAIL")).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("ok   scenarios/b.toml") && lines[0].contains("  2/2 seeds"), "{stdout}");
    assert!(lines[1].starts_with("ok   scenarios/more/a.toml") && lines[1].contains("  2/2 seeds"), "{stdout}");
    // The invariants no seed judged are named on the line (the scenarios set no max_commit_wait).
    assert!(
        lines[0].ends_with(
            "seeds (not checked: archive_identical, archived_before_recycled, commits_release, \
             endpoint_rules, logical_converged, logical_exactly_once, masters_converged, pooler_rules, \
             recovery_conflicts_resolved, restore_complete, slot_wal_kept, sync_promotion)"
        ),
        "{stdout}"
    );
}

#[test]
fn a_violation_is_exit_1_with_the_first_failing_reproduce_command_and_junit() {
    let dir = workdir("fail");
    write(&dir, "scenarios/lossy.toml", &scenario("lossy", "off"));
    write(&dir, "scenarios/safe.toml", &scenario("safe", "local"));
    let (code, stdout, stderr) =
        repsim_in(&dir, &["check", "scenarios", "--seeds", "2", "--junit", "out/junit.xml", "--quiet"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let lossy = stdout.lines().find(|l| l.starts_with("FAIL scenarios/lossy.toml  0/2 seeds")).expect("a FAIL line");
    assert!(lossy.ends_with("; first failing: repsim run scenarios/lossy.toml --seed 1"), "{stdout}");
    let safe = stdout.lines().find(|l| l.starts_with("ok   scenarios/safe.toml ")).expect("a line for safe.toml");
    assert!(safe.contains(" 2/2 seeds"), "{stdout}");

    let xml = std::fs::read_to_string(dir.join("out/junit.xml")).expect("junit written");
    let doc = parse_xml(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(doc.iter().filter(|e| e.name == "testsuite").count(), 1, "{xml}");
    let cases: Vec<&Element> = doc.iter().filter(|e| e.name == "testcase").collect();
    assert_eq!(
        cases.iter().map(|c| c.attr("name")).collect::<Vec<_>>(),
        ["scenarios/lossy.toml", "scenarios/safe.toml"]
    );
    let suite = doc.iter().find(|e| e.name == "testsuite").unwrap();
    assert_eq!((suite.attr("tests"), suite.attr("failures")), ("2", "1"));
    let failure = doc.iter().find(|e| e.name == "failure").expect("a <failure>");
    assert_eq!(failure.parent.as_deref(), Some("testcase"));
    assert!(failure.attr("message").starts_with("2 of 2 seeds failed; first failing: repsim run"), "{xml}");
    for seed in [1, 2] {
        assert!(failure.text.contains(&format!("reproduce: repsim run scenarios/lossy.toml --seed {seed}")), "{xml}");
    }
    assert!(failure.text.contains("lost_acked_writes <= 0: actual"), "{xml}");
    // Each test case's output tallies every invariant's state over its seeds, not_checked
    // with its reason.
    let outputs: Vec<&Element> = doc.iter().filter(|e| e.name == "system-out").collect();
    assert!(
        outputs.iter().any(|o| o.text.contains("| `commits_release` | 0 | 0 | 2 (no `[expect] max_commit_wait`")),
        "{xml}"
    );
}

#[test]
fn a_scenario_that_does_not_load_is_exit_2_and_the_others_still_run() {
    let dir = workdir("bad");
    write(&dir, "scenarios/good.toml", &scenario("good", "local"));
    write(&dir, "scenarios/typo.toml", &scenario("typo", "local").replace("write_fraction", "write_fracton"));
    let (code, stdout, stderr) = repsim_in(&dir, &["check", "--seeds", "1", "--junit", "j.xml", "--quiet"]);
    assert_eq!(code, 2, "{stdout}{stderr}");
    assert!(stderr.contains("scenarios/typo.toml:16:1"), "{stderr}");
    assert!(stderr.contains("did you mean `write_fraction`"), "{stderr}");
    assert!(stdout.contains("ok   scenarios/good.toml"), "{stdout}");
    assert!(stdout.contains("BAD  scenarios/typo.toml"), "{stdout}");
    let xml = std::fs::read_to_string(dir.join("j.xml")).unwrap();
    let doc = parse_xml(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let error = doc.iter().find(|e| e.name == "error").expect("an <error>");
    assert!(error.text.contains("unknown key `write_fracton`"), "{xml}");

    for args in [&["check", "no/such/folder"][..], &["check", "--seeds", "0"][..]] {
        let (code, _, stderr) = repsim_in(&dir, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
    }
    let empty = workdir("empty");
    let (code, _, stderr) = repsim_in(&empty, &["check", "scenarios/more"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no scenario files"), "{stderr}");
}

#[test]
fn the_bundled_scenarios_load() {
    // The gate's input: every bundled scenario is valid (running them is .ci/run's job).
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let files = repsim::cmd::check::scenario_files(&[scenarios]).unwrap();
    assert!(!files.is_empty());
    for f in files {
        repsim::scenario::load_scenario(&f, &[]).unwrap_or_else(|e| panic!("{e}"));
    }
}

// ---- a minimal XML well-formedness check ----

#[derive(Debug)]
struct Element {
    name: String,
    parent: Option<String>,
    attrs: Vec<(String, String)>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> &str {
        self.attrs.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
    }
}

/// Checks nesting, quoting and entities; returns every element (text and attribute values
/// unescaped) in document order.
fn parse_xml(xml: &str) -> Result<Vec<Element>, String> {
    let mut rest = xml.strip_prefix("<?xml").ok_or("no XML declaration")?;
    rest = &rest[rest.find("?>").ok_or("unterminated declaration")? + 2..];
    let mut elements: Vec<Element> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut roots = 0;
    while !rest.is_empty() {
        let lt = rest.find('<').unwrap_or(rest.len());
        let text = unescape(&rest[..lt])?;
        match open.last() {
            Some(&i) => elements[i].text.push_str(&text),
            None if !text.trim().is_empty() => return Err(format!("text outside the root: {text:?}")),
            None => {}
        }
        rest = &rest[lt..];
        if rest.is_empty() {
            break;
        }
        let gt = rest.find('>').ok_or("unterminated tag")?;
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let i = open.pop().ok_or("close without open")?;
            if elements[i].name != name {
                return Err(format!("</{name}> closes <{}>", elements[i].name));
            }
            continue;
        }
        let (body, self_closing) = match tag.strip_suffix('/') {
            Some(b) => (b, true),
            None => (tag, false),
        };
        let name_end = body.find(char::is_whitespace).unwrap_or(body.len());
        let name = &body[..name_end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("bad element name {name:?}"));
        }
        let mut attrs = Vec::new();
        let mut a = body[name_end..].trim_start();
        while !a.is_empty() {
            let eq = a.find("=\"").ok_or_else(|| format!("attribute without =\"…\" in <{name}>"))?;
            let key = a[..eq].trim().to_string();
            let value_end = a[eq + 2..].find('"').ok_or("unterminated attribute")? + eq + 2;
            let raw = &a[eq + 2..value_end];
            if raw.contains('<') {
                return Err(format!("raw < in attribute {key}"));
            }
            if attrs.iter().any(|(k, _): &(String, String)| *k == key) {
                return Err(format!("duplicate attribute {key}"));
            }
            attrs.push((key, unescape(raw)?));
            a = a[value_end + 1..].trim_start();
        }
        if open.is_empty() {
            roots += 1;
        }
        let parent = open.last().map(|&i| elements[i].name.clone());
        elements.push(Element { name: name.to_string(), parent, attrs, text: String::new() });
        if !self_closing {
            open.push(elements.len() - 1);
        }
    }
    if !open.is_empty() {
        return Err("unclosed elements".into());
    }
    if roots != 1 {
        return Err(format!("{roots} root elements"));
    }
    Ok(elements)
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';').ok_or("& without ;")? + amp;
        let entity = &rest[amp + 1..semi];
        let c = match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = entity.strip_prefix('#').ok_or_else(|| format!("unknown entity &{entity};"))?;
                char::from_u32(code.parse().map_err(|_| format!("bad reference &{entity};"))?).ok_or("bad char")?
            }
        };
        out.push(c);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    if out.chars().any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')) {
        return Err("control character".into());
    }
    Ok(out)
}
