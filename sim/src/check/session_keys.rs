//! What each session last did with each key, for `read_your_writes` and `monotonic_reads`: the
//! (write id, commit LSN) of its last acknowledged write there, and of the newest write it read
//! there. Write ids start at 1, so id 0 stands for "none".
//!
//! The workload's keys are dense from 0, so where sessions × keys is small enough the entries
//! sit in one table, key-major (a key's entries for every session are adjacent): recording a
//! write is a store to a place known without reading anything, where a hash map per session
//! probed two cold cache lines first. The table is zeroed memory the kernel hands out
//! untouched, so it costs only the pages used. Keys outside it, or too many sessions × keys,
//! use a map per session.

use repsim_engine::Lsn;

use crate::check::id_map::IdMap;

/// Entries in the table at most: 128 MiB of address space, touched only where used.
const MAX_TABLE_ENTRIES: u64 = 1 << 22;

/// `[wrote id, wrote LSN, read id, read LSN]`.
type Entry = [u64; 4];

/// One session's entry for one key.
pub struct SessionKey<'a>(&'a mut Entry);

impl SessionKey<'_> {
    /// The session's last acknowledged write to the key.
    pub fn wrote(&self) -> Option<(u64, Lsn)> {
        (self.0[0] != 0).then(|| (self.0[0], Lsn(self.0[1])))
    }

    /// The newest write the session read at the key.
    pub fn read(&self) -> Option<(u64, Lsn)> {
        (self.0[2] != 0).then(|| (self.0[2], Lsn(self.0[3])))
    }

    pub fn set_wrote(&mut self, write_id: u64, commit_lsn: Lsn) {
        assert_ne!(write_id, 0, "write ids start at 1");
        self.0[..2].copy_from_slice(&[write_id, commit_lsn.0]);
    }

    pub fn set_read(&mut self, write_id: u64, commit_lsn: Lsn) {
        assert_ne!(write_id, 0, "write ids start at 1");
        self.0[2..].copy_from_slice(&[write_id, commit_lsn.0]);
    }
}

pub struct SessionKeys {
    sessions: usize,
    /// Keys below this have their entries in `table`, at `key * sessions + session`.
    table_keys: u64,
    table: Vec<Entry>,
    /// Other keys' entries, per session.
    far: Vec<IdMap<Entry>>,
}

/// No sessions (a checker's placeholder until it is made for its workload).
impl Default for SessionKeys {
    fn default() -> Self {
        SessionKeys::new(0, 0)
    }
}

impl SessionKeys {
    /// For `sessions` sessions of a workload whose keys are `0..keys`.
    pub fn new(sessions: usize, keys: u64) -> SessionKeys {
        let fits = (sessions as u64).saturating_mul(keys) <= MAX_TABLE_ENTRIES;
        let table_keys = if fits { keys } else { 0 };
        SessionKeys {
            sessions,
            table_keys,
            table: vec![[0; 4]; table_keys as usize * sessions],
            far: vec![IdMap::default(); sessions],
        }
    }

    /// The entry, empty if the session never touched the key.
    pub fn entry(&mut self, session: u32, key: u64) -> SessionKey<'_> {
        let session = session as usize;
        assert!(session < self.sessions, "session {session} of {}", self.sessions);
        SessionKey(match key < self.table_keys {
            true => &mut self.table[key as usize * self.sessions + session],
            false => self.far[session].entry(key).or_default(),
        })
    }

    /// Forgets the writes `holds` says are gone (clients moved to a node with another history).
    pub fn forget_unless(&mut self, holds: impl Fn(u64) -> bool) {
        let forget = |e: &mut Entry| {
            for half in e.chunks_exact_mut(2) {
                if half[0] != 0 && !holds(half[0]) {
                    half.copy_from_slice(&[0, 0]);
                }
            }
        };
        self.table.iter_mut().for_each(forget);
        for per_key in &mut self.far {
            per_key.retain(|_, e| {
                forget(e);
                e[0] != 0 || e[2] != 0
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table and the maps hold the same: keys inside and outside the table, one session's
    /// entry never another's, and forgetting clears only the writes that are gone.
    #[test]
    fn entries_are_per_session_and_key_in_the_table_and_beyond_it() {
        for keys in [100, MAX_TABLE_ENTRIES] {
            let mut s = SessionKeys::new(3, keys);
            assert_eq!(s.table_keys > 0, keys == 100, "a table only where it fits");
            for key in [0, 99, 100, 5_000_000] {
                assert_eq!(s.entry(1, key).wrote(), None);
                s.entry(1, key).set_wrote(key + 1, Lsn(10));
                s.entry(2, key).set_read(key + 2, Lsn(20));
                assert_eq!(s.entry(1, key).wrote(), Some((key + 1, Lsn(10))));
                assert_eq!(s.entry(1, key).read(), None);
                assert_eq!(s.entry(2, key).read(), Some((key + 2, Lsn(20))));
                assert_eq!(s.entry(0, key).wrote(), None, "session 0 never wrote key {key}");
            }
            s.forget_unless(|id| id % 2 == 0);
            assert_eq!(s.entry(1, 0).wrote(), None, "write 1 is gone");
            assert_eq!(s.entry(2, 0).read(), Some((2, Lsn(20))), "write 2 is held");
            assert_eq!(s.entry(1, 99).wrote(), Some((100, Lsn(10))));
            assert_eq!(s.entry(2, 99).read(), None, "write 101 is gone");
        }
    }
}
