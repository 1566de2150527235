//! Recovery shares: any k of n open the vault; fewer, forged or revoked
//! ones do not; a change of passphrase keeps them working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{AuditAction, Error, KeySource, RecoveryShare, Vault};

// On every backend; the tests that copy or change the file are plain
// `#[test]`s, on SQLite only.
on_each_backend!(
    any_k_of_n_shares_open_the_vault_and_fewer_do_not,
    shares_survive_a_change_of_passphrase_and_die_on_revoke,
    new_shares_revoke_old_ones_and_bad_thresholds_are_refused,
    a_handle_opened_with_shares_changes_the_key_before_it_can_revoke,
    revoking_keeps_the_passphrase_and_another_handle_sees_the_change,
);

fn parse(texts: &[String], pick: &[usize]) -> Vec<RecoveryShare> {
    pick.iter()
        .map(|&i| RecoveryShare::from_text(&texts[i]).unwrap())
        .collect()
}

fn any_k_of_n_shares_open_the_vault_and_fewer_do_not(backend: Backend) {
    let mut t = new_vault_on(backend);
    let id = t.put(record("c", Some("s"), "secret stuff")).unwrap();
    let texts: Vec<String> = t
        .recovery_shares(3, 5)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    assert_eq!(texts.len(), 5);
    t.close();

    for pick in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
        let v = Vault::open_with_shares_in(&t.storage, &parse(&texts, &pick), &t.opts).unwrap();
        assert_eq!(
            v.get(id).unwrap().prompt()[0].content(),
            "prompt: secret stuff"
        );
    }
    let err = Vault::open_with_shares_in(&t.storage, &parse(&texts, &[0, 1]), &t.opts).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "two of three: {err:?}");

    // A forged share with a valid checksum (from another vault) does not combine.
    let other = new_vault_on(backend);
    let forged = other.recovery_shares(3, 5).unwrap().remove(0);
    let mut mixed = parse(&texts, &[0, 1]);
    mixed.push(forged);
    let err = Vault::open_with_shares_in(&t.storage, &mixed, &t.opts).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "forged share: {err:?}");

    t.reopen();
    let actions: Vec<_> = t
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&AuditAction::RecoverySharesIssued));
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == AuditAction::RecoveryOpen)
            .count(),
        3
    );
    let failed = t
        .audit()
        .entries(..)
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::FailedOpens);
    assert_eq!(failed.map(|e| e.count), Some(2));
}

fn shares_survive_a_change_of_passphrase_and_die_on_revoke(backend: Backend) {
    let mut t = new_vault_on(backend);
    let shares: Vec<String> = t
        .recovery_shares(2, 3)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    t.change_key(KeySource::passphrase("brand new")).unwrap();
    t.close();
    let v = Vault::open_with_shares_in(&t.storage, &parse(&shares, &[0, 2]), &t.opts).unwrap();
    // The recovered handle is a full one: it can set a new passphrase.
    v.change_key(KeySource::passphrase(PASS)).unwrap();
    drop(v);
    t.reopen();
    t.revoke_recovery().unwrap();
    t.close();
    let err =
        Vault::open_with_shares_in(&t.storage, &parse(&shares, &[0, 1, 2]), &t.opts).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err:?}");
}

fn new_shares_revoke_old_ones_and_bad_thresholds_are_refused(backend: Backend) {
    let mut t = new_vault_on(backend);
    let old: Vec<String> = t
        .recovery_shares(1, 2)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    let new: Vec<String> = t
        .recovery_shares(1, 2)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    assert!(matches!(
        t.recovery_shares(3, 2),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        t.recovery_shares(0, 2),
        Err(Error::InvalidInput { .. })
    ));
    t.close();
    assert!(Vault::open_with_shares_in(&t.storage, &parse(&old, &[0]), &t.opts).is_err());
    assert!(Vault::open_with_shares_in(&t.storage, &parse(&new, &[1]), &t.opts).is_ok());
}

fn texts(shares: Vec<RecoveryShare>) -> Vec<String> {
    shares.iter().map(|s| s.to_text().to_string()).collect()
}

