//! Rows a writer of the file damaged (a column of the wrong type, a
//! counter set back, a row deleted), each changed with SQL on the real
//! file: the rules above the storage seam must treat them as the vault
//! always did. A damaged row names itself where it is read; it never
//! blocks an erasure, hides a destroyed key, or lets a new key overwrite
//! an old one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{ConversationId, Error, SubjectId, Vault};

/// Runs `sql` on the closed vault, then opens it again.
fn tamper(t: &mut TestVault, sql: &str) {
    t.close();
    t.sql().execute_batch(sql).unwrap();
    t.reopen();
}

fn count(t: &TestVault, sql: &str) -> i64 {
    t.sql().query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn a_key_counter_set_back_never_overwrites_a_stored_key() {
    let mut t = new_vault();
    let alice = t.put(record("c", Some("alice"), "alice's")).unwrap();
    tamper(&mut t, "UPDATE counters SET next = 1 WHERE name = 'key'");
    // Bob's first key would take id 1, alice's.
    assert!(matches!(
        t.put(record("c2", Some("bob"), "bob's")),
        Err(Error::Storage(_))
    ));
    t.reopen();
    assert_eq!(
        t.get(alice).unwrap().prompt()[0].content(),
        "prompt: alice's"
    );
}

#[test]
fn a_missing_record_counter_fails_the_write_and_is_not_made_again() {
    let mut t = new_vault();
    t.put(record("c", None, "one")).unwrap();
    tamper(&mut t, "DELETE FROM counters WHERE name = 'record'");
    assert!(matches!(
        t.put(record("c", None, "two")),
        Err(Error::Storage(_))
    ));
    t.close();
    assert_eq!(
        count(&t, "SELECT count(*) FROM counters WHERE name = 'record'"),
        0
    );
}

#[test]
fn erasing_a_subject_with_a_damaged_record_still_removes_its_conversations_mappings() {
    let mut t = new_vault();
    let conv = ConversationId::new("via");
    t.pseudonymize(&conv, "call +1 555 0100 200").unwrap();
    t.put(record("via", Some("alice"), "hers")).unwrap();
    tamper(&mut t, "UPDATE records SET sealed = 'x'");
    assert_eq!(
        t.erase_subject(&SubjectId::new("alice")).unwrap().records,
        1
    );
    t.close();
    assert_eq!(count(&t, "SELECT count(*) FROM pii_maps"), 0);
}

#[test]
fn a_damaged_key_is_still_counted_among_the_destroyed() {
    let mut t = new_vault();
    t.put(record("c", Some("alice"), "one")).unwrap();
    t.put(record("c", Some("alice"), "two")).unwrap();
    tamper(&mut t, "UPDATE keys SET sealed = 'x'");
    let report = t.erase_subject(&SubjectId::new("alice")).unwrap();
    assert_eq!((report.records, report.keys_destroyed), (2, 1));
}

#[test]
fn a_damaged_retired_key_does_not_block_puts_in_its_scope() {
    let mut t = new_vault_with(|o| o.max_records_per_key(1));
    t.put(record("c", None, "one")).unwrap();
    t.put(record("c", None, "two")).unwrap();
    tamper(
        &mut t,
        "UPDATE keys SET wrapped = 'text' WHERE id = (SELECT min(id) FROM keys WHERE retired = 1)",
    );
    let three = t.put(record("c", None, "three")).unwrap();
    assert_eq!(t.get(three).unwrap().prompt()[0].content(), "prompt: three");
}

#[test]
fn a_key_made_neither_retired_nor_active_reads_as_retired() {
    let mut t = new_vault();
    let id = t.put(record("c", None, "one")).unwrap();
    tamper(&mut t, "UPDATE keys SET retired = 'x'");
    assert_eq!(t.get(id).unwrap().prompt()[0].content(), "prompt: one");
    // It seals no more: the next record of the scope gets a key of its own.
    t.put(record("c", None, "two")).unwrap();
    t.close();
    assert_eq!(count(&t, "SELECT count(*) FROM keys"), 2);
}

#[test]
fn a_damaged_key_of_the_scope_still_tells_an_altered_key_id() {
    let mut t = new_vault();
    let id = t.put(record("c", None, "one")).unwrap();
    // The record's key id no longer names a stored key, and the scope's
    // one key row is damaged: the scope still has a key, so the record's
    // key id was altered (not destroyed).
    tamper(&mut t, "UPDATE keys SET id = 100, wrapped = 'x'");
    assert!(matches!(t.get(id), Err(Error::Tampered { .. })));
}

#[test]
fn a_damaged_expired_record_is_left_out_of_its_conversation() {
    let mut t = new_vault();
    t.put(record("c", None, "one")).unwrap();
    t.put(record("c", None, "two")).unwrap();
    tamper(
        &mut t,
        "UPDATE records SET expires_at = 1, sealed = 'x' WHERE id = 1",
    );
    let turns = t.conversation(&ConversationId::new("c")).unwrap();
    assert_eq!(turns.len(), 1);
    assert_eq!(turns[0].prompt()[0].content(), "prompt: two");
}

#[test]
fn a_tail_mac_of_zero_bytes_does_not_block_the_vault() {
    let mut t = new_vault();
    let id = t.put(record("c", None, "one")).unwrap();
    tamper(
        &mut t,
        "UPDATE audit SET mac = zeroblob(32) WHERE seq = (SELECT max(seq) FROM audit)",
    );
    assert_eq!(t.get(id).unwrap().prompt()[0].content(), "prompt: one");
    // The chain names the entry that was changed.
    assert!(matches!(
        t.audit().verify(),
        Err(Error::AuditTampered { .. })
    ));
}

#[test]
fn a_tail_mac_of_the_wrong_length_is_refused_as_corrupt() {
    let mut t = new_vault();
    t.put(record("c", None, "one")).unwrap();
    t.close();
    t.sql()
        .execute_batch("UPDATE audit SET mac = x'00' WHERE seq = (SELECT max(seq) FROM audit)")
        .unwrap();
    assert!(matches!(
        Vault::open(&t.path, key(), &t.opts),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn the_id_floor_reads_the_id_of_a_damaged_newest_record() {
    let mut t = new_vault();
    for text in ["one", "two", "three"] {
        t.put(record("c", None, text)).unwrap();
    }
    tamper(
        &mut t,
        "DELETE FROM meta WHERE name = 'record_high_water'; \
         UPDATE counters SET next = 1 WHERE name = 'record'; \
         UPDATE records SET sealed = 'x' WHERE id = 3",
    );
    assert_eq!(t.put(record("c", None, "four")).unwrap().as_u64(), 4);
}

#[test]
fn a_damaged_note_still_holds_a_key_less_purge_to_its_time() {
    let mut t = new_vault();
    t.put(record("c", None, "one")).unwrap();
    t.close();
    let purge = |t: &TestVault| {
        Vault::open_for_maintenance(&t.path)
            .unwrap()
            .with_clock(t.clock.clone())
            .purge_expired()
    };
    t.clock.advance(std::time::Duration::from_secs(3600));
    purge(&t).unwrap();
    t.sql()
        .execute_batch("UPDATE maintenance SET records = 'x'")
        .unwrap();
    // Its count is damaged, its time is not: a clock behind it is refused.
    t.clock.set(start());
    assert!(matches!(purge(&t), Err(Error::ClockBehind { .. })));
    t.clock.advance(std::time::Duration::from_secs(7200));
    purge(&t).unwrap();
    // The keyed open folds both notes in.
    t.reopen();
    assert_eq!(
        checked_audit(&t)
            .iter()
            .filter(|e| e.action == llmvault::audit::AuditAction::MaintenancePurge)
            .count(),
        2
    );
}
