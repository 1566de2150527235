//! The audit log: one entry per operation, with actor and purpose; a
//! chain that names the first removed, changed, inserted or reordered
//! entry; a head kept elsewhere that catches a cut-off tail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::Vault;
use llmvault::{
    AUDIT_MAX_LISTED_RECORDS, Actor, AuditAction, AuditHead, AuditOutcome, ConversationId, Error,
    KdfParams, KeySource, Query, RecordId, SubjectId, VaultOptions,
};

// On every backend; the tests that change rows with SQL on SQLite and
// PostgreSQL; those that count rows of the file or need its layout are
// plain `#[test]`s, on SQLite only.
on_each_backend!(
    every_operation_appends_one_entry,
    actors_and_failures_are_recorded,
    failed_opens_are_folded_in_at_the_next_open,
    the_chain_survives_a_change_of_key_and_verifies_against_its_head,
    reads_past_several_folds_and_a_log_rotation_are_each_chained_once,
);
on_sql_backends!(
    a_removed_entry_is_named,
    a_changed_entry_is_named,
    swapped_entries_are_found,
    an_inserted_entry_is_found,
    a_cut_off_tail_is_found_against_a_kept_head,
);

fn actions(t: &TestVault) -> Vec<AuditAction> {
    t.audit()
        .entries(..)
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect()
}

fn every_operation_appends_one_entry(backend: Backend) {
    let mut t = new_vault_on(backend);
    let id = t.put(record("c", Some("s"), "a")).unwrap();
    t.put_batch(vec![record("c", Some("s"), "b"), record("c", None, "c")])
        .unwrap();
    t.get(id).unwrap();
    t.conversation(&ConversationId::new("c")).unwrap();
    t.subject_records(&SubjectId::new("s")).unwrap();
    t.purge_expired().unwrap();
    t.erase_subject(&SubjectId::new("s")).unwrap();
    t.verify().unwrap();
    t.change_key(KeySource::passphrase(PASS)).unwrap();
    t.reopen();
    use AuditAction::*;
    assert_eq!(
        actions(&t),
        vec![
            Create,
            Put,
            PutBatch,
            Get,
            Conversation,
            SubjectRecords,
            Purge,
            Erase,
            Verify,
            ChangeKey,
            Open
        ]
    );
    let entries = t.audit().entries(..).unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e.actor == "default" && e.outcome == AuditOutcome::Ok)
    );
    assert_eq!(entries[1].records, vec![id]);
    assert_eq!(entries[2].records.len(), 2);
    assert_eq!(
        entries[4].records.len(),
        3,
        "the conversation read names what it returned"
    );
    assert_eq!(entries[7].count, 2, "erase counts the subject's records");
    assert!(entries[7].target_tag.is_some() && entries[5].target_tag == entries[7].target_tag);
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
    assert_eq!(t.audit().verify().unwrap().entries, 11);
}

fn actors_and_failures_are_recorded(backend: Backend) {
    let t = new_vault_on(backend);
    let alice = t.as_actor(Actor::new("alice").purpose("ticket T-9"));
    let id = alice.put(record("c", None, "x")).unwrap();
    alice.get(id).unwrap();
    let missing = RecordId::from_u64(999);
    assert!(matches!(alice.get(missing), Err(Error::NotFound { .. })));
    let err = alice.put(record("c", None, "x").ttl(std::time::Duration::ZERO));
    assert!(err.is_err());
    let entries = t.audit().entries(2..).unwrap();
    assert_eq!(entries.len(), 4);
    for e in &entries {
        assert_eq!(
            (e.actor.as_str(), e.purpose.as_deref()),
            ("alice", Some("ticket T-9"))
        );
    }
    assert_eq!(entries[2].action, AuditAction::Get);
    assert_eq!(entries[2].records, vec![missing]);
    assert!(matches!(&entries[2].outcome, AuditOutcome::Failed(m) if m.contains("not found")));
    assert_eq!(entries[3].action, AuditAction::Put);
    assert!(matches!(&entries[3].outcome, AuditOutcome::Failed(m) if m.contains("ttl")));
}

fn failed_opens_are_folded_in_at_the_next_open(backend: Backend) {
    let mut t = new_vault_on(backend);
    t.close();
    for _ in 0..3 {
        assert!(matches!(
            Vault::open_in(&t.storage, KeySource::passphrase("wrong"), &t.opts),
            Err(Error::WrongKey)
        ));
    }
    t.reopen();
    let entries = t.audit().entries(..).unwrap();
    let failed: Vec<_> = entries
        .iter()
        .filter(|e| e.action == AuditAction::FailedOpens)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].count, 3);
    // Counted once: a second open has nothing to fold in.
    t.reopen();
    let again = t.audit().entries(..).unwrap();
    assert_eq!(
        again
            .iter()
            .filter(|e| e.action == AuditAction::FailedOpens)
            .count(),
        1
    );
    t.audit().verify().unwrap();
}

