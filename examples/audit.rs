//! Roles and the audit log: actors with a purpose, a write-only ingestor,
//! a key-less retention job, recovery shares, and a tamper-evident trail
//! of all of it.
//!
//! Run: `cargo run --example audit`

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::ManualClock;
use llmvault::ingest::Ingestor;
use llmvault::recovery::RecoveryShare;
use llmvault::{
    Actor, ConversationId, KdfParams, KeySource, Message, NewRecord, SubjectId, Vault, VaultOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audited.vault");
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let opts = VaultOptions::default()
        .kdf(KdfParams::minimum()) // fast for the example
        .clock(clock.clone());
    let key = KeySource::passphrase("correct horse battery staple");
    let vault = Vault::create(&path, &key, &opts)?;

    // A production service gets only the ingest key: it can append, never
    // read. The key is a secret (it makes records the vault accepts), so
    // it goes to the service's configuration, not to a log.
    let ingest_key = vault.ingest_key()?;
    println!(
        "ingest key for the service: {} characters",
        ingest_key.to_text().len()
    );
    let service = Ingestor::open_with_options(&path, &ingest_key, &opts)?;
    let logged = service.put(
        NewRecord::new(ConversationId::new("conv-1"))
            .subject(SubjectId::new("user-7"))
            .prompt([Message::user("where is my order?")])
            .response(Message::assistant("It ships today."))
            .ttl(Duration::from_secs(3600)),
    )?;
    println!("the service logged record {logged} (write-only)");

    // A support engineer reads it, under her name and a stated purpose.
    let alice = vault.as_actor(Actor::new("alice").purpose("ticket T-9"));
    let record = alice.get(logged)?;
    println!(
        "alice read record {}: {:?}",
        record.id(),
        record.response().map(|m| m.content())
    );
    drop(record);

    // A nightly job without any key enforces retention.
    clock.advance(Duration::from_secs(2 * 86_400));
    let job = Vault::open_for_maintenance(&path)?.with_clock(clock.clone());
    let purged = job.purge_expired()?;
    println!("key-less retention job purged {} record(s)", purged.records);
    drop(job);
    drop(vault);

    // Break glass: 2 of 3 recovery shares open the vault without the passphrase.
    let vault = Vault::open(&path, &key, &opts)?;
    let shares: Vec<String> = vault
        .recovery_shares(2, 3)?
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    println!("issued 3 recovery shares, any 2 open the vault");
    let head = vault.audit().head()?;
    println!("audit head to keep elsewhere: {}", head.to_text());
    drop(vault);
    let two: Vec<RecoveryShare> = shares[..2]
        .iter()
        .map(|t| RecoveryShare::from_text(t))
        .collect::<Result<_, _>>()?;
    let vault = Vault::open_with_shares_and_options(&path, &two, &opts)?;
    // Shares give the KEK, not the passphrase: set a new one, then revoke
    // (which replaces the KEK, so the shares and any copy of their
    // material open nothing in this file).
    vault.change_key(KeySource::passphrase("set after the break-glass open"))?;
    vault.revoke_recovery()?;
    println!("opened with 2 shares, set a new passphrase, then revoked the shares");

    println!("audit trail:");
    for e in vault.audit().entries(..)? {
        println!(
            "  #{:<2} {:<12} {:<22} records {:?} count {} {:?}",
            e.seq,
            e.actor,
            format!("{:?}", e.action),
            e.records.iter().map(|r| r.as_u64()).collect::<Vec<_>>(),
            e.count,
            e.purpose.unwrap_or_default()
        );
    }
    let report = vault.audit().verify_against(&head)?;
    println!(
        "audit chain verifies: {} entries, and reaches the kept head #{}",
        report.entries, head.seq
    );
    Ok(())
}
