//! Crash timing: a child process arms one of the library's failpoints
//! (cargo feature `failpoints`, src/failpoint.rs) and makes one call; the
//! failpoint aborts the process at a chosen statement of that call's write
//! transaction: after a record row, between the deletes of an erasure,
//! after the audit row, right before `COMMIT`, right after it. The parent
//! reopens the vault and checks that it opens, that `verify` and the audit
//! chain pass, and that the write is wholly absent (every point before
//! `COMMIT`) or wholly there with its audit entry (after it). Covers
//! `put`, `put_batch`, `erase_subject`, `purge_expired` and `change_key`.
//!
//! Then `put`, `erase_subject` and `purge_expired` again with the keys
//! apart (`Storage::keys_in`), which commit twice, keys store first: an
//! abort before both commits, between the two, and after both.
//! Between them the keys store is ahead: a `put` left only a key no record
//! uses; an erasure or purge destroyed its keys while the records stay,
//! unreadable (`KeyDestroyed`, counted by `verify`) until the erasure is
//! repeated or a purge removes them. Never an acknowledged record lost,
//! never a destroyed key that still opens.
//!
//! Runs without libtest's harness so that the same binary can be the
//! child; built only with the feature:
//! `cargo test -p llmvault --features failpoints --test crash_points`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use llmvault::clock::ManualClock;
use llmvault::{
    AuditAction, AuditEntry, AuditOutcome, ConversationId, Error, KdfParams, KeySource, Message,
    NewRecord, Record, Storage, SubjectId, Vault, VaultOptions,
};

/// Whether this process runs the rounds with the keys apart; the parent
/// tells its children by [`SPLIT_ENV`].
static SPLIT: AtomicBool = AtomicBool::new(false);
const SPLIT_ENV: &str = "LLMVAULT_CRASH_POINTS_SPLIT";

/// The vault at `path`: one file, or (split) its records there and its
/// keys in `<path>.keys`.
fn storage(path: &Path) -> Storage {
    let records = Storage::sqlite(path);
    if SPLIT.load(Ordering::Relaxed) {
        let mut keys = path.as_os_str().to_owned();
        keys.push(".keys");
        records.keys_in(Storage::sqlite(keys))
    } else {
        records
    }
}

const KEY: [u8; 32] = [0x4E; 32];
const NEW_KEY: [u8; 32] = [0x7A; 32];
const BATCH: usize = 10;
const VICTIM_RECORDS: usize = 5;
const EXPIRING: usize = 6;

/// Where the abort lands, and whether the write had committed by then.
struct Point {
    name: &'static str,
    nth: u64,
    committed: bool,
}

const BEFORE: Point = Point {
    name: "commit-before",
    nth: 1,
    committed: false,
};
const AFTER: Point = Point {
    name: "commit-after",
    nth: 1,
    committed: true,
};
const AUDIT_ROW: Point = Point {
    name: "audit-appended",
    nth: 1,
    committed: false,
};
/// Keys apart: after the keys store committed, before the record store.
const BETWEEN: Point = Point {
    name: "split-between-commits",
    nth: 1,
    committed: false,
};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    SPLIT.store(std::env::var_os(SPLIT_ENV).is_some(), Ordering::Relaxed);
    if let Some(at) = args.iter().position(|a| a == "--point-child") {
        let nth = args[at + 3].parse().unwrap();
        child(&args[at + 1], &args[at + 2], nth, Path::new(&args[at + 4]));
        return;
    }
    let mut aborts = 0;
    for point in [
        BEFORE,
        AUDIT_ROW,
        AFTER,
        Point {
            name: "record-inserted",
            nth: 1,
            committed: false,
        },
    ] {
        put_round(&point);
        aborts += 1;
    }
    for point in [
        BEFORE,
        AUDIT_ROW,
        AFTER,
        Point {
            name: "record-inserted",
            nth: BATCH as u64 / 2,
            committed: false,
        },
    ] {
        batch_round(&point);
        aborts += 1;
    }
    for point in [
        BEFORE,
        AUDIT_ROW,
        AFTER,
        Point {
            name: "erase-records-deleted",
            nth: 1,
            committed: false,
        },
    ] {
        erase_round(&point);
        aborts += 1;
    }
    for point in [BEFORE, AUDIT_ROW, AFTER] {
        purge_round(&point);
        aborts += 1;
    }
    for point in [BEFORE, AUDIT_ROW, AFTER] {
        change_key_round(&point);
        aborts += 1;
    }
    SPLIT.store(true, Ordering::Relaxed);
    for point in [BEFORE, BETWEEN, AFTER] {
        put_round(&point);
        erase_round(&point);
        purge_round(&point);
        aborts += 3;
    }
    println!("crash_points: {aborts} aborts at failpoints, 8 passed, 0 failed");
}

