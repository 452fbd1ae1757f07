//! The scheduler's queue: events ordered by `(time_ns, seq)`, where `seq` is the order in which
//! they were scheduled, so equal times pop in a fixed order on every machine.

use std::collections::BinaryHeap;

/// What the heap orders: one `u128`, `at_ns` in the high 64 bits, then `seq` (40 bits), then
/// the event's slot (24 bits), reversed so that `BinaryHeap`, a max-heap, pops the earliest. The
/// events themselves stay put in `slots` (measured: sifting 88-byte entries was 13 % of a
/// failover run's time; 24-byte keys compared field by field, 7 %).
type Key = std::cmp::Reverse<u128>;

/// 2^40 events scheduled in one run (a day simulated at 20 M events a minute is 2^35).
const SEQ_BITS: u32 = 40;
/// 2^24 events pending at once (a run's high water is thousands).
const SLOT_BITS: u32 = 24;

fn key(at_ns: u64, seq: u64, slot: u32) -> Key {
    assert!(seq < 1 << SEQ_BITS, "more than 2^40 events scheduled in one run");
    assert!(slot < 1 << SLOT_BITS, "more than 2^24 events pending at once");
    std::cmp::Reverse((u128::from(at_ns) << 64) | u128::from(seq << SLOT_BITS) | u128::from(slot))
}

fn at_ns_of(key: &Key) -> u64 {
    (key.0 >> 64) as u64
}

fn slot_of(key: &Key) -> usize {
    (key.0 as u64 & ((1 << SLOT_BITS) - 1)) as usize
}

pub struct EventQueue<T> {
    heap: BinaryHeap<Key>,
    /// The events, by slot; a popped event's slot is reused (`free`).
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    /// The one pending event of a process that is never pending twice (the open-loop arrivals,
    /// a fifth of a loaded run's events), held beside the heap: its key is compared with the
    /// heap's least instead of sifted through it. Same order as if it were in the heap.
    lone: Option<(Key, T)>,
    seq: u64,
    now_ns: u64,
    /// The most events ever pending at once.
    high_water: usize,
}

impl<T> Default for EventQueue<T> {
    fn default() -> Self {
        EventQueue::with_capacity(0)
    }
}

impl<T> EventQueue<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(capacity),
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            lone: None,
            seq: 0,
            now_ns: 0,
            high_water: 0,
        }
    }

    /// Time of the last event popped.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    pub fn len(&self) -> usize {
        self.heap.len() + usize::from(self.lone.is_some())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Schedules `item` at `at_ns`, which must not be in the past.
    pub fn push(&mut self, at_ns: u64, item: T) {
        assert!(at_ns >= self.now_ns, "event scheduled in the past: {at_ns} < {}", self.now_ns);
        self.seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(item);
                slot
            }
            None => {
                self.slots.push(Some(item));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^24 pending events")
            }
        };
        self.heap.push(key(at_ns, self.seq, slot));
        self.high_water = self.high_water.max(self.len());
    }

    /// Schedules the one pending event of a process that never has two pending (see `lone`),
    /// in the same order `push` would give it.
    pub fn push_lone(&mut self, at_ns: u64, item: T) {
        assert!(at_ns >= self.now_ns, "event scheduled in the past: {at_ns} < {}", self.now_ns);
        assert!(self.lone.is_none(), "a lone event is already pending");
        self.seq += 1;
        self.lone = Some((key(at_ns, self.seq, 0), item));
        self.high_water = self.high_water.max(self.len());
    }

    /// The most events ever pending at once.
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// The earliest event, advancing `now_ns` to its time.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if let Some((lone_key, _)) = &self.lone {
            // Keys are reversed: the heap's top is the greatest, the earliest event.
            if self.heap.peek().is_none_or(|top| top < lone_key) {
                let (lone_key, item) = self.lone.take().expect("checked above");
                self.now_ns = at_ns_of(&lone_key);
                return Some((self.now_ns, item));
            }
        }
        let key = self.heap.pop()?;
        let (at_ns, slot) = (at_ns_of(&key), slot_of(&key));
        self.now_ns = at_ns;
        let item = self.slots[slot].take().expect("a queued slot holds its event");
        self.free.push(slot as u32);
        Some((at_ns, item))
    }

    pub fn peek_time_ns(&self) -> Option<u64> {
        let lone = self.lone.as_ref().map(|(k, _)| at_ns_of(k));
        self.heap.peek().map(at_ns_of).into_iter().chain(lone).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_schedule_order() {
        let mut q = EventQueue::default();
        q.push(10, "b");
        q.push(5, "a");
        q.push(10, "c");
        q.push(7, "x");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(5, "a"), (7, "x"), (10, "b"), (10, "c")]);
        assert_eq!(q.now_ns(), 10);
    }

    /// A lone event pops exactly where it would have popped from the heap, ties included.
    #[test]
    fn a_lone_event_keeps_its_place_in_the_order() {
        let (mut with_lone, mut heap_only) = (EventQueue::default(), EventQueue::default());
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut lone_pending = false;
        let (mut popped_a, mut popped_b) = (Vec::new(), Vec::new());
        for id in 0..5_000u64 {
            let now = with_lone.now_ns();
            // Few distinct delays: equal times are common.
            let at = now + next(4) * 10;
            if !lone_pending && next(3) == 0 {
                with_lone.push_lone(at, (true, id));
                lone_pending = true;
            } else {
                with_lone.push(at, (false, id));
            }
            heap_only.push(at, (false, id));
            if next(2) == 0 {
                let (a, b) = (with_lone.pop().expect("pending"), heap_only.pop().expect("pending"));
                lone_pending &= !a.1 .0;
                popped_a.push((a.0, a.1 .1));
                popped_b.push((b.0, b.1 .1));
                assert_eq!(with_lone.peek_time_ns(), heap_only.peek_time_ns());
            }
        }
        while let Some((at, (_, id))) = with_lone.pop() {
            popped_a.push((at, id));
        }
        popped_b.extend(std::iter::from_fn(|| heap_only.pop()).map(|(at, (_, id))| (at, id)));
        assert_eq!(popped_a, popped_b);
        assert!(with_lone.is_empty());
    }

    #[test]
    #[should_panic(expected = "in the past")]
    fn refuses_the_past() {
        let mut q = EventQueue::default();
        q.push(10, ());
        q.pop();
        q.push(9, ());
    }
}
