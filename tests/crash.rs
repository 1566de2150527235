//! Crash safety: a child process stores records one by one and prints each
//! id once `put` has returned; the parent kills it with SIGKILL at varied
//! moments, reopens the vault, and every acknowledged record must read
//! back intact. Runs without libtest's harness so that the same binary can
//! be the child.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use llmvault::{
    ConversationId, KeySource, Message, NewRecord, RecordId, SubjectId, Vault, VaultOptions,
};

const KILLS: usize = 24;
const KEY: [u8; 32] = [0x3C; 32];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--crash-child") {
        child(Path::new(&args[at + 1]));
        return;
    }
    acknowledged_puts_survive_sigkill();
    println!("crash: 1 passed, 0 failed");
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
            .arg("--crash-child")
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
