//! Pseudonymization through the vault: mappings sealed per conversation,
//! restored replies, masked records, and the same retention and erasure
//! as records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use llmvault::{AuditAction, ConversationId, Message, NewRecord, Query, SubjectId};

const EMAIL: &str = "alice.liddell@example.com";
const PHONE: &str = "+44 20 7946 0958";

// On every backend; the test that reads the files is a plain `#[test]`, on
// SQLite only.
on_each_backend!(
    multi_turn_round_trip_keeps_placeholders_stable,
    masked_records_read_back_real_values_and_export_can_keep_placeholders,
    erasing_the_subject_destroys_the_mapping,
    mappings_expire_with_retention_unless_a_masked_record_needs_them,
    a_placeholder_the_user_types_never_restores_to_another_persons_value,
);

fn multi_turn_round_trip_keeps_placeholders_stable(backend: Backend) {
    let t = new_vault_on(backend);
    let conv = ConversationId::new("support-1");
    let first = t
        .pseudonymize(&conv, &format!("I am {EMAIL}, please help"))
        .unwrap();
    assert_eq!(first.text, "I am <EMAIL_1>, please help");
    let second = t
        .pseudonymize(&conv, &format!("Call {PHONE} or write to {EMAIL}"))
        .unwrap();
    assert_eq!(second.text, "Call <PHONE_1> or write to <EMAIL_1>");
    assert_eq!(second.new_mappings.len(), 1, "only the phone is new");
    for masked in [&first.text, &second.text] {
        assert!(!masked.contains(EMAIL) && !masked.contains(PHONE));
    }
    let other = t
        .pseudonymize(&ConversationId::new("other"), "bob@example.org")
        .unwrap();
    assert_eq!(other.text, "<EMAIL_1>", "numbering is per conversation");

    let reply = t
        .restore(
            &conv,
            "Wrote to <EMAIL_1>, will call <PHONE_1>; not <EMAIL_9> nor <EMAIL_1",
        )
        .unwrap();
    assert_eq!(
        reply,
        format!("Wrote to {EMAIL}, will call {PHONE}; not <EMAIL_9> nor <EMAIL_1")
    );
    let actions: Vec<_> = t
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == AuditAction::Pseudonymize)
            .count(),
        3
    );
    assert!(actions.contains(&AuditAction::Restore));
}

#[test]
fn mappings_are_sealed_on_disk() {
    let mut t = new_vault();
    t.pseudonymize(&ConversationId::new("c"), &format!("{EMAIL} {PHONE}"))
        .unwrap();
    t.close();
    for (name, bytes) in files_in(t.dir.path()) {
        assert!(!contains(&bytes, EMAIL.as_bytes()), "{name}");
        assert!(!contains(&bytes, PHONE.as_bytes()), "{name}");
    }
}

fn masked_records_read_back_real_values_and_export_can_keep_placeholders(backend: Backend) {
    let t = new_vault_on(backend);
    let conv = ConversationId::new("c");
    let masked = t.pseudonymize(&conv, &format!("mail {EMAIL}")).unwrap();
    let id = t
        .put(
            NewRecord::new(conv.clone())
                .prompt([Message::user(masked.text.clone())])
                .response(Message::assistant("Done, <EMAIL_1> is noted."))
                .masked(true),
        )
        .unwrap();
    let rec = t.get(id).unwrap();
    assert!(!rec.is_masked());
    assert_eq!(rec.prompt()[0].content(), format!("mail {EMAIL}"));
    assert_eq!(
        rec.response().unwrap().content(),
        format!("Done, {EMAIL} is noted.")
    );
    assert_eq!(
        t.conversation(&conv).unwrap()[0].prompt()[0].content(),
        format!("mail {EMAIL}")
    );

    let mut exported = Vec::new();
    t.export(&Query::all().keep_masked(), &mut |r| {
        exported.push((r.is_masked(), r.prompt()[0].content().to_owned()));
        Ok(())
    })
    .unwrap();
    assert_eq!(exported, vec![(true, "mail <EMAIL_1>".to_owned())]);
}

fn erasing_the_subject_destroys_the_mapping(backend: Backend) {
    let t = new_vault_on(backend);
    // Bound to the subject directly...
    let direct = ConversationId::new("direct");
    t.pseudonymize_for(&direct, &SubjectId::new("alice"), EMAIL)
        .unwrap();
    // ...or through the subject's records in the conversation.
    let via = ConversationId::new("via-records");
    t.pseudonymize(&via, PHONE).unwrap();
    t.put(record("via-records", Some("alice"), "x")).unwrap();
    let kept = ConversationId::new("bob's");
    t.pseudonymize_for(&kept, &SubjectId::new("bob"), "bob@example.org")
        .unwrap();

    t.erase_subject(&SubjectId::new("alice")).unwrap();
    assert_eq!(t.restore(&direct, "<EMAIL_1>").unwrap(), "<EMAIL_1>");
    assert_eq!(t.restore(&via, "<PHONE_1>").unwrap(), "<PHONE_1>");
    assert_eq!(t.restore(&kept, "<EMAIL_1>").unwrap(), "bob@example.org");
}

fn mappings_expire_with_retention_unless_a_masked_record_needs_them(backend: Backend) {
    let t = new_vault_on_with(backend, |o| o.default_ttl(Duration::from_secs(3600)));
    let short = ConversationId::new("short");
    t.pseudonymize(&short, EMAIL).unwrap();
    let long = ConversationId::new("long");
    let masked = t.pseudonymize(&long, EMAIL).unwrap();
    let id = t
        .put(
            NewRecord::new(long.clone())
                .prompt([Message::user(masked.text)])
                .ttl(Duration::from_secs(10 * 3600))
                .masked(true),
        )
        .unwrap();
    t.clock.advance(Duration::from_secs(2 * 3600));
    t.purge_expired().unwrap();
    assert_eq!(
        t.restore(&short, "<EMAIL_1>").unwrap(),
        "<EMAIL_1>",
        "purged with its retention"
    );
    assert_eq!(
        t.get(id).unwrap().prompt()[0].content(),
        EMAIL,
        "kept as long as its masked record"
    );
}

fn a_placeholder_the_user_types_never_restores_to_another_persons_value(backend: Backend) {
    let mut t = new_vault_on(backend);
    let conv = ConversationId::new("c");
    let first = t.pseudonymize(&conv, &format!("I am {EMAIL}")).unwrap();
    assert_eq!(first.text, "I am <EMAIL_1>");
    // Another person in the same conversation types the placeholder text.
    let typed = "Bob here. What does <EMAIL_1> mean in your template?";
    let second = t.pseudonymize(&conv, typed).unwrap();
    let reply = format!("You asked: \"{}\"", second.text);
    let want = format!("You asked: \"{typed}\"");
    assert_eq!(t.restore(&conv, &reply).unwrap(), want);
    assert!(!second.text.contains("<EMAIL_1>"), "{}", second.text);
    let id = t
        .put(
            NewRecord::new(conv.clone())
                .prompt([Message::user(second.text.clone())])
                .response(Message::assistant(reply.clone()))
                .masked(true),
        )
        .unwrap();
    t.reopen();
    let rec = t.get(id).unwrap();
    assert_eq!(rec.prompt()[0].content(), typed);
    assert_eq!(rec.response().unwrap().content(), want);
    assert!(!rec.response().unwrap().content().contains(EMAIL));
    assert_eq!(t.restore(&conv, "<EMAIL_1>").unwrap(), EMAIL);
}
