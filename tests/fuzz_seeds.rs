//! The seed corpora of the coverage-guided fuzz targets (`fuzz/seeds/`,
//! docs/TESTING.md, "Fuzzing"): each seed is a real input its target
//! accepts, made here by the code that writes such bytes. This test fails
//! when a committed seed no longer parses as what it stands for (the format
//! moved and the seeds did not), so the fuzzer never starts from stale
//! bytes.
//!
//! `LLMVAULT_WRITE_FUZZ_SEEDS=1 cargo test --test fuzz_seeds` writes them
//! again first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::ManualClock;
use llmvault::internals::{self, Parsed};
use llmvault::{IngestKey, KdfParams, KeySource, RecordId, RecoveryShare, Vault, VaultOptions};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

/// Record lines as `llmvault export` prints them and `import` reads them.
const JSON_LINES: [&str; 3] = [
    r#"{"id":7,"conversation":"conv-42","subject":"user-7","model":"gpt-4o","prompt":[{"role":"user","content":"hello"}],"response":{"role":"assistant","content":"hi"},"created_at":"2025-03-01T12:00:00.250Z","expires_at":"2025-03-31T12:00:00.250Z","training_consent":false,"masked":false,"tags":["support"],"meta":{"ticket":"T-9"}}"#,
    r#"{"conversation":"c","prompt":[{"role":"system","content":"be brief"},{"role":"tool","content":"{}"}],"created_at":1740830400250}"#,
    r#"{"conversation":"c","masked":true,"prompt":[{"role":"user","content":"mail <EMAIL_1>"}]}"#,
];

/// Texts with one of each kind of personal data the detector knows, and
/// text shaped like placeholders.
const PII_TEXTS: [&str; 3] = [
    "Mail bob.smith@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111.",
    "IBAN GB82 WEST 1234 5698 7654 32, server 192.168.10.4 and 2001:db8::1, SSN 078-05-1120.",
    "Already masked: <EMAIL_1> and <LITERAL_2>, <PHONE_3\nsecond turn: bob.smith@example.com",
];

/// Every seed: (target, file name, bytes).
fn make_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let [header, envelope, body] = internals::valid_samples();
    let [entry, mapping] = internals::valid_entry_samples();
    let mut seeds = vec![
        ("header", "valid".to_owned(), header),
        ("envelope", "valid".to_owned(), envelope),
        ("record_body", "valid".to_owned(), body),
        ("audit_entry", "valid".to_owned(), entry),
        ("pii_mapping", "valid".to_owned(), mapping),
        (
            "wrapped_key",
            "valid".to_owned(),
            internals::wrapped_key_sample(),
        ),
        ("read_log", "valid".to_owned(), internals::read_log_sample()),
        (
            "staged_record",
            "valid".to_owned(),
            internals::staged_sample(),
        ),
    ];
    for (i, line) in JSON_LINES.iter().enumerate() {
        seeds.push((
            "cli_json_line",
            format!("line-{i}"),
            line.as_bytes().to_vec(),
        ));
    }
    for (i, text) in PII_TEXTS.iter().enumerate() {
        seeds.push(("pii_find", format!("text-{i}"), text.as_bytes().to_vec()));
    }
    let dir = tempfile::tempdir().unwrap();
    let vault_path = dir.path().join("planted.vault");
    let (ingest, shares) = planted_vault(&vault_path);
    seeds.push((
        "ingest_key_text",
        "valid".to_owned(),
        ingest.to_text().as_bytes().to_vec(),
    ));
    for (i, share) in shares.iter().enumerate() {
        seeds.push((
            "recovery_share_text",
            format!("share-{i}"),
            share.to_text().as_bytes().to_vec(),
        ));
    }
    seeds.push((
        "vault_file",
        "planted".to_owned(),
        std::fs::read(&vault_path).unwrap(),
    ));
    seeds
}

fn planted_options() -> VaultOptions {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(internals::PLANTED_AT_MS);
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(Arc::new(ManualClock::new(at)))
}

