//! Crash safety: a child process works on a vault in a loop and prints a
//! line each time a call has returned; the parent kills it with SIGKILL at
//! varied moments, reopens the vault, and checks that everything
//! acknowledged happened and that the call in flight happened fully or
//! not at all. Covers `put`, `put_batch`, `erase_subject`, `purge_expired`
//! and `change_key`. Runs without libtest's harness so that the same
//! binary can be the child.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::ManualClock;
use llmvault::{
    ConversationId, Error, KeySource, Message, NewRecord, RecordId, SubjectId, Vault, VaultOptions,
};

const KILLS: usize = 24;
const KEY: [u8; 32] = [0x3C; 32];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--crash-child") {
        let path = Path::new(&args[at + 2]);
        match args[at + 1].as_str() {
            "put" => child(path),
            "batch" => batch_child(path, &args[at + 3]),
            "erase" => erase_child(path),
            "purge" => purge_child(path),
            "change-key" => change_key_child(path),
            other => panic!("unknown child mode {other}"),
        }
        return;
    }
    acknowledged_puts_survive_sigkill();
    batches_are_all_or_nothing();
    erasure_is_all_or_nothing();
    purge_is_all_or_nothing();
    change_key_leaves_exactly_one_working_key();
    println!("crash: 5 passed, 0 failed");
}

/// Starts the child in `mode` and hands its acknowledgement lines to
/// `on_line` until it returns false; then kills the child with SIGKILL.
fn run_and_kill(mode: &str, path: &Path, extra: &[&str], mut on_line: impl FnMut(&str) -> bool) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--crash-child", mode])
        .arg(path)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("child ended early").unwrap();
        if !on_line(&line) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

fn open(path: &Path, key: [u8; 32]) -> Vault {
    Vault::open(path, KeySource::raw_key(key), options()).unwrap()
}

fn options() -> VaultOptions {
    VaultOptions::default().clock(Arc::new(ManualClock::new(common_start())))
}

/// A fixed time so the parent and the children agree on what expired.
fn common_start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn fresh_vault(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    drop(Vault::create(&path, KeySource::raw_key(KEY), options()).unwrap());
    path
}

const BATCH: usize = 20;

fn batch_child(path: &Path, round: &str) {
    let vault = open(path, KEY);
    let mut out = std::io::stdout().lock();
    for k in 0.. {
        let recs = (0..BATCH)
            .map(|i| {
                NewRecord::new(ConversationId::new(format!("b{round}-{k}")))
                    .subject(SubjectId::new("batcher"))
                    .prompt([Message::user(format!("batch {k} item {i}"))])
            })
            .collect();
        vault.put_batch(recs).unwrap();
        writeln!(out, "BATCH {k}").unwrap();
        out.flush().unwrap();
    }
}

fn batches_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_vault(dir.path(), "batch.vault");
    for round in 0..6 {
        let wanted = round * 3 + 1;
        let mut acked = 0;
        run_and_kill("batch", &path, &[&round.to_string()], |_| {
            acked += 1;
            acked < wanted
        });
        let vault = open(&path, KEY);
        for k in 0..acked + 3 {
            let n = vault
                .conversation(&ConversationId::new(format!("b{round}-{k}")))
                .unwrap()
                .len();
            if k < acked {
                assert_eq!(n, BATCH, "round {round}: acknowledged batch {k} incomplete");
            } else {
                assert!(
                    n == 0 || n == BATCH,
                    "round {round}: batch {k} half-written ({n})"
                );
            }
        }
        vault.verify().unwrap();
    }
}

const SUBJECTS: usize = 40;
const PER_SUBJECT: usize = 5;

fn erase_child(path: &Path) {
    let vault = open(path, KEY);
    let mut out = std::io::stdout().lock();
    for s in 0..SUBJECTS {
        vault
            .erase_subject(&SubjectId::new(format!("s{s}")))
            .unwrap();
        writeln!(out, "ERASED {s}").unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "DONE").unwrap();
    out.flush().unwrap();
    std::thread::park();
}

fn erasure_is_all_or_nothing() {
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let path = fresh_vault(dir.path(), "erase.vault");
        {
            let vault = open(&path, KEY);
            let recs = (0..SUBJECTS * PER_SUBJECT)
                .map(|i| record(i as u64).subject(SubjectId::new(format!("s{}", i % SUBJECTS))))
                .collect();
            vault.put_batch(recs).unwrap();
        }
        let wanted = round * 6 + 1;
        let mut acked = 0;
        run_and_kill("erase", &path, &[], |_| {
            acked += 1;
            acked < wanted
        });
        let vault = open(&path, KEY);
        for s in 0..SUBJECTS {
            let n = vault
                .subject_records(&SubjectId::new(format!("s{s}")))
                .unwrap()
                .len();
            if s < acked {
                assert_eq!(n, 0, "round {round}: erased subject s{s} still has records");
            } else {
                assert!(
                    n == 0 || n == PER_SUBJECT,
                    "round {round}: s{s} half-erased ({n})"
                );
            }
        }
        vault.verify().unwrap();
    }
}

const HOURS: u64 = 60;

