//! WAL throughput in bytes: record encode and decode, the in-memory log's append and
//! decode_at, and CRC-32C over an 8 KiB page.
//!
//! The record mix is an OLTP-like stream: transactions of 1 to 4 row changes (inserts and
//! updates, 100-byte values) each followed by a commit record.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use repsim_benches::XorShift;
use repsim_engine::crc32c::crc32c;
use repsim_engine::wal::log::WalLog;
use repsim_engine::wal::record::{decode, encode, Record, RecordBody, RowChange};
use repsim_engine::Lsn;

const TRANSACTIONS: u64 = 2_000;
const VALUE_BYTES: u32 = 100;
const SEGMENT_BYTES: u64 = 16 << 20;
/// Where the encoded stream starts (the first byte of segment 1, as after initdb).
const BASE: Lsn = Lsn(SEGMENT_BYTES);

/// `(xid, body)` for the mix.
fn bodies() -> Vec<(u32, RecordBody)> {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::new();
    let mut write_id = 0;
    for xid in 1..=TRANSACTIONS as u32 {
        for _ in 0..1 + rng.next() % 4 {
            write_id += 1;
            let key = rng.next() % 10_000;
            let change = if rng.next() & 1 == 0 {
                RowChange::Insert { table: 1, key, write_id, value_len: VALUE_BYTES }
            } else {
                RowChange::Update { table: 1, key, write_id, value_len: VALUE_BYTES }
            };
            out.push((xid, RecordBody::Row(change)));
        }
        out.push((
            xid,
            RecordBody::Commit { timestamp_ns: xid as u64 * 1_000_000, apply_feedback: false, origin: None },
        ));
    }
    out
}

/// The mix as records with correct prev-links from `BASE`, and its encoding.
fn records_and_bytes() -> (Vec<Record>, Vec<u8>) {
    let mut bytes = Vec::new();
    let mut records = Vec::new();
    let mut prev = Lsn::INVALID;
    for (xid, body) in bodies() {
        let start = Lsn(BASE.0 + bytes.len() as u64);
        let record = Record { xid, prev, body };
        encode(&record, &mut bytes);
        records.push(record);
        prev = start;
    }
    (records, bytes)
}

fn record_codec(c: &mut Criterion) {
    let (records, bytes) = records_and_bytes();
    println!(
        "wal mix: {} records, {} bytes, {:.1} bytes/record",
        records.len(),
        bytes.len(),
        bytes.len() as f64 / records.len() as f64
    );
    let mut group = c.benchmark_group("wal/record");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    let mut out = Vec::with_capacity(bytes.len());
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            for record in &records {
                encode(black_box(record), &mut out);
            }
            black_box(&out);
        })
    });
    assert_eq!(out, bytes);
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut at = 0usize;
            let mut prev = Lsn::INVALID;
            let mut decoded = 0u64;
            while at < bytes.len() {
                let (record, len) = decode(black_box(&bytes[at..]), prev).expect("valid WAL");
                black_box(&record);
                prev = Lsn(BASE.0 + at as u64);
                at += len as usize;
                decoded += 1;
            }
            assert_eq!(decoded, records.len() as u64);
        })
    });
    group.finish();
}

fn wal_log(c: &mut Criterion) {
    let bodies = bodies();
    let mut log = WalLog::new(SEGMENT_BYTES, BASE, Lsn::INVALID);
    for &(xid, body) in &bodies {
        log.append(xid, body);
    }
    let total = log.end().0 - log.start().0;
    let mut group = c.benchmark_group("wal/log");
    group.throughput(Throughput::Bytes(total));
    group.bench_function("append", |b| {
        b.iter(|| {
            // Truncating keeps the buffer's capacity: measures appending, not growing.
            log.truncate(BASE, Lsn::INVALID);
            for &(xid, body) in &bodies {
                black_box(log.append(xid, black_box(body)));
            }
        })
    });
    assert_eq!(log.end().0 - log.start().0, total);
    group.bench_function("decode_at", |b| {
        b.iter(|| {
            let end = log.end();
            let mut at = log.start();
            let mut prev = Lsn::INVALID;
            while at < end {
                let (record, start, next) = log.decode_at(at, prev, end).expect("valid WAL");
                black_box(&record);
                prev = start;
                at = next;
            }
        })
    });
    group.finish();
}

fn crc(c: &mut Criterion) {
    let page: Vec<u8> = (0..8192u32).map(|i| (i * 31 + 7) as u8).collect();
    let mut group = c.benchmark_group("wal/crc32c");
    group.throughput(Throughput::Bytes(page.len() as u64));
    group.bench_function("8KiB", |b| b.iter(|| crc32c(black_box(&page))));
    group.finish();
}

criterion_group!(benches, record_codec, wal_log, crc);
criterion_main!(benches);
