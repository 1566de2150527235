//! A data subject's rights: hand over everything stored about them (access
//! and portability), then erase it (crypto-shredding) and show it is gone
//! while everyone else's records stay.
//!
//! Run: `cargo run --example gdpr`

use std::time::Duration;

use llmvault::{
    ConversationId, Error, KeySource, Message, NewRecord, Query, SubjectId, Vault, VaultOptions,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // A raw key (from a KMS, say) needs no Argon2 work.
    let key = KeySource::raw_key([42; 32]);
    let vault = Vault::create(dir.path().join("gdpr.vault"), &key, VaultOptions::default())?;

    let alice = SubjectId::new("alice@example.com");
    let bob = SubjectId::new("bob@example.com");
    let mut alices = Vec::new();
    for (conv, question, answer) in [
        (
            "support-1",
            "My order 1234 never arrived",
            "Sorry! A new one is on its way.",
        ),
        (
            "support-1",
            "Thanks, and my address is 1 Main St",
            "Updated.",
        ),
        ("sales-9", "Do you ship to Norway?", "Yes, within 5 days."),
    ] {
        alices.push(
            vault.put(
                NewRecord::new(ConversationId::new(conv))
                    .subject(alice.clone())
                    .model("gpt-4o")
                    .prompt([Message::user(question)])
                    .response(Message::assistant(answer))
                    .ttl(Duration::from_secs(30 * 86_400)),
            )?,
        );
    }
    let bobs = vault.put(
        NewRecord::new(ConversationId::new("support-2"))
            .subject(bob.clone())
            .prompt([Message::user("Reset my password")])
            .response(Message::assistant("Done.")),
    )?;
    println!(
        "stored {} records about {alice} and 1 about {bob}",
        alices.len()
    );

    println!("\naccess request from {alice}: everything stored about them");
    let exported = vault.export(&Query::all().subject(alice.clone()), &mut |r| {
        println!(
            "  record {} in {} ({}): {:?} -> {:?}",
            r.id(),
            r.conversation(),
            r.model(),
            r.prompt().first().map(|m| m.content()),
            r.response().map(|m| m.content()),
        );
        Ok(())
    })?;
    println!("  {exported} record(s) exported (the CLI writes them as JSON Lines)");

    println!("\nerasure request from {alice}");
    let erased = vault.erase_subject(&alice)?;
    println!(
        "  erased {} record(s) and destroyed {} data key(s) in one transaction",
        erased.records, erased.keys_destroyed
    );
    println!(
        "  records about them now: {} (by subject), {} (by query)",
        vault.subject_records(&alice)?.len(),
        vault.query(&Query::all().subject(alice.clone()))?.len()
    );
    match vault.get(alices[0]) {
        Err(Error::NotFound { id }) => println!("  reading record {id}: not found"),
        other => return Err(format!("expected NotFound, got {other:?}").into()),
    }
    println!(
        "  {bob}'s record {bobs} still reads: {:?}",
        vault.get(bobs)?.response().map(|m| m.content())
    );
    let erasures = vault
        .audit()
        .entries(..)?
        .into_iter()
        .filter(|e| e.action == llmvault::audit::AuditAction::Erase)
        .count();
    println!(
        "  the audit log holds {erasures} erasure entry, naming the subject by keyed tag only"
    );
    Ok(())
}
