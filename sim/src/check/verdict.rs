//! The verdict of the checker: violations, losses by promise, the state of each invariant.

use repsim_engine::config::SyncCommitLevel;
use serde::Serialize;

use crate::check::history::AckedWrite;

#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Violation {
    pub invariant: String,
    pub detail: String,
}

/// Lost acknowledged writes, per promise level, in `SyncCommitLevel::ALL` order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Losses {
    pub by_level: [u64; 5],
    /// Lost although the promise covered a node the cluster kept: a bug.
    pub broken_promises: Vec<AckedWrite>,
}

impl Losses {
    pub fn total(&self) -> u64 {
        self.by_level.iter().sum()
    }
}

/// The state of one check, the same in every output (terminal, `summary.md`, JSON, JUnit,
/// sweep and check tables).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckState {
    Ok,
    Violated,
    /// Not judged in this run, and why (the router does not promise it, the scenario says it
    /// is expected not to hold, the fault plan left no chance).
    NotChecked(String),
}

impl CheckState {
    /// `ok`, `violated` or `not_checked`.
    pub fn name(&self) -> &'static str {
        match self {
            CheckState::Ok => "ok",
            CheckState::Violated => "violated",
            CheckState::NotChecked(_) => "not_checked",
        }
    }

    pub fn why(&self) -> Option<&str> {
        match self {
            CheckState::NotChecked(why) => Some(why),
            _ => None,
        }
    }
}

pub struct Verdict {
    pub losses: Losses,
    pub converged: bool,
    pub violations: Vec<Violation>,
    /// Every invariant and its state, in a fixed order.
    pub invariants: Vec<(&'static str, CheckState)>,
}

pub(crate) fn level_index(level: SyncCommitLevel) -> usize {
    SyncCommitLevel::ALL.iter().position(|l| *l == level).expect("listed")
}
