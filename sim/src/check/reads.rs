//! What reads saw, checked as they complete: staleness against the newest acknowledged write
//! (`stale_reads`), and the session guarantees `read_your_writes` and `monotonic_reads`, and
//! `no_dirty_reads`. Bounded: per register key it keeps the last `KEPT_WRITES_PER_KEY`
//! acknowledged writes; per session the last write and read per key it touched.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasherDefault;

use repsim_engine::storage::Value;
use repsim_engine::Lsn;
use serde::Serialize;

use crate::check::id_map::{IdHasher, IdMap};
use crate::check::session_keys::SessionKeys;
use crate::metrics::Recorder;

pub const KEPT_WRITES_PER_KEY: usize = 32;
/// Violations kept as examples, per invariant.
pub const KEPT_EXAMPLES: usize = 5;

#[derive(Clone, Copy, Debug, Default)]
struct AckedWrite {
    write_id: u64,
    commit_lsn: Lsn,
    acked_at_ns: u64,
}

/// A key's last `KEPT_WRITES_PER_KEY` acknowledged writes, in a ring held in place: a write
/// touches no allocation of its own (a map of `VecDeque`s missed the cache three times a
/// write: 4% of the failover-at-load run).
type Ring = [AckedWrite; KEPT_WRITES_PER_KEY];

const EMPTY_RING: Ring = [AckedWrite { write_id: 0, commit_lsn: Lsn(0), acked_at_ns: 0 }; KEPT_WRITES_PER_KEY];

/// Where a key's ring stands, kept apart from the ring (two bytes a key, so that every key's
/// counts stay in cache): a write then only stores into its ring, where loading a cold ring's counts first
/// was most of the checker's time.
#[derive(Clone, Copy, Debug, Default)]
struct RingCounts {
    /// The oldest write's place once the ring is full (0 before).
    start: u8,
    len: u8,
}

impl RingCounts {
    fn push(&mut self, ring: &mut Ring, write: AckedWrite) {
        let (start, len) = (usize::from(self.start), usize::from(self.len));
        if len < KEPT_WRITES_PER_KEY {
            ring[len] = write;
            self.len += 1;
        } else {
            ring[start] = write;
            self.start = ((start + 1) % KEPT_WRITES_PER_KEY) as u8;
        }
    }

    fn retain(&mut self, ring: &mut Ring, keep: impl Fn(&AckedWrite) -> bool) {
        let kept: Vec<AckedWrite> = KeyHistory { ring, counts: *self }.iter().filter(|w| keep(w)).copied().collect();
        *self = RingCounts::default();
        kept.into_iter().for_each(|w| self.push(ring, w));
    }
}

/// A key's remembered writes, as a read sees them.
#[derive(Clone, Copy)]
struct KeyHistory<'a> {
    ring: &'a Ring,
    counts: RingCounts,
}

impl<'a> KeyHistory<'a> {
    /// Oldest first.
    fn iter(&self) -> impl DoubleEndedIterator<Item = &'a AckedWrite> {
        let (start, len) = (usize::from(self.counts.start), usize::from(self.counts.len));
        let (older, newer) = match len < KEPT_WRITES_PER_KEY {
            true => (&self.ring[..len], &self.ring[..0]),
            false => (&self.ring[start..], &self.ring[..start]),
        };
        older.iter().chain(newer)
    }
}

/// Keys below this have their history at their index (the workload's keys are dense from 0).
const DIRECT_KEYS: u64 = 1 << 16;

/// A read that proves a violation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ReadAnomaly {
    pub session: u32,
    pub key: u64,
    pub node: String,
    pub invoked_at_ns: u64,
    /// The write the read returned (0: the key was absent).
    pub returned_write_id: u64,
    pub returned_lsn: String,
    /// The write it should have seen at least.
    pub expected_write_id: u64,
    pub expected_lsn: String,
}

