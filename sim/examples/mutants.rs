//! Mutation testing of the testbed itself: does it catch a replication engine broken the way a
//! replication engineer could plausibly break it? Each mutant is one small edit to the engine's
//! source; for each, this copies the workspace, applies the edit, builds it, runs a swarm and
//! the CI gate, and reports which invariants caught it. A mutant that nothing catches is a hole
//! in the testbed.
//!
//!     cargo run --release --example mutants -- [--seeds A..B] [--only NAME]
//!
//! Needs only cargo and git; takes a build per mutant (about a minute each on two cores).

use std::path::{Path, PathBuf};
use std::process::Command;

struct Mutant {
    name: &'static str,
    what: &'static str,
    file: &'static str,
    from: &'static str,
    to: &'static str,
}

const MUTANTS: &[Mutant] = &[
    Mutant {
        name: "on-released-at-write",
        what: "a commit under `on` is released when the standby has only written the WAL",
        file: "engine/src/syncrep.rs",
        from: "flush: pick(members.iter().map(|c| c.flush).collect()),",
        to: "flush: pick(members.iter().map(|c| c.write).collect()),",
    },
    Mutant {
        name: "quorum-counts-unlisted",
        what: "an ANY quorum counts a standby that synchronous_standby_names does not name",
        file: "engine/src/syncrep.rs",
        from: "candidates.iter().filter(|c| c.eligible && c.priority > 0).collect();",
        to: "candidates.iter().filter(|c| c.eligible && (c.priority > 0 || names.method == SyncMethod::Quorum)).collect();",
    },
    Mutant {
        name: "flush-reported-before-fsync",
        what: "a standby reports as flushed WAL it has only written",
        file: "engine/src/walreceiver.rs",
        from: "let positions = (self.flusher.written, self.flusher.flushed, self.replay.lsn);",
        to: "let positions = (self.flusher.written, self.flusher.written, self.replay.lsn);",
    },
    Mutant {
        name: "promote-before-replay",
        what: "a promoted standby accepts writes before replaying all the WAL it flushed",
        file: "engine/src/promote.rs",
        from: "if self.replay_has_more() {",
        to: "if false && self.replay_has_more() {",
    },
    Mutant {
        name: "promote-outside-sync-key",
        what: "the HA agent promotes a standby the sync key does not name",
        file: "engine/src/ha.rs",
        from: "if sync.leader != *me && !sync.standbys.contains(me) {",
        to: "if false && sync.leader != *me && !sync.standbys.contains(me) {",
    },
    Mutant {
        name: "local-acked-like-off",
        what: "a commit under `local` (or above) is acknowledged before its WAL is flushed, like `off`",
        file: "engine/src/commit.rs",
        from: "if level == SyncCommitLevel::Off {",
        to: "if level <= SyncCommitLevel::Local {",
    },
    Mutant {
        name: "waiting-commit-visible",
        what: "a commit waiting for its local flush or its synchronous standbys is visible to other sessions",
        file: "engine/src/commit.rs",
        from: "self.visibility.hide(commit_lsn, &changes, |table, key| self.store.get(table, key));",
        to: "self.visibility.shown_at_once(commit_lsn, &changes);",
    },
    Mutant {
        name: "cancelled-wait-keeps-its-level",
        what: "a commit whose wait statement_timeout cancelled is reported with the synchronous promise it never got",
        file: "engine/src/cancel.rs",
        from: "let promise = Promise { level: SyncCommitLevel::Local, confirmed_by: Vec::new(), wait_cancelled: true };",
        to: "let promise = Promise { level: waiter.level, confirmed_by: Vec::new(), wait_cancelled: true };",
    },
    Mutant {
        name: "recycle-unarchived-wal",
        what: "a checkpoint recycles WAL segments the archiver has not archived yet",
        file: "engine/src/checkpoint.rs",
        from: "keep_seg = keep_seg.min(self.archive_keep_segno());",
        to: "keep_seg = keep_seg.min(u64::MAX.min(self.archive_keep_segno()).max(keep_seg));",
    },
    Mutant {
        name: "archive-unflushed-segment",
        what: "the archiver hands a segment to archive_command once inserted, before it is written and flushed",
        file: "engine/src/archiver.rs",
        from: "let complete_below = self.flusher.flushed.0 / segment;",
        to: "let complete_below = self.wal.end().0 / segment;",
    },
    Mutant {
        name: "cascade-sends-unflushed",
        what: "a cascading standby's walsender sends WAL it has received but not flushed",
        file: "engine/src/walsender.rs",
        from: "let limit = self.flusher.flushed;",
        to: "let limit = if self.role == Role::Primary { self.flusher.flushed } else { self.wal.end() };",
    },
    Mutant {
        name: "cleanup-ignores-standby-queries",
        what: "a standby replays a cleanup without waiting for or cancelling the queries that may see the removed rows",
        file: "engine/src/replay.rs",
        from: "if let Resolution::Wait = self.resolve_snapshot_conflict(now, conflict_horizon_xid, out) {",
        to: "if let (Resolution::Wait, true) = (Resolution::Proceed, now.0 == u64::MAX) {",
    },
    Mutant {
        name: "restore-stops-after-one-segment",
        what: "a restore from the archive ends recovery after the first segment restore_command fetched",
        file: "engine/src/restore.rs",
        from: "        self.write_wal(out);\n        self.try_restore(out);",
        to: "        self.write_wal(out);\n        self.archive_exhausted(now, out);",
    },
    Mutant {
        name: "pooler-ignores-pool-size",
        what: "PgBouncer opens a server connection whenever none is free, past default_pool_size",
        file: "sim/src/world/pooler.rs",
        from: "if conns.len() < self.spec.default_pool_size as usize {",
        to: "if conns.len() < usize::MAX {",
    },
    Mutant {
        name: "dns-client-ignores-ttl",
        what: "a client reconnects to its cached writer address however old the answer is",
        file: "sim/src/world/resolve.rs",
        from: "Some((node, resolved_ns)) if now.saturating_sub(resolved_ns) < lifetime_ns => (node, resolved_ns),",
        to: "Some((node, resolved_ns)) => (node, resolved_ns),",
    },
    Mutant {
        name: "pgpool-balances-after-write",
        what: "PgPool-II balances a session's reads after its write under disable_load_balance_on_write = always",
        file: "sim/src/world/pooler.rs",
        from: "(self.wrote[s] && !self.spec.balance_after_write)",
        to: "(self.wrote[s] && self.spec.balance_after_write && false)",
    },
];

