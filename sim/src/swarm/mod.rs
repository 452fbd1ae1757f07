//! Swarm testing: scenarios drawn from the whole scenario space, one per seed (`draw`), and
//! what a swarm seed runs: the drawn scenario, parsed by the same validation as a file, run with
//! the same seed.

pub mod draw;

use crate::scenario::{parse_scenario, Scenario};

/// Where a swarm seed's scenario is written when it fails (and what its reproduce command
/// names): `<out>/swarm/failing/swarm-<seed>.toml`.
pub fn scenario_path(out: &std::path::Path, seed: u64) -> std::path::PathBuf {
    out.join("swarm").join("failing").join(format!("swarm-{seed}.toml"))
}

/// Swarm seed `seed`: its scenario text and the scenario it parses to. A draw the parser refuses
/// is a bug of the drawing, reported with the parser's message.
pub fn scenario_of(seed: u64, source_path: &str) -> (String, Result<Scenario, String>) {
    let text = draw::draw_toml(seed);
    let scenario = parse_scenario(&text, source_path, &[]).map_err(|e| e.to_string());
    (text, scenario)
}
