//! Forged and poison staged records (issue 11, items 1 and 3). Each test
//! plays an attacker with write access to the file (and, where said, the
//! live or an old ingest key) and changes real rows with SQL; the vault
//! must never adopt what it did not issue the capability for, never give
//! a staged record an id it used before, hold staged records to its own
//! retention rules, and never let one bad staged row block a call.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use hmac::{Hmac, KeyInit, Mac};
use llmvault::{
    AuditAction, ConversationId, Error, IngestKey, Ingestor, NewRecord, RecordId, SubjectId, Vault,
};
use rusqlite::Connection;

const DAY: Duration = Duration::from_secs(86_400);

fn meta(sql: &Connection, name: &str) -> Option<Vec<u8>> {
    sql.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
        r.get(0)
    })
    .ok()
}

fn set_meta(sql: &Connection, name: &str, value: &[u8]) {
    sql.execute(
        "INSERT INTO meta (name, value) VALUES (?1, ?2) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        rusqlite::params![name, value],
    )
    .unwrap();
}

/// Deletes record `id` and rewinds the id counter to it, and drops the
/// high-water row, so that the next ingestor put is handed `id` again.
fn free_id_for_reuse(sql: &Connection, id: RecordId) {
    let id = id.as_u64() as i64;
    sql.execute("DELETE FROM records WHERE id = ?1", [id])
        .unwrap();
    sql.execute("UPDATE counters SET next = ?1 WHERE name = 'record'", [id])
        .unwrap();
    sql.execute("DELETE FROM meta WHERE name = 'record_high_water'", [])
        .unwrap();
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an attacker without the ingest key can do: read the public key
/// from the file, make up a MAC secret, and write the key check for it
/// beside the vault's wrapped secret, so that an `Ingestor` opens with
/// the made-up key. Returns the key and the vault's own row, to put back.
fn forge_ingest_key(sql: &Connection) -> (IngestKey, Vec<u8>) {
    let public = meta(sql, "ingest_public").unwrap();
    let original = meta(sql, "ingest_mac").unwrap();
    let secret = [0x5a; 32];
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&secret).unwrap();
    mac.update(b"llmvault/v2/ingest-check");
    mac.update(&public);
    let mut forged_row = original[..60].to_vec();
    forged_row.extend_from_slice(&mac.finalize().into_bytes());
    set_meta(sql, "ingest_mac", &forged_row);
    let key = format!("llmvault-ingest-2-{}{}", hex(&public), hex(&secret));
    (key.parse().unwrap(), original)
}

/// The ids the newest `IngestSetAside` entry names.
fn last_set_aside(v: &Vault) -> Vec<RecordId> {
    v.audit()
        .entries(..)
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.action == AuditAction::IngestSetAside)
        .expect("an IngestSetAside entry")
        .records
}