/// A vault with a dozen entries, closed, for tampering.
fn logged_vault() -> TestVault {
    logged_vault_on(Backend::Sqlite)
}

fn logged_vault_on(backend: Backend) -> TestVault {
    let mut t = new_vault_on(backend);
    for i in 0..10 {
        t.put(record("c", None, &i.to_string())).unwrap();
    }
    t.close();
    t
}

fn tampered_at(t: &mut TestVault, sql: &str) -> Error {
    t.raw().batch(sql);
    t.reopen();
    t.audit().verify().unwrap_err()
}

fn a_removed_entry_is_named(backend: Backend) {
    let mut t = logged_vault_on(backend);
    let err = tampered_at(&mut t, "DELETE FROM audit WHERE seq = 5");
    assert!(matches!(err, Error::AuditTampered { seq: 5 }), "{err:?}");
}

fn a_changed_entry_is_named(backend: Backend) {
    let mut t = logged_vault_on(backend);
    let sealed: Vec<u8> = t.raw().one("SELECT sealed FROM audit WHERE seq = 4", &[]);
    t.raw().execute(
        "UPDATE audit SET sealed = ?1 WHERE seq = 4",
        &[V::B(vec![0; sealed.len()])],
    );
    t.reopen();
    let err = t.audit().verify().unwrap_err();
    assert!(matches!(err, Error::AuditTampered { seq: 4 }), "{err:?}");
    let mut t = logged_vault_on(backend);
    let err = tampered_at(&mut t, "UPDATE audit SET at = at + 1 WHERE seq = 6");
    assert!(matches!(err, Error::AuditTampered { seq: 6 }), "{err:?}");
}

fn swapped_entries_are_found(backend: Backend) {
    let mut t = logged_vault_on(backend);
    let err = tampered_at(
        &mut t,
        "UPDATE audit SET seq = -1 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 4; \
         UPDATE audit SET seq = 4 WHERE seq = -1;",
    );
    assert!(matches!(err, Error::AuditTampered { seq: 3 }), "{err:?}");
}

fn an_inserted_entry_is_found(backend: Backend) {
    let mut t = logged_vault_on(backend);
    // Make room at 5 and copy entry 2 in: right format, wrong place in the chain.
    let err = tampered_at(
        &mut t,
        "UPDATE audit SET seq = seq + 100 WHERE seq >= 5; UPDATE audit SET seq = seq - 99 WHERE seq >= 105; \
         INSERT INTO audit (seq, at, sealed, mac) SELECT 5, at, sealed, mac FROM audit WHERE seq = 2;",
    );
    assert!(matches!(err, Error::AuditTampered { seq: 5 }), "{err:?}");
}

fn a_cut_off_tail_is_found_against_a_kept_head(backend: Backend) {
    let mut t = logged_vault_on(backend);
    t.reopen();
    let head = t.audit().head().unwrap();
    let kept = AuditHead::from_text(&head.to_text()).unwrap();
    assert_eq!(kept, head);
    t.close();
    t.raw().execute(
        "DELETE FROM audit WHERE seq >= ?1",
        &[V::I(head.seq as i64 - 2)],
    );
    // Reopening appends an Open entry: the chain itself still verifies...
    t.reopen();
    t.audit().verify().unwrap();
    // ...but not against the head kept elsewhere: the log now ends at
    // head - 2 (the new Open entry), so head - 1 is the first one missing.
    let err = t.audit().verify_against(&kept).unwrap_err();
    assert!(
        matches!(err, Error::AuditTampered { seq } if seq == head.seq - 1),
        "{err:?}"
    );
}

fn the_chain_survives_a_change_of_key_and_verifies_against_its_head(backend: Backend) {
    let t = new_vault_on(backend);
    t.put(record("c", None, "x")).unwrap();
    let before = t.audit().head().unwrap();
    t.change_key(KeySource::passphrase("new")).unwrap();
    let report = t.audit().verify_against(&before).unwrap();
    assert_eq!(report.entries, before.seq + 1);
    assert!(AuditHead::from_text("12:zz").is_none());
}

