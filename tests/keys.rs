//! Key derivation and the key hierarchy: wrong keys, composite keys, raw
//! keys, bounds read from the header, rotation, and changing the key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::*;
use llmvault::{Error, KdfParams, KeySource, Vault};

// On every backend; the tests that read or change rows of the file are
// plain `#[test]`s, on SQLite only (and one needs no vault).
on_each_backend!(
    wrong_passphrase_is_wrong_key,
    create_refuses_an_existing_file,
    composite_key_needs_both_parts,
    raw_key_opens_and_another_raw_key_does_not,
    a_stale_handle_cannot_create_keys_after_another_changed_the_key,
    a_key_cache_of_one_still_reads_and_writes_every_subject,
);

/// With room for one unwrapped key, every other subject's key is dropped
/// and unwrapped again when needed: nothing is lost but time.
fn a_key_cache_of_one_still_reads_and_writes_every_subject(backend: Backend) {
    let mut t = new_vault_on_with(backend, |o| o.key_cache(1));
    let ids: Vec<_> = (0..20)
        .map(|i| {
            t.put(record("c", Some(&format!("s{i}")), &format!("r{i}")))
                .unwrap()
        })
        .collect();
    for round in 0..2 {
        for (i, id) in ids.iter().enumerate().rev() {
            assert_eq!(
                t.get(*id).unwrap().prompt()[0].content(),
                format!("prompt: r{i}"),
                "round {round}"
            );
        }
        t.reopen();
    }
    assert_eq!(t.verify().unwrap().records, 20);
    let none = t.opts.clone().key_cache(0);
    assert!(matches!(
        Vault::open_in(&t.storage, key(), none),
        Err(Error::InvalidInput {
            what: "key_cache",
            ..
        })
    ));
}

fn wrong_passphrase_is_wrong_key(backend: Backend) {
    let mut t = new_vault_on(backend);
    let id = t.put(record("c", None, "x")).unwrap();
    t.close();
    let err = Vault::open_in(&t.storage, KeySource::passphrase("not it"), &t.opts).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err:?}");
    t.reopen();
    assert_eq!(t.get(id).unwrap().id(), id);
}

fn create_refuses_an_existing_file(backend: Backend) {
    let t = new_vault_on(backend);
    let err = Vault::create_in(&t.storage, key(), &t.opts).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists), "{err:?}");
}

fn composite_key_needs_both_parts(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(backend, &dir.path().join("v.vault"));
    let key_file = dir.path().join("vault.key");
    let other_file = dir.path().join("other.key");
    std::fs::write(&key_file, [0xA5; 64]).unwrap();
    std::fs::write(&other_file, [0x5A; 64]).unwrap();
    let clock = std::sync::Arc::new(llmvault::clock::ManualClock::new(start()));
    let o = opts(&clock);
    let vault =
        Vault::create_in(&s, KeySource::passphrase_and_keyfile(PASS, &key_file), &o).unwrap();
    let id = vault.put(record("c", None, "composite")).unwrap();
    drop(vault);

    let wrong = [
        KeySource::passphrase(PASS),
        KeySource::passphrase_and_keyfile(PASS, &other_file),
        KeySource::passphrase_and_keyfile("not it", &key_file),
    ];
    for k in wrong {
        let err = Vault::open_in(&s, &k, &o).unwrap_err();
        assert!(matches!(err, Error::WrongKey), "{k:?}: {err:?}");
    }
    let vault = Vault::open_in(&s, KeySource::passphrase_and_keyfile(PASS, &key_file), &o).unwrap();
    assert_eq!(
        vault.get(id).unwrap().prompt()[0].content(),
        "prompt: composite"
    );
}

fn raw_key_opens_and_another_raw_key_does_not(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let s = storage(backend, &dir.path().join("v.vault"));
    let clock = std::sync::Arc::new(llmvault::clock::ManualClock::new(start()));
    let o = opts(&clock);
    let vault = Vault::create_in(&s, KeySource::raw_key([7; 32]), &o).unwrap();
    let id = vault.put(record("c", None, "raw")).unwrap();
    drop(vault);
    assert!(matches!(
        Vault::open_in(&s, KeySource::raw_key([8; 32]), &o),
        Err(Error::WrongKey)
    ));
    assert!(matches!(
        Vault::open_in(&s, KeySource::passphrase(PASS), &o),
        Err(Error::WrongKey)
    ));
    let vault = Vault::open_in(&s, KeySource::raw_key([7; 32]), &o).unwrap();
    assert!(vault.get(id).is_ok());
}

/// Offsets of the KDF fields in the header (FORMAT.md §1).
const MEMORY_AT: usize = 11;
const ITERATIONS_AT: usize = 15;
const LANES_AT: usize = 19;

fn set_header_word(t: &mut TestVault, at: usize, value: u32) {
    t.with_closed(|_| ());
    let conn = t.sql();
    let mut header: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE name = 'header'", [], |r| {
            r.get(0)
        })
        .unwrap();
    header[at..at + 4].copy_from_slice(&value.to_be_bytes());
    conn.execute("UPDATE meta SET value = ?1 WHERE name = 'header'", [header])
        .unwrap();
}

