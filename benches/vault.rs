//! Criterion benches of the library alone: sealing by record size, and the
//! vault's writes, reads, retention, erasure and open. Comparisons with
//! other engines live in their own crate (`bench-compare/`) so their native
//! libraries never link with ours.
//!
//! Short settings that fit a 2-core machine:
//! `cargo bench --bench vault -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use llmvault::clock::ManualClock;
use llmvault::internals::SealBench;
use llmvault::{
    ConversationId, KdfParams, KeySource, Message, NewRecord, Query, RecordId, SubjectId, Vault,
    VaultOptions,
};
use rand::RngExt;

const SIZES: [usize; 4] = [64, 1024, 16 * 1024, 1024 * 1024];
/// Records in the vault that random gets and conversations read.
const READ_VAULT: usize = 100_000;
/// Turns per conversation in that vault.
const TURNS: usize = 50;
/// Expired records a purge deletes, in two vault sizes.
const EXPIRED: usize = 100_000;
const PURGE_VAULTS: [usize; 2] = [200_000, 400_000];
const BATCH: usize = 1000;

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

/// A record of about 1 KiB: conversation `i / TURNS`, one of 100 subjects.
fn record_1k(i: usize) -> NewRecord {
    NewRecord::new(ConversationId::new(format!("conv-{}", i / TURNS)))
        .subject(SubjectId::new(format!("user-{}", i % 100)))
        .model("gpt-4o")
        .prompt([Message::user("x".repeat(700))])
        .response(Message::assistant("y".repeat(300)))
}

fn options(clock: &Arc<ManualClock>) -> VaultOptions {
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(clock.clone())
}

fn key() -> KeySource {
    KeySource::raw_key([7; 32])
}

fn vault_at(path: &Path, clock: &Arc<ManualClock>) -> Vault {
    Vault::create(path, key(), options(clock)).unwrap()
}

fn fill(vault: &Vault, range: std::ops::Range<usize>, ttl: Option<Duration>) -> Vec<RecordId> {
    let mut ids = Vec::with_capacity(range.len());
    for start in range.clone().step_by(BATCH) {
        let batch = (start..(start + BATCH).min(range.end))
            .map(|i| match ttl {
                Some(ttl) => record_1k(i).ttl(ttl),
                None => record_1k(i),
            })
            .collect();
        ids.extend(vault.put_batch(batch).unwrap());
    }
    ids
}

