//! Criterion benches of PII detection: scan throughput on typical prompt
//! text (prose with a few findings per KiB), and masking plus restoring a
//! 4 KiB prompt.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llmvault::pii::{Detector, Pseudonymizer};

/// Sentences of ordinary prompt text, some with code, numbers and
/// near-misses (versions, dates, hashes) that the rules must reject.
const PROSE: &[&str] = &[
    "Can you summarise the meeting notes below and list the action items for the team? ",
    "The deployment on 2024-03-15 at 14:30 failed because the config map was missing a key. ",
    "We upgraded to version 10.0.19041.1 and the regression in the parser went away. ",
    "Please rewrite this paragraph so that it sounds friendlier, but keep it short. ",
    "The commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b introduced the bug in std::vec handling. ",
    "Our quarterly revenue grew by 12.5 percent, driven mostly by the enterprise tier. ",
    "Translate the following into German: the order 1234-5678 ships within 3 business days. ",
    "fn main() { let x = vec![1, 2, 3]; println!(\"{:?}\", x.iter().sum::<i32>()); } ",
    "The request id was 550e8400-e29b-41d4-a716-446655440000 and the latency was 340 ms. ",
    "Explain the difference between a mutex and a read-write lock with an example. ",
    "Über die Straße gehen wir morgen früh, und danach trinken wir einen Kaffee. ",
    "日本語のテキストも含まれています。よろしくお願いします。 ",
];

/// Sentences that each hold one finding.
const WITH_PII: &[&str] = &[
    "Contact me at alice.smith@example.com if anything is unclear. ",
    "My number is +44 20 7946 0958, call after five. ",
    "Charge the card 4111 1111 1111 1111 for the renewal. ",
    "The server at 192.168.10.42 keeps dropping connections. ",
    "Use the key sk-proj-Ab3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW for testing. ",
    "Transfer it to DE89 3704 0044 0532 0130 00 by Friday. ",
    "Her SSN is 123-45-6789 according to the form. ",
    "The database url is postgres://admin:s3cret@db.internal:5432/app today. ",
];

/// About `len` bytes of prose with roughly three findings per KiB.
fn prompt(len: usize) -> String {
    let mut text = String::with_capacity(len + 256);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    while text.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let pick = usize::try_from(state % 1000).unwrap();
        if pick < 160 {
            text.push_str(WITH_PII[pick % WITH_PII.len()]);
        } else {
            text.push_str(PROSE[pick % PROSE.len()]);
        }
    }
    text
}

fn scan(c: &mut Criterion) {
    let text = prompt(64 * 1024);
    let detector = Detector::default();
    let found = detector.find(&text).len();
    eprintln!("scan: {} bytes, {found} findings", text.len());
    let mut group = c.benchmark_group("pii");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("scan_64k", |b| b.iter(|| detector.find(black_box(&text))));
    group.finish();
}

fn mask_restore(c: &mut Criterion) {
    let text = prompt(4 * 1024);
    let mut group = c.benchmark_group("pii");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("mask_restore_4k", |b| {
        b.iter(|| {
            let mut pseudo = Pseudonymizer::new(Detector::default());
            let masked = pseudo.mask(black_box(&text));
            pseudo.restore(&masked.text)
        })
    });
    group.finish();
}

criterion_group!(benches, scan, mask_restore);
criterion_main!(benches);
