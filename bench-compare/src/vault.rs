//! llmvault's side of the store workloads: the same records, sized so
//! that the plaintext body llmvault seals has exactly the length of the
//! blob the SQL peers store.

use std::path::Path;
use std::time::Instant;

use llmvault::{
    ConversationId, KdfParams, KeySource, Message, NewRecord, RecordId, Storage, SubjectId, Vault,
    VaultOptions,
};

use crate::peer::{self, Figure, Plan, XorShift};

/// Prompt text lengths that give llmvault record bodies of given lengths.
pub struct Shapes {
    /// `(body length, text length)`.
    texts: Vec<(usize, usize)>,
}

fn record(i: usize, text_len: usize) -> NewRecord {
    record_over(i, text_len, 100)
}

/// Record `i`, its subject one of `subjects`.
fn record_over(i: usize, text_len: usize, subjects: usize) -> NewRecord {
    let text: String = peer::payload(i, text_len)
        .into_iter()
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    NewRecord::new(ConversationId::new(format!(
        "c{:07}",
        peer::conversation_of(i)
    )))
    .subject(SubjectId::new(format!("u{:05}", i % subjects)))
    .model("gpt-4o")
    .prompt([Message::user(text)])
}

fn create(path: &Path) -> Vault {
    let opts = VaultOptions::default().kdf(KdfParams::minimum());
    Vault::create(path, KeySource::raw_key([7; 32]), opts).expect("create vault")
}

