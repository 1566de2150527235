//! Corruption sweep: damage a real vault file (flipped bytes across every
//! page, truncations, a damaged WAL) and read everything back. Each call
//! must return the exact original data or a typed error: never a panic,
//! never different data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::start;
use llmvault::clock::ManualClock;
use llmvault::{
    ConversationId, KdfParams, KeySource, Message, NewRecord, RecordId, SubjectId, Vault,
    VaultOptions,
};

const KEY: [u8; 32] = [0x11; 32];
const CONVERSATIONS: usize = 12;

struct Original {
    records: BTreeMap<RecordId, (usize, String)>,
}

#[derive(Default, Debug)]
struct Tally {
    clean: usize,
    error: usize,
    panic: usize,
    wrong: usize,
}

fn options() -> VaultOptions {
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(Arc::new(ManualClock::new(
            start() + Duration::from_secs(2 * 3600),
        )))
}

/// A few hundred records, several subjects, some already expired at the
/// time the sweep reads them.
fn build(path: &Path) -> Original {
    let clock = Arc::new(ManualClock::new(start()));
    let vault = Vault::create(
        path,
        KeySource::raw_key(KEY),
        VaultOptions::default()
            .kdf(KdfParams::minimum())
            .clock(clock),
    )
    .unwrap();
    let mut records = BTreeMap::new();
    for batch in 0..10 {
        let items: Vec<_> = (0..30)
            .map(|i| {
                let n = batch * 30 + i;
                let text = format!("record {n} {}", "x".repeat(n % 200));
                let ttl = if n % 7 == 0 { 3600 } else { 86_400 * 10 };
                let rec = NewRecord::new(ConversationId::new(format!("c{}", n % CONVERSATIONS)))
                    .subject(SubjectId::new(format!("s{}", n % 5)))
                    .prompt([Message::user(text.clone())])
                    .ttl(Duration::from_secs(ttl));
                (rec, (n % CONVERSATIONS, text))
            })
            .collect();
        let (recs, expected): (Vec<_>, Vec<_>) = items.into_iter().unzip();
        for (id, e) in vault.put_batch(recs).unwrap().into_iter().zip(expected) {
            records.insert(id, e);
        }
    }
    Original { records }
}

/// Opens the damaged copy and reads everything; tallies each call.
fn read_all(path: &Path, original: &Original, tally: &mut Tally) {
    let mut judge = |outcome: std::thread::Result<Option<bool>>| match outcome {
        Err(_) => tally.panic += 1,
        Ok(None) => tally.error += 1,
        Ok(Some(true)) => tally.clean += 1,
        Ok(Some(false)) => tally.wrong += 1,
    };
    let opened = catch_unwind(|| Vault::open(path, KeySource::raw_key(KEY), options()));
    let vault = match opened {
        Err(_) => return judge(Err(Box::new("open panicked"))),
        Ok(Err(_)) => return judge(Ok(None)),
        Ok(Ok(v)) => v,
    };
    for (id, (_, text)) in &original.records {
        judge(catch_unwind(AssertUnwindSafe(|| match vault.get(*id) {
            Ok(rec) => Some(rec.prompt()[0].content() == text && rec.id() == *id),
            Err(_) => None,
        })));
    }
    for c in 0..CONVERSATIONS {
        judge(catch_unwind(AssertUnwindSafe(|| {
            match vault.conversation(&ConversationId::new(format!("c{c}"))) {
                Ok(recs) => Some(recs.iter().all(|r| {
                    original
                        .records
                        .get(&r.id())
                        .is_some_and(|(conv, text)| *conv == c && r.prompt()[0].content() == text)
                })),
                Err(_) => None,
            }
        })));
    }
    judge(catch_unwind(AssertUnwindSafe(|| match vault.verify() {
        Ok(report) => Some(report.records <= original.records.len()),
        Err(_) => None,
    })));
}