/// A fixed time so the parent and the children agree on what expired.
fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600 + 3600)
}

/// When the children purge: past the expiry of the short-lived records
/// and the end of their keys' epoch (a day), before the others expire.
fn purge_time() -> SystemTime {
    start() + Duration::from_secs(2 * 86_400)
}

fn options_at(t: SystemTime) -> VaultOptions {
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .clock(Arc::new(ManualClock::new(t)))
}

fn options() -> VaultOptions {
    options_at(start())
}

fn open(path: &Path, key: [u8; 32]) -> Vault {
    Vault::open_in(storage(path), KeySource::raw_key(key), options()).unwrap()
}

fn fresh(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("points.vault");
    drop(Vault::create_in(storage(&path), KeySource::raw_key(KEY), options()).unwrap());
    path
}

fn put_record(n: usize) -> NewRecord {
    NewRecord::new(ConversationId::new("fp"))
        .subject(SubjectId::new("writer"))
        .model("m-fp")
        .prompt([Message::user(format!("failpoint prompt {n}"))])
        .response(Message::assistant(format!("failpoint response {n}")))
        .tag("fp")
}

/// The child: opens the vault, arms the point, makes one call. Reaching
/// the end means the failpoint never fired: the parent fails on that.
fn child(op: &str, point: &str, nth: u64, path: &Path) {
    let later = purge_time();
    let vault = Vault::open_in(
        storage(path),
        KeySource::raw_key(KEY),
        options_at(if op == "purge" { later } else { start() }),
    )
    .unwrap();
    llmvault::failpoint::arm(point, nth);
    match op {
        "put" => {
            vault.put(put_record(0)).unwrap();
        }
        "batch" => {
            vault
                .put_batch((0..BATCH).map(put_record).collect())
                .unwrap();
        }
        "erase" => {
            vault.erase_subject(&SubjectId::new("victim")).unwrap();
        }
        "purge" => {
            vault.purge_expired().unwrap();
        }
        "change-key" => vault.change_key(KeySource::raw_key(NEW_KEY)).unwrap(),
        other => panic!("unknown child op {other}"),
    }
    println!("RETURNED");
}

/// Runs the child and checks that it died by `abort` at the point (and
/// not by a panic, or not at all).
fn abort_at(op: &str, point: &Point, path: &Path) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    if SPLIT.load(Ordering::Relaxed) {
        command.env(SPLIT_ENV, "1");
    }
    let mut child = command
        .arg("--point-child")
        .args([op, point.name, &point.nth.to_string()])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        !out.contains("RETURNED"),
        "{op} at {}: the call returned, the failpoint never fired",
        point.name
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(6),
            "{op} at {}: the child did not abort (status {status}, stderr {err})",
            point.name
        );
    }
    #[cfg(not(unix))]
    assert!(!status.success(), "{op} at {}: {err}", point.name);
}

/// Reopens under `key`, checks the vault and its audit chain, and returns
/// the handle with the entries for `action`.
fn reopen_checked(path: &Path, key: [u8; 32], what: &str) -> (Vault, Vec<AuditEntry>) {
    let vault = open(path, key);
    vault
        .verify()
        .unwrap_or_else(|e| panic!("{what}: verify: {e}"));
    let report = vault
        .audit()
        .verify()
        .unwrap_or_else(|e| panic!("{what}: audit chain: {e}"));
    let entries = vault.audit().entries(..).unwrap();
    assert_eq!(report.entries, entries.len() as u64, "{what}");
    (vault, entries)
}

fn entries_of(entries: &[AuditEntry], action: AuditAction) -> Vec<&AuditEntry> {
    entries.iter().filter(|e| e.action == action).collect()
}

/// The one entry of the call, if it committed; none if not.
fn the_entry<'a>(
    entries: &'a [AuditEntry],
    action: AuditAction,
    point: &Point,
    what: &str,
) -> Option<&'a AuditEntry> {
    let found = entries_of(entries, action);
    if point.committed {
        assert_eq!(found.len(), 1, "{what}: committed, so one {action:?} entry");
        assert_eq!(found[0].outcome, AuditOutcome::Ok, "{what}");
        assert_eq!(found[0].actor, "default", "{what}");
        Some(found[0])
    } else {
        assert!(found.is_empty(), "{what}: not committed, yet {found:?}");
        None
    }
}

