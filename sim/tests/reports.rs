//! Reports: the files of a run and of a comparison are written, parse, and say the same thing
//! as the metrics; shaded windows sit at the fault times; compare runs the same seeds (the same
//! workload) under every value.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use repsim::cmd::compare::write_comparison;
use repsim::cmd::compare::{run_comparison, Axis};
use repsim::cmd::progress::Progress;
use repsim::report::plot::WindowKind;

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("repsim-reports-test-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A well-formedness check small enough to need no XML library: every tag closes in order,
/// attribute values are quoted, text has no raw `<` and every `&` starts an entity.
fn assert_well_formed(svg: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..];
            assert!(
                ["&lt;", "&gt;", "&amp;", "&quot;", "&apos;"].iter().any(|e| entity.starts_with(e)),
                "a bare & in text: {}",
                &text[i..(i + 20).min(text.len())]
            );
        }
        let close = rest[open..].find('>').map(|c| open + c).expect("every < has its >");
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "a < inside a tag: {tag}");
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
        if tag.starts_with('?') || tag.starts_with('!') {
            // declaration or comment
        } else if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(top, name.trim(), "</{name}> closes <{top}>");
        } else if !tag.ends_with('/') {
            stack.push(tag.split_whitespace().next().unwrap_or("").to_string());
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    assert!(svg.trim_start().starts_with("<svg"), "not an SVG document");
}

/// `(attributes, text)` of every `<text>` element.
fn texts(svg: &str) -> Vec<(String, String)> {
    svg.split("<text ")
        .skip(1)
        .filter_map(|chunk| {
            let (attrs, rest) = chunk.split_once('>')?;
            let (body, _) = rest.split_once("</text>")?;
            Some((attrs.to_string(), body.trim().to_string()))
        })
        .collect()
}

fn attr(attrs: &str, name: &str) -> Option<f64> {
    let start = attrs
        .find(&format!(" {name}=\""))
        .map(|i| i + name.len() + 3)
        .or_else(|| attrs.starts_with(&format!("{name}=\"")).then_some(name.len() + 2))?;
    let end = attrs[start..].find('"')? + start;
    attrs[start..end].parse().ok()
}

/// `(x, width)` of every `<rect>` with this fill and opacity.
fn rects(svg: &str, fill: &str, opacity: &str) -> Vec<(f64, f64)> {
    svg.split("<rect ")
        .skip(1)
        .filter_map(|chunk| {
            let attrs = chunk.split_once("/>")?.0;
            let matches =
                attrs.contains(&format!("fill=\"{fill}\"")) && attrs.contains(&format!("opacity=\"{opacity}\""));
            matches.then(|| (attr(attrs, "x").unwrap(), attr(attrs, "width").unwrap()))
        })
        .collect()
}

/// Seconds -> pixels along the time axis, as plotters drew it: from the tick labels under the
/// (first) panel.
fn time_axis(svg: &str) -> impl Fn(f64) -> f64 {
    let ticks: Vec<(f64, f64)> = texts(svg)
        .into_iter()
        .filter(|(attrs, _)| attrs.contains("dy=\"0.76em\"") && attrs.contains("text-anchor=\"middle\""))
        .filter(|(attrs, _)| !attrs.contains("transform"))
        .filter_map(|(attrs, body)| Some((body.parse::<f64>().ok()?, attr(&attrs, "x")?)))
        .collect();
    let first = *ticks.iter().find(|t| t.0 == 0.0).expect("a 0 s tick");
    let last = *ticks.iter().max_by(|a, b| a.0.total_cmp(&b.0)).expect("ticks");
    assert!(last.0 > 0.0);
    move |seconds: f64| first.1 + (last.1 - first.1) * seconds / last.0
}

