//! Resident memory of one handle as it touches many subjects, with the
//! default key cache and with an unbounded one (what it was before the
//! bound): `cargo bench -p llmvault --bench key_cache_memory`. Each
//! setting runs in a child process of its own, so one's allocations do
//! not hide the other's. See docs/BENCHMARKS.md, "Bounded key cache".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use llmvault::clock::ManualClock;
use llmvault::{
    ConversationId, DEFAULT_KEY_CACHE, KdfParams, KeySource, Message, NewRecord, SubjectId, Vault,
    VaultOptions,
};

const STEP: usize = 100_000;
const BATCH: usize = 1_000;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Writes one record for each of `2 * STEP` subjects, reading every 50th
/// back, and prints the growth after each `STEP`.
fn measure(cache: usize) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let opts = VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(clock)
        .key_cache(cache);
    let vault = Vault::create(dir.path().join("v"), KeySource::raw_key([7; 32]), &opts).unwrap();
    let base = rss_kib();
    let mut ids = Vec::new();
    let mut growth = Vec::new();
    for step in 0..2 {
        for b in 0..STEP / BATCH {
            let batch = (0..BATCH)
                .map(|i| {
                    let s = step * STEP + b * BATCH + i;
                    NewRecord::new(ConversationId::new(format!("c{s}")))
                        .subject(SubjectId::new(format!("user-{s}")))
                        .prompt([Message::user("x".repeat(1000))])
                })
                .collect();
            ids.extend(vault.put_batch(batch).unwrap());
        }
        for id in ids.iter().step_by(50) {
            vault.get(*id).unwrap();
        }
        growth.push((rss_kib() - base) / 1024);
    }
    println!(
        "| {} | +{} MiB | +{} MiB | {:+} MiB |",
        if cache == usize::MAX {
            "unbounded".to_owned()
        } else {
            cache.to_string()
        },
        growth[0],
        growth[1],
        growth[1] as i64 - growth[0] as i64
    );
}

fn main() {
    if let Some(cache) = std::env::args().nth(1).and_then(|a| a.parse().ok()) {
        return measure(cache);
    }
    println!(
        "| key_cache | after {STEP} subjects | after {} | growth |",
        2 * STEP
    );
    println!("|---|---:|---:|---:|");
    let me = std::env::current_exe().unwrap();
    for cache in [DEFAULT_KEY_CACHE, usize::MAX] {
        let status = Command::new(&me).arg(cache.to_string()).status().unwrap();
        assert!(status.success());
    }
}
