//! A chat loop that never shows a model the user's personal data, and logs
//! every exchange: each turn is pseudonymized before the (stand-in) model
//! sees it, the reply is restored before the user sees it, and the vault
//! stores what the model saw, marked masked. Reading the log back gives the
//! real values; a `keep_masked` export gives the placeholders; erasing the
//! subject destroys the mapping, so the placeholders no longer resolve.
//!
//! Run: `cargo run --example chat_logger`

use llmvault::{
    ConversationId, KdfParams, KeySource, Message, NewRecord, Query, SubjectId, Vault, VaultOptions,
};

/// What the user types, turn by turn.
const TURNS: [&str; 3] = [
    "Hi, my order 1234 never arrived. Reach me at alice@example.com.",
    "Or call +44 20 7946 0958, and copy my colleague bob@example.org.",
    "Thanks! Please send the refund note to alice@example.com too.",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = VaultOptions::default().kdf(KdfParams::minimum());
    let vault = Vault::create(
        dir.path().join("chat.vault"),
        KeySource::passphrase("correct horse battery staple"),
        &opts,
    )?;
    let conv = ConversationId::new("support-42");
    let alice = SubjectId::new("alice");

    for (turn, text) in TURNS.iter().enumerate() {
        println!("turn {}", turn + 1);
        println!("  user says:      {text}");
        // Bound to the subject: erasing alice destroys the mapping even if
        // no record of the conversation were stored.
        let masked = vault.pseudonymize_for(&conv, &alice, text)?;
        println!("  model receives: {}", masked.text);
        let reply = stand_in_model(&masked.text);
        println!("  model replies:  {reply}");
        let restored = vault.restore(&conv, &reply)?;
        println!("  user sees:      {restored}");
        vault.put(
            NewRecord::new(conv.clone())
                .subject(alice.clone())
                .model("stand-in")
                .prompt([Message::user(masked.text.as_str())])
                .response(Message::assistant(reply))
                .masked(true),
        )?;
    }

    println!("\nthe log, read back with the key (real values):");
    for record in vault.conversation(&conv)? {
        print_exchange(&record);
    }

    println!("\nthe log, exported with keep_masked (what the model saw):");
    vault.export(
        &Query::all().conversation(conv.clone()).keep_masked(),
        &mut |record| {
            print_exchange(&record);
            Ok(())
        },
    )?;

    let erased = vault.erase_subject(&alice)?;
    println!(
        "\nerased alice: {} record(s), {} key(s) destroyed",
        erased.records, erased.keys_destroyed
    );
    let after = vault.restore(&conv, "I will email <EMAIL_1> and call <PHONE_1>.")?;
    println!("restore after erasure: {after}");
    println!(
        "conversation {conv} now holds {} record(s)",
        vault.conversation(&conv)?.len()
    );
    Ok(())
}

/// A model that answers from what it was given: it only ever sees
/// placeholders, and uses them as it would use the real values.
fn stand_in_model(prompt: &str) -> String {
    let placeholders = placeholders(prompt);
    let email = placeholders.iter().find(|p| p.starts_with("<EMAIL_"));
    let phone = placeholders.iter().find(|p| p.starts_with("<PHONE_"));
    match (email, phone) {
        (Some(e), Some(p)) => format!("Noted: I will call {p} and copy {e}."),
        (Some(e), None) => format!("I will email {e} about your order."),
        (None, Some(p)) => format!("I will call {p} about your order."),
        (None, None) => "How can I help?".to_owned(),
    }
}

/// Every `<LABEL_N>` in `text`, in order.
fn placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let candidate = &rest[start..=start + len];
        let inner = &candidate[1..candidate.len() - 1];
        if !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            found.push(candidate);
        }
        rest = &rest[start + 1..];
    }
    found
}

fn print_exchange(record: &llmvault::Record) {
    let prompt = record.prompt().last().map_or("", |m| m.content());
    let response = record.response().map_or("", |m| m.content());
    println!(
        "  record {} (masked: {}): {prompt:?} -> {response:?}",
        record.id(),
        record.is_masked()
    );
}