#[derive(Default)]
pub struct ReadChecker {
    /// Keys below `DIRECT_KEYS`, at their index: where each ring stands, and the rings.
    ring_counts: Vec<RingCounts>,
    rings: Vec<Ring>,
    acked_far: IdMap<(RingCounts, Ring)>,
    aborted: HashSet<u64, BuildHasherDefault<IdHasher>>,
    /// Per session, per key it touched: its last acknowledged write and the newest write it
    /// read (one entry, so that a read looks the key up once).
    sessions: SessionKeys,
    pub stale_reads: u64,
    pub staleness_ns: Recorder,
    pub staleness_bytes: Recorder,
    pub read_your_writes: Vec<ReadAnomaly>,
    pub read_your_writes_count: u64,
    /// `read_your_writes` anomalies per write the read should have seen, so that those a lost
    /// write explains (its promise allowed the loss) can be told apart at the end.
    pub read_your_writes_by_expected: BTreeMap<u64, u64>,
    pub monotonic_reads: Vec<ReadAnomaly>,
    pub monotonic_reads_count: u64,
    pub monotonic_reads_by_expected: BTreeMap<u64, u64>,
    pub dirty_reads: Vec<ReadAnomaly>,
    pub dirty_reads_count: u64,
}

/// One completed read, as the checker needs it.
pub struct Read<'a> {
    pub session: u32,
    pub key: u64,
    pub node: &'a str,
    pub invoked_at_ns: u64,
    pub completed_at_ns: u64,
    pub value: Option<Value>,
    /// The snapshot the read was served from: the replayed LSN on a standby, the end of WAL
    /// on a primary.
    pub read_lsn: Lsn,
}

impl ReadChecker {
    /// For `sessions` sessions of a workload whose register keys are `0..keys`.
    pub fn new(sessions: usize, keys: u64) -> ReadChecker {
        ReadChecker { sessions: SessionKeys::new(sessions, keys), ..ReadChecker::default() }
    }

    pub fn write_acked(&mut self, session: u32, key: u64, write_id: u64, commit_lsn: Lsn, now_ns: u64) {
        let (counts, ring) = match key < DIRECT_KEYS {
            true => {
                if self.ring_counts.len() <= key as usize {
                    self.ring_counts.resize(key as usize + 1, RingCounts::default());
                    self.rings.resize(key as usize + 1, EMPTY_RING);
                }
                (&mut self.ring_counts[key as usize], &mut self.rings[key as usize])
            }
            false => {
                let (counts, ring) = self.acked_far.entry(key).or_insert((RingCounts::default(), EMPTY_RING));
                (counts, ring)
            }
        };
        counts.push(ring, AckedWrite { write_id, commit_lsn, acked_at_ns: now_ns });
        self.sessions.entry(session, key).set_wrote(write_id, commit_lsn);
    }

    /// Clients were re-pointed to a node with another history: forget the acknowledged writes
    /// it does not hold, so that reads are judged against the history they now read.
    pub fn history_changed(&mut self, holds: impl Fn(u64) -> bool) {
        let far = self.acked_far.values_mut().map(|(counts, ring)| (counts, ring));
        for (counts, ring) in self.ring_counts.iter_mut().zip(self.rings.iter_mut()).chain(far) {
            counts.retain(ring, |w| holds(w.write_id));
        }
        self.sessions.forget_unless(holds);
    }

    pub fn write_rolled_back(&mut self, write_id: u64) {
        self.aborted.insert(write_id);
    }

    /// The commit LSN of `write_id` among a key's remembered writes (newest first: a read
    /// mostly returns a recent one; write ids are unique, so the order does not change the answer).
    fn lsn_of(history: Option<KeyHistory>, write_id: u64) -> Option<Lsn> {
        history?.iter().rev().find(|w| w.write_id == write_id).map(|w| w.commit_lsn)
    }

