//! The kernel workloads of `repsim_benches` (see its crate docs for their exact definitions):
//! delivered messages per wall second through the scheduler and the network model alone.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use repsim_benches::{ping_message, ping_pong, ping_pong_round_ns, serial_ns, stream, KernelResult, LATENCY_NS};

const PING_PONG_DELIVERIES: u64 = 1_000_000;
const STREAM_MESSAGES: u64 = 1_000_000;
const STREAM_WINDOW: u64 = 1_000;
const STREAM_ACK_EVERY: u64 = 100;

fn report(name: &str, run: impl Fn() -> KernelResult) -> KernelResult {
    let started = Instant::now();
    let r = run();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{name}: {} deliveries, {:.6} simulated s; first run {:.3} wall s = {:.0} deliveries/s",
        r.deliveries,
        r.simulated_ns as f64 / 1e9,
        wall,
        r.deliveries as f64 / wall
    );
    r
}

fn check_ping_pong(r: KernelResult) {
    let rounds = PING_PONG_DELIVERIES / 4;
    assert_eq!(r.deliveries, PING_PONG_DELIVERIES);
    // Each round is 4 deliveries and 2 ms, plus the request's and the reply's serialisation.
    let nominal = rounds * 2 * LATENCY_NS;
    let serialisation = rounds * 2 * serial_ns(&ping_message(0));
    assert!(
        r.simulated_ns >= nominal && r.simulated_ns - nominal <= serialisation,
        "ping-pong ended at {} ns, expected {nominal} ns + at most {serialisation} ns",
        r.simulated_ns
    );
    assert_eq!(r.simulated_ns, rounds * ping_pong_round_ns());
}

fn kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);

    check_ping_pong(report("ping-pong", || ping_pong(PING_PONG_DELIVERIES)));
    group.throughput(Throughput::Elements(PING_PONG_DELIVERIES));
    group.bench_function("ping-pong", |b| {
        b.iter(|| ping_pong(PING_PONG_DELIVERIES));
    });

    let r = report("stream", || stream(STREAM_MESSAGES, STREAM_WINDOW, STREAM_ACK_EVERY));
    assert_eq!(r.deliveries, STREAM_MESSAGES + STREAM_MESSAGES / STREAM_ACK_EVERY);
    group.throughput(Throughput::Elements(r.deliveries));
    group.bench_function("stream", |b| {
        b.iter(|| stream(STREAM_MESSAGES, STREAM_WINDOW, STREAM_ACK_EVERY));
    });
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
