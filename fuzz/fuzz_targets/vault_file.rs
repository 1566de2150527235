//! Fuzzes a whole vault file: the seed is a real vault holding the records
//! `internals::planted_record` describes; the fuzzer changes its bytes,
//! and the vault is opened with its key and every record read. Only typed
//! errors, never a panic, and never wrong data: any record that reads back
//! is exactly the one planted under its id.

#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use llmvault::clock::ManualClock;
use llmvault::{
    ConversationId, KeySource, Query, RecordId, SubjectId, Vault, VaultOptions, internals,
};

/// A directory of this process's own: fuzz jobs may run side by side.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("llmvault-fuzz-vault-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    dir
});

fuzz_target!(|data: &[u8]| {
    let dir = &*DIR;
    for entry in std::fs::read_dir(dir)
        .expect("the directory lists")
        .flatten()
    {
        let path = entry.path();
        let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
    }
    let path = dir.join("fuzzed.vault");
    std::fs::write(&path, data).expect("the input is written");
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(internals::PLANTED_AT_MS);
    let options = VaultOptions::default().clock(Arc::new(ManualClock::new(at)));
    let key = KeySource::raw_key(internals::PLANTED_KEY);
    let Ok(vault) = Vault::open(&path, &key, &options) else {
        return;
    };
    let check = |record: &llmvault::Record| {
        assert!(
            internals::is_planted(record),
            "record {:?} reads back changed",
            record.id()
        );
    };
    for n in 1..=internals::PLANTED_RECORDS + 2 {
        if let Ok(record) = vault.get(RecordId::from_u64(n)) {
            check(&record);
        }
    }
    for c in 0..2 {
        if let Ok(records) = vault.conversation(&ConversationId::new(format!("conv-{c}"))) {
            records.iter().for_each(check);
        }
    }
    for s in 1..3 {
        if let Ok(records) = vault.subject_records(&SubjectId::new(format!("subj-{s}"))) {
            records.iter().for_each(check);
        }
    }
    if let Ok(records) = vault.query(&Query::all()) {
        records.iter().for_each(check);
    }
    let _ = vault.verify();
    let _ = vault.audit().verify();
    let _ = vault.erase_subject(&SubjectId::new("subj-1"));
    let _ = vault.purge_expired();
});
