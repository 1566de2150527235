//! Backward compatibility: the vaults written by format versions 1 and 3,
//! checked in under `tests/data/`, must open and read the same forever. If
//! this test fails, the format changed: bump the version and write a
//! migration, never edit a sample.
//!
//! The samples were written by `write_sample` below (ignored; run it only
//! to make a sample for a new format version, under a new name), with the
//! passphrase of their version. (Format 2 existed only during the round of
//! changes that made format 3, so it has no sample.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use llmvault::clock::ManualClock;
use llmvault::{
    AuditAction, ConversationId, Error, IngestKey, Ingestor, KdfParams, KeySource, Message,
    NewRecord, RecoveryShare, SubjectId, Vault, VaultOptions,
};

const SAMPLE: &str = "tests/data/v1.vault";
const PASSPHRASE: &str = "compat sample, format v1";
const SAMPLE_V3: &str = "tests/data/v3.vault";
const PASSPHRASE_V3: &str = "compat sample, format v3";

/// 2026-01-01T00:00:00Z: the sample's clock.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn options(clock: &Arc<ManualClock>) -> VaultOptions {
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(clock.clone())
}

fn turn(conv: &str, subject: Option<&str>, n: u32) -> NewRecord {
    let r = NewRecord::new(ConversationId::new(conv))
        .model("sample-model")
        .prompt([
            Message::system("be brief"),
            Message::user(format!("question {n}")),
        ])
        .response(Message::assistant(format!("answer {n}")))
        .tag(format!("tag-{}", n % 2))
        .meta("n", n.to_string())
        .training_consent(n.is_multiple_of(3));
    match subject {
        Some(s) => r.subject(SubjectId::new(s)),
        None => r,
    }
}

#[test]
#[ignore = "writes a sample; run by hand for a new format version only"]
fn write_sample() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.vault");
    let clock = Arc::new(ManualClock::new(t0()));
    let passphrase = format!("compat sample, format v{}", llmvault::FORMAT_VERSION);
    let vault = Vault::create(&path, KeySource::passphrase(passphrase), options(&clock)).unwrap();
    for n in 0..6 {
        vault
            .put(turn(
                ["c-a", "c-b"][n as usize % 2],
                Some(["alice", "bob"][n as usize % 2]),
                n,
            ))
            .unwrap();
        clock.advance(Duration::from_secs(1));
    }
    vault
        .put(turn("c-short", None, 6).ttl(Duration::from_secs(7200)))
        .unwrap();
    let masked = vault
        .pseudonymize_for(
            &ConversationId::new("c-pii"),
            &SubjectId::new("carol"),
            "mail carol@example.com",
        )
        .unwrap();
    vault
        .put(
            NewRecord::new(ConversationId::new("c-pii"))
                .subject(SubjectId::new("carol"))
                .prompt([Message::user(masked.text)])
                .masked(true),
        )
        .unwrap();
    let shares: Vec<String> = vault
        .recovery_shares(2, 3)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    let ingest = vault.ingest_key().unwrap();
    drop(vault);
    Ingestor::open_with_options(&path, &ingest, options(&clock))
        .unwrap()
        .put(turn("c-ingest", Some("dave"), 7))
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA page_size = 512; VACUUM; PRAGMA journal_mode = WAL;",
    )
    .unwrap();
    drop(conn);
    // Never over the pinned sample: a new format version gets a new name.
    std::fs::copy(&path, "tests/data/new-sample.vault").unwrap();
    println!("wrote tests/data/new-sample.vault; shares: {shares:?}");
}

/// Two of the three recovery shares (the first and the third) issued when
/// the sample was written.
const SHARES: [&str; 2] = [
    "llmvault-share-1-017dd86de262217df57a2468fb4cccd11956aeb66e3edf5e8be754b44aa15df11f-f5691d7e",
    "llmvault-share-1-03bab5cd43f11f91515d61618203cca049f06ab5bc81e001d0df14b763f26393e2-e510b1d9",
];

fn sample_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.vault");
    std::fs::copy(SAMPLE, &path).unwrap();
    (dir, path)
}

