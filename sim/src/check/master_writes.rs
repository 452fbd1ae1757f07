//! The register writes the clients of `[multi_master]`'s masters saw acknowledged, the last
//! few per key: what `check::multimaster` judges lost updates against.

use std::collections::VecDeque;

use crate::check::id_map::IdMap;

pub const KEPT_WRITES_PER_KEY: usize = 32;

#[derive(Clone, Copy, Debug)]
struct RegisterWrite {
    write_id: u64,
    invoked_ns: u64,
    acked_ns: u64,
}

/// The acknowledged register writes of every master's clients, the last few per key.
#[derive(Default)]
pub struct MasterWrites {
    by_key: IdMap<VecDeque<RegisterWrite>>,
}

impl MasterWrites {
    pub fn acked(&mut self, key: u64, write_id: u64, invoked_ns: u64, acked_ns: u64) {
        let writes = self.by_key.entry(key).or_default();
        writes.push_back(RegisterWrite { write_id, invoked_ns, acked_ns });
        if writes.len() > KEPT_WRITES_PER_KEY {
            writes.pop_front();
        }
    }

    /// Writes to `key` begun after the one that produced `final_write_id` was acknowledged
    /// (`None`: that write is not among those kept, or was never acknowledged).
    pub(crate) fn lost_after(&self, key: u64, final_write_id: u64) -> Option<u64> {
        let writes = self.by_key.get(&key)?;
        let kept = writes.iter().find(|w| w.write_id == final_write_id)?;
        Some(writes.iter().filter(|w| w.invoked_ns > kept.acked_ns).count() as u64)
    }
}