/// A vault holding the planted records, closed (so one file holds it all),
/// and an ingest key and recovery shares of it.
fn planted_vault(path: &Path) -> (IngestKey, Vec<RecoveryShare>) {
    let key = KeySource::raw_key(internals::PLANTED_KEY);
    let vault = Vault::create(path, &key, planted_options()).unwrap();
    for n in 1..=internals::PLANTED_RECORDS {
        let id = vault.put(internals::planted_record(n)).unwrap();
        assert_eq!(
            id,
            RecordId::from_u64(n),
            "planted ids are given out in order"
        );
    }
    let ingest = vault.ingest_key().unwrap();
    let shares = vault.recovery_shares(2, 3).unwrap();
    drop(vault);
    (ingest, shares)
}

/// Whether a seed is what it stands for, by the hook its target calls.
fn accepted(target: &str, bytes: &[u8]) -> bool {
    let text = || std::str::from_utf8(bytes).unwrap();
    match target {
        "header" => internals::parse_header(bytes) == Parsed::Accepted,
        "envelope" => internals::open_envelope(bytes) == Parsed::Accepted,
        "record_body" => internals::decode_record(bytes) == Parsed::Accepted,
        "audit_entry" => internals::decode_audit_entry(bytes) == Parsed::Accepted,
        "pii_mapping" => internals::decode_pii_mapping(bytes) == Parsed::Accepted,
        "wrapped_key" => internals::unwrap_key(bytes) == Parsed::Accepted,
        "read_log" => internals::read_log_entries(bytes) == Parsed::Accepted,
        "staged_record" => internals::staged_record(bytes) == Parsed::Accepted,
        "ingest_key_text" => text().parse::<IngestKey>().is_ok(),
        "recovery_share_text" => RecoveryShare::from_text(text()).is_ok(),
        "cli_json_line" => text().starts_with('{') && text().ends_with('}'),
        "pii_find" => !llmvault::pii::Detector::default().find(text()).is_empty(),
        "vault_file" => planted_records_read_back(bytes),
        other => panic!("a seed for an unknown target {other}"),
    }
}

/// Whether a vault file opens with the planted key and holds exactly the
/// planted records.
fn planted_records_read_back(bytes: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.vault");
    std::fs::write(&path, bytes).unwrap();
    let key = KeySource::raw_key(internals::PLANTED_KEY);
    let vault = Vault::open(&path, &key, planted_options()).unwrap();
    let records = vault.query(&llmvault::Query::all()).unwrap();
    records.len() as u64 == internals::PLANTED_RECORDS && records.iter().all(internals::is_planted)
}

#[test]
fn committed_fuzz_seeds_are_what_their_targets_accept() {
    let root = seeds_dir();
    let made = make_seeds();
    if std::env::var_os("LLMVAULT_WRITE_FUZZ_SEEDS").is_some() {
        let _ = std::fs::remove_dir_all(&root);
        for (target, name, bytes) in &made {
            std::fs::create_dir_all(root.join(target)).unwrap();
            std::fs::write(root.join(target).join(name), bytes).unwrap();
        }
    }
    // The samples made now pass the same checks as the committed ones.
    for (target, name, bytes) in &made {
        assert!(
            accepted(target, bytes),
            "a fresh seed {target}/{name} is refused"
        );
    }
    let mut targets: Vec<&str> = made.iter().map(|(t, _, _)| *t).collect();
    targets.dedup();
    let fuzz_targets =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets"))
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        fuzz_targets,
        targets.iter().map(|t| (*t).to_owned()).collect(),
        "every fuzz target has seeds, and every seed a target"
    );
    for target in &targets {
        let dir = root.join(target);
        let seeds: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("no seeds for {target} in {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for seed in seeds {
            let bytes = std::fs::read(&seed).unwrap();
            assert!(
                accepted(target, &bytes),
                "the committed seed {} is refused",
                seed.display()
            );
        }
    }
}