#[test]
fn the_v1_sample_opens_and_reads_the_same() {
    let (_dir, path) = sample_copy();
    let clock = Arc::new(ManualClock::new(t0() + Duration::from_secs(3600)));
    let vault = Vault::open(&path, KeySource::passphrase(PASSPHRASE), options(&clock)).unwrap();

    let alice = vault.subject_records(&SubjectId::new("alice")).unwrap();
    assert_eq!(alice.len(), 3);
    for (n, r) in (0u32..).step_by(2).zip(&alice) {
        assert_eq!(r.conversation().as_str(), "c-a");
        assert_eq!(r.model(), "sample-model");
        assert_eq!(r.prompt()[1].content(), format!("question {n}"));
        assert_eq!(r.response().unwrap().content(), format!("answer {n}"));
        assert_eq!(r.meta("n"), Some(n.to_string().as_str()));
        assert_eq!(r.tags(), [format!("tag-{}", n % 2)]);
        assert_eq!(r.training_consent(), n.is_multiple_of(3));
        assert_eq!(r.created_at(), t0() + Duration::from_secs(u64::from(n)));
    }
    assert_eq!(
        vault
            .conversation(&ConversationId::new("c-b"))
            .unwrap()
            .len(),
        3
    );
    let pii = vault.conversation(&ConversationId::new("c-pii")).unwrap();
    assert_eq!(pii[0].prompt()[0].content(), "mail carol@example.com");
    assert_eq!(
        vault
            .restore(&ConversationId::new("c-pii"), "<EMAIL_1>")
            .unwrap(),
        "carol@example.com"
    );
    // The record a format-1 ingestor staged carries no proof of who wrote
    // it (anyone who can write the file could have): set aside, not
    // adopted, and counted by verify.
    assert!(
        vault
            .subject_records(&SubjectId::new("dave"))
            .unwrap()
            .is_empty()
    );
    let report = vault.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (8, 1));
    let entries = vault.audit().entries(..).unwrap();
    assert_eq!(entries[0].action, AuditAction::Create);
    // The sample's entries have version-1 bodies; this build's reads above
    // appended version-2 ones after them, in the same chain.
    assert!(
        entries
            .iter()
            .any(|e| e.action == AuditAction::Put && e.records.len() == 1)
    );
    vault.audit().verify().unwrap();
    let findings = vault.audit().verify_all().unwrap();
    assert!(findings.is_clean(), "{findings:?}");
    assert_eq!(findings.verified, findings.head.seq);

    let short = vault.conversation(&ConversationId::new("c-short")).unwrap();
    assert_eq!(short.len(), 1);
    let short_id = short[0].id();
    clock.advance(Duration::from_secs(2 * 3600));
    assert!(matches!(vault.get(short_id), Err(Error::Expired { .. })));
}

#[test]
fn the_v1_sample_opens_with_its_recovery_shares() {
    let (_dir, path) = sample_copy();
    let shares: Vec<RecoveryShare> = SHARES
        .iter()
        .map(|s| RecoveryShare::from_text(s).unwrap())
        .collect();
    let clock = Arc::new(ManualClock::new(t0()));
    let vault = Vault::open_with_shares_and_options(&path, &shares, options(&clock)).unwrap();
    assert_eq!(
        vault.subject_records(&SubjectId::new("bob")).unwrap().len(),
        3
    );
}

fn header_version(path: &std::path::Path) -> u16 {
    let header: Vec<u8> = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE name = 'header'", [], |r| {
            r.get(0)
        })
        .unwrap();
    u16::from_be_bytes([header[8], header[9]])
}

fn sample_shares() -> Vec<RecoveryShare> {
    SHARES
        .iter()
        .map(|s| RecoveryShare::from_text(s).unwrap())
        .collect()
}

