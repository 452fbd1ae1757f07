//! PostgreSQL's walsender lag tracker (`LagTrackerWrite`/`LagTrackerRead`, spec §5.2): a ring
//! of (LSN, primary-time) samples with one read head per kind (write, flush, apply). Lag is the
//! primary-clock time from a WAL position becoming sendable to the reply confirming it.

use crate::lsn::Lsn;

pub const LAG_TRACKER_BUFFER_SIZE: usize = 8192;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Sample {
    lsn: Lsn,
    time_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LagKind {
    Write = 0,
    Flush = 1,
    Apply = 2,
}

#[derive(Clone, Debug)]
pub struct LagTracker {
    buffer: Box<[Sample]>,
    write_head: usize,
    read_heads: [usize; 3],
    last_read: [Sample; 3],
    last_lsn: Lsn,
}

impl Default for LagTracker {
    fn default() -> Self {
        LagTracker {
            buffer: vec![Sample::default(); LAG_TRACKER_BUFFER_SIZE].into_boxed_slice(),
            write_head: 0,
            read_heads: [0; 3],
            last_read: [Sample::default(); 3],
            last_lsn: Lsn::INVALID,
        }
    }
}

impl LagTracker {
    /// Records that WAL up to `lsn` became sendable at `now_ns`.
    pub fn write(&mut self, lsn: Lsn, now_ns: u64) {
        if lsn == self.last_lsn {
            return;
        }
        self.last_lsn = lsn;
        let new_head = (self.write_head + 1) % LAG_TRACKER_BUFFER_SIZE;
        if self.read_heads.contains(&new_head) {
            // Full: overwrite the newest sample rather than lose an old one (PostgreSQL does
            // the same, so lag reads high rather than low when the standby is far behind).
            let newest = (self.write_head + LAG_TRACKER_BUFFER_SIZE - 1) % LAG_TRACKER_BUFFER_SIZE;
            self.buffer[newest] = Sample { lsn, time_ns: now_ns };
            return;
        }
        self.buffer[self.write_head] = Sample { lsn, time_ns: now_ns };
        self.write_head = new_head;
    }

    /// The lag for a reply confirming `lsn` of `kind` received at `now_ns`, or `None` when no
    /// new value can be computed.
    pub fn read(&mut self, kind: LagKind, lsn: Lsn, now_ns: u64) -> Option<u64> {
        let head = kind as usize;
        let mut time_ns: Option<u64> = None;
        while self.read_heads[head] != self.write_head {
            let sample = self.buffer[self.read_heads[head]];
            if sample.lsn > lsn {
                break;
            }
            self.last_read[head] = sample;
            time_ns = Some(sample.time_ns);
            self.read_heads[head] = (self.read_heads[head] + 1) % LAG_TRACKER_BUFFER_SIZE;
        }
        if self.read_heads[head] == self.write_head {
            // Buffer empty for this reader: forget the previous sample.
            self.last_read[head] = Sample::default();
        } else if time_ns.is_none() {
            let next = self.buffer[self.read_heads[head]];
            let prev = self.last_read[head];
            if prev.time_ns != 0 {
                if next.time_ns < prev.time_ns || lsn < prev.lsn {
                    return None;
                }
                // Interpolate between the previous and the next sample.
                let span = (next.lsn.0 - prev.lsn.0) as f64;
                let fraction = if span > 0.0 { (lsn.0 - prev.lsn.0) as f64 / span } else { 0.0 };
                time_ns = Some(prev.time_ns + ((next.time_ns - prev.time_ns) as f64 * fraction) as u64);
            } else {
                time_ns = Some(next.time_ns);
            }
        }
        time_ns.map(|t| now_ns.saturating_sub(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_time_from_send_to_confirmation() {
        let mut tracker = LagTracker::default();
        tracker.write(Lsn(100), 1_000);
        tracker.write(Lsn(200), 2_000);
        assert_eq!(tracker.read(LagKind::Write, Lsn(100), 1_500), Some(500));
        assert_eq!(tracker.read(LagKind::Flush, Lsn(200), 3_000), Some(1_000));
        // Halfway between samples 100@1000 and 200@2000 -> interpolated send time 1500.
        assert_eq!(tracker.read(LagKind::Apply, Lsn(100), 1_200), Some(200));
        assert_eq!(tracker.read(LagKind::Apply, Lsn(150), 4_000), Some(2_500));
    }

    #[test]
    fn no_new_value_once_everything_is_consumed() {
        let mut tracker = LagTracker::default();
        tracker.write(Lsn(100), 1_000);
        assert_eq!(tracker.read(LagKind::Write, Lsn(100), 1_100), Some(100));
        assert_eq!(tracker.read(LagKind::Write, Lsn(100), 9_000), None);
    }

    #[test]
    fn a_full_buffer_overwrites_the_newest_sample() {
        let mut tracker = LagTracker::default();
        for i in 1..=(LAG_TRACKER_BUFFER_SIZE as u64 + 10) {
            tracker.write(Lsn(i * 10), i * 100);
        }
        // The oldest sample is still there.
        assert_eq!(tracker.read(LagKind::Write, Lsn(10), 150), Some(50));
    }
}