fn purge_child(path: &Path) {
    let clock = Arc::new(ManualClock::new(common_start()));
    let vault = Vault::open(
        path,
        KeySource::raw_key(KEY),
        VaultOptions::default().clock(clock.clone()),
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    for step in 1..=HOURS {
        clock.set(common_start() + Duration::from_secs(step * 3600));
        vault.purge_expired().unwrap();
        writeln!(out, "PURGED {step}").unwrap();
        out.flush().unwrap();
    }
    std::thread::park();
}

fn purge_is_all_or_nothing() {
    for round in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = fresh_vault(dir.path(), "purge.vault");
        {
            // Record i expires after i hours; a purge at hour h removes 1..=h.
            let vault = open(&path, KEY);
            let recs = (1..=HOURS)
                .map(|i| record(i).ttl(Duration::from_secs(i * 3600)))
                .collect();
            vault.put_batch(recs).unwrap();
        }
        let wanted = round * 9 + 1;
        let mut acked = 0;
        run_and_kill("purge", &path, &[], |_| {
            acked += 1;
            acked < wanted
        });
        let stored = open(&path, KEY).verify().unwrap().records as u64;
        assert!(
            stored == HOURS - acked || stored == HOURS - acked - 1,
            "round {round}: {acked} purges acknowledged, {stored} records stored"
        );
    }
}

const OTHER_KEY: [u8; 32] = [0x5D; 32];

fn change_key_child(path: &Path) {
    let vault = open(path, KEY);
    let mut out = std::io::stdout().lock();
    loop {
        for (name, key) in [("OTHER", OTHER_KEY), ("FIRST", KEY)] {
            vault.change_key(KeySource::raw_key(key)).unwrap();
            writeln!(out, "KEY {name}").unwrap();
            out.flush().unwrap();
        }
    }
}

fn change_key_leaves_exactly_one_working_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_vault(dir.path(), "rekey.vault");
    let ids = open(&path, KEY)
        .put_batch(
            (0..30)
                .map(|i| record(i).subject(SubjectId::new(format!("s{}", i % 6))))
                .collect(),
        )
        .unwrap();
    for round in 0..6 {
        let wanted = round * 5 + 1;
        let mut last = String::new();
        let mut acked = 0;
        run_and_kill("change-key", &path, &[], |line| {
            last = line.to_owned();
            acked += 1;
            acked < wanted
        });
        let first = Vault::open(&path, KeySource::raw_key(KEY), options());
        let other = Vault::open(&path, KeySource::raw_key(OTHER_KEY), options());
        let vault = match (first, other) {
            (Ok(v), Err(Error::WrongKey)) | (Err(Error::WrongKey), Ok(v)) => v,
            (a, b) => panic!("round {round} (last ack {last}): first {a:?}, other {b:?}"),
        };
        for id in &ids {
            vault.get(*id).unwrap();
        }
        vault.verify().unwrap();
        // Put it back under the first key for the next round.
        drop(vault);
        if Vault::open(&path, KeySource::raw_key(KEY), options()).is_err() {
            open(&path, OTHER_KEY)
                .change_key(KeySource::raw_key(KEY))
                .unwrap();
        }
    }
}

fn record(i: u64) -> NewRecord {
    NewRecord::new(ConversationId::new(format!("conv-{}", i % 5)))
        .subject(SubjectId::new(format!("user-{}", i % 3)))
        .prompt([Message::user(format!("prompt number {i}"))])
        .response(Message::assistant("x".repeat((i % 7) as usize * 300)))
}

/// The child: store records forever, acknowledging each after `put`.
fn child(path: &Path) {
    let vault = Vault::open(path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0.. {
        let id = vault.put(record(i)).unwrap();
        writeln!(out, "PUT {} {i}", id.as_u64()).unwrap();
        out.flush().unwrap();
    }
}

fn acknowledged_puts_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.vault");
    drop(Vault::create(&path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap());
    let exe = std::env::current_exe().unwrap();

    let mut acknowledged: Vec<(RecordId, u64)> = Vec::new();
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--crash-child", "put"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Vary the moment of death: after 1 to 37 acknowledged puts; the
        // child is mid-way through its next put (sealing, writing or
        // syncing) when the signal lands.
        let wanted = (round * 11) % 37 + 1;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < wanted {
            let line = lines.next().expect("child ended early").unwrap();
            let mut parts = line.split_whitespace().skip(1);
            let id: u64 = parts.next().unwrap().parse().unwrap();
            let i: u64 = parts.next().unwrap().parse().unwrap();
            acknowledged.push((RecordId::from_u64(id), i));
            seen += 1;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let vault = Vault::open(&path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap();
        for (id, i) in &acknowledged {
            let rec = vault
                .get(*id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged record {id} lost: {e}"));
            assert_eq!(rec.prompt()[0].content(), format!("prompt number {i}"));
            assert_eq!(
                rec.response().unwrap().content().len(),
                (*i % 7) as usize * 300
            );
        }
        let report = vault.verify().unwrap();
        assert!(report.records >= acknowledged.len());
    }
    println!(
        "crash: {KILLS} kills, {} acknowledged records all intact",
        acknowledged.len()
    );
}