fn assert_is_put_record(rec: &Record, n: usize, what: &str) {
    assert_eq!(rec.conversation().as_str(), "fp", "{what}");
    assert_eq!(
        rec.subject().map(SubjectId::as_str),
        Some("writer"),
        "{what}"
    );
    assert_eq!(rec.model(), "m-fp", "{what}");
    assert_eq!(rec.prompt().len(), 1, "{what}");
    assert_eq!(
        rec.prompt()[0].content(),
        format!("failpoint prompt {n}"),
        "{what}"
    );
    assert_eq!(
        rec.response().map(Message::content),
        Some(format!("failpoint response {n}").as_str()),
        "{what}"
    );
    assert_eq!(rec.tags(), ["fp"], "{what}");
}

fn put_round(point: &Point) {
    write_round("put", "put", AuditAction::Put, 1, point);
}

fn batch_round(point: &Point) {
    write_round("put_batch", "batch", AuditAction::PutBatch, BATCH, point);
}

/// One abort inside a `put` or `put_batch` of `count` records: afterwards
/// either all of them are there with the one entry that names them, or
/// none is and no entry claims them.
fn write_round(call: &str, mode: &str, action: AuditAction, count: usize, point: &Point) {
    let what = round_name(call, point);
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path());
    abort_at(mode, point, &path);
    let (vault, entries) = reopen_checked(&path, KEY, &what);
    let stored = vault.conversation(&ConversationId::new("fp")).unwrap();
    match the_entry(&entries, action, point, &what) {
        Some(entry) => {
            assert_eq!(stored.len(), count, "{what}: every record is there");
            for (n, rec) in stored.iter().enumerate() {
                assert_is_put_record(rec, n, &what);
            }
            let ids: Vec<_> = stored.iter().map(Record::id).collect();
            assert_eq!(entry.records, ids, "{what}: its entry names them all");
        }
        None => assert!(stored.is_empty(), "{what}: {} records", stored.len()),
    }
    assert_eq!(vault.verify().unwrap().records, stored.len(), "{what}");
}

/// How a round names itself: the call, the point, and the layout.
fn round_name(call: &str, point: &Point) -> String {
    let layout = if SPLIT.load(Ordering::Relaxed) {
        ", keys apart"
    } else {
        ""
    };
    format!("{call}, abort at {} #{}{layout}", point.name, point.nth)
}

fn erase_round(point: &Point) {
    let what = round_name("erase_subject", point);
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path());
    let subject_of = |i: usize| {
        if i < VICTIM_RECORDS {
            "victim"
        } else {
            "bystander"
        }
    };
    let originals = open(&path, KEY)
        .put_batch(
            (0..2 * VICTIM_RECORDS)
                .map(|i| {
                    NewRecord::new(ConversationId::new(format!("e{i}")))
                        .subject(SubjectId::new(subject_of(i)))
                        .prompt([Message::user(format!("erase me {i}"))])
                })
                .collect(),
        )
        .unwrap();
    abort_at("erase", point, &path);
    let (vault, entries) = reopen_checked(&path, KEY, &what);
    if point.name == BETWEEN.name {
        // The keys are gone, the records not yet: none of them reads, and
        // the erasure, repeated, removes them.
        assert!(the_entry(&entries, AuditAction::Erase, point, &what).is_none());
        for id in &originals[..VICTIM_RECORDS] {
            assert!(
                matches!(vault.get(*id), Err(Error::KeyDestroyed { .. })),
                "{what}: {id} reads after its key was destroyed"
            );
        }
        assert_eq!(
            vault.verify().unwrap().key_destroyed,
            VICTIM_RECORDS,
            "{what}"
        );
        let again = vault.erase_subject(&SubjectId::new("victim")).unwrap();
        assert_eq!(
            again.records, VICTIM_RECORDS,
            "{what}: the repeat removes them"
        );
        assert_eq!(
            again.keys_destroyed, 0,
            "{what}: no key was left to destroy"
        );
    }
    let victim = vault.subject_records(&SubjectId::new("victim")).unwrap();
    match the_entry(&entries, AuditAction::Erase, point, &what) {
        None if point.name == BETWEEN.name => assert!(victim.is_empty(), "{what}"),
        Some(entry) => {
            assert!(victim.is_empty(), "{what}: erased, yet {victim:?}");
            assert_eq!(entry.count, VICTIM_RECORDS as u64, "{what}");
            for id in &originals[..VICTIM_RECORDS] {
                assert!(
                    matches!(vault.get(*id), Err(Error::NotFound { .. })),
                    "{what}: {id}"
                );
            }
        }
        None => {
            let ids: Vec<_> = victim.iter().map(Record::id).collect();
            assert_eq!(ids, originals[..VICTIM_RECORDS], "{what}: nothing erased");
            for (i, rec) in victim.iter().enumerate() {
                assert_eq!(rec.prompt()[0].content(), format!("erase me {i}"), "{what}");
            }
        }
    }
    let bystander = vault.subject_records(&SubjectId::new("bystander")).unwrap();
    let ids: Vec<_> = bystander.iter().map(Record::id).collect();
    assert_eq!(
        ids,
        originals[VICTIM_RECORDS..],
        "{what}: bystander untouched"
    );
}