#[test]
fn batched_read_entries_are_all_written_eventually() {
    let mut t = new_vault_with(|o| o.danger_audit_read_batch(3));
    let id = t.put(record("c", None, "x")).unwrap();
    let count_gets = |t: &TestVault| {
        t.sql()
            .query_row("SELECT count(*) FROM audit", [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    let before = count_gets(&t);
    t.get(id).unwrap();
    t.get(id).unwrap();
    assert_eq!(count_gets(&t), before, "two reads wait in memory");
    t.get(id).unwrap();
    assert_eq!(count_gets(&t), before + 3, "the third fills the batch");
    t.get(id).unwrap();
    t.close(); // dropping the vault writes the last one
    assert_eq!(count_gets(&t), before + 4);
    t.reopen();
    let gets = t
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .filter(|e| e.action == AuditAction::Get)
        .count();
    assert_eq!(gets, 4);
    t.get(id).unwrap();
    // The audit view itself takes waiting entries in first.
    let gets = t
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .filter(|e| e.action == AuditAction::Get)
        .count();
    assert_eq!(gets, 5);
    t.audit().verify().unwrap();
}

#[test]
fn verify_all_names_every_bad_entry_and_checks_past_them() {
    let mut t = logged_vault();
    t.sql()
        .execute_batch(
            "UPDATE audit SET sealed = CAST(zeroblob(length(sealed)) AS BLOB) WHERE seq = 4; \
             UPDATE audit SET mac = randomblob(32) WHERE seq = 7; \
             DELETE FROM audit WHERE seq = 9;",
        )
        .unwrap();
    t.reopen();
    let id = t.put(record("c", None, "after the damage")).unwrap();
    assert!(matches!(
        t.audit().verify(),
        Err(Error::AuditTampered { seq: 4 })
    ));
    let findings = t.audit().verify_all().unwrap();
    assert_eq!(findings.bad, vec![4..=4, 7..=7], "{findings:?}");
    assert_eq!(findings.missing, vec![9..=9]);
    assert_eq!(findings.first_fault(), Some(4));
    assert!(!findings.is_clean());
    // 11 entries written before, an Open and a Put after; 3 damaged.
    assert_eq!((findings.head.seq, findings.verified), (13, 10));
    let newest = t.audit().entries(13..).unwrap();
    assert_eq!(newest[0].records, vec![id], "entries after the damage read");

    // A later change past the damage is still found.
    t.close();
    t.sql()
        .execute("UPDATE audit SET at = at + 1 WHERE seq = 12", [])
        .unwrap();
    t.reopen();
    let findings = t.audit().verify_all().unwrap();
    assert_eq!(findings.bad, vec![4..=4, 7..=7, 12..=12]);
}

#[test]
fn a_row_with_a_malformed_mac_is_named_not_a_storage_error() {
    let mut t = logged_vault();
    t.sql()
        .execute("UPDATE audit SET mac = x'00' WHERE seq = 5", [])
        .unwrap();
    t.reopen();
    assert!(matches!(
        t.audit().verify(),
        Err(Error::AuditTampered { seq: 5 })
    ));
    let findings = t.audit().verify_all().unwrap();
    assert_eq!((findings.bad, findings.missing), (vec![5..=5], vec![]));
}

#[test]
fn verify_all_against_a_kept_head_names_a_cut_off_tail() {
    let mut t = logged_vault();
    t.reopen();
    let head = t.audit().head().unwrap();
    assert!(t.audit().verify_all_against(&head).unwrap().is_clean());
    t.close();
    t.sql()
        .execute("DELETE FROM audit WHERE seq >= ?1", [head.seq as i64 - 2])
        .unwrap();
    t.reopen();
    let findings = t.audit().verify_all_against(&head).unwrap();
    assert_eq!(findings.missing, vec![head.seq - 1..=head.seq]);
    assert!(findings.bad.is_empty());
    assert_eq!(findings.first_fault(), Some(head.seq - 1));
}

#[test]
fn a_call_naming_more_records_than_an_entry_lists_is_summarized() {
    let t = new_vault();
    let n = AUDIT_MAX_LISTED_RECORDS + 1;
    let ids = t
        .put_batch((0..n).map(|i| record("c", None, &i.to_string())).collect())
        .unwrap();
    let found = t
        .query(&Query::all().conversation(ConversationId::new("c")))
        .unwrap();
    assert_eq!(found.len(), n);
    let sealed_len = |seq: u64| -> i64 {
        t.sql()
            .query_row(
                "SELECT length(sealed) FROM audit WHERE seq = ?1",
                [seq as i64],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
    };
    let entries = t.audit().entries(2..).unwrap();
    let (batch, query) = (&entries[0], &entries[1]);
    assert_eq!(
        (batch.action, query.action),
        (AuditAction::PutBatch, AuditAction::Query)
    );
    for e in [batch, query] {
        assert!(e.records.is_empty());
        assert!(
            sealed_len(e.seq) < 1024,
            "entry {} is {} bytes",
            e.seq,
            sealed_len(e.seq)
        );
        let summary = e.record_summary.unwrap();
        assert_eq!(summary.count, n as u64);
        assert_eq!((summary.lowest, summary.highest), (ids[0], ids[n - 1]));
        assert!(summary.matches(&ids));
    }
    let returned: Vec<RecordId> = found.iter().map(|r| r.id()).collect();
    assert!(query.record_summary.unwrap().matches(&returned));
    let filter = query.query.as_ref().unwrap();
    assert!(filter.conversation_tag.is_some() && filter.subject_tag.is_none());
    assert!(t.audit().verify_all().unwrap().is_clean());
    t.audit().verify().unwrap();
}

/// The `-reads` directory of a vault's file, and the read logs in it.
fn read_log_files(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut dir = path.as_os_str().to_owned();
    dir.push("-reads");
    std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn damage_entries(vault: &Vault) -> usize {
    vault
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .filter(|e| e.action == AuditAction::ReadLogDamaged)
        .count()
}

/// Two handles that name the file differently (here through a symlink)
/// keep their read logs in one place: neither takes the other's live log
/// for a lost one, and every read of both reaches the chain.
#[test]
fn handles_opening_one_file_by_two_names_share_their_read_logs() {
    let t = new_vault();
    let id = t.put(record("c", None, "x")).unwrap();
    let link = t.dir.path().join("link.vault");
    std::os::unix::fs::symlink(&t.path, &link).unwrap();
    let other = Vault::open(&link, key(), &t.opts).unwrap();
    other.get(id).unwrap();
    t.get(id).unwrap();
    // A write by the first handle sweeps: the other's log is held, not lost.
    t.put(record("c", None, "y")).unwrap();
    drop(other);
    assert_eq!(damage_entries(&t), 0);
    let gets = t
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .filter(|e| e.action == AuditAction::Get)
        .count();
    assert_eq!(gets, 2);
    t.audit().verify().unwrap();
}

/// A vault created where another was (its database removed, its read
/// logs left behind) does not take those logs for its own lost reads; and
/// a directory planted where a read log would be stops nothing.
#[test]
fn read_logs_of_a_removed_vault_and_planted_names_are_not_folded() {
    let mut t = new_vault();
    let id = t.put(record("c", None, "x")).unwrap();
    t.get(id).unwrap();
    // A handle that dies: its log stays (forget keeps the file and its lock
    // until the test ends, so copy the log aside as a dead one would be).
    let logs = read_log_files(&t.path);
    assert_eq!(logs.len(), 1, "the open handle's log");
    let saved = std::fs::read(&logs[0]).unwrap();
    let name = logs[0].file_name().unwrap().to_owned();
    let path = t.path.clone();
    t.close();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let mut dir = path.as_os_str().to_owned();
    dir.push("-reads");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(std::path::Path::new(&dir).join(&name), saved).unwrap();

    let vault = Vault::create(
        &path,
        key(),
        VaultOptions::default().kdf(KdfParams::minimum()),
    )
    .unwrap();
    assert_eq!(
        damage_entries(&vault),
        0,
        "the old vault's log was not swept in"
    );
    // A directory with a read log's name: skipped by every sweep.
    std::fs::create_dir(std::path::Path::new(&dir).join(format!("{}.log", "ab".repeat(16))))
        .unwrap();
    let id = vault.put(record("c", None, "z")).unwrap();
    vault.get(id).unwrap();
    drop(vault);
    let vault = Vault::open(&path, key(), VaultOptions::default()).unwrap();
    vault.get(id).unwrap();
    assert_eq!(damage_entries(&vault), 0);
    vault.audit().verify().unwrap();
}

/// 9,000 reads from one handle, with a write in the middle: the log folds
/// itself every 1,024 entries and is retired for a new one at 4,096, and
/// every read is in the chain exactly once, in order, between the entries
/// around it.
fn reads_past_several_folds_and_a_log_rotation_are_each_chained_once(backend: Backend) {
    let t = new_vault_on(backend);
    let ids: Vec<RecordId> = t
        .put_batch(
            (0..10)
                .map(|i| record("c", None, &format!("r{i}")))
                .collect(),
        )
        .unwrap();
    let before = t.audit().entries(..).unwrap().len();
    for i in 0..9_000usize {
        t.get(ids[i % ids.len()]).unwrap();
        if i == 5_000 {
            t.put(record("c", None, "middle")).unwrap();
        }
    }
    let entries = t.audit().entries(..).unwrap();
    let after: Vec<&llmvault::AuditEntry> = entries[before..].iter().collect();
    assert_eq!(after.len(), 9_001, "9,000 reads and one put");
    let reads: Vec<RecordId> = after
        .iter()
        .filter(|e| e.action == AuditAction::Get)
        .map(|e| e.records[0])
        .collect();
    let expected: Vec<RecordId> = (0..9_000).map(|i| ids[i % ids.len()]).collect();
    assert_eq!(reads, expected, "each read once, in order");
    let put_at = after
        .iter()
        .position(|e| e.action == AuditAction::Put)
        .unwrap();
    assert_eq!(put_at, 5_001, "the put after the reads before it");
    t.audit().verify().unwrap();
}