#[test]
fn kdf_bounds_in_the_header_are_checked_before_any_work() {
    let cases = [
        (MEMORY_AT, u32::MAX, "memory_kib"),
        (MEMORY_AT, 8 * 1024 - 1, "memory_kib"),
        (ITERATIONS_AT, 65, "iterations"),
        (ITERATIONS_AT, 0, "iterations"),
        (LANES_AT, 17, "parallelism"),
    ];
    for (at, value, name) in cases {
        let mut t = new_vault();
        t.with_closed(|_| ());
        set_header_word(&mut t, at, value);
        let err = Vault::open(&t.path, key(), &t.opts).unwrap_err();
        match err {
            Error::KdfParams {
                name: n, requested, ..
            } => {
                assert_eq!((n, requested), (name, u64::from(value)));
            }
            other => panic!("{name}={value}: {other:?}"),
        }
    }
}

#[test]
fn kdf_params_constructor_refuses_out_of_bounds() {
    assert!(matches!(
        KdfParams::new(4 * 1024 * 1024 + 1, 3, 1),
        Err(Error::KdfParams { .. })
    ));
    assert!(matches!(
        KdfParams::new(64 * 1024, 65, 1),
        Err(Error::KdfParams { .. })
    ));
    assert!(matches!(
        KdfParams::new(64 * 1024, 3, 17),
        Err(Error::KdfParams { .. })
    ));
    assert!(KdfParams::new(64 * 1024, 3, 1).is_ok());
}

#[test]
fn an_unknown_format_version_is_named() {
    let mut t = new_vault();
    t.with_closed(|_| ());
    let conn = t.sql();
    let mut header: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE name = 'header'", [], |r| {
            r.get(0)
        })
        .unwrap();
    header[8..10].copy_from_slice(&7u16.to_be_bytes());
    conn.execute("UPDATE meta SET value = ?1 WHERE name = 'header'", [header])
        .unwrap();
    let err = Vault::open(&t.path, key(), &t.opts).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 7,
                supported: llmvault::FORMAT_VERSION
            }
        ),
        "{err:?}"
    );
}

