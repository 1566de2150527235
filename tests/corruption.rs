//! Corruption sweep: damage a real vault file (flipped bytes across every
//! page, truncations, a damaged WAL) and read everything back: every
//! record by id, every conversation and subject, a query and an export,
//! the audit log, the PII mappings (through `restore`) and records that
//! an ingestor left staged. Each call must return exactly what the
//! undamaged vault returns (every field of every record, whole lists, the
//! same error for an expired record) or a typed error: never a panic,
//! never different data. An undamaged control copy must read clean on
//! every call, so the expectations themselves are checked.
//!
//! Three differences are allowed, each counted apart and printed:
//! - a damaged WAL: SQLite ends the log at its first frame that fails its
//!   checksum, so the vault rolls back to an earlier commit (DESIGN.md:
//!   rollback is not detected); a read may return what the vault held at
//!   an earlier commit, and only there;
//! - a staged record that does not open stays staged: its read says
//!   `NotFound`, list reads leave it out, `verify` names it;
//! - rows a damaged index or a damaged clear column (an expiry) hides: a
//!   list read leaves records out, a masked record reads as stored, a
//!   `restore` finds no mapping. Allowed only when SQLite's own
//!   `PRAGMA integrity_check` fails on the copy: the vault's reads do not
//!   run it. `verify` does, and must fail on every such copy. Everything
//!   returned is still exact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "corruption/fixture.rs"]
mod fixture;
#[path = "corruption/judge.rs"]
mod judge;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::start;
use fixture::{Fixture, KEY, MASKED_CONVERSATIONS, Rec, STAGED, State, build, options_at};
use judge::{Tally, read_all};
use llmvault::{ConversationId, KeySource, Message, NewRecord, Vault};

/// The vault's files as `build` left them, and copies of them with one
/// file replaced.
struct Files {
    dir: PathBuf,
    files: Vec<(String, Vec<u8>)>,
}

impl Files {
    fn read(dir: &Path) -> Self {
        // The read logs of a handle still open sit in `v.vault-reads`: a
        // crash leaves them as they are, with the database.
        let logs = dir.join("v.vault-reads");
        let in_logs = std::fs::read_dir(&logs).into_iter().flatten();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .chain(in_logs)
            .map(|e| e.unwrap().path())
            // SQLite rebuilds the shared-memory index from the WAL at the
            // first open, as after a crash.
            .filter(|p| p.is_file() && !p.to_string_lossy().ends_with("-shm"))
            .map(|p| {
                (
                    p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        files.sort();
        Self {
            dir: dir.to_owned(),
            files,
        }
    }

    fn bytes(&self, name: &str) -> &[u8] {
        &self.files.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// A copy with `name` replaced by `bytes` (`None`: left out); read,
    /// tallied, removed.
    fn sweep_copy(&self, name: &str, bytes: Option<Vec<u8>>, fx: &Fixture, tally: &mut Tally) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let sub = self
            .dir
            .join(format!("case-{}", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&sub).unwrap();
        std::fs::create_dir(sub.join("v.vault-reads")).unwrap();
        for (n, b) in &self.files {
            match (n == name, &bytes) {
                (false, _) => std::fs::write(sub.join(n), b).unwrap(),
                (true, Some(b)) => std::fs::write(sub.join(n), b).unwrap(),
                (true, None) => {}
            }
        }
        let damaged = sqlite_sees_damage(&sub, &self.dir);
        read_all(&sub.join("v.vault"), fx, damaged, tally);
        std::fs::remove_dir_all(&sub).unwrap();
    }
}

/// Whether `PRAGMA integrity_check` fails on the copy in `sub` (run on a
/// copy of it, so that the vault then opens the files as they were).
fn sqlite_sees_damage(sub: &Path, scratch_in: &Path) -> bool {
    let scratch = scratch_in.join("integrity");
    std::fs::create_dir(&scratch).unwrap();
    for entry in std::fs::read_dir(sub).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, scratch.join(p.file_name().unwrap())).unwrap();
        }
    }
    let ok = rusqlite::Connection::open(scratch.join("v.vault"))
        .and_then(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0)))
        .is_ok_and(|s| s == "ok");
    std::fs::remove_dir_all(&scratch).unwrap();
    !ok
}

/// The undamaged copy must read clean on every call: the expectations are
/// what the vault really holds.
fn control(files: &Files, fx: &Fixture) {
    let mut tally = Tally::default();
    files.sweep_copy("", None, fx, &mut tally);
    assert_eq!(
        (tally.clean, tally.calls),
        (tally.calls, tally.calls),
        "the undamaged copy did not read clean: {tally:?}"
    );
    assert!(tally.calls > fx.every_id().len(), "{tally:?}");
}