fn damaged_copy(
    dir: &Path,
    files: &[(String, Vec<u8>)],
    name: &str,
    bytes: Vec<u8>,
) -> std::path::PathBuf {
    let sub = dir.join(format!("case-{}", rand_suffix()));
    std::fs::create_dir(&sub).unwrap();
    for (n, b) in files {
        std::fs::write(sub.join(n), if n == name { &bytes } else { b }).unwrap();
    }
    sub.join("v.vault")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn report(what: &str, cases: usize, tally: &Tally) {
    println!(
        "{what}: {cases} damaged copies -> {} clean reads, {} typed errors, {} panics, {} wrong data",
        tally.clean, tally.error, tally.panic, tally.wrong
    );
    assert_eq!(tally.panic, 0, "{what}: a call panicked");
    assert_eq!(tally.wrong, 0, "{what}: a call returned different data");
    assert!(
        tally.error > 0,
        "{what}: the sweep damaged nothing that mattered"
    );
}

#[test]
fn flipped_bytes_across_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let original = build(&path);
    let db = std::fs::read(&path).unwrap();
    let files = vec![("v.vault".to_owned(), db.clone())];
    let page = 4096;
    let mut tally = Tally::default();
    let mut cases = 0;
    for start in (0..db.len()).step_by(page) {
        // Page header, cell pointers, cell content and the page's end.
        for offset in [0, 1, 3, 5, 8, 12, 100, 1000, 2048, 4000, 4095] {
            let at = start + offset;
            if at >= db.len() {
                continue;
            }
            let mut bytes = db.clone();
            bytes[at] ^= 0xFF;
            let copy = damaged_copy(dir.path(), &files, "v.vault", bytes);
            read_all(&copy, &original, &mut tally);
            std::fs::remove_dir_all(copy.parent().unwrap()).unwrap();
            cases += 1;
        }
    }
    report("flipped bytes", cases, &tally);
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let original = build(&path);
    let db = std::fs::read(&path).unwrap();
    let files = vec![("v.vault".to_owned(), db.clone())];
    let mut tally = Tally::default();
    let mut cases = 0;
    let step = (db.len() / 60).max(1);
    for len in (0..db.len())
        .step_by(step)
        .chain([1, 99, 100, 101, db.len() - 1])
    {
        let copy = damaged_copy(dir.path(), &files, "v.vault", db[..len].to_vec());
        read_all(&copy, &original, &mut tally);
        std::fs::remove_dir_all(copy.parent().unwrap()).unwrap();
        cases += 1;
    }
    report("truncations", cases, &tally);
}

#[test]
fn damaged_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let original = build(&path);
    // Commit more while a handle stays open, so the last commits live in
    // the WAL, then copy the files as a crash would leave them.
    let vault = Vault::open(&path, KeySource::raw_key(KEY), options()).unwrap();
    let mut original = original;
    let extra = vault
        .put_batch(
            (0..20)
                .map(|i| {
                    NewRecord::new(ConversationId::new("c0"))
                        .prompt([Message::user(format!("late {i}"))])
                })
                .collect(),
        )
        .unwrap();
    for (i, id) in extra.into_iter().enumerate() {
        original.records.insert(id, (0, format!("late {i}")));
    }
    let files: Vec<_> = ["v.vault", "v.vault-wal"]
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.path().join(n)).unwrap()))
        .collect();
    drop(vault);
    let wal = files[1].1.clone();
    assert!(wal.len() > 4096, "the WAL holds the late commits");
    let mut tally = Tally::default();
    let mut cases = 0;
    for at in (0..wal.len()).step_by(509) {
        let mut bytes = wal.clone();
        bytes[at] ^= 0x5A;
        let copy = damaged_copy(dir.path(), &files, "v.vault-wal", bytes);
        read_all(&copy, &original, &mut tally);
        std::fs::remove_dir_all(copy.parent().unwrap()).unwrap();
        cases += 1;
    }
    report("damaged WAL", cases, &tally);
}
