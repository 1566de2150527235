//! Tampering with the stored rows is detected and names the record; other
//! records stay readable. Bytes are flipped in the real file on disk, and
//! rows are changed with SQL `UPDATE`s, the same ones on SQLite and on
//! PostgreSQL (`on_sql_backends!`), which must give the same errors.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{Error, RecordId};

on_sql_backends!(
    flipping_any_byte_of_a_sealed_record_with_sql_names_that_record,
    swapping_two_records_sealed_bytes_is_detected,
    rewriting_the_expiry_or_moving_a_record_is_detected,
    a_tampered_wrapped_key_is_reported_as_such,
    a_key_row_moved_to_another_scope_while_cached_never_seals_that_scope,
);

fn sealed_of(t: &TestVault, id: RecordId) -> Vec<u8> {
    t.raw().one(
        "SELECT sealed FROM records WHERE id = ?1",
        &[V::I(id.as_u64() as i64)],
    )
}

/// As the test above, through the database: every byte of one record's
/// sealed column changed in turn by an `UPDATE`.
fn flipping_any_byte_of_a_sealed_record_with_sql_names_that_record(backend: Backend) {
    let t = new_vault_on(backend);
    let ids = t
        .put_batch(
            (0..3)
                .map(|i| record("c", Some("s"), &format!("record {i}")))
                .collect(),
        )
        .unwrap();
    let victim = ids[1];
    let original = sealed_of(&t, victim);
    let mut sql = t.raw();
    let set = "UPDATE records SET sealed = ?1 WHERE id = ?2";
    for i in 0..original.len() {
        let mut bytes = original.clone();
        bytes[i] ^= 0x04;
        sql.execute(set, &[V::B(bytes), V::I(victim.as_u64() as i64)]);
        match t.get(victim) {
            Err(Error::Tampered { id }) => assert_eq!(id, victim),
            other => panic!("byte {i}: expected Tampered, got {other:?}"),
        }
        assert!(t.get(ids[0]).is_ok() && t.get(ids[2]).is_ok());
    }
    sql.execute(set, &[V::B(original), V::I(victim.as_u64() as i64)]);
    assert_eq!(t.verify().unwrap().records, 3);
}

#[test]
fn flipping_any_byte_of_a_sealed_record_on_disk_names_that_record() {
    let mut t = new_vault();
    let ids = t
        .put_batch(
            (0..5)
                .map(|i| record("c", Some("s"), &format!("record {i}")))
                .collect(),
        )
        .unwrap();
    let victim = ids[2];
    t.close();
    let sealed = sealed_of(&t, victim);
    let original = std::fs::read(&t.path).unwrap();
    let at = find(&original, &sealed).expect("sealed bytes are stored contiguously in the file");

    for i in 0..sealed.len() {
        let mut bytes = original.clone();
        bytes[at + i] ^= 0x04;
        std::fs::write(&t.path, &bytes).unwrap();
        t.reopen();
        match t.get(victim) {
            Err(Error::Tampered { id }) => assert_eq!(id, victim),
            other => panic!("byte {i}: expected Tampered, got {other:?}"),
        }
        for &other in ids.iter().filter(|&&id| id != victim) {
            assert!(
                t.get(other).is_ok(),
                "byte {i}: record {other} should be untouched"
            );
        }
        match t.verify() {
            Err(Error::Tampered { id }) => assert_eq!(id, victim),
            other => panic!("byte {i}: verify gave {other:?}"),
        }
        t.close();
    }
    std::fs::write(&t.path, &original).unwrap();
    t.reopen();
    assert_eq!(t.verify().unwrap().records, 5);
}

fn swapping_two_records_sealed_bytes_is_detected(backend: Backend) {
    let t = new_vault_on(backend);
    let a = t.put(record("c", Some("s"), "a")).unwrap();
    let b = t.put(record("c", Some("s"), "b")).unwrap();
    let (sa, sb) = (sealed_of(&t, a), sealed_of(&t, b));
    let mut sql = t.raw();
    let set = "UPDATE records SET sealed = ?1 WHERE id = ?2";
    sql.execute(set, &[V::B(sb), V::I(a.as_u64() as i64)]);
    sql.execute(set, &[V::B(sa), V::I(b.as_u64() as i64)]);
    assert!(matches!(t.get(a), Err(Error::Tampered { id }) if id == a));
    assert!(matches!(t.get(b), Err(Error::Tampered { id }) if id == b));
}

fn rewriting_the_expiry_or_moving_a_record_is_detected(backend: Backend) {
    let t = new_vault_on(backend);
    let a = t.put(record("c1", Some("s1"), "a")).unwrap();
    let b = t.put(record("c2", Some("s2"), "b")).unwrap();
    let c = t.put(record("c3", Some("s3"), "c")).unwrap();
    let mut sql = t.raw();
    let id = |r: RecordId| V::I(r.as_u64() as i64);
    // Later expiry: retention cannot be extended by editing the column.
    sql.execute(
        "UPDATE records SET expires_at = expires_at + ?2 WHERE id = ?1",
        &[id(a), V::I(86_400_000)],
    );
    assert!(matches!(t.get(a), Err(Error::Tampered { id }) if id == a));
    // Moved into another conversation and subject.
    sql.execute(
        "UPDATE records SET conversation = (SELECT conversation FROM records WHERE id = ?2), \
         subject = (SELECT subject FROM records WHERE id = ?2) WHERE id = ?1",
        &[id(b), id(c)],
    );
    assert!(matches!(t.get(b), Err(Error::Tampered { id }) if id == b));
    // Moved to another slot (id).
    sql.execute("UPDATE records SET id = 999 WHERE id = ?1", &[id(c)]);
    let moved = RecordId::from_u64(999);
    assert!(matches!(t.get(moved), Err(Error::Tampered { id }) if id == moved));
    assert!(matches!(t.get(c), Err(Error::NotFound { .. })));
}