fn staged_waiting(sql: &Connection) -> i64 {
    sql.query_row(
        "SELECT count(*) FROM ingest_records WHERE id > 0",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// (a) Only file access, no ingest key: a record staged with a made-up
/// key is not adopted, neither under a fresh id nor under the id of a
/// record the attacker deleted.
/// A staged row as stored: (id, key id, expires at, sealed).
type StagedCopy = (i64, i64, i64, Vec<u8>);

fn copy_staged(sql: &Connection, id: RecordId) -> StagedCopy {
    sql.query_row(
        "SELECT id, key_id, expires_at, sealed FROM ingest_records WHERE id = ?1",
        [id.as_u64() as i64],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

fn put_back_staged(sql: &Connection, row: &StagedCopy) {
    sql.execute(
        "INSERT INTO ingest_records (id, key_id, expires_at, sealed) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![row.0, row.1, row.2, row.3],
    )
    .unwrap();
}

/// The expiry of the one PII mapping, and of record `id`, as stored.
fn mapping_and_record_expiry(t: &TestVault, id: RecordId) -> (i64, i64) {
    let sql = t.sql();
    let mapping = sql
        .query_row("SELECT expires_at FROM pii_maps", [], |r| r.get(0))
        .unwrap();
    let record = sql
        .query_row(
            "SELECT expires_at FROM records WHERE id = ?1",
            [id.as_u64() as i64],
            |r| r.get(0),
        )
        .unwrap();
    (mapping, record)
}

#[test]
fn a_file_writer_without_the_ingest_key_cannot_plant_a_record() {
    let mut t = new_vault();
    drop(t.ingest_key().unwrap()); // issued, and kept from the attacker
    let x = t
        .put(record("conv", Some("alice"), "the real one"))
        .unwrap();
    t.close();

    // Under a fresh id: only the proof can stop it.
    let sql = t.sql();
    let (forged, original) = forge_ingest_key(&sql);
    let fresh = Ingestor::open_with_options(&t.path, &forged, &t.opts)
        .unwrap()
        .put(record("conv", Some("alice"), "forged"))
        .unwrap();
    assert!(fresh > x);
    set_meta(&sql, "ingest_mac", &original);
    t.reopen();
    assert!(matches!(t.get(fresh), Err(Error::NotFound { .. })));
    assert_eq!(last_set_aside(&t), vec![fresh]);
    assert_eq!(
        t.get(x).unwrap().prompt()[0].content(),
        "prompt: the real one"
    );

    // Under the deleted record's id (counter rewound, mark row dropped).
    t.close();
    let (forged, original) = forge_ingest_key(&sql);
    free_id_for_reuse(&sql, x);
    let planted = Ingestor::open_with_options(&t.path, &forged, &t.opts)
        .unwrap()
        .put(record("conv", Some("alice"), "forged in place"))
        .unwrap();
    assert_eq!(planted, x, "the attacker got the id back");
    set_meta(&sql, "ingest_mac", &original);
    t.reopen();
    assert!(matches!(t.get(x), Err(Error::NotFound { .. })));
    assert!(
        t.conversation(&ConversationId::new("conv"))
            .unwrap()
            .is_empty()
    );
    let report = t.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (0, 2));
    assert_eq!(last_set_aside(&t), vec![x]);
    assert_eq!(staged_waiting(&sql), 0, "set aside once, not retried");
}

/// (b) Even the holder of the live ingest key, with file access, cannot
/// give a staged record the id of a record the vault stored before:
/// neither a deleted one (counter rewound), nor an erased one (a copy of
/// its staged row put back).
#[test]
fn the_live_ingest_key_cannot_reuse_a_stored_or_deleted_id() {
    let mut t = new_vault();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let bob = ingestor.put(record("c-bob", Some("bob"), "bob's")).unwrap();
    let copy = copy_staged(&t.sql(), bob);
    assert_eq!(t.get(bob).unwrap().prompt()[0].content(), "prompt: bob's");
    assert_eq!(t.erase_subject(&SubjectId::new("bob")).unwrap().records, 1);

    // The copy of the erased record's staged row, put back.
    t.close();
    put_back_staged(&t.sql(), &copy);
    t.reopen();
    assert!(
        matches!(t.get(bob), Err(Error::NotFound { .. })),
        "an erased record came back"
    );
    assert_eq!(t.verify().unwrap().set_aside, 1);

    // A record the vault stored, deleted, its id handed out again.
    let x = t
        .put(record("conv", Some("alice"), "the real one"))
        .unwrap();
    t.close();
    free_id_for_reuse(&t.sql(), x);
    let again = ingestor
        .put(record("conv", Some("alice"), "in its place"))
        .unwrap();
    assert_eq!(again, x, "the counter handed the id out again");
    t.reopen();
    assert!(matches!(t.get(x), Err(Error::NotFound { .. })));
    assert_eq!(t.verify().unwrap().set_aside, 2);
    assert_eq!(last_set_aside(&t), vec![x]);

    // The key still works for new ids.
    let next = ingestor.put(record("conv", Some("alice"), "new")).unwrap();
    assert!(next > x);
    assert_eq!(t.get(next).unwrap().prompt()[0].content(), "prompt: new");
}

/// (c) After `rotate_ingest_key`, records staged under the old key are
/// refused and reported, however they got into the file; the new key
/// works, and what was staged before the rotation was taken in by it.
#[test]
fn after_rotation_the_old_key_is_refused_and_the_new_one_works() {
    let mut t = new_vault();
    let old = t.ingest_key().unwrap();
    let old_ingestor = Ingestor::open_with_options(&t.path, &old, &t.opts).unwrap();
    let before = old_ingestor.put(record("c", None, "before")).unwrap();
    let old_rows = {
        let sql = t.sql();
        (
            meta(&sql, "ingest_public").unwrap(),
            meta(&sql, "ingest_mac").unwrap(),
        )
    };

    let new = t.rotate_ingest_key().unwrap();
    assert_ne!(*new.to_text(), *old.to_text());
    assert_eq!(*t.ingest_key().unwrap().to_text(), *new.to_text());
    let entries = t.audit().entries(..).unwrap();
    let rotated = entries
        .iter()
        .position(|e| e.action == AuditAction::IngestKeyRotated)
        .expect("the rotation is audited");
    let taken = entries
        .iter()
        .position(|e| e.action == AuditAction::Ingest)
        .unwrap();
    assert!(taken < rotated, "staged records are taken in first");
    assert_eq!(entries[taken].records, vec![before]);

    // An ingestor still holding the old key is stopped at its next write
    // and at open.
    assert!(matches!(
        old_ingestor.put(record("c", None, "after")),
        Err(Error::KeyChanged)
    ));
    assert!(matches!(
        Ingestor::open_with_options(&t.path, &old, &t.opts),
        Err(Error::WrongKey)
    ));

    // The old key's holder, with file access, puts the old rows back to
    // stage anyway, then restores the new ones.
    t.close();
    let sql = t.sql();
    let new_rows = (
        meta(&sql, "ingest_public").unwrap(),
        meta(&sql, "ingest_mac").unwrap(),
    );
    set_meta(&sql, "ingest_public", &old_rows.0);
    set_meta(&sql, "ingest_mac", &old_rows.1);
    let sneaked = Ingestor::open_with_options(&t.path, &old, &t.opts)
        .unwrap()
        .put(record("c", None, "after rotation"))
        .unwrap();
    set_meta(&sql, "ingest_public", &new_rows.0);
    set_meta(&sql, "ingest_mac", &new_rows.1);
    drop(sql);

    let ingestor = Ingestor::open_with_options(&t.path, &new, &t.opts).unwrap();
    let fine = ingestor.put(record("c", None, "new key")).unwrap();
    t.reopen();
    assert!(matches!(t.get(sneaked), Err(Error::NotFound { .. })));
    assert_eq!(last_set_aside(&t), vec![sneaked]);
    assert_eq!(
        t.get(fine).unwrap().prompt()[0].content(),
        "prompt: new key"
    );
    assert_eq!(
        t.get(before).unwrap().prompt()[0].content(),
        "prompt: before"
    );
    let report = t.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (2, 1));
}

/// (d) Take-in applies the vault's TTL ceiling, whatever the ingestor's
/// own options allow; so a staged masked record cannot keep its
/// conversation's PII mapping alive past the ceiling. Within it, a masked
/// record keeps the mapping alive as long as itself, as `put` does.
#[test]
fn take_in_applies_the_ttl_ceiling_and_masked_records_keep_their_mapping() {
    let mut t = new_vault_with(|o| o.max_ttl(90 * DAY));
    let conv = ConversationId::new("pii-conv");
    let masked = t.pseudonymize(&conv, "mail alice@example.com").unwrap();
    let key = t.ingest_key().unwrap();
    // The ingestor's own options set no ceiling.
    let ingestor = Ingestor::open_with_options(&t.path, &key, opts(&t.clock)).unwrap();
    let staged = |ttl: Duration| {
        ingestor
            .put(
                NewRecord::new(conv.clone())
                    .prompt([llmvault::Message::user(masked.text.clone())])
                    .masked(true)
                    .training_consent(true)
                    .ttl(ttl),
            )
            .unwrap()
    };
    let forever = staged(3650 * DAY);
    let sixty = staged(60 * DAY);
    t.reopen();

    assert!(matches!(t.get(forever), Err(Error::NotFound { .. })));
    assert_eq!(last_set_aside(&t), vec![forever]);
    assert_eq!(t.verify().unwrap().set_aside, 1);
    let (mapping_expiry, record_expiry) = mapping_and_record_expiry(&t, sixty);
    assert_eq!(
        mapping_expiry, record_expiry,
        "raised to the record's expiry"
    );

    // Past the mapping's own 30 days, and a purge, the masked record
    // still reads with the real value.
    t.clock.advance(45 * DAY);
    t.purge_expired().unwrap();
    assert_eq!(
        t.get(sixty).unwrap().prompt()[0].content(),
        "mail alice@example.com"
    );
    // The set-aside record is gone with that purge too: kept no longer
    // than the default TTL, whatever expiry it claimed.
    assert_eq!(t.verify().unwrap().set_aside, 0);
}

/// (e) Poison staged rows (one under a live record's id, corrupted bytes,
/// values of the wrong type, a negative key id) block neither open, get,
/// purge nor erasure; verify counts them, records staged later are taken
/// in, and a purge (a key-less one too) removes them once expired.
#[test]
fn poison_staged_rows_block_nothing_and_are_purged_when_expired() {
    let mut t = new_vault();
    let alice = t.put(record("c-a", Some("alice"), "alice's")).unwrap();
    let bob = t.put(record("c-b", Some("bob"), "bob's")).unwrap();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    t.close();
    let sql = t.sql();
    let stage = |text: &str| ingestor.put(record("c-x", Some("carol"), text)).unwrap();
    let bytes = stage("bytes");
    let types = stage("types");
    let key_id = stage("key id");
    let id = |r: RecordId| r.as_u64() as i64;
    sql.execute(
        "UPDATE ingest_records SET sealed = randomblob(length(sealed)) WHERE id = ?1",
        [id(bytes)],
    )
    .unwrap();
    sql.execute(
        "UPDATE ingest_records SET expires_at = 'never', sealed = 'text' WHERE id = ?1",
        [id(types)],
    )
    .unwrap();
    sql.execute(
        "UPDATE ingest_records SET key_id = -7 WHERE id = ?1",
        [id(key_id)],
    )
    .unwrap();
    // A genuine staged record under the id of a live one.
    sql.execute(
        "UPDATE counters SET next = ?1 WHERE name = 'record'",
        [id(alice)],
    )
    .unwrap();
    sql.execute("DELETE FROM meta WHERE name = 'record_high_water'", [])
        .unwrap();
    let collides = stage("collides");
    assert_eq!(collides, alice);

    t.reopen();
    assert_eq!(
        t.get(alice).unwrap().prompt()[0].content(),
        "prompt: alice's"
    );
    assert_eq!(t.get(bob).unwrap().prompt()[0].content(), "prompt: bob's");
    assert_eq!(t.purge_expired().unwrap().records, 0);
    assert_eq!(t.erase_subject(&SubjectId::new("bob")).unwrap().records, 1);
    let report = t.verify().unwrap();
    assert_eq!((report.records, report.set_aside), (1, 4));
    assert_eq!(staged_waiting(&sql), 0);

    // Ingest goes on: a record staged now is taken in.
    let later = stage("later");
    assert_eq!(t.get(later).unwrap().prompt()[0].content(), "prompt: later");

    // Set-aside rows expire by at most the default TTL from when they were
    // set aside, whatever their own expiry said; a key-less purge deletes
    // them.
    t.close();
    t.clock.advance(31 * DAY);
    let job = Vault::open_for_maintenance(&t.path)
        .unwrap()
        .with_clock(t.clock.clone());
    job.purge_expired().unwrap();
    drop(job);
    let left: i64 = sql
        .query_row("SELECT count(*) FROM ingest_records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    t.reopen();
    assert_eq!(t.verify().unwrap().set_aside, 0);
}

/// The high-water mark never refuses a genuine staged record: a `put`
/// right after staging (no read in between) takes the staged record in
/// before it allocates, so its own ids, and the mark, stay above it.
#[test]
fn writes_between_staging_and_take_in_refuse_nothing_genuine() {
    let mut t = new_vault();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let staged = ingestor.put(record("c", None, "staged")).unwrap();
    let own = t.put(record("c", None, "own")).unwrap();
    assert!(own > staged);
    let batch = ingestor
        .put_batch(vec![record("c", None, "b1"), record("c", None, "b2")])
        .unwrap();
    let more = t
        .put_batch(vec![record("c", None, "o1"), record("c", None, "o2")])
        .unwrap();
    let pseudo = t
        .pseudonymize(&ConversationId::new("c"), "no pii here")
        .unwrap();
    assert!(pseudo.new_mappings.is_empty());
    let last = ingestor.put(record("c", None, "last")).unwrap();
    assert_eq!(t.purge_expired().unwrap().records, 0);
    t.reopen();
    let ids: Vec<RecordId> = t
        .conversation(&ConversationId::new("c"))
        .unwrap()
        .iter()
        .map(|r| r.id())
        .collect();
    let mut expected = vec![staged, own, batch[0], batch[1], more[0], more[1], last];
    expected.sort();
    let mut got = ids;
    got.sort();
    assert_eq!(got, expected);
    assert_eq!(t.verify().unwrap().set_aside, 0);
}

/// Damaged ingest rows block nothing either: what is staged is set aside,
/// `ingest_key` names the damage, and `rotate_ingest_key` replaces them.
#[test]
fn damaged_ingest_material_is_reported_and_replaced_by_rotation() {
    let mut t = new_vault();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let staged = ingestor.put(record("c", None, "staged")).unwrap();
    t.close();
    let sql = t.sql();
    let mut row = meta(&sql, "ingest_mac").unwrap();
    row[20] ^= 1; // inside the wrapped MAC secret
    set_meta(&sql, "ingest_mac", &row);
    t.reopen();
    assert!(matches!(t.get(staged), Err(Error::NotFound { .. })));
    assert!(matches!(
        t.ingest_key(),
        Err(Error::KeyTampered { key_id: 0 })
    ));
    let new = t.rotate_ingest_key().unwrap();
    let id = Ingestor::open_with_options(&t.path, &new, &t.opts)
        .unwrap()
        .put(record("c", None, "after"))
        .unwrap();
    assert_eq!(t.get(id).unwrap().prompt()[0].content(), "prompt: after");
    assert_eq!(t.verify().unwrap().set_aside, 1);
}

/// A damaged data key of the vault's own, in the scope a staged record
/// would be sealed under, does not block the calls that take records in:
/// the record is set aside, and `verify` names the key.
#[test]
fn a_damaged_data_key_does_not_block_take_in() {
    let mut t = new_vault();
    let own = t.put(record("c", None, "sealed under the key")).unwrap();
    let alice = t.put(record("c-a", Some("alice"), "alice's")).unwrap();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let staged = ingestor.put(record("c", None, "same scope")).unwrap();
    t.close();
    let key_id: i64 = t
        .sql()
        .query_row(
            "SELECT id FROM keys WHERE subject IS NULL AND retired = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    t.sql()
        .execute(
            "UPDATE keys SET wrapped = randomblob(60) WHERE id = ?1",
            [key_id],
        )
        .unwrap();
    t.reopen();
    assert!(matches!(t.get(staged), Err(Error::NotFound { .. })));
    assert!(matches!(t.get(own), Err(Error::KeyTampered { .. })));
    assert_eq!(
        t.get(alice).unwrap().prompt()[0].content(),
        "prompt: alice's"
    );
    assert_eq!(
        t.erase_subject(&SubjectId::new("alice")).unwrap().records,
        1
    );
    t.purge_expired().unwrap();
    assert_eq!(last_set_aside(&t), vec![staged]);
    assert!(matches!(t.verify(), Err(Error::KeyTampered { key_id: k }) if k as i64 == key_id));
}

/// SQLite ranks text and blobs above every integer, so `max(next, floor)`
/// over a counter turned into text was the text, which then added as 0:
/// the vault handed out id 0 and up again. Now a non-integer counter
/// counts as 0 and the high-water mark still sets the floor.
#[test]
fn a_counter_turned_into_text_never_hands_out_a_used_id() {
    let mut t = new_vault();
    let first = t.put(record("c", Some("s"), "one")).unwrap();
    let second = t.put(record("c", Some("s"), "two")).unwrap();
    t.close();
    t.sql()
        .execute("UPDATE counters SET next = 'abc' WHERE name = 'record'", [])
        .unwrap();
    t.reopen();
    let third = t.put(record("c", Some("s"), "three")).unwrap();
    assert!(
        third.as_u64() > second.as_u64(),
        "{third:?} after {second:?}"
    );
    assert_eq!(t.get(first).unwrap().prompt()[0].content(), "prompt: one");
    assert_eq!(t.get(third).unwrap().prompt()[0].content(), "prompt: three");
}

/// A genuine staged record whose ingest key row was damaged (a column of
/// the wrong type): the record is set aside; open, reads and writes go on.
#[test]
fn a_damaged_row_a_staged_record_leads_to_blocks_nothing() {
    let mut t = new_vault();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let staged = ingestor.put(record("c", Some("s"), "staged")).unwrap();
    drop(ingestor);
    t.close();
    t.sql()
        .execute("UPDATE ingest_keys SET not_after = 'soon'", [])
        .unwrap();
    t.reopen();
    assert!(matches!(t.get(staged), Err(Error::NotFound { .. })));
    assert_eq!(last_set_aside(&t), [staged]);
    let stored = t.put(record("c", Some("s"), "stored")).unwrap();
    assert_eq!(
        t.get(stored).unwrap().prompt()[0].content(),
        "prompt: stored"
    );
    assert_eq!(t.verify().unwrap().set_aside, 1);
}

/// An ingest-key holder who rewinds the counter to the top of the id space
/// cannot have a record adopted there and so leave the vault no ids: a
/// staged id far above the high-water mark is set aside.
#[test]
fn a_staged_id_far_above_the_mark_is_set_aside() {
    let mut t = new_vault();
    let before = t.put(record("c", Some("s"), "before")).unwrap();
    let key = t.ingest_key().unwrap();
    t.close();
    t.sql()
        .execute(
            "UPDATE counters SET next = 9223372036854775000 WHERE name = 'record'",
            [],
        )
        .unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let far = ingestor.put(record("c", Some("s"), "far")).unwrap();
    assert!(far.as_u64() > 1 << 62, "{far:?}");
    drop(ingestor);
    t.reopen();
    assert!(matches!(t.get(far), Err(Error::NotFound { .. })));
    assert_eq!(last_set_aside(&t), [far]);
    // The vault still allocates ids (above its own mark).
    let after = t.put(record("c", Some("s"), "after")).unwrap();
    assert!(after.as_u64() > before.as_u64());
    assert_eq!(t.get(after).unwrap().prompt()[0].content(), "prompt: after");
}

/// A `put` whose transaction first takes in a masked staged record (which
/// re-seals the conversation's mapping under a key made in that same
/// transaction) and then extends the mapping again for its own masked
/// record: the second extension must find the key the first one made.
#[test]
fn a_put_extends_a_mapping_its_own_take_in_just_resealed() {
    let t = new_vault();
    let conv = ConversationId::new("pii-conv");
    let masked = t.pseudonymize(&conv, "mail alice@example.com").unwrap();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let turn = |ttl: Duration| {
        NewRecord::new(conv.clone())
            .prompt([llmvault::Message::user(masked.text.clone())])
            .masked(true)
            .ttl(ttl)
    };
    let staged = ingestor.put(turn(60 * DAY)).unwrap();
    let stored = t.put(turn(80 * DAY)).unwrap();
    for id in [staged, stored] {
        assert_eq!(
            t.get(id).unwrap().prompt()[0].content(),
            "mail alice@example.com"
        );
    }
    let (mapping_expiry, record_expiry) = mapping_and_record_expiry(&t, stored);
    assert_eq!(mapping_expiry, record_expiry);
}

/// Putting back an erased record's staged row together with the
/// high-water row from before its take-in: the loose row says the id is
/// free, but the audit chain's `Ingest` entry names it, so it stays out.
#[test]
fn an_old_staged_row_and_an_old_high_water_row_bring_nothing_back() {
    let mut t = new_vault();
    t.put(record("c", Some("alice"), "before")).unwrap();
    let key = t.ingest_key().unwrap();
    let ingestor = Ingestor::open_with_options(&t.path, &key, &t.opts).unwrap();
    let bob = ingestor.put(record("c-bob", Some("bob"), "bob's")).unwrap();
    let sql = t.sql();
    let staged = copy_staged(&sql, bob);
    let old_mark = meta(&sql, "record_high_water").unwrap();
    drop(sql);
    assert_eq!(t.get(bob).unwrap().prompt()[0].content(), "prompt: bob's");
    assert_eq!(t.erase_subject(&SubjectId::new("bob")).unwrap().records, 1);
    drop(ingestor);
    t.close();
    let sql = t.sql();
    put_back_staged(&sql, &staged);
    set_meta(&sql, "record_high_water", &old_mark);
    // The cache of how far take-in read the log, rolled back too.
    sql.execute(
        "DELETE FROM meta WHERE name = 'record_high_water_audited'",
        [],
    )
    .unwrap();
    drop(sql);
    t.reopen();
    assert!(matches!(t.get(bob), Err(Error::NotFound { .. })));
    assert!(
        t.subject_records(&SubjectId::new("bob"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(last_set_aside(&t), [bob]);
}