fn writes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let vault = vault_at(&dir.path().join("writes.vault"), &clock);
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

    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("put_batch (1000 x 1 KiB)", |b| {
        b.iter_batched(
            || (0..BATCH).map(record_1k).collect::<Vec<_>>(),
            |batch| vault.put_batch(batch).unwrap(),
            BatchSize::LargeInput,
        )
    });

    // The users' shape: each batch spread over 10,000 subjects, so most
    // records of the first ten batches need a new key and the later ones
    // find theirs (some evicted from the 4,096-key cache, read again).
    let mut next = 0;
    group.bench_function("put_batch (1000 x 1 KiB, over 10000 subjects)", |b| {
        b.iter_batched(
            || {
                let batch = (next..next + BATCH)
                    .map(|i| record_1k(i).subject(SubjectId::new(format!("many-{}", i % 10_000))))
                    .collect::<Vec<_>>();
                next += BATCH;
                batch
            },
            |batch| vault.put_batch(batch).unwrap(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Random gets and whole conversations over a vault of [`READ_VAULT`]
/// records, then erasing subjects from it.
fn reads_and_erase(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let vault = vault_at(&dir.path().join("reads.vault"), &clock);
    let started = Instant::now();
    // One second between batches, so that creation times span the vault
    // (the query by time below reads the newest 1 % of it).
    let mut ids = Vec::with_capacity(READ_VAULT);
    for start in (0..READ_VAULT).step_by(BATCH) {
        ids.extend(fill(&vault, start..(start + BATCH).min(READ_VAULT), None));
        clock.advance(Duration::from_secs(1));
    }
    eprintln!(
        "built a vault of {READ_VAULT} records in {:.1?}",
        started.elapsed()
    );

    let mut group = c.benchmark_group("vault");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("get (random of {READ_VAULT}, 1 KiB)"), |b| {
        let mut rng = rand::rng();
        b.iter(|| {
            let id = ids[rng.random_range(0..ids.len())];
            vault.get(id).unwrap()
        })
    });

    // Two threads reading through the one handle at once: each sample is
    // 2 × 500 gets, timed until both are done.
    group.throughput(Throughput::Elements(1000));
    group.bench_function(
        format!("get from 2 threads (random of {READ_VAULT}, 1 KiB)"),
        |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for seed in 0..2usize {
                        let (vault, ids) = (&vault, &ids);
                        s.spawn(move || {
                            let mut rng = rand::rng();
                            for _ in 0..500 {
                                let id = ids[(rng.random_range(0..ids.len()) + seed) % ids.len()];
                                std::hint::black_box(vault.get(id).unwrap());
                            }
                        });
                    }
                });
            })
        },
    );
    group.throughput(Throughput::Elements(1));

    // The same file opened with read audit entries written 256 at a time
    // (`danger_audit_read_batch`): what a bulk reader can trade for speed.
    let batched = Vault::open(
        dir.path().join("reads.vault"),
        key(),
        options(&clock).danger_audit_read_batch(256),
    )
    .unwrap();
    group.bench_function(
        format!("get (random of {READ_VAULT}, 1 KiB, audit batched 256)"),
        |b| {
            let mut rng = rand::rng();
            b.iter(|| {
                let id = ids[rng.random_range(0..ids.len())];
                batched.get(id).unwrap()
            })
        },
    );
    drop(batched);

    group.throughput(Throughput::Elements(TURNS as u64));
    group.bench_function(format!("conversation ({TURNS} turns)"), |b| {
        let mut rng = rand::rng();
        let conversations = READ_VAULT / TURNS;
        b.iter(|| {
            let conv = ConversationId::new(format!("conv-{}", rng.random_range(0..conversations)));
            let turns = vault.conversation(&conv).unwrap();
            assert_eq!(turns.len(), TURNS);
            turns
        })
    });

    // A data subject's access request: one of the 100 subjects, read
    // through the subject index rather than by opening every record.
    group.throughput(Throughput::Elements((READ_VAULT / 100) as u64));
    group.bench_function(
        format!("query (one of 100 subjects, vault of {READ_VAULT})"),
        |b| {
            let mut rng = rand::rng();
            b.iter(|| {
                let subject = SubjectId::new(format!("user-{}", rng.random_range(0..100)));
                let found = vault.query(&Query::all().subject(subject)).unwrap();
                assert_eq!(found.len(), READ_VAULT / 100);
                found
            })
        },
    );

    // The newest 1 % by creation time: read through the sealed time index,
    // so it opens that 1 % and at most one block of ids more, not the vault.
    let newest = vault
        .get(ids[READ_VAULT - READ_VAULT / 100])
        .unwrap()
        .created_at();
    group.throughput(Throughput::Elements((READ_VAULT / 100) as u64));
    group.bench_function(format!("query since (newest 1 % of {READ_VAULT})"), |b| {
        b.iter(|| {
            let found = vault.query(&Query::all().since(newest)).unwrap();
            assert_eq!(found.len(), READ_VAULT / 100);
            found
        })
    });

    // Each sample erases a fresh subject of 100 records (added untimed).
    const SUBJECT_RECORDS: usize = 100;
    group.throughput(Throughput::Elements(SUBJECT_RECORDS as u64));
    let mut n = 0;
    group.bench_function(
        format!("erase_subject ({SUBJECT_RECORDS} records, vault of {READ_VAULT})"),
        |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let subject = SubjectId::new(format!("erase-{n}"));
                    let batch = (0..SUBJECT_RECORDS)
                        .map(|i| {
                            NewRecord::new(ConversationId::new(format!("erase-{n}-{}", i % 5)))
                                .subject(subject.clone())
                                .prompt([Message::user("x".repeat(1000))])
                        })
                        .collect();
                    vault.put_batch(batch).unwrap();
                    subject
                },
                |subject| {
                    let report = vault.erase_subject(&subject).unwrap();
                    assert_eq!(report.records, SUBJECT_RECORDS);
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

/// A vault file of `total` records of which the first [`EXPIRED`] expire
/// after a minute; later copied for each purge, which destroys them.
fn purge_template(dir: &Path, total: usize, clock: &Arc<ManualClock>) -> PathBuf {
    let path = dir.join(format!("purge-{total}.vault"));
    let vault = vault_at(&path, clock);
    fill(&vault, 0..EXPIRED, Some(Duration::from_secs(60)));
    fill(&vault, EXPIRED..total, None);
    drop(vault); // checkpoints: the one file is the whole vault
    path
}

fn purge(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let started = Instant::now();
    let templates: Vec<_> = PURGE_VAULTS
        .iter()
        .map(|&total| (total, purge_template(dir.path(), total, &clock)))
        .collect();
    eprintln!("built purge vaults in {:.1?}", started.elapsed());
    clock.advance(Duration::from_secs(3600));

    let mut group = c.benchmark_group("purge_expired");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(EXPIRED as u64));
    for (total, template) in &templates {
        let work = dir.path().join("work.vault");
        group.bench_function(format!("{EXPIRED} expired of {total}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    std::fs::copy(template, &work).unwrap();
                    let vault = Vault::open(&work, key(), options(&clock)).unwrap();
                    let start = Instant::now();
                    let report = vault.purge_expired().unwrap();
                    spent += start.elapsed();
                    assert_eq!(report.records, EXPIRED);
                    drop(vault);
                    std::fs::remove_file(&work).unwrap();
                }
                spent
            })
        });
    }
    group.finish();
}

fn open(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let mut group = c.benchmark_group("vault_open");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let pass = KeySource::passphrase("correct horse battery staple");
    for (name, kdf) in [
        ("default KDF (Argon2id 64 MiB, t=3)", KdfParams::default()),
        ("minimum KDF (8 MiB, t=1)", KdfParams::minimum()),
    ] {
        let path = dir.path().join(format!("{}.vault", name.len()));
        let opts = options(&clock).kdf(kdf);
        drop(Vault::create(&path, &pass, &opts).unwrap());
        group.bench_function(name, |b| {
            b.iter(|| Vault::open(&path, &pass, &opts).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, seal_open, writes, reads_and_erase, purge, open);
criterion_main!(benches);