/// A format-1 vault is written in the current format (3, a random KEK
/// wrapped in the header) on its first change of KEK
/// (here: revoking its shares), opens with the same passphrase after, and
/// its old shares, even with its old recovery row put back, open nothing.
#[test]
fn the_v1_sample_moves_to_the_current_format_when_its_shares_are_revoked() {
    let (_dir, path) = sample_copy();
    let clock = Arc::new(ManualClock::new(t0() + Duration::from_secs(3600)));
    assert_eq!(header_version(&path), 1);
    let old_recovery: Vec<u8> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE name = 'recovery'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let vault = Vault::open(&path, KeySource::passphrase(PASSPHRASE), options(&clock)).unwrap();
    vault.revoke_recovery().unwrap();
    drop(vault);
    assert_eq!(header_version(&path), llmvault::FORMAT_VERSION);

    let vault = Vault::open(&path, KeySource::passphrase(PASSPHRASE), options(&clock)).unwrap();
    assert_eq!(
        vault
            .subject_records(&SubjectId::new("alice"))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        vault.verify().unwrap().records,
        8,
        "the staged record is set aside"
    );
    vault.audit().verify().unwrap();
    drop(vault);

    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO meta (name, value) VALUES ('recovery', ?1)",
            [old_recovery],
        )
        .unwrap();
    let err =
        Vault::open_with_shares_and_options(&path, &sample_shares(), options(&clock)).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err:?}");
}

/// Opened with its shares, the format-1 sample reads, and moves to the
/// current format once the handle sets a key.
#[test]
fn the_v1_sample_opened_with_shares_moves_to_the_current_format_on_change_key() {
    let (_dir, path) = sample_copy();
    let clock = Arc::new(ManualClock::new(t0()));
    let vault =
        Vault::open_with_shares_and_options(&path, &sample_shares(), options(&clock)).unwrap();
    assert!(matches!(
        vault.revoke_recovery(),
        Err(Error::KeySourceNeeded)
    ));
    assert_eq!(header_version(&path), 1, "nothing written");
    vault.change_key(KeySource::passphrase("new")).unwrap();
    assert_eq!(header_version(&path), llmvault::FORMAT_VERSION);
    drop(vault);
    // change_key keeps issued shares working.
    let vault =
        Vault::open_with_shares_and_options(&path, &sample_shares(), options(&clock)).unwrap();
    assert_eq!(
        vault.verify().unwrap().records,
        8,
        "the staged record is set aside"
    );
    drop(vault);
    let vault = Vault::open(&path, KeySource::passphrase("new"), options(&clock)).unwrap();
    assert_eq!(
        vault.subject_records(&SubjectId::new("bob")).unwrap().len(),
        3
    );
}

/// A format-1 vault keeps working under this build: records written now
/// get format-2 (key-committing) envelopes beside the old ones, and both
/// read after a reopen; the header keeps version 1 until a key change
/// writes a new one.
#[test]
fn the_v1_sample_takes_format_2_records_beside_its_own() {
    let (_dir, path) = sample_copy();
    let clock = Arc::new(ManualClock::new(t0() + Duration::from_secs(3600)));
    let key = KeySource::passphrase(PASSPHRASE);
    let vault = Vault::open(&path, &key, options(&clock)).unwrap();
    let new_id = vault.put(turn("c-a", Some("alice"), 100)).unwrap();
    drop(vault);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let (sealed, header): (Vec<u8>, Vec<u8>) = conn
        .query_row(
            "SELECT r.sealed, m.value FROM records r, meta m \
             WHERE r.id = ?1 AND m.name = 'header'",
            [new_id.as_u64() as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(sealed[0], 2, "new records are sealed as format 2");
    assert_eq!(&header[8..10], &1u16.to_be_bytes(), "header still format 1");
    drop(conn);

    let vault = Vault::open(&path, &key, options(&clock)).unwrap();
    let alice = vault.subject_records(&SubjectId::new("alice")).unwrap();
    assert_eq!(alice.len(), 4);
    assert_eq!(alice[3].prompt()[1].content(), "question 100");
    assert_eq!(alice[0].prompt()[1].content(), "question 0");
    assert_eq!(vault.verify().unwrap().records, 9);
    vault.audit().verify().unwrap();

    vault.change_key(KeySource::passphrase("new")).unwrap();
    drop(vault);
    let vault = Vault::open(&path, KeySource::passphrase("new"), options(&clock)).unwrap();
    assert_eq!(vault.verify().unwrap().records, 9);
}

/// The sample's format-1 ingest key was its public key alone: it is
/// refused, and the first `ingest_key` of this build issues a new key,
/// with which an ingestor's records are taken in (ids above every id the
/// sample used, its staged one included).
#[test]
fn the_v1_sample_gets_a_new_ingest_key() {
    let (_dir, path) = sample_copy();
    let clock = Arc::new(ManualClock::new(t0() + Duration::from_secs(3600)));
    let public: Vec<u8> = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE name = 'ingest_public'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let hex: String = public.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        format!("llmvault-ingest-1-{hex}")
            .parse::<IngestKey>()
            .is_err()
    );

    let key = KeySource::passphrase(PASSPHRASE);
    let vault = Vault::open(&path, &key, options(&clock)).unwrap();
    let ingest = vault.ingest_key().unwrap();
    assert!(ingest.to_text().starts_with("llmvault-ingest-2-"));
    assert!(!ingest.to_text().contains(&hex), "a new X25519 pair too");
    drop(vault);
    let id = Ingestor::open_with_options(&path, &ingest, options(&clock))
        .unwrap()
        .put(turn("c-ingest", Some("erin"), 8))
        .unwrap();
    assert!(id.as_u64() > 9, "{id:?}");
    let vault = Vault::open(&path, &key, options(&clock)).unwrap();
    assert_eq!(vault.get(id).unwrap().prompt()[1].content(), "question 8");
    let report = vault.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (9, 1));
    vault.audit().verify().unwrap();
}