fn a_tampered_wrapped_key_is_reported_as_such(backend: Backend) {
    let mut t = new_vault_on(backend);
    let a = t.put(record("c", Some("s"), "a")).unwrap();
    t.close();
    let mut sql = t.raw();
    let (kid, mut wrapped) = sql.int_and_bytes("SELECT id, wrapped FROM keys", &[]);
    wrapped[20] ^= 1;
    sql.execute(
        "UPDATE keys SET wrapped = ?1 WHERE id = ?2",
        &[V::B(wrapped), V::I(kid)],
    );
    drop(sql);
    t.reopen();
    assert!(matches!(t.get(a), Err(Error::KeyTampered { key_id }) if key_id == kid as u64));
    assert!(matches!(t.verify(), Err(Error::KeyTampered { .. })));
}

/// The key id in a stored record's envelope (FORMAT.md §7: bytes 1..9).
fn envelope_key_id(t: &TestVault, id: RecordId) -> u64 {
    u64::from_be_bytes(sealed_of(t, id)[1..9].try_into().unwrap())
}

/// Issue 11 item 8: a key row whose clear scope is edited while a handle
/// runs must not make the handle seal another scope's records under the
/// key it unwrapped (and cached) for the first scope.
fn a_key_row_moved_to_another_scope_while_cached_never_seals_that_scope(backend: Backend) {
    let t = new_vault_on(backend);
    let b_first = t.put(record("cb", Some("bob"), "bob's first")).unwrap();
    let a = t.put(record("ca", Some("alice"), "alice's")).unwrap();
    let alice_key = envelope_key_id(&t, a);
    let bob_key = envelope_key_id(&t, b_first);
    assert_ne!(alice_key, bob_key);
    // Alice's key row now claims Bob's scope (his subject tag, same epoch),
    // and Bob's own key is retired, so the row is what a put for Bob finds.
    let mut sql = t.raw();
    sql.execute(
        "UPDATE keys SET subject = (SELECT subject FROM records WHERE id = ?1) WHERE id = ?2",
        &[V::I(b_first.as_u64() as i64), V::I(alice_key as i64)],
    );
    sql.execute(
        "UPDATE keys SET retired = 1 WHERE id = ?1",
        &[V::I(bob_key as i64)],
    );
    let records_before: i64 = sql.one("SELECT count(*) FROM records", &[]);

    match t.put(record("cb", Some("bob"), "bob's second")) {
        Err(Error::KeyTampered { key_id }) => assert_eq!(key_id, alice_key),
        Ok(id) => panic!(
            "bob's record {id} was sealed under key {}, alice's is {alice_key}",
            envelope_key_id(&t, id)
        ),
        Err(other) => panic!("expected KeyTampered, got {other:?}"),
    }
    let records_after: i64 = sql.one("SELECT count(*) FROM records", &[]);
    assert_eq!(records_after, records_before, "nothing stored");

    // Same for the epoch: the row moved to a later not_after.
    let day: i64 = 86_400_000;
    let c = t.put(record("cc", Some("carol"), "carol's")).unwrap();
    let carol_key = envelope_key_id(&t, c);
    sql.execute(
        "UPDATE keys SET not_after = not_after + ?1 WHERE id = ?2",
        &[V::I(10 * day), V::I(carol_key as i64)],
    );
    let later =
        record("cc", Some("carol"), "later").ttl(std::time::Duration::from_secs(40 * 86_400));
    match t.put(later) {
        Err(Error::KeyTampered { key_id }) => assert_eq!(key_id, carol_key),
        Ok(id) => panic!(
            "a record of a later epoch was sealed under key {}, carol's is {carol_key}",
            envelope_key_id(&t, id)
        ),
        Err(other) => panic!("expected KeyTampered, got {other:?}"),
    }
    // Records the keys did seal still read.
    assert!(t.get(a).is_ok());
    assert!(t.get(c).is_ok());
}

#[test]
fn a_foreign_table_or_trigger_is_refused_on_open() {
    let mut t = new_vault();
    t.close();
    t.sql()
        .execute_batch("CREATE TRIGGER evil AFTER INSERT ON records BEGIN DELETE FROM keys; END;")
        .unwrap();
    let err = llmvault::Vault::open(&t.path, key(), &t.opts).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

#[test]
fn a_file_that_is_not_a_vault_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.vault");
    std::fs::write(
        &path,
        b"this is not a database, just some text that is long enough",
    )
    .unwrap();
    let clock = std::sync::Arc::new(llmvault::clock::ManualClock::new(start()));
    let err = llmvault::Vault::open(&path, key(), opts(&clock)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}
