//! The verdict of the checker: violations, losses by promise, the state of each invariant.

use repsim_engine::config::SyncCommitLevel;
use serde::Serialize;

use crate::check::history::AckedWrite;

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
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

pub struct Verdict {
    pub losses: Losses,
    pub converged: bool,
    pub violations: Vec<Violation>,
    /// Invariant name -> "ok" or "violated", in a fixed order.
    pub invariants: Vec<(&'static str, &'static str)>,
    /// Why a check was not judged (e.g. `converged` when the fault plan or the disk left no
    /// chance to converge).
    pub notes: Vec<String>,
}

pub(crate) fn level_index(level: SyncCommitLevel) -> usize {
    SyncCommitLevel::ALL.iter().position(|l| *l == level).expect("listed")
}