/// x of every vertical `<polyline>` stroked in `color`.
fn vertical_lines(svg: &str, color: &str) -> Vec<f64> {
    svg.split("<polyline ")
        .skip(1)
        .filter_map(|chunk| {
            let attrs = chunk.split_once("/>")?.0;
            if !attrs.contains(&format!("stroke=\"{color}\"")) {
                return None;
            }
            let points = attrs.split("points=\"").nth(1)?.split('"').next()?;
            let xs: Vec<f64> = points.split_whitespace().filter_map(|p| p.split(',').next()?.parse().ok()).collect();
            (xs.len() == 2 && xs[0] == xs[1]).then_some(xs[0])
        })
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_and_write(test: &str, name: &str, seed: u64) -> (repsim::report::summary::Summary, PathBuf) {
    let summary = common::run(name, seed, &[]);
    let dir = out_dir(test);
    repsim::cmd::run::write_report(&dir, &summary).expect("report written");
    (summary, dir)
}

#[test]
fn a_run_writes_summaries_plots_and_their_data_and_they_parse() {
    let (summary, dir) = run_and_write("files", "primary-crash-restart", 42);
    for file in ["summary.json", "summary.md", "series.json", "lag.svg", "throughput.svg", "latency.svg"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    let json = json(&dir.join("summary.json"));
    assert_eq!(json["commits"], summary.commits);
    assert!(json["commit_latency_ns"]["p9999"].is_u64());
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    for needle in ["](lag.svg)", "](throughput.svg)", "](latency.svg)", "| crash pg1 |", "`acked_writes_durable`"] {
        assert!(md.contains(needle), "summary.md lacks {needle}:\n{md}");
    }
    for e in &summary.expectations {
        assert!(md.contains(&format!("expect `{}`", e.name)), "summary.md lacks expectation {}", e.name);
    }
    for (file, what) in [("lag.svg", "replication lag"), ("throughput.svg", "throughput"), ("latency.svg", "latency")] {
        let svg = std::fs::read_to_string(dir.join(file)).unwrap();
        assert_well_formed(&svg);
        let title = &texts(&svg)[0].1;
        assert!(title.starts_with("primary-crash-restart · seed 42") && title.contains(what), "{file}: {title}");
        assert!(svg.contains("time (s)"), "{file} has a time axis with its unit");
        assert!(svg.contains(">\ncrash pg1\n<"), "{file} labels the crash window");
        assert!(svg.contains(">\nsettle: clients stopped\n<"), "{file} labels the settle phase");
    }
}

#[test]
fn plotted_series_and_legends_agree_with_the_summary() {
    let (summary, dir) = run_and_write("agree", "primary-crash-restart", 7);
    let series = json(&dir.join("series.json"));
    let sum = |key: &str| series[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("commits"), summary.commits, "commits/s buckets add up to the commits");
    assert_eq!(sum("reads"), summary.reads, "reads/s buckets add up to the reads");
    let buckets = series["commits"].as_array().unwrap().len() as u64;
    assert_eq!(buckets * series["bucket_ns"].as_u64().unwrap(), series["end_ns"].as_u64().unwrap());

    // Per-second maxima are exact; the histogram's max is within its 3 significant digits.
    let close = |exact: u64, hist: u64| exact <= hist && hist - exact <= hist / 1000 + 1;
    let max_commit = series["commit_latency_max_ns"].as_array().unwrap().iter().filter_map(|v| v.as_u64()).max();
    assert!(
        close(max_commit.unwrap(), summary.commit_latency_ns.max),
        "{max_commit:?} vs {:?}",
        summary.commit_latency_ns
    );
    for (name, standby) in &summary.standbys {
        let lag = series["standbys"][name]["lag_bytes"].as_array().unwrap();
        let max = lag.iter().filter_map(|v| v.as_u64()).max().unwrap();
        assert!(close(max, standby.lag_bytes.max), "{name}: {max} vs {:?}", standby.lag_bytes);
    }
    // The crash of pg1 (8 s .. 12 s) leaves no lag sample for a while: a gap, not a zero.
    let pg2 = series["standbys"]["pg2"]["lag_bytes"].as_array().unwrap();
    assert!(pg2[9].is_null(), "no pg_stat_replication row while the primary is down: {:?}", &pg2[7..13]);

    // The legends print the summary's own figures.
    let latency = std::fs::read_to_string(dir.join("latency.svg")).unwrap();
    let ms = |ns: u64| format!("{:.2} ms", ns as f64 / 1e6);
    for (label, value) in [("p50", 0), ("p99", 2), ("p99.99", 4)] {
        let p = &summary.commit_latency_ns;
        let v = [p.p50, p.p90, p.p99, p.p999, p.p9999][value];
        assert!(latency.contains(&format!("\n{label} {}\n", ms(v))), "latency.svg lacks commit {label} {}", ms(v));
    }
    assert!(latency.contains(&format!("\nmax {}\n", ms(summary.read_latency_ns.max))));
    let throughput = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
    let commits = summary.commits.to_string();
    let with_commas: String = commits
        .chars()
        .enumerate()
        .flat_map(|(i, c)| ((i > 0 && (commits.len() - i) % 3 == 0).then_some(',')).into_iter().chain([c]))
        .collect();
    assert!(throughput.contains(&format!("{with_commas} commits, {:.1}/s", summary.commits_per_sec)));
}

#[test]
fn shaded_windows_sit_at_the_fault_times_on_the_axis() {
    let (summary, dir) = run_and_write("windows", "primary-crash-restart", 42);
    let svg = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
    // The x axis as plotters drew it: the tick labels under the panel (0 to 30 s).
    let px = time_axis(&svg);
    // The crash window: the scenario crashes pg1 at 8 s and restarts it at 12 s.
    let crash = rects(&svg, "#D55E00", "0.16");
    assert_eq!(crash.len(), 1, "one shaded crash window in the one panel: {crash:?}");
    assert!((crash[0].0 - px(8.0)).abs() <= 1.5, "crash starts at {} px, 8 s is at {} px", crash[0].0, px(8.0));
    assert!((crash[0].0 + crash[0].1 - px(12.0)).abs() <= 1.5, "crash ends at 12 s");
    // The unavailability window, from the metrics.
    let timeline = summary.timeline.as_deref().unwrap();
    let w = timeline.windows.iter().find(|w| w.kind == WindowKind::Unavailable).expect("an unavailability window");
    assert_eq!(w.to_ns - w.from_ns, summary.unavailable_ns);
    // It starts with the last write asked for before the crash that was never acknowledged.
    let started = 7_900_000_000..=8_000_000_000;
    assert!(started.contains(&w.from_ns) && w.to_ns > 12_000_000_000, "the outage spans the crash: {w:?}");
    let shaded = rects(&svg, "#5A5A5A", "0.16");
    assert_eq!(shaded.len(), 1);
    assert!((shaded[0].0 - px(w.from_ns as f64 / 1e9)).abs() <= 1.5);
    assert!((shaded[0].0 + shaded[0].1 - px(w.to_ns as f64 / 1e9)).abs() <= 1.5);
    assert!(svg.contains(&format!("writes unavailable {:.3} s", summary.unavailable_ns as f64 / 1e9)));
}

#[test]
fn compare_runs_the_same_seeds_and_workload_under_every_value() {
    let path = common::scenario_path("sync-vs-async");
    let axes = [
        Axis::parse("replication.synchronous_commit=local,on").unwrap(),
        Axis::parse("duration=3s").unwrap(),
        Axis::parse("settle=2s").unwrap(),
    ];
    let comparison = run_comparison(&path, &axes, &[3, 4], 2, &Progress::hidden()).expect("valid input");
    assert_eq!(comparison.rows.len(), 2);
    let (local, on) = (&comparison.rows[0], &comparison.rows[1]);
    assert_eq!(local.combination.label, "local");
    assert_eq!(on.combination.overrides, ["replication.synchronous_commit=on", "duration=3s", "settle=2s"]);
    for row in &comparison.rows {
        assert!(row.panicked.is_empty());
        assert_eq!(row.runs.iter().map(|f| f.seed).collect::<Vec<_>>(), [3, 4]);
    }
    for (a, b) in local.runs.iter().zip(&on.runs) {
        // Common random numbers: the same arrivals, so the same operations, whatever the level.
        assert_eq!(a.commits + a.failed_ops, b.commits + b.failed_ops, "seed {}", a.seed);
        assert_ne!(a.trace_hash, b.trace_hash, "the level does change the run");
        assert!(a.commit_p50_ns < b.commit_p50_ns, "on waits for the standby's flush, local does not");
    }
    let dir = out_dir("compare");
    write_comparison(&dir, &comparison).unwrap();
    let md = std::fs::read_to_string(dir.join("compare.md")).unwrap();
    assert!(md.contains("\n| local |") && md.contains("\n| on |"), "{md}");
    assert!(md.contains("`duration=3s`"), "fixed settings are listed: {md}");
    assert!(md.contains("--seed 4 --set 'replication.synchronous_commit=on'"), "reproduce commands: {md}");
    let svg = std::fs::read_to_string(dir.join("compare.svg")).unwrap();
    assert_well_formed(&svg);
    assert!(svg.contains(">\nlocal\n<") && svg.contains(">\non\n<"), "every value names its bars");
    let cj = json(&dir.join("compare.json"));
    assert_eq!(cj["rows"].as_array().unwrap().len(), 2);
    assert_eq!(cj["seeds"], serde_json::json!([3, 4]));
}

fn repsim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_repsim")).args(args).output().expect("binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[test]
fn compare_takes_inline_toml_values_whole_and_refuses_bad_input_with_exit_2() {
    let scenario = common::scenario_path("sync-vs-async");
    let scenario = scenario.to_str().unwrap();
    let dir = out_dir("compare-cli");
    let latency = r#"network.latency={ dist = "constant", value = "1ms" },{ dist = "constant", value = "3ms" }"#;
    let (code, stdout, stderr) = repsim(&[
        "compare",
        scenario,
        "--set",
        latency,
        "--set",
        "duration=1s",
        "--set",
        "settle=1s",
        "--seeds",
        "1..2",
        "--out",
        dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "--quiet and not a terminal: nothing on stderr, got {stderr}");
    assert!(stdout.contains(r#"| { dist = "constant", value = "1ms" } |"#), "{stdout}");
    assert!(stdout.contains(r#"| { dist = "constant", value = "3ms" } |"#), "{stdout}");
    assert!(dir.join("sync-vs-async/compare/compare.md").is_file());

    let (code, _, stderr) = repsim(&["compare", scenario, "--set", "replication.synchronous_commit=on,sometimes"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--set replication.synchronous_commit=sometimes"), "{stderr}");
    let (code, _, stderr) = repsim(&["compare", scenario, "--set", "replication.synchronous_commit"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("KEY=V1,V2"), "{stderr}");
    let (code, _, stderr) = repsim(&["compare", scenario, "--set", "workload.clients=1,2", "--seeds", "5..5"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("seed range"), "{stderr}");
}

#[test]
fn failovers_are_marked_on_every_time_plot_and_listed_in_the_summary() {
    let (summary, dir) = run_and_write("failover", "failover", 42);
    assert!(summary.failovers >= 1, "the failover scenario promotes a standby");
    let promotion = &summary.promotions[0];
    let timeline = summary.timeline.as_deref().unwrap();
    let mark = timeline.marks.iter().find(|m| m.kind == repsim::metrics::MarkKind::Failover).expect("a failover mark");
    assert_eq!(mark.at_ns, promotion.at_ns);
    for file in ["lag.svg", "throughput.svg", "latency.svg"] {
        let svg = std::fs::read_to_string(dir.join(file)).unwrap();
        assert_well_formed(&svg);
        assert!(svg.contains(&format!(">\n{}\n<", mark.label)), "{file} names the failover");
    }
    // A dashed black line through the panel at the promotion time (and a tick in the band).
    let svg = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
    let x = time_axis(&svg)(promotion.at_ns as f64 / 1e9);
    let at_promotion = vertical_lines(&svg, "#000000").into_iter().filter(|l| (l - x).abs() <= 1.5).count();
    assert!(at_promotion >= 5, "dashes of the failover line at {x} px: {at_promotion}");
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("## Failovers"), "{md}");
    assert!(md.contains(&format!("| {} |", promotion.switch_lsn)), "{md}");
}