fn meta_row(path: &std::path::Path, name: &str) -> Vec<u8> {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .unwrap()
}

fn put_meta_row(path: &std::path::Path, name: &str, value: &[u8]) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES (?1, ?2)",
            rusqlite::params![name, value],
        )
        .unwrap();
}

/// Issue 11 item 4, what an attacker with `shares` (2 of them) and a copy
/// of the file from when they were valid can do with the current file:
/// nothing. `ids` are records stored before and after the revocation.
fn old_shares_and_old_rows_open_nothing(
    t: &mut TestVault,
    old_copy: &std::path::Path,
    shares: &[String],
    ids: &[llmvault::RecordId],
) {
    t.close();
    // The old recovery row spliced into the current file: the KEK it
    // wraps is not the current one, which the header's key check tells.
    put_meta_row(&t.path, "recovery", &meta_row(old_copy, "recovery"));
    let err =
        Vault::open_with_shares_and_options(&t.path, &parse(shares, &[0, 2]), &t.opts).unwrap_err();
    assert!(
        matches!(err, Error::WrongKey),
        "old row and shares: {err:?}"
    );

    // Skip the key check too: with the old header and wrapped tag key put
    // back, the old shares open to the old KEK, and no data key of the
    // current file unwraps under it.
    put_meta_row(&t.path, "header", &meta_row(old_copy, "header"));
    put_meta_row(&t.path, "tag_key", &meta_row(old_copy, "tag_key"));
    let v = Vault::open_with_shares_and_options(&t.path, &parse(shares, &[0, 2]), &t.opts)
        .expect("the old KEK matches the old header");
    for id in ids {
        match v.get(*id) {
            Err(Error::KeyTampered { .. }) => {}
            other => panic!("record {id} under the old KEK: {other:?}"),
        }
    }
    assert!(matches!(v.verify(), Err(Error::KeyTampered { .. })));
}

#[test]
fn revoked_shares_with_an_old_copy_of_their_row_unwrap_no_current_key() {
    let mut t = new_vault();
    let before = t.put(record("c", Some("s"), "before")).unwrap();
    let shares = texts(t.recovery_shares(2, 3).unwrap());
    t.close();
    let old_copy = t.dir.path().join("old-copy.vault");
    std::fs::copy(&t.path, &old_copy).unwrap();
    t.reopen();
    let key_rows_before = wrapped_keys(&t);
    t.revoke_recovery().unwrap();
    assert!(
        wrapped_keys(&t)
            .iter()
            .all(|k| !key_rows_before.contains(k)),
        "every data key is rewrapped"
    );
    let after = t.put(record("c", Some("s"), "after")).unwrap();
    assert_ne!(key_id_of(&t, before), key_id_of(&t, after), "keys retired");
    old_shares_and_old_rows_open_nothing(&mut t, &old_copy, &shares, &[before, after]);
}

#[test]
fn reissued_shares_make_old_shares_and_rows_unwrap_no_current_key() {
    let mut t = new_vault();
    let before = t.put(record("c", Some("s"), "before")).unwrap();
    let old = texts(t.recovery_shares(2, 3).unwrap());
    t.close();
    let old_copy = t.dir.path().join("old-copy.vault");
    std::fs::copy(&t.path, &old_copy).unwrap();
    t.reopen();
    let new = texts(t.recovery_shares(2, 3).unwrap());
    let after = t.put(record("c", Some("s"), "after")).unwrap();
    t.close();
    let v = Vault::open_with_shares_and_options(&t.path, &parse(&new, &[1, 2]), &t.opts).unwrap();
    assert_eq!(
        v.get(before).unwrap().prompt()[0].content(),
        "prompt: before"
    );
    drop(v);
    old_shares_and_old_rows_open_nothing(&mut t, &old_copy, &old, &[before, after]);
}