fn report(what: &str, cases: usize, tally: &Tally) {
    println!(
        "{what}: {cases} damaged copies, {} calls -> {} clean, {} rolled back, \
         {} leaving out staged records not taken in, {} missing rows SQLite's integrity \
         check finds, {} typed errors, {} panics, {} wrong data",
        tally.calls,
        tally.clean,
        tally.rolled_back,
        tally.left_staged,
        tally.missing,
        tally.error,
        tally.panic,
        tally.wrong
    );
    assert_eq!(tally.panic, 0, "{what}: a call panicked");
    assert_eq!(
        tally.wrong, 0,
        "{what}: a call returned different data: {:?}",
        tally.examples
    );
    assert!(tally.clean > 0, "{what}: no read was clean");
}

#[test]
fn flipped_bytes_across_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let fx = build(&dir.path().join("v.vault"), true);
    let files = Files::read(dir.path());
    assert_eq!(files.files.len(), 1, "closed: the database file alone");
    control(&files, &fx);
    let db = files.bytes("v.vault").to_vec();
    let page = 4096;
    let mut tally = Tally::default();
    let mut cases = 0;
    for start in (0..db.len()).step_by(page) {
        // Page header, cell pointers, cell content and the page's end.
        for offset in [0, 1, 3, 5, 8, 12, 100, 1000, 2048, 4000, 4095] {
            let at = start + offset;
            if at >= db.len() {
                continue;
            }
            let mut bytes = db.clone();
            bytes[at] ^= 0xFF;
            files.sweep_copy("v.vault", Some(bytes), &fx, &mut tally);
            cases += 1;
        }
    }
    report("flipped bytes", cases, &tally);
    assert_eq!(tally.rolled_back, 0, "nothing to roll back to");
    assert!(tally.error > 0, "the sweep damaged nothing that mattered");
}

/// Bytes flipped inside sealed values: staged records, PII mappings,
/// audit entries and records. Every damaged copy must show a typed error
/// somewhere, and nothing else may change: a staged record that does not
/// open stays out (its read says `NotFound`, `verify` names it), never
/// taken in as different data; a mapping that does not open fails
/// `restore` and the masked reads, never restores less.
#[test]
fn flipped_bytes_in_sealed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let fx = build(&dir.path().join("v.vault"), true);
    let files = Files::read(dir.path());
    control(&files, &fx);
    let db = files.bytes("v.vault").to_vec();
    // Sealed values are found through the SQL layer, then in the file.
    let conn = rusqlite::Connection::open(dir.path().join("v.vault")).unwrap();
    let sealed = |sql: &str| -> Vec<Vec<u8>> {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let tables = [
        (
            "staged records",
            sealed("SELECT sealed FROM ingest_records"),
        ),
        ("PII mappings", sealed("SELECT sealed FROM pii_maps")),
        ("audit entries", sealed("SELECT sealed FROM audit LIMIT 8")),
        (
            "records",
            sealed("SELECT sealed FROM records WHERE id % 37 = 5"),
        ),
    ];
    drop(conn);
    assert_eq!(
        tables[0].1.len(),
        STAGED,
        "the ingestor's records are staged"
    );
    assert_eq!(tables[1].1.len(), MASKED_CONVERSATIONS, "one mapping each");
    assert!(tables[2].1.len() == 8 && tables[3].1.len() >= 8);
    for (what, values) in &tables {
        let mut tally = Tally::default();
        let mut cases = 0;
        for value in values {
            let at = common::find(&db, value).expect("the sealed value is in the file");
            // Envelope header, body, and tag.
            for offset in [0, 9, value.len() / 2, value.len() - 1] {
                let mut bytes = db.clone();
                bytes[at + offset] ^= 0x20;
                let before = tally.error;
                files.sweep_copy("v.vault", Some(bytes), &fx, &mut tally);
                assert!(
                    tally.error > before,
                    "{what}: a flipped byte at {offset} went unnoticed"
                );
                cases += 1;
            }
        }
        report(&format!("flipped {what}"), cases, &tally);
        assert_eq!(tally.rolled_back, 0, "nothing to roll back to");
        assert_eq!(tally.missing, 0, "{what}: SQLite's own bytes are intact");
    }
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    let fx = build(&dir.path().join("v.vault"), true);
    let files = Files::read(dir.path());
    control(&files, &fx);
    let db = files.bytes("v.vault").to_vec();
    let mut tally = Tally::default();
    let mut cases = 0;
    let step = (db.len() / 60).max(1);
    for len in (0..db.len())
        .step_by(step)
        .chain([1, 99, 100, 101, db.len() - 1])
    {
        files.sweep_copy("v.vault", Some(db[..len].to_vec()), &fx, &mut tally);
        cases += 1;
    }
    report("truncations", cases, &tally);
    assert_eq!(tally.rolled_back, 0, "nothing to roll back to");
    assert!(tally.error > 0, "the sweep damaged nothing that mattered");
}

