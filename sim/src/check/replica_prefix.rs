//! `replica_prefix`: where a standby and the primary both still hold WAL, the bytes agree.

use repsim_engine::timeline::History;
use repsim_engine::wal::blocks::Piece;
use repsim_engine::{Lsn, Role};

use crate::check::verdict::Violation;
use crate::check::view::EndState;

/// `replica_prefix`: where a standby and the primary both still hold WAL, the bytes agree.
pub(crate) fn check_replica_prefix(end: &EndState) -> Vec<Violation> {
    let Some(primary_index) = end.final_primary() else { return Vec::new() };
    let Some(primary) = end.nodes[primary_index].engine else {
        return Vec::new();
    };
    let p = primary.status();
    let mut out = Vec::new();
    for (i, slot) in end.physical() {
        let Some(standby) = slot.engine.filter(|_| i != primary_index) else {
            continue;
        };
        if standby.role() != Role::Standby {
            continue; // a second primary: split brain, judged by `no_split_brain`
        }
        // Compare only where both histories agree on which timeline wrote each byte (two
        // timelines may share a number); a standby not following yet is `converged`'s matter.
        let agreed = agreed_until(
            primary.timeline_history(),
            primary.timeline(),
            standby.timeline_history(),
            standby.timeline(),
        );
        // A timeline number created twice names two histories: its copies need not agree.
        let twice = &end.timelines_created_twice;
        let unambiguous = first_ambiguous(primary.timeline_history(), primary.timeline(), twice).min(first_ambiguous(
            standby.timeline_history(),
            standby.timeline(),
            twice,
        ));
        let s = standby.status();
        let from = Lsn(p.wal_start_lsn.0.max(s.wal_start_lsn.0));
        let to = Lsn(p.flush_lsn.0.min(s.flush_lsn.0).min(agreed.0).min(unambiguous.0));
        if from >= to {
            continue;
        }
        let (Some(a), Some(b)) = (primary.wal_pieces(from, to), standby.wal_pieces(from, to)) else {
            continue;
        };
        if let Some(offset) = first_difference(a, b) {
            out.push(Violation {
                invariant: "replica_prefix".into(),
                detail: format!(
                    "{}'s WAL differs from {}'s at {}",
                    slot.name,
                    end.nodes[primary_index].name,
                    Lsn(from.0 + offset as u64)
                ),
            });
        }
    }
    out
}

/// The offset of the first byte where two equally long runs of pieces differ. Both logs cut a
/// range at the same block boundaries, so pieces are compared whole until one differs.
/// Pieces of one held block are equal without being read (or unpacked).
fn first_difference<'a>(a: impl Iterator<Item = Piece<'a>>, b: impl Iterator<Item = Piece<'a>>) -> Option<usize> {
    let mut offset = 0;
    for (x, y) in a.zip(b) {
        assert_eq!(x.len(), y.len(), "pieces of one range line up");
        if !x.equals(&y) {
            let (x, y) = (x.bytes(), y.bytes());
            return Some(offset + x.iter().zip(y.iter()).position(|(p, q)| p != q).expect("unequal pieces differ"));
        }
        offset += x.len();
    }
    None
}

/// The i-th stretch of a history: the timeline that wrote it and where it ends.
fn stretch(h: &History, current: u32, i: usize) -> (u32, Lsn) {
    h.switches.get(i).map_or((current, Lsn(u64::MAX)), |s| (s.parent, s.switch))
}

/// Where the first timeline of `twice` begins in a history (`u64::MAX`: none is in it).
fn first_ambiguous(h: &History, current: u32, twice: &[u32]) -> Lsn {
    let mut begin = Lsn(0);
    for i in 0..=h.switches.len() {
        let (timeline, end) = stretch(h, current, i);
        if twice.contains(&timeline) {
            return begin;
        }
        begin = end;
    }
    Lsn(u64::MAX)
}

/// The LSN up to which two timeline histories agree on which timeline wrote each byte.
fn agreed_until(a: &History, a_timeline: u32, b: &History, b_timeline: u32) -> Lsn {
    let mut agreed = Lsn(0);
    for i in 0..=a.switches.len().max(b.switches.len()) {
        let ((ta, ea), (tb, eb)) = (stretch(a, a_timeline, i), stretch(b, b_timeline, i));
        if ta != tb {
            return agreed;
        }
        if ea != eb || ea.0 == u64::MAX {
            return Lsn(ea.0.min(eb.0));
        }
        agreed = ea;
    }
    agreed
}

#[cfg(test)]
mod tests {
    use super::*;
    use repsim_engine::timeline::TimelineSwitch;

    fn history(switches: &[(u32, u64)]) -> History {
        History { switches: switches.iter().map(|&(parent, at)| TimelineSwitch { parent, switch: Lsn(at) }).collect() }
    }

    #[test]
    fn histories_agree_up_to_their_first_difference() {
        let one = History::default();
        assert_eq!(agreed_until(&one, 1, &one, 1), Lsn(u64::MAX));
        // Two different "timeline 2"s, forked at 100 and at 150: they agree up to 100.
        assert_eq!(agreed_until(&history(&[(1, 100)]), 2, &history(&[(1, 150)]), 2), Lsn(100));
        // A standby still on timeline 1: everything up to the switch point.
        assert_eq!(agreed_until(&history(&[(1, 100)]), 2, &one, 1), Lsn(100));
        assert_eq!(agreed_until(&history(&[(1, 100), (2, 300)]), 3, &history(&[(1, 100)]), 2), Lsn(300));
    }

    /// Two promotions both made a "timeline 2" forked at the same point (each wrote its own
    /// end-of-recovery record there): only the bytes before it are compared.
    #[test]
    fn a_timeline_created_twice_is_compared_only_up_to_where_it_begins() {
        let h = history(&[(1, 100), (2, 300)]);
        assert_eq!(first_ambiguous(&h, 3, &[2]), Lsn(100));
        assert_eq!(first_ambiguous(&h, 3, &[3]), Lsn(300));
        assert_eq!(first_ambiguous(&h, 3, &[]), Lsn(u64::MAX));
        assert_eq!(first_ambiguous(&History::default(), 1, &[2]), Lsn(u64::MAX));
    }

    #[test]
    fn the_first_differing_byte_is_found_across_pieces() {
        let a: [&[u8]; 3] = [&[1, 2, 3], &[4, 5], &[6]];
        let same: [&[u8]; 3] = [&[1, 2, 3], &[4, 5], &[6]];
        let other: [&[u8]; 3] = [&[1, 2, 3], &[4, 9], &[6]];
        let pieces = |p: [&'static [u8]; 3]| p.into_iter().map(Piece::Borrowed);
        assert_eq!(first_difference(pieces(a), pieces(same)), None);
        assert_eq!(first_difference(pieces(a), pieces(other)), Some(4));
    }
}
