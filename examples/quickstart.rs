//! The shortest path through llmvault: create a vault in a temporary
//! folder, store a conversation, read it back, let a record expire under a
//! manual clock, purge it, erase a subject, and verify what is left.
//!
//! Run: `cargo run --release --example quickstart`

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::ManualClock;
use llmvault::{
    ConversationId, Error, KeySource, Message, NewRecord, SubjectId, Vault, VaultOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chat-log.vault");
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let opts = VaultOptions::default()
        .default_ttl(Duration::from_secs(30 * 86_400))
        .clock(clock.clone());
    let key = KeySource::passphrase("correct horse battery staple");

    let vault = Vault::create(&path, &key, &opts)?;
    println!("created vault (Argon2id 64 MiB, 3 passes) at a temporary path");

    let conv = ConversationId::new("conv-42");
    let alice = SubjectId::new("alice@example.com");
    let bob = SubjectId::new("bob@example.com");
    let first = vault.put(
        NewRecord::new(conv.clone())
            .subject(alice.clone())
            .model("gpt-4o")
            .prompt([Message::system("be brief"), Message::user("What is WAL?")])
            .response(Message::assistant("A write-ahead log."))
            .tag("support")
            .meta("ticket", "T-9"),
    )?;
    let short_lived = vault.put(
        NewRecord::new(conv.clone())
            .subject(alice.clone())
            .model("gpt-4o")
            .prompt([Message::user("And a checkpoint?")])
            .response(Message::assistant(
                "Copying the log back into the database.",
            ))
            .ttl(Duration::from_secs(3600)),
    )?;
    let ids = vault.put_batch(vec![
        NewRecord::new(ConversationId::new("conv-7"))
            .subject(bob.clone())
            .prompt([Message::user("hi")])
            .response(Message::assistant("hello")),
        NewRecord::new(ConversationId::new("conv-7"))
            .subject(bob.clone())
            .prompt([Message::user("bye")])
            .response(Message::assistant("goodbye")),
    ])?;
    println!(
        "stored records {first} and {short_lived} (alice), {} and {} (bob, one batch)",
        ids[0], ids[1]
    );

    let rec = vault.get(first)?;
    println!(
        "read {}: model {}, prompt {:?}, response {:?}, ticket {:?}",
        rec.id(),
        rec.model(),
        rec.prompt().last().map(|m| m.content()),
        rec.response().map(|m| m.content()),
        rec.meta("ticket"),
    );
    drop(rec); // wipes the decrypted text
    println!(
        "conversation {conv} has {} records",
        vault.conversation(&conv)?.len()
    );

    clock.advance(Duration::from_secs(2 * 3600));
    match vault.get(short_lived) {
        Err(Error::Expired { id, .. }) => println!("two hours later, record {id} has expired"),
        other => return Err(format!("expected the record to have expired, got {other:?}").into()),
    }
    println!(
        "conversation {conv} now shows {} record",
        vault.conversation(&conv)?.len()
    );

    clock.advance(Duration::from_secs(86_400));
    let purge = vault.purge_expired()?;
    println!(
        "purge removed {} record(s) and destroyed {} data key(s)",
        purge.records, purge.keys_destroyed
    );
    if let Err(e) = vault.get(short_lived) {
        println!("reading {short_lived} again: {e}");
    }

    let erased = vault.erase_subject(&bob)?;
    println!(
        "erased subject bob: {} record(s), {} key(s) destroyed",
        erased.records, erased.keys_destroyed
    );

    let report = vault.verify()?;
    println!(
        "verify: {} record(s) and {} key(s) authenticate",
        report.records, report.keys
    );

    drop(vault);
    match Vault::open(&path, KeySource::passphrase("wrong passphrase"), &opts) {
        Err(Error::WrongKey) => println!("opening with a wrong passphrase: refused (wrong key)"),
        other => return Err(format!("expected WrongKey, got {other:?}").into()),
    }
    Ok(())
}