fn key_rows(t: &TestVault) -> Vec<(i64, i64, i64)> {
    let conn = t.sql();
    let mut stmt = conn
        .prepare("SELECT id, sealed, retired FROM keys ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn record_key_ids(t: &TestVault) -> Vec<u64> {
    let conn = t.sql();
    let mut stmt = conn
        .prepare("SELECT sealed FROM records ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|b| u64::from_be_bytes(b.unwrap()[1..9].try_into().unwrap()))
        .collect()
}

on_sql_backends!(key_uses_are_reserved_a_block_at_a_time_and_never_undercounted);

/// A key's use count (`keys.sealed`) is reserved a block at a time (a
/// sixteenth of the bound: 4 uses here) for a key the handle holds or
/// makes, and spent from memory, so most writes leave the key's row alone;
/// a key the handle must unwrap gets only the use at hand. Whatever the
/// handles do, the count never falls below the records the key sealed,
/// nor rises above the bound.
fn key_uses_are_reserved_a_block_at_a_time_and_never_undercounted(backend: Backend) {
    // (key id, its use count, retired, records it sealed), by id.
    fn keys(t: &TestVault) -> Vec<(i64, i64, i64, i64)> {
        let mut raw = t.raw();
        let n: i64 = raw.one("SELECT count(*) FROM keys", &[]);
        (0..n)
            .map(|i| {
                let id: i64 = raw.one(
                    "SELECT id FROM keys ORDER BY id LIMIT 1 OFFSET ?1",
                    &[V::I(i)],
                );
                let sealed: i64 = raw.one("SELECT sealed FROM keys WHERE id = ?1", &[V::I(id)]);
                let retired: i64 = raw.one("SELECT retired FROM keys WHERE id = ?1", &[V::I(id)]);
                let records: i64 = raw.one(
                    "SELECT count(*) FROM records WHERE substr(sealed, 2, 8) = ?1",
                    &[V::B(id.to_be_bytes().to_vec())],
                );
                (id, sealed, retired, records)
            })
            .collect()
    }
    fn put(t: &TestVault, subject: &str, n: usize) {
        let mut batch: Vec<_> = (0..n)
            .map(|i| record("c", Some(subject), &i.to_string()))
            .collect();
        if n == 1 {
            t.put(batch.remove(0)).unwrap();
        } else {
            t.put_batch(batch).unwrap();
        }
    }
    let mut t = new_vault_on_with(backend, |o| o.max_records_per_key(64));
    // Blocks of 4: ten records took three, two uses stay prepaid.
    for _ in 0..10 {
        put(&t, "s", 1);
    }
    let [(_, 12, 0, 10)] = keys(&t)[..] else {
        panic!("{:?}", keys(&t))
    };
    put(&t, "s", 2);
    let [(_, 12, 0, 12)] = keys(&t)[..] else {
        panic!("prepaid uses are spent without a write: {:?}", keys(&t))
    };
    // A reopened handle has nothing prepaid and unwraps the key: one use.
    t.reopen();
    put(&t, "s", 1);
    let [(_, 13, 0, 13)] = keys(&t)[..] else {
        panic!("{:?}", keys(&t))
    };
    // A batch reserves up to the bound, retires the key and goes on under
    // a fresh one.
    put(&t, "s", 60);
    let [(first, 64, 1, 64), (second, 12, 0, 9)] = keys(&t)[..] else {
        panic!("{:?}", keys(&t))
    };
    assert!(second > first);
    // A second handle counts into the same row.
    let other = Vault::open_in(&t.storage, key(), &t.opts).unwrap();
    other.put(record("c", Some("s"), "other")).unwrap();
    put(&t, "s", 3);
    let [_, (_, 13, 0, 13)] = keys(&t)[..] else {
        panic!("{:?}", keys(&t))
    };
    drop(other);
    for (id, sealed, _, records) in keys(&t) {
        assert!(
            records <= sealed && sealed <= 64,
            "key {id}: {sealed} counted, {records} sealed"
        );
    }

    // Keys passing through a cache of one: each write unwraps its key
    // again, and the counts stay within a block of the records.
    let t = new_vault_on_with(backend, |o| o.max_records_per_key(64).key_cache(1));
    for i in 0..20 {
        put(&t, if i % 2 == 0 { "a" } else { "b" }, 1);
    }
    for (id, sealed, _, records) in keys(&t) {
        assert_eq!(records, 10);
        assert!(
            sealed - records <= 4,
            "key {id}: {sealed} counted, {records} sealed"
        );
    }
}

#[test]
fn a_key_seals_at_most_the_configured_number_of_records() {
    let t = new_vault_with(|o| o.max_records_per_key(3));
    let mut ids = t
        .put_batch((0..10).map(|i| record("c", None, &i.to_string())).collect())
        .unwrap();
    for i in 10..14 {
        ids.push(t.put(record("c", None, &i.to_string())).unwrap());
    }
    let keys = key_rows(&t);
    // 14 records, at most 3 per key: at least 5 keys, none over budget.
    assert!(keys.len() >= 5, "{keys:?}");
    assert!(keys.iter().all(|&(_, sealed, _)| sealed <= 3), "{keys:?}");
    assert_eq!(keys.iter().map(|k| k.1).sum::<i64>(), 14);
    // Exactly one key of the scope is still active.
    assert_eq!(keys.iter().filter(|k| k.2 == 0).count(), 1, "{keys:?}");
    let per_record = record_key_ids(&t);
    for kid in per_record.iter().collect::<HashSet<_>>() {
        assert!(per_record.iter().filter(|k| *k == kid).count() <= 3);
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            t.get(*id).unwrap().prompt()[0].content(),
            format!("prompt: {i}")
        );
    }
}

#[test]
fn change_key_rewraps_without_reencrypting() {
    let mut t = new_vault();
    let ids = t
        .put_batch(vec![
            record("c", Some("s1"), "a"),
            record("c", Some("s2"), "b"),
            record("d", None, "c"),
        ])
        .unwrap();
    let sealed_before: Vec<Vec<u8>> = sealed_column(&t);
    let wrapped_before = wrapped_column(&t);

    let new_key = KeySource::passphrase("a whole new passphrase");
    t.change_key(&new_key).unwrap();
    // The same handle keeps working, including for new keys.
    assert!(t.get(ids[0]).is_ok());
    t.put(record("e", Some("s3"), "after")).unwrap();

    assert_eq!(
        &sealed_column(&t)[..3],
        &sealed_before[..],
        "records must not be re-encrypted"
    );
    let wrapped_after = wrapped_column(&t);
    for (before, after) in wrapped_before.iter().zip(&wrapped_after) {
        assert_ne!(before, after, "every data key must be rewrapped");
    }

    t.close();
    let err = Vault::open(&t.path, key(), &t.opts).unwrap_err();
    assert!(
        matches!(err, Error::WrongKey),
        "old passphrase must stop working: {err:?}"
    );
    let v = Vault::open(&t.path, &new_key, &t.opts).unwrap();
    for id in &ids {
        assert!(v.get(*id).is_ok());
    }
    assert_eq!(v.verify().unwrap().records, 4);
}

fn sealed_column(t: &TestVault) -> Vec<Vec<u8>> {
    t.blobs("SELECT sealed FROM records ORDER BY id")
}

fn wrapped_column(t: &TestVault) -> Vec<Vec<u8>> {
    t.blobs("SELECT wrapped FROM keys ORDER BY id")
}

fn a_stale_handle_cannot_create_keys_after_another_changed_the_key(backend: Backend) {
    let t = new_vault_on(backend);
    let other = Vault::open_in(&t.storage, key(), &t.opts).unwrap();
    other.change_key(KeySource::passphrase("rotated")).unwrap();
    // A new scope needs a new data key, which the stale KEK must not wrap.
    let err = t.put(record("c", Some("new-subject"), "x")).unwrap_err();
    assert!(matches!(err, Error::KeyChanged), "{err:?}");
}
