//! Keys apart from the records (`Storage::keys_in`, DESIGN.md "Keys
//! apart"): erasure and expiry reach backups of the record store, on real
//! files; and a record store is only ever opened with its own keys store.
//! (Every suite that runs `on_each_backend!` also runs with the keys
//! apart, on SQLite files and in memory.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{PASS, contains, opts, start};
use llmvault::clock::ManualClock;
use llmvault::{
    ConversationId, Error, Ingestor, KeySource, Maintenance, Message, NewRecord, RecordId, Storage,
    SubjectId, Vault,
};

struct Split {
    _dir: tempfile::TempDir,
    records: PathBuf,
    keys: PathBuf,
    clock: Arc<ManualClock>,
}

impl Split {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            records: dir.path().join("records.vault"),
            keys: dir.path().join("keys.vault"),
            _dir: dir,
            clock: Arc::new(ManualClock::new(start())),
        }
    }

    fn storage(&self) -> Storage {
        Storage::sqlite(&self.records).keys_in(Storage::sqlite(&self.keys))
    }

    fn create(&self) -> Vault {
        Vault::create_in(
            self.storage(),
            KeySource::passphrase(PASS),
            opts(&self.clock),
        )
        .unwrap()
    }

    fn open(&self) -> Vault {
        Vault::open_in(
            self.storage(),
            KeySource::passphrase(PASS),
            opts(&self.clock),
        )
        .unwrap()
    }
}

/// The files a SQLite store is made of (its read logs included), by name.
fn store_files(path: &Path) -> Vec<PathBuf> {
    let dir = path.parent().unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with(&stem) {
            files.push(p);
        }
    }
    files
}

/// Copies a closed store's files into `to` (the backup).
fn back_up(path: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for file in store_files(path) {
        if file.is_file() {
            std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
        }
    }
}

/// Puts a backup back in place of the store: its files, nothing else.
fn restore(backup: &Path, path: &Path) {
    for file in store_files(path) {
        if file.is_dir() {
            std::fs::remove_dir_all(&file).unwrap();
        } else {
            std::fs::remove_file(&file).unwrap();
        }
    }
    for entry in std::fs::read_dir(backup).unwrap() {
        let file = entry.unwrap().path();
        std::fs::copy(
            &file,
            path.parent().unwrap().join(file.file_name().unwrap()),
        )
        .unwrap();
    }
}

fn marker(who: &str, n: usize) -> String {
    format!("keys-apart marker {who} #{n}")
}

fn record(who: &str, n: usize, ttl: Duration) -> NewRecord {
    NewRecord::new(ConversationId::new(format!("conv-{who}")))
        .subject(SubjectId::new(who))
        .prompt([Message::user(marker(who, n))])
        .ttl(ttl)
}

const LONG: Duration = Duration::from_secs(30 * 86_400);
const SHORT: Duration = Duration::from_secs(3600);
const EACH: usize = 4;

/// The story: records of A, B and short-lived C; a backup of the record
/// store; A erased, C purged (their keys destroyed); the backup put back.
struct Restored {
    split: Split,
    a: Vec<RecordId>,
    b: Vec<RecordId>,
    c: Vec<RecordId>,
    backup: PathBuf,
}

fn restored_after_erasure_and_purge() -> Restored {
    let split = Split::new();
    let vault = split.create();
    let put = |who: &str, ttl| {
        (0..EACH)
            .map(|n| vault.put(record(who, n, ttl)).unwrap())
            .collect::<Vec<_>>()
    };
    let (a, b, c) = (put("A", LONG), put("B", LONG), put("C", SHORT));
    drop(vault);
    let backup = split._dir.path().join("backup");
    back_up(&split.records, &backup);

    let vault = split.open();
    let erased = vault.erase_subject(&SubjectId::new("A")).unwrap();
    assert_eq!((erased.records, erased.keys_destroyed), (EACH, 1));
    split.clock.advance(Duration::from_secs(2 * 86_400));
    let purged = vault.purge_expired().unwrap();
    assert_eq!((purged.records, purged.keys_destroyed), (EACH, 1));
    drop(vault);

    restore(&backup, &split.records);
    Restored {
        split,
        a,
        b,
        c,
        backup,
    }
}