    /// Whether the returned write `(id, its commit LSN if known)`, read from a snapshot at
    /// `read_lsn`, is older than `(write id, commit LSN)`. Ordered by commit LSN, never by
    /// write id (ids are drawn when an operation is planned, commits land in another order).
    /// A returned write whose LSN is not known (committed but not yet acknowledged, or no
    /// longer remembered) is older exactly when the snapshot itself is older.
    fn older(returned: (u64, Option<Lsn>), read_lsn: Lsn, than: (u64, Lsn)) -> bool {
        match returned {
            (0, _) => true,
            (_, Some(lsn)) => lsn < than.1,
            (_, None) => read_lsn < than.1,
        }
    }

    pub fn read(&mut self, r: Read) {
        let returned_id = r.value.map_or(0, |v| v.write_id);
        let history = match r.key < DIRECT_KEYS {
            true => self
                .ring_counts
                .get(r.key as usize)
                .map(|&counts| KeyHistory { ring: &self.rings[r.key as usize], counts }),
            false => self.acked_far.get(&r.key).map(|(counts, ring)| KeyHistory { ring, counts: *counts }),
        };
        let returned_lsn = Self::lsn_of(history, returned_id);
        let anomaly = |expected: (u64, Lsn)| ReadAnomaly {
            session: r.session,
            key: r.key,
            node: r.node.to_string(),
            invoked_at_ns: r.invoked_at_ns,
            returned_write_id: returned_id,
            returned_lsn: returned_lsn.map_or("unknown".into(), |l| l.to_string()),
            expected_write_id: expected.0,
            expected_lsn: expected.1.to_string(),
        };
        if returned_id != 0 && self.aborted.contains(&returned_id) {
            self.dirty_reads_count += 1;
            if self.dirty_reads.len() < KEPT_EXAMPLES {
                self.dirty_reads.push(anomaly((0, Lsn::INVALID)));
            }
        }
        // Stale: older than the newest write acknowledged before the read began.
        let newest = history.and_then(|h| h.iter().rev().find(|w| w.acked_at_ns < r.invoked_at_ns));
        if let (Some(newest), Some(history)) = (newest, history) {
            if newest.write_id != returned_id
                && Self::older((returned_id, returned_lsn), r.read_lsn, (newest.write_id, newest.commit_lsn))
            {
                self.stale_reads += 1;
                self.staleness_bytes.record(newest.commit_lsn.bytes_since(returned_lsn.unwrap_or_default()));
                // How long the returned value had been superseded when the read completed.
                let superseded_at = history
                    .iter()
                    .find(|w| Self::older((returned_id, returned_lsn), r.read_lsn, (w.write_id, w.commit_lsn)))
                    .map_or(newest.acked_at_ns, |w| w.acked_at_ns);
                self.staleness_ns.record(r.completed_at_ns.saturating_sub(superseded_at));
            }
        }
        let mut session = self.sessions.entry(r.session, r.key);
        if let Some(own) = session.wrote() {
            if own.0 != returned_id && Self::older((returned_id, returned_lsn), r.read_lsn, own) {
                self.read_your_writes_count += 1;
                *self.read_your_writes_by_expected.entry(own.0).or_default() += 1;
                if self.read_your_writes.len() < KEPT_EXAMPLES {
                    self.read_your_writes.push(anomaly(own));
                }
            }
        }
        if let Some(seen) = session.read() {
            if seen.0 != returned_id && Self::older((returned_id, returned_lsn), r.read_lsn, seen) {
                self.monotonic_reads_count += 1;
                *self.monotonic_reads_by_expected.entry(seen.0).or_default() += 1;
                if self.monotonic_reads.len() < KEPT_EXAMPLES {
                    self.monotonic_reads.push(anomaly(seen));
                }
            }
        }
        if let (true, Some(lsn)) = (returned_id != 0, returned_lsn) {
            if !matches!(session.read(), Some((_, seen_lsn)) if lsn <= seen_lsn) {
                session.set_read(returned_id, lsn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(write_id: u64) -> Option<Value> {
        Some(Value { write_id, len: 10 })
    }

    fn read(c: &mut ReadChecker, session: u32, at: u64, v: Option<Value>) {
        read_at(c, session, at, v, Lsn(1_000));
    }

    fn read_at(c: &mut ReadChecker, session: u32, at: u64, v: Option<Value>, read_lsn: Lsn) {
        c.read(Read { session, key: 7, node: "pg2", invoked_at_ns: at, completed_at_ns: at + 5, value: v, read_lsn });
    }

    /// A ring keeps the last `KEPT_WRITES_PER_KEY` writes oldest first as it wraps, and
    /// forgetting some keeps the rest in order.
    #[test]
    fn a_ring_keeps_the_newest_writes_in_order_as_it_wraps_and_forgets() {
        let (mut counts, mut ring) = (RingCounts::default(), EMPTY_RING);
        let write = |id: u64| AckedWrite { write_id: id, commit_lsn: Lsn(id * 10), acked_at_ns: id };
        let ids = |counts: RingCounts, ring: &Ring| -> Vec<u64> {
            KeyHistory { ring, counts }.iter().map(|w| w.write_id).collect()
        };
        for id in 1..=40 {
            counts.push(&mut ring, write(id));
        }
        assert_eq!(ids(counts, &ring), (9..=40).collect::<Vec<u64>>());
        counts.retain(&mut ring, |w| w.write_id % 3 != 0);
        let kept: Vec<u64> = (9..=40).filter(|id| id % 3 != 0).collect();
        assert_eq!(ids(counts, &ring), kept);
        counts.push(&mut ring, write(41));
        assert_eq!(ids(counts, &ring).last(), Some(&41));
    }

    #[test]
    fn writes_are_ordered_by_commit_lsn_not_by_write_id() {
        // Session 0's write 5 committed at LSN 200. Write 3, planned earlier by another
        // session, committed later (LSN 300) and is not acknowledged yet: its LSN is unknown.
        let mut c = ReadChecker::new(2, 10);
        c.write_acked(0, 7, 5, Lsn(200), 10);
        read_at(&mut c, 0, 20, value(3), Lsn(320));
        assert_eq!(c.read_your_writes_count, 0, "a snapshot past our commit returned a newer write");
        read_at(&mut c, 0, 21, value(3), Lsn(150));
        assert_eq!(c.read_your_writes_count, 1, "a snapshot before our commit missed our write");
    }

    #[test]
    fn a_read_older_than_an_acknowledged_write_is_stale_and_breaks_read_your_writes() {
        let mut c = ReadChecker::new(2, 10);
        c.write_acked(0, 7, 1, Lsn(100), 10);
        c.write_acked(0, 7, 2, Lsn(200), 20);
        read(&mut c, 1, 30, value(2));
        assert_eq!(c.stale_reads, 0);
        read(&mut c, 1, 30, value(1));
        assert_eq!(c.stale_reads, 1);
        assert_eq!(c.read_your_writes_count, 0, "session 1 never wrote key 7");
        read(&mut c, 0, 30, value(1));
        assert_eq!(c.read_your_writes_count, 1);
        assert_eq!(c.read_your_writes[0].expected_write_id, 2);
        // A write acknowledged after the read began does not make it stale.
        c.write_acked(1, 7, 3, Lsn(300), 40);
        read(&mut c, 1, 35, value(2));
        assert_eq!(c.stale_reads, 2, "a write acknowledged after the read began does not make it stale");
    }

    #[test]
    fn going_back_in_time_breaks_monotonic_reads_and_aborted_values_are_dirty() {
        let mut c = ReadChecker::new(1, 10);
        c.write_acked(0, 7, 1, Lsn(100), 10);
        c.write_acked(0, 7, 2, Lsn(200), 20);
        read(&mut c, 0, 30, value(2));
        read(&mut c, 0, 31, value(1));
        assert_eq!(c.monotonic_reads_count, 1);
        c.write_rolled_back(9);
        read(&mut c, 0, 32, value(9));
        assert_eq!(c.dirty_reads_count, 1);
    }
}