fn a_handle_opened_with_shares_changes_the_key_before_it_can_revoke(backend: Backend) {
    let mut t = new_vault_on(backend);
    let id = t.put(record("c", Some("s"), "x")).unwrap();
    let shares = texts(t.recovery_shares(2, 3).unwrap());
    t.close();
    let v = Vault::open_with_shares_in(&t.storage, &parse(&shares, &[0, 1]), &t.opts).unwrap();
    // It holds the KEK but not the key the header wraps it under: a new
    // KEK written now would lock out the passphrase.
    assert!(matches!(v.revoke_recovery(), Err(Error::KeySourceNeeded)));
    assert!(matches!(
        v.recovery_shares(2, 3),
        Err(Error::KeySourceNeeded)
    ));
    assert!(v.get(id).is_ok(), "the handle keeps working");
    // Break glass as intended: set a new passphrase, then revoke.
    v.change_key(KeySource::passphrase("after the incident"))
        .unwrap();
    v.revoke_recovery().unwrap();
    let fresh = texts(v.recovery_shares(1, 1).unwrap());
    drop(v);
    let err =
        Vault::open_with_shares_in(&t.storage, &parse(&shares, &[0, 1]), &t.opts).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err:?}");
    let v = Vault::open_in(
        &t.storage,
        KeySource::passphrase("after the incident"),
        &t.opts,
    )
    .unwrap();
    assert!(v.get(id).is_ok());
    drop(v);
    let v = Vault::open_with_shares_in(&t.storage, &parse(&fresh, &[0]), &t.opts).unwrap();
    assert!(v.get(id).is_ok());
    let actions: Vec<_> = v
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .map(|e| (e.action, e.outcome != llmvault::AuditOutcome::Ok))
        .collect();
    assert!(
        actions.contains(&(AuditAction::RecoveryRevoked, true)),
        "failed revoke recorded"
    );
    assert!(actions.contains(&(AuditAction::RecoveryRevoked, false)));
}

fn revoking_keeps_the_passphrase_and_another_handle_sees_the_change(backend: Backend) {
    let t = new_vault_on(backend);
    let id = t.put(record("c", Some("s"), "x")).unwrap();
    let other = Vault::open_in(&t.storage, key(), &t.opts).unwrap();
    t.recovery_shares(1, 1).unwrap();
    t.revoke_recovery().unwrap();
    // The stale handle's KEK is gone from the file: it may not write keys
    // or material under it.
    assert!(matches!(
        other.recovery_shares(1, 1),
        Err(Error::KeyChanged)
    ));
    assert!(matches!(
        other.put(record("c", Some("new-subject"), "y")),
        Err(Error::KeyChanged)
    ));
    drop(other);
    let v = Vault::open_in(&t.storage, key(), &t.opts).unwrap();
    assert!(v.get(id).is_ok());
    assert_eq!(v.verify().unwrap().records, 1);
}

fn wrapped_keys(t: &TestVault) -> Vec<Vec<u8>> {
    t.blobs("SELECT wrapped FROM keys ORDER BY id")
}

fn key_id_of(t: &TestVault, id: llmvault::RecordId) -> u64 {
    let sealed: Vec<u8> = t
        .sql()
        .query_row(
            "SELECT sealed FROM records WHERE id = ?1",
            [id.as_u64() as i64],
            |r| r.get(0),
        )
        .unwrap();
    u64::from_be_bytes(sealed[1..9].try_into().unwrap())
}

/// Revoking rewrites the rows that wrap the KEK; the old versions of
/// their pages must not stay behind in the WAL (or the file) for a copy
/// of the disk to pick up.
#[test]
fn revoking_leaves_no_copy_of_the_old_recovery_row_in_the_files() {
    let t = new_vault();
    t.put(record("c", Some("s"), "x")).unwrap();
    t.recovery_shares(2, 3).unwrap();
    let old_row = meta_row(&t.path, "recovery");
    let wal = t.path.with_extension("vault-wal");
    let in_files = |row: &[u8]| {
        [&t.path, &wal]
            .iter()
            .any(|p| std::fs::read(p).is_ok_and(|bytes| contains(&bytes, row)))
    };
    assert!(in_files(&old_row), "the row is on disk before");
    t.revoke_recovery().unwrap();
    assert!(!in_files(&old_row), "a copy of the revoked row is on disk");
}