#[test]
fn a_restored_backup_of_the_records_does_not_bring_back_what_was_erased_or_purged() {
    let r = restored_after_erasure_and_purge();
    let vault = r.split.open();
    for id in r.a.iter().chain(&r.c) {
        match vault.get(*id) {
            Err(Error::KeyDestroyed { id: got }) => assert_eq!(got, *id),
            other => panic!("record {id} of an erased or purged epoch: {other:?}"),
        }
    }
    for (n, id) in r.b.iter().enumerate() {
        assert_eq!(
            vault.get(*id).unwrap().prompt()[0].content(),
            marker("B", n)
        );
    }
    let report = vault.verify().unwrap();
    assert_eq!(report.records, EACH, "B's records authenticate");
    assert_eq!(
        report.key_destroyed,
        2 * EACH,
        "A's and C's are counted as such"
    );
    drop(vault);

    // Neither the backup nor the keys store holds A's or C's content in
    // clear; and nothing in them opens it (every read above failed).
    let mut bytes = Vec::new();
    for dir in [r.backup.as_path(), r.split.keys.parent().unwrap()] {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                bytes.extend(std::fs::read(p).unwrap());
            }
        }
    }
    for n in 0..EACH {
        for who in ["A", "B", "C"] {
            assert!(
                !contains(&bytes, marker(who, n).as_bytes()),
                "{who} #{n} in clear"
            );
        }
    }
    // And no key of A's or C's scope is left in the keys store: the
    // subject tags the backup's rows carry have no key row, B's has one.
    let backup = rusqlite::Connection::open(r.backup.join("records.vault")).unwrap();
    let keys = rusqlite::Connection::open(&r.split.keys).unwrap();
    for (who, ids, left) in [("A", &r.a, 0), ("B", &r.b, 1), ("C", &r.c, 0)] {
        let tag: Vec<u8> = backup
            .query_row(
                "SELECT subject FROM records WHERE id = ?1",
                [ids[0].as_u64() as i64],
                |row| row.get(0),
            )
            .unwrap();
        let n: i64 = keys
            .query_row(
                "SELECT count(*) FROM keys WHERE subject = ?1",
                [&tag],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(n, left, "key rows of {who}'s scope in the keys store");
    }
}

#[test]
fn a_purge_removes_restored_records_whose_keys_are_gone_and_keeps_later_ones() {
    let r = restored_after_erasure_and_purge();
    let vault = r.split.open();
    // A comes back after the erasure: a new record under a new key.
    let later = vault.put(record("A", 99, LONG)).unwrap();
    let purged = vault.purge_expired().unwrap();
    assert_eq!(
        purged.records,
        2 * EACH,
        "A's restored and C's expired records"
    );
    for id in r.a.iter().chain(&r.c) {
        assert!(
            matches!(vault.get(*id), Err(Error::NotFound { .. })),
            "{id}"
        );
    }
    assert_eq!(
        vault.get(later).unwrap().prompt()[0].content(),
        marker("A", 99)
    );
    let report = vault.verify().unwrap();
    assert_eq!((report.records, report.key_destroyed), (EACH + 1, 0));
}

