//! Erasure that reaches backups: the vault's keys in a store of their own
//! (`Storage::keys_in`), the record store backed up as usual. A backup
//! taken before an erasure, put back afterwards, no longer opens the
//! erased person's records: their key was only ever in the keys store,
//! and the keys store no longer holds it.
//!
//! Run: `cargo run --example backups`

use std::path::Path;

use llmvault::{
    ConversationId, Error, KeySource, Message, NewRecord, Storage, SubjectId, Vault, VaultOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let records = dir.path().join("records.vault");
    let storage = Storage::sqlite(&records).keys_in(Storage::sqlite(dir.path().join("keys.vault")));
    // A raw key (from a KMS, say) needs no Argon2 work.
    let key = KeySource::raw_key([42; 32]);
    let opts = VaultOptions::default();

    let alice = SubjectId::new("alice@example.com");
    let bob = SubjectId::new("bob@example.com");
    let vault = Vault::create_in(&storage, &key, &opts)?;
    let put = |who: &SubjectId, text: &str| {
        vault.put(
            NewRecord::new(ConversationId::new(who.as_str()))
                .subject(who.clone())
                .model("gpt-4o")
                .prompt([Message::user(text)])
                .response(Message::assistant("Noted.")),
        )
    };
    let alices = [
        put(&alice, "My address is 1 Main St")?,
        put(&alice, "and my phone is 555-0100")?,
    ];
    let bobs = put(&bob, "Do you ship to Norway?")?;
    drop(vault);
    println!(
        "stored 2 records of {} and 1 of {}",
        alice.as_str(),
        bob.as_str()
    );

    // The nightly backup: the record store's files, copied while closed.
    let backup = dir.path().join("backup");
    copy_store(&records, &backup)?;
    println!("backed up the record store (the keys store is not in this backup)");

    let vault = Vault::open_in(&storage, &key, &opts)?;
    let erased = vault.erase_subject(&alice)?;
    println!(
        "erased {}: {} record(s), {} key(s) destroyed",
        alice.as_str(),
        erased.records,
        erased.keys_destroyed
    );
    drop(vault);

    // Disaster: the record store is lost and put back from the backup.
    for file in std::fs::read_dir(&backup)? {
        let file = file?.path();
        std::fs::copy(&file, dir.path().join(file.file_name().ok_or("no name")?))?;
    }
    println!("restored the record store from the backup taken before the erasure");

    let vault = Vault::open_in(&storage, &key, &opts)?;
    for id in alices {
        match vault.get(id) {
            Err(Error::KeyDestroyed { .. }) => {
                println!("  record {id} of {}: its key is destroyed", alice.as_str());
            }
            other => return Err(format!("record {id} should be unreadable: {other:?}").into()),
        }
    }
    let bob_record = vault.get(bobs)?;
    println!(
        "  record {bobs} of {}: reads: {:?}",
        bob.as_str(),
        bob_record.prompt()[0].content()
    );
    let report = vault.verify()?;
    println!(
        "verify: {} record(s) intact, {} whose key is gone",
        report.records, report.key_destroyed
    );
    let purged = vault.purge_expired()?;
    println!(
        "purge: removed {} restored record(s) whose keys are gone",
        purged.records
    );
    Ok(())
}

/// Copies the files of a closed SQLite store (`path` and what SQLite keeps
/// beside it) into `to`.
fn copy_store(path: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    for entry in std::fs::read_dir(path.parent().unwrap_or(Path::new(".")))? {
        let file = entry?.path();
        let this = file.file_name().map(|n| n.to_string_lossy().into_owned());
        if file.is_file()
            && this
                .zip(name.as_ref())
                .is_some_and(|(t, n)| t.starts_with(n))
        {
            std::fs::copy(&file, to.join(file.file_name().unwrap_or_default()))?;
        }
    }
    Ok(())
}
