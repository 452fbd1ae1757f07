//! repsim: a deterministic simulated world that drives the `repsim-engine` replication engine,
//! measures it, and checks its invariants. Every run is a function of `(scenario, seed)`.

pub mod checker;
pub mod cli;
pub mod clock;
pub mod cpu;
pub mod disk;
pub mod dist;
pub mod history;
pub mod metrics;
pub mod net;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod scheduler;
pub mod trace;
pub mod workload;
pub mod world;
