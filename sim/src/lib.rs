//! repsim: a deterministic simulated world that drives the `repsim-engine` replication engine,
//! measures it, and checks its invariants. Every run is a function of `(scenario, seed)`.

pub mod check;
pub mod checker;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod cpu;
pub mod dcs;
pub mod disk;
pub mod dist;
pub mod ha_world;
pub mod history;
pub mod junit;
pub mod metrics;
pub mod nemesis;
pub mod net;
pub mod plot;
pub mod progress;
pub mod reads;
pub mod report;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod scheduler;
pub mod shrink;
pub mod sweep;
pub mod trace;
pub mod workload;
pub mod world;
