//! Timelines and their history (PostgreSQL `timeline.c`): each promotion starts timeline
//! `n = newest + 1` at the switch LSN where the parent's WAL ended. The history of timeline `n`
//! is the list of `(parent timeline, switch LSN)` for every ancestor, oldest first.

use crate::lsn::Lsn;

/// One line of a `.history` file: `parent` ended (was switched off) at `switch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimelineSwitch {
    pub parent: u32,
    pub switch: Lsn,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Switches in increasing timeline order; empty on timeline 1.
    pub switches: Vec<TimelineSwitch>,
}

impl History {
    /// Where timeline `tli` ends according to this history, `None` if it is the current one
    /// (open-ended) or not an ancestor.
    pub fn end_of(&self, tli: u32) -> Option<Lsn> {
        self.switches.iter().find(|s| s.parent == tli).map(|s| s.switch)
    }

    /// Whether `tli` is this history's current timeline `current` or one of its ancestors.
    pub fn contains(&self, tli: u32, current: u32) -> bool {
        tli == current || self.end_of(tli).is_some()
    }

    /// The timeline that wrote the byte at `lsn`, given the current timeline.
    pub fn timeline_at(&self, lsn: Lsn, current: u32) -> u32 {
        self.switches.iter().find(|s| lsn < s.switch).map_or(current, |s| s.parent)
    }

    /// The history of the child timeline that forks off `current` at `switch`.
    pub fn child(&self, current: u32, switch: Lsn) -> History {
        let mut switches = self.switches.clone();
        switches.push(TimelineSwitch { parent: current, switch });
        History { switches }
    }

    /// The `.history` file text: `parentTLI<TAB>switchLSN<TAB>reason` per line.
    pub fn encode(&self) -> Vec<u8> {
        let mut text = String::new();
        for s in &self.switches {
            text.push_str(&format!("{}\t{}\tno recovery target specified\n", s.parent, s.switch));
        }
        text.into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<History> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut switches = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let mut fields = line.split('\t');
            let parent = fields.next()?.trim().parse().ok()?;
            let (hi, lo) = fields.next()?.trim().split_once('/')?;
            let switch = Lsn((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?);
            switches.push(TimelineSwitch { parent, switch });
        }
        Some(History { switches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_round_trips_and_answers_where_each_timeline_ends() {
        let h = History::default().child(1, Lsn(0x300_0000)).child(2, Lsn(0x1_0000_0010));
        let back = History::decode(&h.encode()).unwrap();
        assert_eq!(back, h);
        assert_eq!(h.end_of(1), Some(Lsn(0x300_0000)));
        assert_eq!(h.end_of(3), None);
        assert!(h.contains(2, 3) && h.contains(3, 3) && !h.contains(4, 3));
        assert_eq!(h.timeline_at(Lsn(0x100), 3), 1);
        assert_eq!(h.timeline_at(Lsn(0x300_0000), 3), 2);
        assert_eq!(h.timeline_at(Lsn(0x2_0000_0000), 3), 3);
    }
}