const LATE_COMMITS: usize = 6;
const LATE_PER_COMMIT: usize = 5;

#[test]
fn damaged_write_ahead_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.vault");
    let mut fx = build(&path, false);
    // Commit more while a handle stays open, so the last commits live in
    // the WAL only, then copy the files as a crash would leave them. A
    // clock of its own, so this session's entries differ from a sweep's.
    let late = start() + Duration::from_secs(90 * 60);
    let vault = Vault::open(&path, KeySource::raw_key(KEY), options_at(late)).unwrap();
    let mut state = fx.last().clone();
    let mut audit = vault.audit().entries(..).unwrap();
    assert_eq!(audit[..state.audit_len], fx.audit[..]);
    // The open's own commits: every length in between is a state.
    for len in state.audit_len + 1..=audit.len() {
        fx.states.push(State {
            records: state.records.clone(),
            audit_len: len,
        });
    }
    for k in 0..LATE_COMMITS {
        let before = audit.len();
        let ids = vault
            .put_batch(
                (0..LATE_PER_COMMIT)
                    .map(|i| {
                        NewRecord::new(ConversationId::new("c0"))
                            .prompt([Message::user(format!("late {k} {i}"))])
                    })
                    .collect(),
            )
            .unwrap();
        for (i, id) in ids.into_iter().enumerate() {
            let rec = Rec {
                id,
                conversation: "c0".into(),
                subject: None,
                model: String::new(),
                prompt: vec![Message::user(format!("late {k} {i}"))],
                response: None,
                created_at: late,
                expires_at: late + llmvault::DEFAULT_TTL,
                training_consent: false,
                tags: Vec::new(),
                meta: Vec::new(),
                masked: false,
            };
            state.records.insert(id, rec);
        }
        // No read in this session: each batch is one commit, one entry.
        audit = vault.audit().entries(..).unwrap();
        assert_eq!(audit.len(), before + 1);
        state.audit_len = audit.len();
        fx.states.push(state.clone());
    }
    fx.audit = audit;
    fx.head = vault.audit().head().unwrap();
    let files = Files::read(dir.path());
    drop(vault);
    let wal = files.bytes("v.vault-wal").to_vec();
    // A 32-byte header, then frames of a 24-byte header and one page.
    let frames = (wal.len() - 32) / (24 + 4096);
    assert_eq!((wal.len() - 32) % (24 + 4096), 0);
    assert!(
        frames >= 2 * LATE_COMMITS,
        "the WAL holds the late commits: {frames} frames"
    );
    control(&files, &fx);
    // Without its WAL, the copy is the vault before the late commits: they
    // live in the WAL alone.
    let mut tally = Tally::default();
    files.sweep_copy("v.vault-wal", None, &fx, &mut tally);
    assert_eq!(
        (tally.wrong, tally.panic, tally.error),
        (0, 0, 0),
        "{tally:?}"
    );
    assert!(
        tally.rolled_back > LATE_COMMITS * LATE_PER_COMMIT,
        "{tally:?}"
    );

    let mut tally = Tally::default();
    let mut cases = 0;
    // The WAL header, then every third frame and the last one (the
    // commit frame of the last transaction).
    let mut spots = vec![0, 8, 16, 24, 31];
    for f in (0..frames).step_by(3).chain([frames - 1]) {
        let frame = 32 + f * (24 + 4096);
        // Frame header (page number, commit size, salts, checksums), page.
        spots.extend([frame, frame + 4, frame + 12, frame + 20, frame + 24 + 2000]);
    }
    for at in spots {
        let mut bytes = wal.clone();
        bytes[at] ^= 0x5A;
        files.sweep_copy("v.vault-wal", Some(bytes), &fx, &mut tally);
        cases += 1;
    }
    report("damaged WAL", cases, &tally);
    assert!(
        tally.rolled_back > 0,
        "a damaged WAL frame rolled nothing back"
    );
}
