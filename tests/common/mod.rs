//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod raw_sql;
mod seam;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::ManualClock;
use llmvault::{
    AuditAction, AuditEntry, AuditOutcome, ConversationId, IngestKey, Ingestor, KdfParams,
    KeySource, Message, NewRecord, RecordId, SubjectId, Vault, VaultOptions,
};
#[allow(unused_imports)]
pub use raw_sql::{Raw, V};
pub use seam::*;

pub const PASS: &str = "correct horse battery staple";

/// A fixed start far from epoch boundaries: 2026-01-01T00:00:00Z + 1 h.
pub fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3600)
}

/// A vault on one backend. `dir` and `path` are there on every backend;
/// only on SQLite does `path` name the vault's file (the helpers that read
/// it, `with_closed`, `sql` and `blobs`, are for SQLite vaults only).
pub struct TestVault {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
    pub storage: Storage,
    pub clock: Arc<ManualClock>,
    pub opts: VaultOptions,
    pub backend: Backend,
    vault: Option<Vault>,
}

impl std::ops::Deref for TestVault {
    type Target = Vault;

    fn deref(&self) -> &Vault {
        self.vault.as_ref().unwrap()
    }
}

pub fn opts(clock: &Arc<ManualClock>) -> VaultOptions {
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(clock.clone())
}

pub fn key() -> KeySource {
    KeySource::passphrase(PASS)
}

/// A SQLite vault, for tests that read or change its file.
pub fn new_vault() -> TestVault {
    new_vault_with(|o| o)
}

/// A SQLite vault with `tune`d options.
pub fn new_vault_with(tune: impl FnOnce(VaultOptions) -> VaultOptions) -> TestVault {
    new_vault_on_with(Backend::Sqlite, tune)
}

/// A vault on `backend`, for tests that reach it only through its storage.
pub fn new_vault_on(backend: Backend) -> TestVault {
    new_vault_on_with(backend, |o| o)
}

/// A vault on `backend` with `tune`d options.
pub fn new_vault_on_with(
    backend: Backend,
    tune: impl FnOnce(VaultOptions) -> VaultOptions,
) -> TestVault {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.vault");
    let storage = storage(backend, &path);
    let clock = Arc::new(ManualClock::new(start()));
    let opts = tune(opts(&clock));
    let vault = Vault::create_in(&storage, key(), &opts).unwrap();
    TestVault {
        dir,
        path,
        storage,
        clock,
        opts,
        backend,
        vault: Some(vault),
    }
}

impl TestVault {
    /// Closes the vault (on SQLite, checkpointing the WAL into the file) and
    /// opens it again on the same storage.
    pub fn reopen(&mut self) {
        self.vault = None;
        self.vault = Some(Vault::open_in(&self.storage, key(), &self.opts).unwrap());
    }

    /// An ingestor on this vault's storage, with its options.
    pub fn ingestor(&self, key: &IngestKey) -> Ingestor {
        Ingestor::open_in_with_options(&self.storage, key, &self.opts).unwrap()
    }

    /// Closes the vault (on SQLite, the database file then holds everything).
    pub fn close(&mut self) {
        self.vault = None;
    }

    /// Closes the vault so the database file holds everything, runs `f` on
    /// its path, and opens it again.
    pub fn with_closed<T>(&mut self, f: impl FnOnce(&Path) -> T) -> T {
        self.vault = None;
        let out = f(&self.path);
        self.reopen();
        out
    }

    /// A raw SQL connection to the vault file, for tests that tamper.
    pub fn sql(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(&self.path).unwrap()
    }

    /// The first column of every row `select` returns, as stored bytes.
    pub fn blobs(&self, select: &str) -> Vec<Vec<u8>> {
        let conn = self.sql();
        let mut stmt = conn.prepare(select).unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

pub fn record(conv: &str, subject: Option<&str>, text: &str) -> NewRecord {
    let r = NewRecord::new(ConversationId::new(conv))
        .model("test-model")
        .prompt([Message::user(format!("prompt: {text}"))])
        .response(Message::assistant(format!("response: {text}")));
    match subject {
        Some(s) => r.subject(SubjectId::new(s)),
        None => r,
    }
}

/// Every file in `dir`, concatenated per file: (name, bytes).
pub fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Verifies the audit chain and returns every entry, oldest first, after
/// checking that the entries the chain verified are the ones `entries`
/// hands out (numbered 1, 2, 3, … with no gap).
pub fn checked_audit(vault: &Vault) -> Vec<AuditEntry> {
    let report = vault.audit().verify().unwrap();
    let entries = vault.audit().entries(..).unwrap();
    assert_eq!(entries.len() as u64, report.entries, "verified vs listed");
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "entries out of sequence");
    }
    assert_eq!(report.head.seq, report.entries);
    entries
}

/// The record ids named by successful entries of `action`, in log order
/// (an id named twice appears twice).
pub fn audited_ids(entries: &[AuditEntry], action: AuditAction) -> Vec<RecordId> {
    entries
        .iter()
        .filter(|e| e.action == action && e.outcome == AuditOutcome::Ok)
        .flat_map(|e| e.records.iter().copied())
        .collect()
}

/// The ids every successful `Put`, `PutBatch` and `Ingest` entry names;
/// panics if any id is named by two write entries.
pub fn written_ids(entries: &[AuditEntry]) -> std::collections::HashSet<RecordId> {
    let mut all = audited_ids(entries, AuditAction::Put);
    all.extend(audited_ids(entries, AuditAction::PutBatch));
    all.extend(audited_ids(entries, AuditAction::Ingest));
    let set: std::collections::HashSet<_> = all.iter().copied().collect();
    assert_eq!(set.len(), all.len(), "a record id has two write entries");
    set
}