#[test]
fn erasing_again_removes_the_restored_records_of_the_subject() {
    let r = restored_after_erasure_and_purge();
    let vault = r.split.open();
    let again = vault.erase_subject(&SubjectId::new("A")).unwrap();
    assert_eq!((again.records, again.keys_destroyed), (EACH, 0));
    for id in &r.a {
        assert!(
            matches!(vault.get(*id), Err(Error::NotFound { .. })),
            "{id}"
        );
    }
    assert!(
        vault
            .subject_records(&SubjectId::new("A"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        vault.subject_records(&SubjectId::new("B")).unwrap().len(),
        EACH
    );
}

#[test]
fn the_records_are_in_one_store_and_the_keys_in_the_other() {
    let split = Split::new();
    let vault = split.create();
    vault.put(record("A", 0, LONG)).unwrap();
    drop(vault);
    let count = |path: &Path, sql: &str| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    for (table, in_records, in_keys) in [
        ("records", 1, 0),
        ("keys", 0, 1),
        ("meta WHERE name = 'header'", 0, 1),
        ("meta WHERE name = 'tag_key'", 0, 1),
        ("audit", 2, 0),
    ] {
        let sql = format!("SELECT count(*) FROM {table}");
        assert_eq!(
            count(&split.records, &sql),
            in_records,
            "{table} in the record store"
        );
        assert_eq!(
            count(&split.keys, &sql),
            in_keys,
            "{table} in the keys store"
        );
    }
}

#[test]
fn a_record_store_opens_only_with_its_own_keys_store() {
    let (one, other) = (Split::new(), Split::new());
    drop(one.create());
    drop(other.create());
    let key = || KeySource::passphrase(PASS);
    let o = opts(&one.clock);
    let refused = |storage: Storage, what: &str| {
        match Vault::open_in(&storage, key(), &o) {
            Err(Error::StorageMismatch) => {}
            other => panic!("{what}: {other:?}"),
        }
        assert!(
            matches!(
                Vault::open_for_maintenance_in(&storage),
                Err(Error::StorageMismatch)
            ),
            "{what}: maintenance"
        );
    };
    refused(
        Storage::sqlite(&one.records).keys_in(Storage::sqlite(&other.keys)),
        "another vault's keys",
    );
    refused(
        Storage::sqlite(&one.keys).keys_in(Storage::sqlite(&one.records)),
        "the stores swapped",
    );
    refused(Storage::sqlite(&one.records), "the record store alone");
    refused(Storage::sqlite(&one.keys), "the keys store alone");
    let single = one._dir.path().join("single.vault");
    drop(Vault::create(&single, key(), &o).unwrap());
    refused(
        Storage::sqlite(&single).keys_in(Storage::sqlite(&one.keys)),
        "a single-file vault with a keys store",
    );
    refused(
        Storage::sqlite(&one.records).keys_in(Storage::sqlite(&single)),
        "a single-file vault as a keys store",
    );
    // And the pairs that belong together still open.
    drop(one.open());
    drop(Vault::open(&single, key(), &o).unwrap());
}

#[test]
fn an_ingestor_and_a_maintenance_handle_work_with_the_keys_apart() {
    let split = Split::new();
    let vault = split.create();
    let ingest_key = vault.ingest_key().unwrap();
    drop(vault);
    let ingestor =
        Ingestor::open_in_with_options(split.storage(), &ingest_key, opts(&split.clock)).unwrap();
    let id = ingestor.put(record("I", 0, SHORT)).unwrap();
    drop(ingestor);
    let vault = split.open();
    assert_eq!(vault.get(id).unwrap().prompt()[0].content(), marker("I", 0));
    drop(vault);
    let other = Split::new();
    drop(other.create());
    let crossed = Storage::sqlite(&split.records).keys_in(Storage::sqlite(&other.keys));
    assert!(matches!(
        Ingestor::open_in(&crossed, &ingest_key),
        Err(Error::StorageMismatch)
    ));
    split.clock.advance(Duration::from_secs(2 * 86_400));
    let maintenance: Maintenance = Vault::open_for_maintenance_in(split.storage())
        .unwrap()
        .with_clock(split.clock.clone());
    let purged = maintenance.purge_expired().unwrap();
    assert_eq!(purged.records, 1);
}

#[test]
fn a_create_next_to_an_existing_keys_store_leaves_it_alone() {
    let split = Split::new();
    drop(split.create());
    let before = std::fs::read(&split.keys).unwrap();
    let fresh_records = split._dir.path().join("fresh.vault");
    let storage = Storage::sqlite(&fresh_records).keys_in(Storage::sqlite(&split.keys));
    assert!(matches!(
        Vault::create_in(&storage, KeySource::passphrase(PASS), opts(&split.clock)),
        Err(Error::AlreadyExists)
    ));
    assert!(
        !fresh_records.exists(),
        "nothing is left of the refused create"
    );
    assert_eq!(std::fs::read(&split.keys).unwrap(), before);
    drop(split.open());
}

#[test]
fn storage_debug_names_both_stores() {
    let s = Storage::sqlite("r.vault").keys_in(Storage::sqlite("k.vault"));
    let text = format!("{s:?}");
    assert!(
        text.contains("r.vault") && text.contains("k.vault"),
        "{text}"
    );
    assert!(format!("{:?}", s.clone()).contains("keys"));
}

#[test]
fn only_a_vault_with_its_keys_apart_keeps_a_note_of_an_erasure() {
    let split = Split::new();
    let vault = split.create();
    vault.put(record("A", 0, LONG)).unwrap();
    vault.erase_subject(&SubjectId::new("A")).unwrap();
    drop(vault);
    let single = split._dir.path().join("single.vault");
    let vault = Vault::create(&single, KeySource::passphrase(PASS), opts(&split.clock)).unwrap();
    vault.put(record("A", 0, LONG)).unwrap();
    vault.erase_subject(&SubjectId::new("A")).unwrap();
    drop(vault);
    let notes = |path: &Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM meta WHERE name LIKE 'erased/%'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(notes(&split.keys), 1, "the keys store notes the erasure");
    assert_eq!(notes(&split.records), 0);
    assert_eq!(
        notes(&single),
        0,
        "a single file's backups hold its keys too"
    );
}

/// Backs up the closed record store, runs `between` on a fresh handle,
/// closes it and puts the backup back.
fn back_up_then(split: &Split, between: impl FnOnce(&Vault)) {
    let backup = split._dir.path().join("backup-then");
    let _ = std::fs::remove_dir_all(&backup);
    back_up(&split.records, &backup);
    let vault = split.open();
    between(&vault);
    drop(vault);
    restore(&backup, &split.records);
}

#[test]
fn a_staged_copy_of_an_erased_record_is_not_taken_in_again_from_a_backup() {
    let split = Split::new();
    let vault = split.create();
    let ingest_key = vault.ingest_key().unwrap();
    drop(vault);
    let ingestor =
        Ingestor::open_in_with_options(split.storage(), &ingest_key, opts(&split.clock)).unwrap();
    let staged = ingestor.put(record("A", 0, LONG)).unwrap();
    drop(ingestor);
    // The backup holds the record still staged; then it is taken in and
    // its subject erased.
    back_up_then(&split, |vault| {
        assert_eq!(
            vault.get(staged).unwrap().prompt()[0].content(),
            marker("A", 0)
        );
        assert_eq!(
            vault.erase_subject(&SubjectId::new("A")).unwrap().records,
            1
        );
    });
    let vault = split.open();
    match vault.get(staged) {
        Err(Error::NotFound { .. }) => {}
        other => panic!("the restored staged copy of an erased record: {other:?}"),
    }
    assert!(
        vault
            .subject_records(&SubjectId::new("A"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        vault.verify().unwrap().set_aside,
        1,
        "set aside, not taken in"
    );
}

#[test]
fn a_restored_mapping_of_an_erased_subjects_conversation_goes_with_the_purge() {
    let split = Split::new();
    let vault = split.create();
    let conv = ConversationId::new("shared");
    // First masked with no subject: the mapping is sealed under a key no
    // erasure destroys.
    let first = vault.pseudonymize(&conv, "mail carol@example.com").unwrap();
    vault
        .put(
            NewRecord::new(conv.clone())
                .subject(SubjectId::new("A"))
                .prompt([Message::user(first.text.as_str())])
                .masked(true),
        )
        .unwrap();
    drop(vault);
    back_up_then(&split, |vault| {
        vault.erase_subject(&SubjectId::new("A")).unwrap();
        assert_eq!(vault.restore(&conv, "<EMAIL_1>").unwrap(), "<EMAIL_1>");
    });
    let vault = split.open();
    vault.purge_expired().unwrap();
    assert_eq!(
        vault.restore(&conv, "<EMAIL_1>").unwrap(),
        "<EMAIL_1>",
        "the restored mapping is gone with the restored record"
    );
}

#[test]
fn a_restored_record_reads_as_key_destroyed_when_its_subject_has_a_new_key_of_the_same_epoch() {
    let split = Split::new();
    let vault = split.create();
    let old = vault.put(record("A", 0, LONG)).unwrap();
    drop(vault);
    back_up_then(&split, |vault| {
        vault.erase_subject(&SubjectId::new("A")).unwrap();
    });
    let vault = split.open();
    // The same day: A's new record gets a new key of the same epoch.
    let new = vault.put(record("A", 1, LONG)).unwrap();
    match vault.get(old) {
        Err(Error::KeyDestroyed { id }) => assert_eq!(id, old),
        other => panic!("the restored record: {other:?}"),
    }
    let report = vault.verify().unwrap();
    assert_eq!((report.records, report.key_destroyed), (1, 1));
    assert_eq!(vault.purge_expired().unwrap().records, 1);
    assert_eq!(
        vault.get(new).unwrap().prompt()[0].content(),
        marker("A", 1)
    );
    // A key id altered to point at nothing is still `Tampered`, not this.
    drop(vault);
    let tamper = rusqlite::Connection::open(&split.records).unwrap();
    let mut sealed: Vec<u8> = tamper
        .query_row(
            "SELECT sealed FROM records WHERE id = ?1",
            [new.as_u64() as i64],
            |r| r.get(0),
        )
        .unwrap();
    sealed[1..9].copy_from_slice(&1_000_000_u64.to_be_bytes());
    tamper
        .execute(
            "UPDATE records SET sealed = ?1 WHERE id = ?2",
            rusqlite::params![sealed, new.as_u64() as i64],
        )
        .unwrap();
    drop(tamper);
    let vault = split.open();
    let got = vault.get(new);
    assert!(matches!(got, Err(Error::Tampered { .. })), "{got:?}");
}
