//! The swarm's drawing: reproducible, varied, always valid, and covering every kind.

use super::*;
use repsim_engine::client::RouterKind;
use repsim_engine::config::SyncCommitLevel;

fn texts() -> Vec<String> {
    (1..=300).map(draw_toml).collect()
}

#[test]
fn the_same_seed_draws_the_same_text() {
    for seed in [0, 1, 7, 42, u64::MAX] {
        assert_eq!(draw_toml(seed), draw_toml(seed), "seed {seed}");
    }
}

#[test]
fn different_seeds_draw_different_scenarios() {
    // Compared without the name and description, which name the seed.
    let texts = texts();
    let bodies: Vec<&str> = texts.iter().map(|t| t.split_once("\nduration").expect("duration").1).collect();
    for (i, a) in bodies.iter().enumerate() {
        for (j, b) in bodies.iter().enumerate().skip(i + 1) {
            assert_ne!(a, b, "seeds {} and {} draw the same scenario", i + 1, j + 1);
        }
    }
}

#[test]
fn every_drawn_scenario_parses() {
    for (seed, text) in (1..).zip(texts()) {
        if let Err(error) = crate::scenario::parse_scenario(&text, "swarm.toml", &[]) {
            panic!("swarm seed {seed} does not parse:\n{error}\n--- the scenario:\n{text}");
        }
    }
}

/// `(at, node)` of every `crash` fault of a scenario.
fn crashes(text: &str) -> Vec<(&str, &str)> {
    let mut crashes = Vec::new();
    for block in text.split("[[faults]]").skip(1) {
        let at = block.lines().find_map(|l| l.strip_prefix("at = "));
        if let (Some(at), Some(node)) = (at, block.lines().find_map(|l| l.strip_prefix("crash = "))) {
            crashes.push((at, node));
        }
    }
    crashes
}

#[test]
fn seeds_1_to_300_cover_every_kind_router_level_and_form() {
    let texts = texts();
    let all = texts.join("\n");
    for kind in Kind::ALL {
        let described = texts.iter().any(|t| t.lines().nth(1).is_some_and(|d| d.contains(kind.name())));
        assert!(described, "no seed switches on {}", kind.name());
    }
    let actions = Kind::ALL.iter().filter(|&&k| k != Kind::DoubleCrash).map(|k| k.name());
    for action in actions.chain(["restart", "heal", "one_way"]) {
        assert!(all.contains(&format!("\n{action} = ")), "no seed has a `{action}` fault");
    }
    let double_crash = texts.iter().any(|t| {
        let c = crashes(t);
        c.iter().enumerate().any(|(i, a)| c[i + 1..].iter().any(|b| a.0 == b.0 && a.1 != b.1))
    });
    assert!(double_crash, "no seed crashes two nodes at once");
    let routers = RouterKind::ALL.map(|r| format!("router = \"{}\"", r.name()));
    let levels = SyncCommitLevel::ALL.map(|l| format!("synchronous_commit = \"{}\"", l.name()));
    let dists = ["constant", "uniform", "normal", "lognormal", "pareto"].map(|d| format!("dist = \"{d}\""));
    let names = ["\"\"", "\"*\"", "\"FIRST ", "\"ANY ", "\"pg"].map(|n| format!("standby_names = {n}"));
    let others = ["[ha]", "[[network.links]]", "[node.", "[disk.", "arrival = { open", "arrival = { closed"];
    let forms = routers.into_iter().chain(levels).chain(dists).chain(names).chain(others.map(String::from));
    for form in forms {
        assert!(all.contains(&form), "no seed draws `{form}`");
    }
}