/// Two of the three recovery shares (the first and the third) issued when
/// the format-3 sample was written.
const SHARES_V3: [&str; 2] = [
    "llmvault-share-1-0141cf66ac5e01d7338faa3c32aaba901d5f66e8d541a51a4e2bb458132c2c380a-3657a9b4",
    "llmvault-share-1-03399725a9448bb2aa415fddb6d5e47cba3e426891fc566a4e5901f6acc971e4ee-f4fe65f0",
];

fn sample_v3_copy() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.vault");
    std::fs::copy(SAMPLE_V3, &path).unwrap();
    (dir, path)
}

/// The format-3 sample (random KEK in the header, key-committing
/// envelopes, audit bodies of version 2, a staged record with its proof)
/// opens by passphrase and by shares and reads the same.
#[test]
fn the_v3_sample_opens_and_reads_the_same() {
    let (_dir, path) = sample_v3_copy();
    assert_eq!(header_version(&path), 3);
    let clock = Arc::new(ManualClock::new(t0() + Duration::from_secs(3600)));
    let vault = Vault::open(&path, KeySource::passphrase(PASSPHRASE_V3), options(&clock)).unwrap();
    let alice = vault.subject_records(&SubjectId::new("alice")).unwrap();
    assert_eq!(alice.len(), 3);
    for (n, r) in (0u32..).step_by(2).zip(&alice) {
        assert_eq!(r.conversation().as_str(), "c-a");
        assert_eq!(r.prompt()[1].content(), format!("question {n}"));
        assert_eq!(r.response().unwrap().content(), format!("answer {n}"));
        assert_eq!(r.meta("n"), Some(n.to_string().as_str()));
        assert_eq!(r.training_consent(), n.is_multiple_of(3));
        assert_eq!(r.created_at(), t0() + Duration::from_secs(u64::from(n)));
    }
    let pii = vault.conversation(&ConversationId::new("c-pii")).unwrap();
    assert_eq!(pii[0].prompt()[0].content(), "mail carol@example.com");
    // Its staged record carries a proof made with the sample's live
    // ingest key: taken in on open.
    let dave = vault.subject_records(&SubjectId::new("dave")).unwrap();
    assert_eq!(dave.len(), 1);
    assert_eq!(dave[0].prompt()[1].content(), "question 7");
    let report = vault.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (9, 0));
    vault.audit().verify().unwrap();
    assert!(vault.audit().verify_all().unwrap().is_clean());
    let short = vault.conversation(&ConversationId::new("c-short")).unwrap();
    let short_id = short[0].id();
    clock.advance(Duration::from_secs(2 * 3600));
    assert!(matches!(vault.get(short_id), Err(Error::Expired { .. })));
    drop(vault);

    let shares: Vec<RecoveryShare> = SHARES_V3
        .iter()
        .map(|s| RecoveryShare::from_text(s).unwrap())
        .collect();
    let vault = Vault::open_with_shares_and_options(&path, &shares, options(&clock)).unwrap();
    assert_eq!(
        vault.subject_records(&SubjectId::new("bob")).unwrap().len(),
        3
    );
}
