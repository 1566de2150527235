//! Randomness stays unique across `fork()` (DESIGN.md, "Randomness").
//!
//! The parent uses the generators first, so any state a user-space
//! generator keeps is warm; then real child processes are forked, and each
//! seals records under the same data key and draws fresh keys. No nonce and
//! no key may repeat across the parent and the children: with a generator
//! that a fork copies, every child would draw the same sequence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;

use fork::{Fork, fork, waitpid};
use llmvault::internals::{SealBench, fresh_key_fingerprint};

const CHILDREN: usize = 4;
const SEALS_PER_PROCESS: usize = 64;
const KEYS_PER_PROCESS: usize = 8;

/// Nonce bytes of an envelope: after the version byte and the 8-byte key id.
fn nonce_of(envelope: &[u8]) -> String {
    hex(&envelope[9..21])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What one process draws: nonces of records sealed under the shared key,
/// then fingerprints of fresh keys, one per line, tagged.
fn draw(sealer: &SealBench) -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..SEALS_PER_PROCESS {
        let envelope = sealer.seal(format!("record {i}").as_bytes()).unwrap();
        lines.push(format!("nonce {}", nonce_of(&envelope)));
    }
    for _ in 0..KEYS_PER_PROCESS {
        lines.push(format!("key {}", hex(&fresh_key_fingerprint())));
    }
    lines
}

fn child(sealer: &SealBench, out: &Path) -> ! {
    let wrote = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::fs::write(out, draw(sealer).join("\n")).is_ok()
    }));
    // Never return into the test harness from a forked child.
    std::process::exit(if matches!(wrote, Ok(true)) { 0 } else { 1 });
}

#[test]
fn forked_children_never_repeat_a_nonce_or_a_key() {
    let dir = tempfile::tempdir().unwrap();
    // One data key for every process: the case where a repeat is fatal.
    let sealer = SealBench::fixed();
    let mut all = draw(&sealer);

    let mut pids = Vec::new();
    for i in 0..CHILDREN {
        let out = dir.path().join(format!("child-{i}"));
        match fork().expect("fork") {
            Fork::Child => child(&sealer, &out),
            Fork::Parent(pid) => pids.push((pid, out)),
        }
    }
    // The parent keeps drawing after the forks too.
    all.extend(draw(&sealer));
    for (pid, out) in pids {
        let status = waitpid(pid).expect("waitpid");
        assert_eq!(status, 0, "child {pid} failed");
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), SEALS_PER_PROCESS + KEYS_PER_PROCESS);
        all.extend(lines);
    }

    let processes = CHILDREN + 2;
    assert_eq!(
        all.len(),
        processes * (SEALS_PER_PROCESS + KEYS_PER_PROCESS)
    );
    let mut seen = HashSet::new();
    for line in &all {
        assert!(seen.insert(line), "drawn twice across processes: {line}");
    }
}
