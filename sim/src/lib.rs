//! repsim: a deterministic simulated world that drives the `repsim-engine` replication engine,
//! measures it, and checks its invariants. Every run is a function of `(scenario, seed)`.
//!
//! The layers, each importing only those above it (see `ARCHITECTURE.md`):
//! `scenario` (the input), `metrics` (instruments), `check` (history and invariants),
//! `world` (the simulation), `report` (results to files and text), `cmd` (the commands).

pub mod check;
pub mod cmd;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod swarm;
pub mod world;
