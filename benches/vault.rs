//! Criterion benches of the library alone: sealing by record size, and the
//! vault's put, put_batch and get. Comparisons with other engines live in
//! their own crate so their native libraries never link with ours.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use llmvault::clock::ManualClock;
use llmvault::internals::SealBench;
use llmvault::{
    ConversationId, KdfParams, KeySource, Message, NewRecord, RecordId, SubjectId, Vault,
    VaultOptions,
};
use rand::RngExt;

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];

fn seal_open(c: &mut Criterion) {
    let bench = SealBench::default();
    let mut group = c.benchmark_group("seal");
    for size in SIZES {
        let plain = vec![0x5Au8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &plain, |b, p| {
            b.iter(|| bench.seal(black_box(p)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("open");
    for size in SIZES {
        let sealed = bench.seal(&vec![0x5Au8; size]).unwrap();
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &sealed, |b, s| {
            b.iter_batched(
                || s.clone(),
                |s| bench.open(s).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    let mut group = c.benchmark_group("seal+open");
    group.throughput(Throughput::Elements(1));
    let plain = vec![0x5Au8; 1024];
    group.bench_function("1KiB", |b| {
        b.iter(|| bench.open(bench.seal(&plain).unwrap()).unwrap())
    });
    group.finish();
}

fn record_1k(i: usize) -> NewRecord {
    NewRecord::new(ConversationId::new(format!("conv-{}", i / 10)))
        .subject(SubjectId::new(format!("user-{}", i % 100)))
        .model("gpt-4o")
        .prompt([Message::user("x".repeat(700))])
        .response(Message::assistant("y".repeat(300)))
}

fn vault_in(dir: &tempfile::TempDir) -> Vault {
    let opts = VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(Arc::new(ManualClock::new(SystemTime::now())));
    Vault::create(
        dir.path().join("bench.vault"),
        KeySource::raw_key([7; 32]),
        opts,
    )
    .unwrap()
}

fn put_get(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_in(&dir);
    let mut group = c.benchmark_group("vault");
    group.sample_size(20);

    group.throughput(Throughput::Elements(1));
    let mut n = 0;
    group.bench_function("put (durable, 1 KiB)", |b| {
        b.iter(|| {
            n += 1;
            vault.put(record_1k(n)).unwrap()
        })
    });

    group.throughput(Throughput::Elements(1000));
    group.bench_function("put_batch (1000 x 1 KiB)", |b| {
        b.iter_batched(
            || (0..1000).map(record_1k).collect::<Vec<_>>(),
            |batch| vault.put_batch(batch).unwrap(),
            BatchSize::LargeInput,
        )
    });

    let ids: Vec<RecordId> = (0..10)
        .flat_map(|_| vault.put_batch((0..1000).map(record_1k).collect()).unwrap())
        .collect();
    group.throughput(Throughput::Elements(1));
    group.bench_function("get (random, 1 KiB)", |b| {
        let mut rng = rand::rng();
        b.iter(|| {
            let id = ids[rng.random_range(0..ids.len())];
            vault.get(id).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, seal_open, put_get);
criterion_main!(benches);
