//! Changing keys: a new passphrase (only the key wrapping changes, records
//! are not re-encrypted) and fresh data keys for new records. Old records
//! still read; the old passphrase no longer opens the vault.
//!
//! Run: `cargo run --example key_rotation`

use llmvault::{
    ConversationId, Error, KdfParams, KeySource, Message, NewRecord, SubjectId, Vault, VaultOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("rotation.vault");
    // Fast for the example; keep the default Argon2id cost in production.
    let opts = VaultOptions::default().kdf(KdfParams::minimum());
    let old = KeySource::passphrase("the passphrase Mallory saw");
    let new = KeySource::passphrase("a fresh passphrase");
    let record = |text: &str| {
        NewRecord::new(ConversationId::new("conv-1"))
            .subject(SubjectId::new("user-7"))
            .prompt([Message::user(text)])
            .response(Message::assistant("ok"))
    };

    let vault = Vault::create(&path, &old, &opts)?;
    let before = vault.put(record("stored before the rotation"))?;
    println!("record {before} stored; data keys: {}", vault.stats()?.keys);

    vault.change_key(&new)?;
    println!("passphrase changed: data keys rewrapped, no record re-encrypted");
    let retired = vault.rotate_keys()?;
    println!("rotated: {retired} data key(s) retired; new records get fresh keys");
    let after = vault.put(record("stored after the rotation"))?;
    println!("record {after} stored; data keys: {}", vault.stats()?.keys);
    drop(vault);

    let vault = Vault::open(&path, &new, &opts)?;
    for id in [before, after] {
        let r = vault.get(id)?;
        println!(
            "with the new passphrase, record {id} reads: {:?}",
            r.prompt().first().map(|m| m.content())
        );
    }
    drop(vault);
    match Vault::open(&path, &old, &opts) {
        Err(Error::WrongKey) => println!("the old passphrase is refused: wrong key"),
        other => return Err(format!("expected WrongKey, got {other:?}").into()),
    }
    Ok(())
}