fn purge_round(point: &Point) {
    let what = round_name("purge_expired", point);
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path());
    // EXPIRING records live one hour, as many ten days; the child purges
    // two days later, when the first ones' keys' epoch has ended too.
    let ids = open(&path, KEY)
        .put_batch(
            (0..2 * EXPIRING)
                .map(|i| {
                    let ttl = if i < EXPIRING { 3600 } else { 10 * 86_400 };
                    NewRecord::new(ConversationId::new("p"))
                        .subject(SubjectId::new(format!("p{i}")))
                        .prompt([Message::user(format!("purge {i}"))])
                        .ttl(Duration::from_secs(ttl))
                })
                .collect(),
        )
        .unwrap();
    abort_at("purge", point, &path);
    // Reopened at the start time, when nothing has expired yet: a record
    // the purge did not delete still reads.
    let (vault, entries) = reopen_checked(&path, KEY, &what);
    if point.name == BETWEEN.name {
        // The ended epochs' keys are gone, their records not yet: none of
        // them reads (even at this earlier time), the others do, and the
        // next purge removes them.
        assert!(the_entry(&entries, AuditAction::Purge, point, &what).is_none());
        for id in &ids[..EXPIRING] {
            assert!(
                matches!(vault.get(*id), Err(Error::KeyDestroyed { .. })),
                "{what}: {id} reads after its key was destroyed"
            );
        }
        for (i, id) in ids.iter().enumerate().skip(EXPIRING) {
            assert_eq!(
                vault.get(*id).unwrap().prompt()[0].content(),
                format!("purge {i}")
            );
        }
        let report = vault.verify().unwrap();
        assert_eq!(
            (report.records, report.key_destroyed),
            (EXPIRING, EXPIRING),
            "{what}"
        );
        drop(vault);
        let later = purge_time();
        let vault =
            Vault::open_in(storage(&path), KeySource::raw_key(KEY), options_at(later)).unwrap();
        assert_eq!(vault.purge_expired().unwrap().records, EXPIRING, "{what}");
        assert_eq!(vault.verify().unwrap().key_destroyed, 0, "{what}");
        return;
    }
    let left = match the_entry(&entries, AuditAction::Purge, point, &what) {
        Some(entry) => {
            assert_eq!(entry.count, EXPIRING as u64, "{what}");
            EXPIRING
        }
        None => 2 * EXPIRING,
    };
    let read: Vec<_> = vault.conversation(&ConversationId::new("p")).unwrap();
    let read_ids: Vec<_> = read.iter().map(Record::id).collect();
    assert_eq!(read_ids, ids[2 * EXPIRING - left..], "{what}");
    assert_eq!(vault.verify().unwrap().records, left, "{what}");
}

fn change_key_round(point: &Point) {
    let what = round_name("change_key", point);
    let dir = tempfile::tempdir().unwrap();
    let path = fresh(dir.path());
    let ids = open(&path, KEY)
        .put_batch((0..BATCH).map(put_record).collect())
        .unwrap();
    abort_at("change-key", point, &path);
    let (works, refused) = if point.committed {
        (NEW_KEY, KEY)
    } else {
        (KEY, NEW_KEY)
    };
    assert!(
        matches!(
            Vault::open(&path, KeySource::raw_key(refused), options()),
            Err(Error::WrongKey)
        ),
        "{what}: exactly one key opens"
    );
    let (vault, entries) = reopen_checked(&path, works, &what);
    the_entry(&entries, AuditAction::ChangeKey, point, &what);
    for (n, id) in ids.iter().enumerate() {
        assert_is_put_record(&vault.get(*id).unwrap(), n, &what);
    }
}