/// Length of the last sealed record in a vault file, read with SQLite.
fn last_sealed_len(path: &Path) -> usize {
    let conn = rusqlite::Connection::open(path).expect("open vault file");
    let len: i64 = conn
        .query_row(
            "SELECT length(sealed) FROM records ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("sealed length");
    len as usize
}

impl Shapes {
    /// Finds, on a scratch vault, the prompt text length whose encoded
    /// body is each of `lens` (or the nearest above, for lengths below the
    /// framing of an empty prompt).
    pub fn calibrate(dir: &Path, lens: &[usize]) -> Self {
        let path = dir.join("calibrate.vault");
        let vault = create(&path);
        let body_of = |text: usize| {
            vault.put(record(0, text)).expect("put");
            last_sealed_len(&path) - llmvault::SEAL_OVERHEAD
        };
        let texts = lens
            .iter()
            .map(|&len| {
                let mut text = len.saturating_sub(body_of(0));
                for _ in 0..4 {
                    let body = body_of(text);
                    if body == len || (text == 0 && body > len) {
                        return (body, text);
                    }
                    text = (text + len).saturating_sub(body);
                }
                panic!("no prompt length gives a body of {len} bytes")
            })
            .collect();
        drop(vault);
        let _ = std::fs::remove_file(&path);
        Self { texts }
    }

    /// The body length llmvault produces for a requested length.
    pub fn body_len(&self, len: usize) -> usize {
        self.texts
            .iter()
            .find(|(body, _)| *body >= len)
            .map(|(body, _)| *body)
            .expect("calibrated length")
    }

    fn text_len(&self, body_len: usize) -> usize {
        self.texts
            .iter()
            .find(|(body, _)| *body == body_len)
            .map(|(_, text)| *text)
            .expect("calibrated length")
    }
}

fn fill(
    vault: &Vault,
    shapes: &Shapes,
    plan: &Plan,
    batches: usize,
    len: usize,
) -> (f64, Vec<RecordId>) {
    fill_over(vault, shapes, plan, batches, len, 100)
}

fn fill_over(
    vault: &Vault,
    shapes: &Shapes,
    plan: &Plan,
    batches: usize,
    len: usize,
    subjects: usize,
) -> (f64, Vec<RecordId>) {
    let mut ids = Vec::with_capacity(batches * plan.batch);
    let mut spent = std::time::Duration::ZERO;
    for b in 0..batches {
        let recs: Vec<_> = (b * plan.batch..(b + 1) * plan.batch)
            .map(|i| record_over(i, shapes.text_len(len), subjects))
            .collect();
        let start = Instant::now();
        ids.extend(vault.put_batch(recs).expect("put_batch"));
        crate::peer::batch_done(b, start.elapsed());
        spent += start.elapsed();
    }
    (ids.len() as f64 / spent.as_secs_f64(), ids)
}

/// The same workloads as [`peer::run_all`], through llmvault's API.
pub fn run_all(plan: &Plan, shapes: &Shapes, dir: &Path) -> Vec<Figure> {
    let mut out = Vec::new();
    for subjects in peer::SUBJECT_COUNTS {
        let path = dir.join(format!("subjects-{subjects}.vault"));
        let vault = create(&path);
        let (rate, _) = fill_over(
            &vault,
            shapes,
            plan,
            plan.subject_batches,
            plan.record_len,
            subjects,
        );
        out.push(Figure::new(
            format!("put_batch/subjects/{subjects}"),
            rate,
            "records/s",
        ));
        drop(vault);
        let _ = std::fs::remove_file(&path);
    }
    for (n, &(len, batches)) in plan.sizes.iter().enumerate() {
        let path = dir.join(format!("size-{n}.vault"));
        let vault = create(&path);
        let (rate, _) = fill(&vault, shapes, plan, batches, len);
        assert_eq!(last_sealed_len(&path), len + llmvault::SEAL_OVERHEAD);
        out.push(Figure::new(format!("put_batch/{len}"), rate, "records/s"));
        drop(vault);
        let _ = std::fs::remove_file(&path);
    }

    let path = dir.join("get.vault");
    let vault = create(&path);
    let (rate, ids) = fill(
        &vault,
        shapes,
        plan,
        plan.get_records / plan.batch,
        plan.record_len,
    );
    out.push(Figure::new("put_batch", rate, "records/s"));
    let sealed = last_sealed_len(&path);
    out.push(Figure::new(
        "overhead/1KiB",
        (sealed - plan.record_len) as f64,
        "bytes",
    ));
    drop(vault); // checkpoints the WAL into the file
    let file = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(path.with_extension("vault-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let payload = (plan.get_records * plan.record_len) as f64;
    out.push(Figure::new("file/payload", file as f64 / payload, "x"));

    // The peers' two cache settings: SQLite's default (2,000 KiB, about
    // 2 MiB) and one that holds the working set, warmed first.
    // Each also with read audit entries written 256 at a time.
    let big = plan.big_cache_kib / 1024;
    let settings = [
        ("get/default_cache", 2, 1),
        ("get/big_cache", big, 1),
        ("get/default_cache+batched_audit", 2, 256),
        ("get/big_cache+batched_audit", big, 256),
    ];
    for (workload, cache_mib, audit_batch) in settings {
        let storage = Storage::sqlite(&path).page_cache_mib(cache_mib as u32);
        let opts = VaultOptions::default().danger_audit_read_batch(audit_batch);
        let vault = Vault::open_in(&storage, KeySource::raw_key([7; 32]), opts).expect("open");
        if cache_mib > 2 {
            for &id in &ids {
                std::hint::black_box(vault.get(id).expect("get"));
            }
        }
        out.push(Figure::new(
            workload,
            random_gets(&vault, &ids, plan.gets),
            "gets/s",
        ));
    }

    // Two threads reading at once through one handle, every read audited.
    let storage = Storage::sqlite(&path).page_cache_mib(2);
    let vault = Vault::open_in(
        &storage,
        KeySource::raw_key([7; 32]),
        VaultOptions::default(),
    )
    .expect("open");
    out.push(Figure::new(
        "get/default_cache/2_threads",
        threaded_gets(&vault, &ids, plan.gets),
        "gets/s",
    ));
    drop(vault);

    let vault =
        Vault::open(&path, KeySource::raw_key([7; 32]), VaultOptions::default()).expect("open");

    let recs: Vec<_> = (0..plan.single_puts)
        .map(|i| record(plan.get_records + i, shapes.text_len(plan.record_len)))
        .collect();
    let start = Instant::now();
    for r in recs {
        vault.put(r).expect("put");
    }
    let rate = plan.single_puts as f64 / start.elapsed().as_secs_f64();
    out.push(Figure::new("put", rate, "records/s"));
    out
}

/// One workload of [`run_all`] alone on llmvault, for a profiler
/// (`--profile`), with the key cache at `key_cache` keys if given; `None`
/// for a workload it does not know.
pub fn profile(
    workload: &str,
    plan: &Plan,
    shapes: &Shapes,
    dir: &Path,
    key_cache: Option<usize>,
) -> Option<Figure> {
    let path = dir.join("profile.vault");
    let mut opts = VaultOptions::default().kdf(KdfParams::minimum());
    if let Some(n) = key_cache {
        opts = opts.key_cache(n);
    }
    let vault = Vault::create(&path, KeySource::raw_key([7; 32]), opts).expect("create vault");
    let subjects = workload
        .strip_prefix("put_batch/subjects/")
        .and_then(|n| n.parse().ok());
    let figure = match workload {
        _ if subjects.is_some() => {
            let subjects = subjects.unwrap_or(1);
            let batches = plan.subject_batches;
            let (rate, _) = fill_over(&vault, shapes, plan, batches, plan.record_len, subjects);
            Figure::new(workload, rate, "records/s")
        }
        "get/default_cache" | "get/default_cache/2_threads" => {
            let batches = plan.get_records / plan.batch;
            let (_, ids) = fill(&vault, shapes, plan, batches, plan.record_len);
            drop(vault);
            let storage = Storage::sqlite(&path).page_cache_mib(2);
            let opts = VaultOptions::default();
            let vault = Vault::open_in(&storage, KeySource::raw_key([7; 32]), opts).expect("open");
            let rate = if workload.ends_with("2_threads") {
                threaded_gets(&vault, &ids, plan.gets)
            } else {
                random_gets(&vault, &ids, plan.gets)
            };
            Figure::new(workload, rate, "gets/s")
        }
        _ => return None,
    };
    Some(figure)
}

/// Random gets per second over `ids` from two threads at once (each
/// `gets / 2`, after a warm-up of its own), counted from when both start.
fn threaded_gets(vault: &Vault, ids: &[llmvault::RecordId], gets: usize) -> f64 {
    let start = std::sync::Barrier::new(2);
    let elapsed = std::thread::scope(|s| {
        let handles: Vec<_> = [1u64, 2]
            .into_iter()
            .map(|seed| {
                let start = &start;
                s.spawn(move || {
                    let mut rng = XorShift(0x2545_F491_4F6C_DD1D ^ seed);
                    let mut read = |n: usize| {
                        for _ in 0..n {
                            let id = ids[rng.below(ids.len())];
                            std::hint::black_box(vault.get(id).expect("get"));
                        }
                    };
                    read(gets / 8);
                    start.wait();
                    let t = Instant::now();
                    read(gets / 2);
                    t.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread"))
            .max()
            .unwrap_or_default()
    });
    gets as f64 / elapsed.as_secs_f64()
}

/// Random gets per second over `ids`, after a quarter as many to warm up.
fn random_gets(vault: &Vault, ids: &[llmvault::RecordId], gets: usize) -> f64 {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut read = |n: usize| {
        for _ in 0..n {
            let id = ids[rng.below(ids.len())];
            std::hint::black_box(vault.get(id).expect("get"));
        }
    };
    read(gets / 4);
    let start = Instant::now();
    read(gets);
    gets as f64 / start.elapsed().as_secs_f64()
}
