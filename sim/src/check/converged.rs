//! `converged`: after settle every node runs, every standby has replayed everything the primary
//! flushed, and holds the same data.

use repsim_engine::Role;

use crate::check::verdict::Violation;
use crate::check::view::EndState;

/// `converged`: after settle every node runs, every standby has replayed everything the primary
/// flushed, and holds the same data.
pub(crate) fn check_converged(end: &EndState) -> Vec<Violation> {
    let name = |i: usize| end.nodes[i].name.to_string();
    let Some(primary_index) = end.final_primary() else {
        return vec![Violation { invariant: "converged", detail: "no node runs as primary at the end".into() }];
    };
    let Some(primary) = end.nodes[primary_index].engine.filter(|e| e.role() == Role::Primary) else {
        return vec![Violation {
            invariant: "converged",
            detail: format!("{} is not running as primary at the end", name(primary_index)),
        }];
    };
    let p = primary.status();
    let mut out = Vec::new();
    for (i, slot) in end.nodes.iter().enumerate() {
        let spare_never_added = slot.never_added;
        if i == primary_index || spare_never_added {
            continue;
        }
        let Some(standby) = slot.engine else {
            out.push(Violation { invariant: "converged", detail: format!("{} is not running at the end", name(i)) });
            continue;
        };
        let s = standby.status();
        if s.replay_lsn < p.flush_lsn || s.data_hash != p.data_hash {
            out.push(Violation {
                invariant: "converged",
                detail: format!(
                    "{} replayed to {} ({} bytes behind {}'s flush {}), data hash {:016x} vs {:016x}",
                    name(i),
                    s.replay_lsn,
                    p.flush_lsn.bytes_since(s.replay_lsn),
                    name(primary_index),
                    p.flush_lsn,
                    s.data_hash,
                    p.data_hash
                ),
            });
        }
    }
    out
}
