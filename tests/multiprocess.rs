//! Two processes writing one vault file at once, plus a write-only
//! ingestor process, plus this one reading and writing: nothing is lost,
//! no id is handed out twice, counts add up, no read sees half a batch,
//! and the audit chain verifies with one entry per write and per read.
//! The only error allowed is the documented `Busy`, which is retried.
//! Runs without libtest's harness so that the same binary is the child.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{audited_ids, checked_audit, written_ids};
use llmvault::{
    AuditAction, AuditOutcome, ConversationId, Error, IngestKey, Ingestor, KeySource, Message,
    NewRecord, RecordId, SubjectId, Vault, VaultOptions,
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
/// Writer `a` waits for a line on stdin after each round but the last, so
/// that the parent reads its conversation between and during its rounds.
fn writer(path: &Path, who: &str) {
    let vault = Vault::open(path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap();
    let mut go = std::io::stdin().lines();
    let mut n = 0;
    for round in 0..ROUNDS {
        if who == "a" && round > 0 {
            go.next().unwrap().unwrap();
        }
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
    let mut children: Vec<_> = [
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    })
    .collect();

    // Meanwhile this process writes and reads too, and goes on reading
    // until every child has exited.
    let mut mine = Vec::new();
    let mut reads: Vec<Vec<RecordId>> = Vec::new();
    let mut last = 0;
    let mut read_a = |reads: &mut Vec<Vec<RecordId>>| -> usize {
        let seen = retry(|| vault.conversation(&ConversationId::new("conv-a")));
        // Writer a stores one record, then a batch of 5: a read sees
        // whole batches only, never fewer records than before, and
        // exactly a's first records.
        let k = seen.len();
        assert!(k % 6 == 0 || k % 6 == 1, "a read saw {k} of a's records");
        assert!(k >= last, "a read saw {k} after {last}");
        last = k;
        let texts: HashSet<String> = seen
            .iter()
            .map(|r| r.prompt()[0].content().to_owned())
            .collect();
        let expected: HashSet<String> = (0..k).map(|i| format!("a {i}")).collect();
        assert_eq!(texts, expected);
        reads.push(seen.iter().map(|r| r.id()).collect());
        k
    };
    let mut a_in = children[0].stdin.take().unwrap();
    let mut a_out = BufReader::new(children[0].stdout.take().unwrap()).lines();
    let mut all: Vec<(RecordId, String)> = Vec::new();
    for n in 0..ROUNDS {
        mine.push((retry(|| vault.put(rec("parent", n))), format!("parent {n}")));
        // a is somewhere in round n (or waiting after it).
        read_a(&mut reads);
        for _ in 0..6 {
            let line = a_out.next().unwrap().unwrap();
            let (id, text) = line.split_once(' ').unwrap();
            all.push((RecordId::from_u64(id.parse().unwrap()), text.to_owned()));
        }
        // a acknowledged round n and waits: exactly its rounds so far.
        assert_eq!(read_a(&mut reads), 6 * (n + 1));
        if n + 1 < ROUNDS {
            writeln!(a_in, "go").unwrap();
        }
    }
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        read_a(&mut reads);
    }
    read_a(&mut reads);
    assert_eq!(reads.last().unwrap().len(), ROUNDS * 6);

    all.extend(mine);
    for mut child in children {
        let Some(out) = child.stdout.take() else {
            assert!(child.wait().unwrap().success(), "writer a failed");
            continue;
        };
        for line in BufReader::new(out).lines() {
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
        reads.push(conv.iter().map(|r| r.id()).collect());
    }
    let report = vault.verify().unwrap();
    assert_eq!(report.records, all.len());

    // One chain, written by four processes, verifies; each acknowledged
    // id is named by exactly one write entry (Ingest for the write-only
    // ingestor's, once the vault took them in), and each read by its own
    // entry, naming what it returned.
    let entries = checked_audit(&vault);
    let written = written_ids(&entries);
    let acknowledged: HashSet<RecordId> = unique;
    assert!(
        written == acknowledged,
        "{} ids in write entries, {} acknowledged",
        written.len(),
        acknowledged.len()
    );
    let ingested: HashSet<RecordId> = audited_ids(&entries, AuditAction::Ingest)
        .into_iter()
        .collect();
    let from_ingestor: HashSet<RecordId> = all
        .iter()
        .filter(|(_, text)| text.starts_with("ingest "))
        .map(|(id, _)| *id)
        .collect();
    assert!(
        ingested == from_ingestor,
        "Ingest entries name the ingestor's records"
    );
    let conversations: Vec<Vec<RecordId>> = entries
        .iter()
        .filter(|e| e.action == AuditAction::Conversation && e.outcome == AuditOutcome::Ok)
        .map(|e| e.records.clone())
        .collect();
    assert_eq!(conversations.len(), reads.len(), "one entry per read");
    assert!(
        conversations == reads,
        "a read's entry does not name what it returned"
    );
    println!(
        "multiprocess: {} records from 4 processes (one write-only), {} data keys, all read back; \
         {} audited reads, {} sizes of a's conversation seen",
        report.records,
        report.keys,
        reads.len(),
        reads.iter().map(Vec::len).collect::<HashSet<_>>().len()
    );
}