fn run(cmd: &mut Command) -> Result<std::process::Output, String> {
    cmd.output().map_err(|e| format!("{cmd:?}: {e}"))
}

/// A fresh copy of the committed workspace with `m` applied.
fn prepare(root: &Path, m: &Mutant, dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let archive = run(Command::new("git").arg("-C").arg(root).args(["archive", "--format=tar", "HEAD"]))?;
    let mut untar = Command::new("tar");
    untar.arg("-x").arg("-C").arg(dir).stdin(std::process::Stdio::piped());
    let mut child = untar.spawn().map_err(|e| e.to_string())?;
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(&archive.stdout).map_err(|e| e.to_string())?;
    child.wait().map_err(|e| e.to_string())?;
    let path = dir.join(m.file);
    let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    if text.matches(m.from).count() != 1 {
        return Err(format!("{}: the text to mutate is not found exactly once in {}", m.name, m.file));
    }
    std::fs::write(&path, text.replace(m.from, m.to)).map_err(|e| e.to_string())
}

/// Invariants named in the swarm's and the gate's output.
fn caught_by(output: &str) -> Vec<String> {
    let mut names: Vec<String> = output
        .split("invariant ")
        .skip(1)
        .filter_map(|rest| rest.split(':').next())
        .map(|s| s.trim_matches('`').to_string())
        .filter(|s| !s.is_empty() && !s.contains(' '))
        .collect();
    if output.contains("panic inside the simulation") {
        names.push("panic".into());
    }
    names.sort();
    names.dedup();
    names
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let seeds = value("--seeds").unwrap_or_else(|| "1..201".into());
    let only = value("--only");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let work = std::env::temp_dir().join("repsim-mutants");
    let target = work.join("target");
    let mut holes = 0;
    for m in MUTANTS.iter().filter(|m| only.as_deref().is_none_or(|o| o == m.name)) {
        let dir = work.join(m.name);
        if let Err(e) = prepare(&root, m, &dir) {
            eprintln!("{}: cannot prepare: {e}", m.name);
            std::process::exit(2);
        }
        let build = run(Command::new("cargo")
            .args(["build", "--release", "-q", "-p", "repsim"])
            .current_dir(&dir)
            .env("CARGO_TARGET_DIR", &target));
        match build {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                eprintln!("{}: build failed:\n{}", m.name, String::from_utf8_lossy(&o.stderr));
                std::process::exit(2);
            }
            Err(e) => {
                eprintln!("{}: {e}", m.name);
                std::process::exit(2);
            }
        }
        let bin = target.join("release").join("repsim");
        let out = work.join(format!("{}-reports", m.name));
        let swarm = run(Command::new(&bin)
            .args(["swarm", "--seeds", &seeds, "--quiet", "--no-shrink", "--out"])
            .arg(&out)
            .current_dir(&dir));
        let gate = run(Command::new(&bin).args(["check", "scenarios/", "--seeds", "10"]).current_dir(&dir));
        let text = |r: &Result<std::process::Output, String>| {
            r.as_ref().map_or_else(|e| e.clone(), |o| String::from_utf8_lossy(&o.stdout).into_owned())
        };
        let (swarm_text, gate_text) = (text(&swarm), text(&gate));
        let failed_seeds = swarm_text.lines().filter(|l| l.starts_with("seed ")).count();
        let gate_failed = gate.as_ref().is_ok_and(|o| !o.status.success());
        let caught = caught_by(&(swarm_text.clone() + &gate_text));
        let verdict = if failed_seeds > 0 || gate_failed { "caught" } else { "MISSED" };
        if verdict == "MISSED" {
            holes += 1;
        }
        println!(
            "{verdict:7} {:28} swarm {seeds}: {failed_seeds} failing seeds; gate: {}; invariants: {}\n        {}",
            m.name,
            if gate_failed { "fails" } else { "passes" },
            if caught.is_empty() { "-".to_string() } else { caught.join(", ") },
            m.what
        );
    }
    std::process::exit(if holes == 0 { 0 } else { 1 });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutant_names_text_that_exists_once() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        for m in MUTANTS {
            let text = std::fs::read_to_string(root.join(m.file)).unwrap();
            assert_eq!(text.matches(m.from).count(), 1, "{}: {}", m.name, m.from);
        }
    }
}
