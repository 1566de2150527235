//! A full disk: `put` fails with an error, committed records stay
//! readable, and the vault works again once space is back. A read whose
//! audit entry cannot be written still succeeds; its entry waits in the
//! handle's memory and goes into the chain, with its own time, before the
//! next entry the handle appends, or when the handle is dropped
//! (docs/DESIGN.md, "Audit log").
//!
//! The disk is a real tmpfs the test mounts, which needs root (in a
//! container, CAP_SYS_ADMIN). Elsewhere the tests say so and check
//! nothing, except under `CI=true`, where they fail: a skip would pass
//! unseen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use llmvault::clock::{Clock, ManualClock};
use llmvault::{AuditAction, AuditEntry, AuditOutcome, Error, RecordId, Vault};

struct Mount(PathBuf);

impl Mount {
    /// A tmpfs of `size` at a fresh directory (`name` keeps the tests of
    /// this binary, which run at once, apart).
    fn tmpfs(name: &str, size: &str) -> Option<Self> {
        let dir = std::env::temp_dir().join(format!("llmvault-full-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            Some(Self(dir))
        } else {
            let _ = std::fs::remove_dir(&dir);
            None
        }
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// A 1 MiB tmpfs, or `None` after saying why there is none. Under
/// `CI=true` there is no skipping: `.ci/run` checks that it can mount.
fn small_disk(name: &str) -> Option<Mount> {
    let why = if !is_root() {
        "mounting a small tmpfs needs root"
    } else if let Some(mount) = Mount::tmpfs(name, "1m") {
        return Some(mount);
    } else {
        "`mount -t tmpfs` failed (a container without CAP_SYS_ADMIN?)"
    };
    if std::env::var_os("CI").is_some_and(|ci| ci == "true") {
        panic!("{why}; with CI=true this test must run, not skip");
    }
    println!("SKIPPED: {why}");
    None
}

const BODY_LEN: usize = 2000;

fn text(i: usize) -> String {
    format!("{i} {}", "z".repeat(BODY_LEN))
}

/// Puts records until the disk is full; returns the ids that committed.
fn fill(vault: &Vault) -> Vec<RecordId> {
    let mut committed = Vec::new();
    let err = loop {
        match vault.put(record("c", Some("s"), &text(committed.len()))) {
            Ok(id) => committed.push(id),
            Err(e) => break e,
        }
        assert!(committed.len() < 10_000, "the disk never filled");
    };
    assert!(
        committed.len() > 10,
        "some records fit before the disk filled"
    );
    assert!(matches!(err, Error::DiskFull), "{err:?}");
    committed
}

/// Reads every committed record, a second apart: nothing half-done by the
/// failed put, and each read succeeds though its entry may not be
/// written. Returns the time of each read.
fn read_all(vault: &Vault, clock: &ManualClock, committed: &[RecordId]) -> Vec<SystemTime> {
    committed
        .iter()
        .enumerate()
        .map(|(i, id)| {
            clock.advance(Duration::from_secs(1));
            let rec = vault.get(*id).unwrap();
            assert_eq!(rec.prompt()[0].content(), format!("prompt: {}", text(i)));
            clock.now()
        })
        .collect()
}

/// Audit rows in the file itself, read beside the vault's own connections.
fn rows_on_disk(path: &Path) -> usize {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let n: i64 = db
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    usize::try_from(n).unwrap()
}

/// The chain holds exactly one `Get` entry per read, in order, naming its
/// record, at the time of the read (not of the write that carried it).
fn assert_reads_chained(entries: &[AuditEntry], committed: &[RecordId], read_at: &[SystemTime]) {
    let gets: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| e.action == AuditAction::Get)
        .collect();
    assert_eq!(
        gets.len(),
        committed.len(),
        "one entry per read: none lost, none twice"
    );
    for ((entry, id), at) in gets.iter().zip(committed).zip(read_at) {
        assert_eq!(entry.records, vec![*id], "entry {}", entry.seq);
        assert_eq!(entry.at, *at, "entry {} keeps its read's time", entry.seq);
        assert_eq!(entry.outcome, AuditOutcome::Ok);
    }
}

/// A vault on the small disk, filled, then every record read: returns
/// the vault, the committed ids, the reads' times, and how many of the
/// reads' entries had to wait (at least one, or the queue is not tested).
fn fill_and_read(
    path: &Path,
    clock: &Arc<ManualClock>,
) -> (Vault, Vec<RecordId>, Vec<SystemTime>, usize) {
    let vault = Vault::create(path, key(), opts(clock)).unwrap();
    let committed = fill(&vault);
    let before = rows_on_disk(path);
    let read_at = read_all(&vault, clock, &committed);
    let waiting = committed.len() - (rows_on_disk(path) - before);
    assert!(
        waiting > 0,
        "the full disk took every read's entry at once; nothing waited"
    );
    (vault, committed, read_at, waiting)
}

#[test]
fn a_full_disk_fails_puts_and_keeps_what_was_committed() {
    let Some(mount) = small_disk("write") else {
        return;
    };
    let clock = Arc::new(ManualClock::new(start()));
    let path = mount.path().join("v.vault");
    let (vault, committed, read_at, waiting) = fill_and_read(&path, &clock);

    // Still full: a batch fails as a whole (and carries the waiting
    // entries into a transaction that rolls back: they must stay queued).
    let err = vault
        .put_batch(
            (0..50)
                .map(|i| record("c", None, &format!("b{i}")))
                .collect(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::DiskFull), "{err:?}");
    let on_disk = rows_on_disk(&path);

    mount.resize("16m");
    clock.advance(Duration::from_secs(60));
    let later = vault
        .put(record("c", Some("s"), "after space came back"))
        .unwrap();

    // The waiting entries went in with that put, before its own entry
    // (read from the file before `audit()`, which would write them itself).
    let carried = rows_on_disk(&path) - on_disk;
    assert!(
        carried > waiting,
        "the put wrote {carried} entries; {waiting} read entries were waiting"
    );
    let entries = vault.audit().entries(..).unwrap();
    assert_reads_chained(&entries, &committed, &read_at);
    let last = entries.last().unwrap();
    assert_eq!(
        (last.action, &last.records),
        (AuditAction::Put, &vec![later])
    );
    assert_eq!(last.at, clock.now());
    assert_eq!(
        vault.audit().verify().unwrap().entries,
        entries.len() as u64
    );

    drop(vault);
    let vault = Vault::open(&path, key(), opts(&clock)).unwrap();
    assert_reads_chained(&vault.audit().entries(..).unwrap(), &committed, &read_at);
    assert_eq!(
        vault.get(later).unwrap().prompt()[0].content(),
        "prompt: after space came back"
    );
    assert_eq!(vault.verify().unwrap().records, committed.len() + 1);
    vault.audit().verify().unwrap();
}

#[test]
fn read_entries_waiting_on_a_full_disk_go_in_when_the_handle_drops() {
    let Some(mount) = small_disk("drop") else {
        return;
    };
    let clock = Arc::new(ManualClock::new(start()));
    let path = mount.path().join("v.vault");
    let (vault, committed, read_at, _) = fill_and_read(&path, &clock);

    mount.resize("16m");
    drop(vault);

    let vault = Vault::open(&path, key(), opts(&clock)).unwrap();
    let entries = vault.audit().entries(..).unwrap();
    assert_reads_chained(&entries, &committed, &read_at);
    assert_eq!(
        vault.audit().verify().unwrap().entries,
        entries.len() as u64
    );
}
