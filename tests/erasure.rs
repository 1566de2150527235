//! Erasing a subject destroys their keys and records in one transaction;
//! copies of their sealed rows taken earlier cannot be read afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{ConversationId, Error, RecordId, SubjectId};

// On every backend; the tests that copy or read rows of the file are
// plain `#[test]`s, on SQLite only.
on_each_backend!(
    erase_subject_removes_their_records_and_spares_others,
    erasing_an_unknown_subject_changes_nothing,
);

type Row = (i64, Vec<u8>, Option<Vec<u8>>, i64, Vec<u8>);

fn rows_of(t: &TestVault, ids: &[RecordId]) -> Vec<Row> {
    let conn = t.sql();
    ids.iter()
        .map(|id| {
            conn.query_row(
                "SELECT id, conversation, subject, expires_at, sealed FROM records WHERE id = ?1",
                [id.as_u64() as i64],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .unwrap()
        })
        .collect()
}

/// Alice's three records (one conversation each), Bob's two and an
/// anonymous one (both in "shared").
fn alice_bob_and_anon(t: &TestVault) -> (Vec<RecordId>, Vec<RecordId>, RecordId) {
    let alice: Vec<_> = (0..3)
        .map(|i| {
            t.put(record(&format!("a{i}"), Some("alice"), "alice data"))
                .unwrap()
        })
        .collect();
    let bob: Vec<_> = (0..2)
        .map(|i| {
            t.put(record("shared", Some("bob"), &format!("bob {i}")))
                .unwrap()
        })
        .collect();
    let anon = t.put(record("shared", None, "anonymous")).unwrap();
    (alice, bob, anon)
}

/// The part of the next test that needs no file: erasure itself.
fn erase_subject_removes_their_records_and_spares_others(backend: Backend) {
    let mut t = new_vault_on(backend);
    let (alice, bob, anon) = alice_bob_and_anon(&t);
    let report = t.erase_subject(&SubjectId::new("alice")).unwrap();
    assert_eq!(report.records, 3);
    assert!(report.keys_destroyed >= 1);
    t.reopen();
    for id in &alice {
        assert!(matches!(t.get(*id), Err(Error::NotFound { .. })));
    }
    assert!(
        t.subject_records(&SubjectId::new("alice"))
            .unwrap()
            .is_empty()
    );
    assert!(
        t.conversation(&ConversationId::new("a0"))
            .unwrap()
            .is_empty()
    );
    for id in bob.iter().chain([&anon]) {
        assert!(t.get(*id).is_ok());
    }
    assert_eq!(t.subject_records(&SubjectId::new("bob")).unwrap().len(), 2);
    assert_eq!(
        t.conversation(&ConversationId::new("shared"))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(t.verify().unwrap().records, 3);
}

#[test]
fn erase_subject_shreds_their_records_and_spares_others() {
    let mut t = new_vault();
    let (alice, bob, anon) = alice_bob_and_anon(&t);

    // A backup of alice's sealed rows, taken before the erasure.
    t.close();
    let backup = rows_of(&t, &alice);
    t.reopen();

    let report = t.erase_subject(&SubjectId::new("alice")).unwrap();
    assert_eq!(report.records, 3);
    assert!(report.keys_destroyed >= 1);
    for id in &alice {
        assert!(matches!(t.get(*id), Err(Error::NotFound { .. })));
    }
    assert!(
        t.subject_records(&SubjectId::new("alice"))
            .unwrap()
            .is_empty()
    );

    // Restore the backup rows into the database after the erasure.
    t.close();
    {
        let conn = t.sql();
        for r in &backup {
            conn.execute(
                "INSERT INTO records (id, conversation, subject, expires_at, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
                (r.0, &r.1, &r.2, r.3, &r.4),
            )
            .unwrap();
        }
    }
    t.reopen();
    for id in &alice {
        match t.get(*id) {
            Err(Error::KeyDestroyed { id: got }) => assert_eq!(got, *id),
            other => panic!("restored record {id}: expected KeyDestroyed, got {other:?}"),
        }
    }
    assert!(matches!(
        t.conversation(&ConversationId::new("a0")),
        Err(Error::KeyDestroyed { .. })
    ));

    // Everyone else is untouched.
    for id in bob.iter().chain([&anon]) {
        assert!(t.get(*id).is_ok());
    }
    assert_eq!(t.subject_records(&SubjectId::new("bob")).unwrap().len(), 2);
    assert_eq!(
        t.conversation(&ConversationId::new("shared"))
            .unwrap()
            .len(),
        3
    );
}

fn erasing_an_unknown_subject_changes_nothing(backend: Backend) {
    let t = new_vault_on(backend);
    t.put(record("c", Some("alice"), "x")).unwrap();
    let r = t.erase_subject(&SubjectId::new("nobody")).unwrap();
    assert_eq!((r.records, r.keys_destroyed), (0, 0));
    assert_eq!(t.verify().unwrap().records, 1);
}

#[test]
fn erased_records_are_gone_from_the_files() {
    let mut t = new_vault();
    let id = t.put(record("c", Some("alice"), "x")).unwrap();
    t.put(record("c", Some("bob"), "y")).unwrap();
    t.close();
    let sealed = rows_of(&t, &[id]).remove(0).4;
    t.reopen();
    t.erase_subject(&SubjectId::new("alice")).unwrap();
    for (name, bytes) in files_in(t.dir.path()) {
        assert!(!contains(&bytes, &sealed), "erased record still in {name}");
    }
}
