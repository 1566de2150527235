//! Resident memory as a handle touches many subjects: each side in a child
//! process of its own (this binary, re-run with `--memory-child SIDE N`),
//! so the other rows' allocations do not blur it. The child writes one
//! 1 KiB record for each of `2 × N` subjects, in batches of 1,000, reads
//! every 50th back, and prints its RSS growth in MiB after `N` and after
//! `2 × N` subjects. llmvault runs with its default key cache; plain
//! SQLite stores the same rows on the same connection settings.

use std::process::Command;

use llmvault::{ConversationId, KdfParams, KeySource, Message, NewRecord, SubjectId, Vault};

use crate::peer::{self, Figure};

const BATCH: usize = 1_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The child's work; prints `growth_after_n growth_after_2n` in MiB.
pub fn child(side: &str, n: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("memory.db");
    let base;
    let mut growth = Vec::new();
    if side == "llmvault" {
        let opts = llmvault::VaultOptions::default().kdf(KdfParams::minimum());
        let vault = Vault::create(&path, KeySource::raw_key([7; 32]), opts).expect("create");
        base = rss_kib();
        let mut ids = Vec::new();
        for step in 0..2 {
            for b in 0..n / BATCH {
                let batch = (0..BATCH)
                    .map(|i| {
                        let s = step * n + b * BATCH + i;
                        NewRecord::new(ConversationId::new(format!("c{s}")))
                            .subject(SubjectId::new(format!("user-{s}")))
                            .prompt([Message::user("x".repeat(1000))])
                    })
                    .collect();
                ids.extend(vault.put_batch(batch).expect("put_batch"));
            }
            for id in ids.iter().step_by(50) {
                std::hint::black_box(vault.get(*id).expect("get"));
            }
            growth.push(rss_kib().saturating_sub(base) / 1024);
        }
    } else {
        let conn = peer::open(&path, None).expect("open");
        base = rss_kib();
        for step in 0..2 {
            peer::fill_over(&conn, step * n, n, 1000, 2 * n).expect("fill");
            peer::read_every(&conn, (step + 1) * n, 50).expect("read");
            growth.push(rss_kib().saturating_sub(base) / 1024);
        }
    }
    println!("{} {}", growth[0], growth[1]);
}

/// Runs the child for `side` and returns its two figures.
pub fn run(side: &str, n: usize) -> Vec<Figure> {
    let out = Command::new(std::env::current_exe().expect("own path"))
        .args(["--memory-child", side, &n.to_string()])
        .output()
        .expect("memory child");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut figures = text
        .split_whitespace()
        .filter_map(|w| w.parse::<f64>().ok());
    let (first, second) = (figures.next(), figures.next());
    match (out.status.success(), first, second) {
        (true, Some(a), Some(b)) => vec![
            Figure::new("memory/subjects/1x", a, "MiB"),
            Figure::new("memory/subjects/2x", b, "MiB"),
        ],
        _ => panic!("memory child for {side} failed: {text}"),
    }
}
