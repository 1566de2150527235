//! Two processes writing one vault file at once, plus a write-only
//! ingestor process, plus this one reading and writing: nothing is lost,
//! no id is handed out twice, counts add up.
//! The only error allowed is the documented `Busy`, which is retried.
//! Runs without libtest's harness so that the same binary is the child.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use llmvault::{
    ConversationId, Error, IngestKey, Ingestor, KeySource, Message, NewRecord, RecordId, SubjectId,
    Vault, VaultOptions,
};

const KEY: [u8; 32] = [0x77; 32];
const ROUNDS: usize = 40;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--writer") {
        writer(Path::new(&args[at + 1]), &args[at + 2]);
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--ingestor") {
        ingestor(Path::new(&args[at + 1]), &args[at + 2]);
        return;
    }
    two_processes_write_one_vault();
    println!("multiprocess: 1 passed, 0 failed");
}

fn rec(who: &str, n: usize) -> NewRecord {
    NewRecord::new(ConversationId::new(format!("conv-{who}")))
        .subject(SubjectId::new(format!("subject-{}", n % 4)))
        .prompt([Message::user(format!("{who} {n}"))])
}

/// Retries while another process holds the write lock past the timeout.
fn retry<T>(mut f: impl FnMut() -> Result<T, Error>) -> T {
    loop {
        match f() {
            Err(Error::Busy) => continue,
            other => return other.unwrap(),
        }
    }
}

/// Stores ROUNDS single records and ROUNDS batches of 5; prints every id.
fn writer(path: &Path, who: &str) {
    let vault = Vault::open(path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap();
    let mut n = 0;
    for _ in 0..ROUNDS {
        let id = retry(|| vault.put(rec(who, n)));
        println!("{} {who} {n}", id.as_u64());
        n += 1;
        let batch: Vec<usize> = (n..n + 5).collect();
        let ids = retry(|| vault.put_batch(batch.iter().map(|&i| rec(who, i)).collect()));
        for (id, i) in ids.iter().zip(&batch) {
            println!("{} {who} {i}", id.as_u64());
        }
        n += 5;
    }
}

/// Appends like `writer`, holding only the ingest key.
fn ingestor(path: &Path, key: &str) {
    let key: IngestKey = key.parse().unwrap();
    let ingestor = Ingestor::open(path, &key).unwrap();
    let who = "ingest";
    let mut n = 0;
    for _ in 0..ROUNDS {
        let id = retry(|| ingestor.put(rec(who, n)));
        println!("{} {who} {n}", id.as_u64());
        n += 1;
        let batch: Vec<usize> = (n..n + 5).collect();
        let ids = retry(|| ingestor.put_batch(batch.iter().map(|&i| rec(who, i)).collect()));
        for (id, i) in ids.iter().zip(&batch) {
            println!("{} {who} {i}", id.as_u64());
        }
        n += 5;
    }
}

fn two_processes_write_one_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.vault");
    let vault = Vault::create(&path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let ingest_key = vault.ingest_key().unwrap().to_text().to_string();
    let children: Vec<_> = [
        ("--writer", "a"),
        ("--writer", "b"),
        ("--ingestor", ingest_key.as_str()),
    ]
    .iter()
    .map(|(mode, arg)| {
        Command::new(&exe)
            .arg(mode)
            .arg(&path)
            .arg(arg)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    })
    .collect();

    // Meanwhile this process writes and reads too.
    let mut mine = Vec::new();
    for n in 0..ROUNDS {
        mine.push((retry(|| vault.put(rec("parent", n))), format!("parent {n}")));
        let _ = retry(|| vault.conversation(&ConversationId::new("conv-a")));
    }

    let mut all: Vec<(RecordId, String)> = mine;
    for mut child in children {
        let out = BufReader::new(child.stdout.take().unwrap());
        for line in out.lines() {
            let line = line.unwrap();
            let (id, text) = line.split_once(' ').unwrap();
            all.push((RecordId::from_u64(id.parse().unwrap()), text.to_owned()));
        }
        assert!(child.wait().unwrap().success(), "a writer process failed");
    }

    let per_child = ROUNDS * 6;
    assert_eq!(all.len(), ROUNDS + 3 * per_child);
    let unique: std::collections::HashSet<_> = all.iter().map(|(id, _)| *id).collect();
    assert_eq!(unique.len(), all.len(), "an id was handed out twice");
    for (id, text) in &all {
        assert_eq!(vault.get(*id).unwrap().prompt()[0].content(), text);
    }
    for who in ["a", "b", "ingest"] {
        let conv = vault
            .conversation(&ConversationId::new(format!("conv-{who}")))
            .unwrap();
        assert_eq!(conv.len(), per_child);
    }
    let report = vault.verify().unwrap();
    assert_eq!(report.records, all.len());
    println!(
        "multiprocess: {} records from 4 processes (one write-only), {} data keys, all read back",
        report.records, report.keys
    );
}
