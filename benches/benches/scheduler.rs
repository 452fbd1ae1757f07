//! Scheduler throughput: the classic hold model. The queue is pre-filled with N events at
//! pseudo-random times; each operation pops the earliest event and pushes it again a random
//! delay later, so the queue stays at N pending events. One element = one pop plus one push.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use repsim::world::scheduler::EventQueue;
use repsim_benches::XorShift;

/// Hold operations per measured iteration (keeps criterion's per-iteration overhead out).
const OPS_PER_ITER: u64 = 1_000;
/// Delays are uniform in [0, 2 ms): 1 ms mean.
const MAX_DELAY_NS: u64 = 2_000_000;

/// Uniform delays in [0, MAX_DELAY_NS) from the shared xorshift.
fn delay_ns(rng: &mut XorShift) -> u64 {
    rng.next() % MAX_DELAY_NS
}

fn hold(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler/hold");
    group.throughput(Throughput::Elements(OPS_PER_ITER));
    for pending in [10_000usize, 100_000, 1_000_000] {
        group.bench_with_input(BenchmarkId::from_parameter(pending), &pending, |b, &pending| {
            let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
            let mut q: EventQueue<u64> = EventQueue::with_capacity(pending + 1);
            for id in 0..pending as u64 {
                q.push(delay_ns(&mut rng), id);
            }
            b.iter(|| {
                for _ in 0..OPS_PER_ITER {
                    let (at_ns, id) = q.pop().expect("the queue never drains");
                    q.push(at_ns + delay_ns(&mut rng), black_box(id));
                }
            });
            assert_eq!(q.len(), pending);
        });
    }
    group.finish();
}

criterion_group!(benches, hold);
criterion_main!(benches);
