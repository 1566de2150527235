//! Write-only ingest: an ingestor holding only the ingest key appends
//! records that the vault reads like its own; retention, erasure and audit
//! apply to them. (Forged and poison staged records: `ingest_forgery.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use llmvault::{
    AuditAction, ConversationId, Error, IngestKey, Ingestor, KeySource, RecordId, SubjectId, Vault,
};

// On every backend; the tests that read or change the file are plain
// `#[test]`s, on SQLite only.
on_each_backend!(
    ingested_records_read_like_any_other_and_are_audited,
    an_ingestor_needs_the_right_ingest_key,
    retention_and_erasure_apply_to_ingested_records,
    ingest_survives_a_change_of_key,
);

fn ingested_records_read_like_any_other_and_are_audited(backend: Backend) {
    let t = new_vault_on(backend);
    let key = t.ingest_key().unwrap();
    let text = key.to_text();
    assert_eq!(
        *t.ingest_key().unwrap().to_text(),
        *text,
        "the same key on every call"
    );
    assert_eq!(*text.parse::<IngestKey>().unwrap().to_text(), *text);

    let ingestor = t.ingestor(&text.parse().unwrap());
    let a = ingestor
        .put(record("conv", Some("alice"), "from the service"))
        .unwrap();
    let more = ingestor
        .put_batch(vec![
            record("conv", Some("bob"), "two"),
            record("other", None, "three"),
        ])
        .unwrap();
    let own = t.put(record("conv", None, "from the vault")).unwrap();

    assert_eq!(
        t.get(a).unwrap().prompt()[0].content(),
        "prompt: from the service"
    );
    let conv = t.conversation(&ConversationId::new("conv")).unwrap();
    let ids: Vec<_> = conv.iter().map(|r| r.id()).collect();
    assert_eq!(ids, vec![a, more[0], own]);
    assert_eq!(t.subject_records(&SubjectId::new("bob")).unwrap().len(), 1);
    let ingest = t
        .audit()
        .entries(..)
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::Ingest)
        .expect("taking records in is audited");
    assert_eq!(ingest.actor, "ingest");
    assert_eq!(ingest.records, vec![a, more[0], more[1]]);
    let report = t.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (4, 0));
}

#[test]
fn the_ingest_key_is_a_secret() {
    let mut t = new_vault();
    let key = t.ingest_key().unwrap();
    let text = key.to_text();
    // The printable key is the public key stored in clear, then a MAC
    // secret that the file holds only wrapped.
    let public: Vec<u8> = t
        .sql()
        .query_row(
            "SELECT value FROM meta WHERE name = 'ingest_public'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let hex: String = public.iter().map(|b| format!("{b:02x}")).collect();
    let secret_hex = text
        .strip_prefix(&format!("llmvault-ingest-2-{hex}"))
        .expect("prefix and public key");
    assert_eq!(secret_hex.len(), 64);
    let secret: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&secret_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    t.close();
    for (name, bytes) in files_in(t.dir.path()) {
        assert!(!contains(&bytes, &secret), "the MAC secret is in {name}");
    }
    assert_eq!(format!("{key:?}"), "IngestKey { .. }");
}

fn an_ingestor_needs_the_right_ingest_key(backend: Backend) {
    let t = new_vault_on(backend);
    let key = t.ingest_key().unwrap();
    // The public key, as `the_ingest_key_is_a_secret` finds it in the file.
    let hex = &key.to_text()["llmvault-ingest-2-".len()..][..64];
    let other = new_vault_on(backend).ingest_key().unwrap();
    assert!(matches!(
        Ingestor::open_in(&t.storage, &other),
        Err(Error::WrongKey)
    ));
    // The right public key with another MAC secret: refused at open.
    let forged: IngestKey = format!("llmvault-ingest-2-{hex}{}", "ab".repeat(32))
        .parse()
        .unwrap();
    assert!(matches!(
        Ingestor::open_in(&t.storage, &forged),
        Err(Error::WrongKey)
    ));
    // The format-1 key was the public key alone: it proves nothing.
    let legacy = format!("llmvault-ingest-1-{hex}").parse::<IngestKey>();
    assert!(
        matches!(&legacy, Err(Error::InvalidInput { reason, .. }) if reason.contains("format-1")),
        "{legacy:?}"
    );
    assert!("llmvault-ingest-2-zz".parse::<IngestKey>().is_err());
    assert!(Ingestor::open_in(&t.storage, &key).is_ok());
}

fn retention_and_erasure_apply_to_ingested_records(backend: Backend) {
    let mut t = new_vault_on(backend);
    let key = t.ingest_key().unwrap();
    let ingestor = t.ingestor(&key);
    let short = ingestor
        .put(record("c", None, "short").ttl(Duration::from_secs(60)))
        .unwrap();
    let alice = ingestor.put(record("c", Some("alice"), "alice")).unwrap();
    let kept = ingestor.put(record("c", Some("bob"), "bob")).unwrap();

    // A key-less purge reaches records still staged.
    t.close();
    t.clock.advance(Duration::from_secs(2 * 86_400));
    let job = Vault::open_for_maintenance_in(&t.storage)
        .unwrap()
        .with_clock(t.clock.clone());
    assert_eq!(job.purge_expired().unwrap().records, 1);
    drop(job);
    t.reopen();
    assert!(matches!(t.get(short), Err(Error::NotFound { .. })));

    let erased = t.erase_subject(&SubjectId::new("alice")).unwrap();
    assert_eq!(erased.records, 1);
    assert!(matches!(t.get(alice), Err(Error::NotFound { .. })));
    assert!(t.get(kept).is_ok());
}

fn ingest_survives_a_change_of_key(backend: Backend) {
    rotated_with_an_ingested_record(backend);
}

/// A vault whose passphrase changed to "rotated" after it issued its
/// ingest key (returned), closed, with one record the ingestor put since.
fn rotated_with_an_ingested_record(backend: Backend) -> (TestVault, IngestKey, RecordId) {
    let mut t = new_vault_on(backend);
    let key = t.ingest_key().unwrap();
    t.change_key(KeySource::passphrase("rotated")).unwrap();
    let ingestor = t.ingestor(&key);
    let id = ingestor.put(record("c", None, "after rotation")).unwrap();
    drop(ingestor);
    t.close();
    let v = Vault::open_in(&t.storage, KeySource::passphrase("rotated"), &t.opts).unwrap();
    assert_eq!(
        v.get(id).unwrap().prompt()[0].content(),
        "prompt: after rotation"
    );
    // The ingest key survives the change of passphrase.
    assert_eq!(*v.ingest_key().unwrap().to_text(), *key.to_text());
    drop(v);
    (t, key, id)
}

#[test]
fn after_a_change_of_key_staged_tampering_is_set_aside() {
    let (t, key, id) = rotated_with_an_ingested_record(Backend::Sqlite);

    // A staged record altered on disk is set aside: counted by verify,
    // never read, and no error for anyone.
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let bad = ingestor.put(record("c", None, "will be altered")).unwrap();
    drop(ingestor);
    t.sql()
        .execute(
            "UPDATE ingest_records SET expires_at = expires_at + 1 WHERE id = ?1",
            [bad.as_u64() as i64],
        )
        .unwrap();
    let v = Vault::open(&t.path, KeySource::passphrase("rotated"), &t.opts).unwrap();
    let report = v.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (1, 1));
    assert!(matches!(v.get(bad), Err(Error::NotFound { .. })));
    assert!(v.get(id).is_ok());
}
