//! Crash safety: a child process works on a vault in a loop and prints a
//! line each time a call has returned; the parent kills it with SIGKILL at
//! varied moments, reopens the vault, and checks that everything
//! acknowledged happened and that the call in flight happened fully or
//! not at all. Covers `put`, `put_batch`, `erase_subject`, `purge_expired`
//! and `change_key`. After every kill the audit chain must verify, and
//! every acknowledged write (and every acknowledged read: a read returns
//! only once its entry is in the handle's read log, which the next open
//! folds in) must have its entry; a change stored without its entry, or
//! an entry without its change, fails the round. A read log a killed
//! handle left and someone then removed or changed is found by `verify`.
//! Runs without libtest's harness so that the same binary can be the child.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{audited_ids, checked_audit, written_ids};
use llmvault::clock::ManualClock;
use llmvault::{
    Actor, AuditAction, AuditEntry, AuditOutcome, ConversationId, Error, KeySource, Message,
    NewRecord, RecordId, SubjectId, Vault, VaultOptions,
};

const KILLS: usize = 24;
const KEY: [u8; 32] = [0x3C; 32];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--crash-child") {
        let path = Path::new(&args[at + 2]);
        match args[at + 1].as_str() {
            "put" => child(path),
            "batch" => batch_child(path, &args[at + 3]),
            "erase" => erase_child(path),
            "purge" => purge_child(path),
            "change-key" => change_key_child(path),
            "read" => read_child(path),
            other => panic!("unknown child mode {other}"),
        }
        return;
    }
    acknowledged_puts_survive_sigkill();
    batches_are_all_or_nothing();
    erasure_is_all_or_nothing();
    purge_is_all_or_nothing();
    change_key_leaves_exactly_one_working_key();
    acknowledged_reads_survive_sigkill();
    a_dead_handles_read_log_removed_or_changed_is_found();
    println!("crash: 7 passed, 0 failed");
}

/// Starts the child in `mode` and hands its acknowledgement lines to
/// `on_line` until it returns false; then kills the child with SIGKILL.
fn run_and_kill(mode: &str, path: &Path, extra: &[&str], mut on_line: impl FnMut(&str) -> bool) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--crash-child", mode])
        .arg(path)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("child ended early").unwrap();
        if !on_line(&line) {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
}

fn open(path: &Path, key: [u8; 32]) -> Vault {
    Vault::open(path, KeySource::raw_key(key), options()).unwrap()
}

fn options() -> VaultOptions {
    VaultOptions::default().clock(Arc::new(ManualClock::new(common_start())))
}

/// A fixed time so the parent and the children agree on what expired.
fn common_start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn fresh_vault(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    drop(Vault::create(&path, KeySource::raw_key(KEY), options()).unwrap());
    path
}

const BATCH: usize = 20;

fn batch_child(path: &Path, round: &str) {
    let vault = open(path, KEY);
    let mut out = std::io::stdout().lock();
    for k in 0.. {
        let recs = (0..BATCH)
            .map(|i| {
                NewRecord::new(ConversationId::new(format!("b{round}-{k}")))
                    .subject(SubjectId::new("batcher"))
                    .prompt([Message::user(format!("batch {k} item {i}"))])
            })
            .collect();
        vault.put_batch(recs).unwrap();
        writeln!(out, "BATCH {k}").unwrap();
        out.flush().unwrap();
    }
}

fn batches_are_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_vault(dir.path(), "batch.vault");
    let mut stored = 0;
    for round in 0..6 {
        let wanted = round * 3 + 1;
        let mut acked = 0;
        run_and_kill("batch", &path, &[&round.to_string()], |_| {
            acked += 1;
            acked < wanted
        });
        let vault = open(&path, KEY);
        let batches: HashSet<Vec<RecordId>> = checked_audit(&vault)
            .iter()
            .filter(|e| e.action == AuditAction::PutBatch && e.outcome == AuditOutcome::Ok)
            .map(|e| e.records.clone())
            .collect();
        let mut reads = Vec::new();
        for k in 0..acked + 3 {
            let recs = vault
                .conversation(&ConversationId::new(format!("b{round}-{k}")))
                .unwrap();
            let n = recs.len();
            let ids: Vec<RecordId> = recs.iter().map(|r| r.id()).collect();
            if n > 0 {
                stored += 1;
                assert!(
                    batches.contains(&ids),
                    "round {round}: batch {k} stored without its PutBatch entry"
                );
            }
            reads.push(ids);
            if k < acked {
                assert_eq!(n, BATCH, "round {round}: acknowledged batch {k} incomplete");
            } else {
                assert!(
                    n == 0 || n == BATCH,
                    "round {round}: batch {k} half-written ({n})"
                );
            }
        }
        assert_eq!(
            batches.len(),
            stored,
            "round {round}: a PutBatch entry without its batch"
        );
        assert_reads_logged(&vault, AuditAction::Conversation, &reads);
        vault.verify().unwrap();
    }
}

/// The newest entries of `action` name exactly the ids of `reads`, in
/// order: each read the caller got back was logged before it returned.
fn assert_reads_logged(vault: &Vault, action: AuditAction, reads: &[Vec<RecordId>]) {
    let logged: Vec<Vec<RecordId>> = checked_audit(vault)
        .into_iter()
        .filter(|e| e.action == action && e.outcome == AuditOutcome::Ok)
        .map(|e| e.records)
        .collect();
    assert!(logged.len() >= reads.len(), "{action:?}: reads missing");
    assert_eq!(&logged[logged.len() - reads.len()..], reads);
}

const SUBJECTS: usize = 40;
const PER_SUBJECT: usize = 5;

fn erase_child(path: &Path) {
    let vault = open(path, KEY);
    let mut out = std::io::stdout().lock();
    for s in 0..SUBJECTS {
        vault
            .erase_subject(&SubjectId::new(format!("s{s}")))
            .unwrap();
        writeln!(out, "ERASED {s}").unwrap();
        out.flush().unwrap();
    }
    writeln!(out, "DONE").unwrap();
    out.flush().unwrap();
    std::thread::park();
}

fn erasure_is_all_or_nothing() {
    for round in 0..6 {
        let dir = tempfile::tempdir().unwrap();
        let path = fresh_vault(dir.path(), "erase.vault");
        {
            let vault = open(&path, KEY);
            let recs = (0..SUBJECTS * PER_SUBJECT)
                .map(|i| record(i as u64).subject(SubjectId::new(format!("s{}", i % SUBJECTS))))
                .collect();
            vault.put_batch(recs).unwrap();
        }
        let wanted = round * 6 + 1;
        let mut acked = 0;
        run_and_kill("erase", &path, &[], |_| {
            acked += 1;
            acked < wanted
        });
        let vault = open(&path, KEY);
        let erasures: Vec<AuditEntry> = checked_audit(&vault)
            .into_iter()
            .filter(|e| e.action == AuditAction::Erase)
            .collect();
        let mut erased = 0;
        let mut reads = Vec::new();
        for s in 0..SUBJECTS {
            let recs = vault
                .subject_records(&SubjectId::new(format!("s{s}")))
                .unwrap();
            let n = recs.len();
            reads.push(recs.iter().map(|r| r.id()).collect());
            if n == 0 {
                erased += 1;
            }
            if s < acked {
                assert_eq!(n, 0, "round {round}: erased subject s{s} still has records");
            } else {
                assert!(
                    n == 0 || n == PER_SUBJECT,
                    "round {round}: s{s} half-erased ({n})"
                );
            }
        }
        // One successful entry per erased subject, each with its count and
        // its own subject tag.
        assert_eq!(erasures.len(), erased, "round {round}: erasures vs entries");
        let tags: HashSet<_> = erasures.iter().map(|e| e.target_tag.clone()).collect();
        assert_eq!(
            tags.len(),
            erased,
            "round {round}: one subject erased twice"
        );
        for e in &erasures {
            assert_eq!(e.outcome, AuditOutcome::Ok);
            assert_eq!(e.count, PER_SUBJECT as u64, "round {round}");
            assert!(e.target_tag.is_some());
        }
        assert_reads_logged(&vault, AuditAction::SubjectRecords, &reads);
        vault.verify().unwrap();
    }
}

const HOURS: u64 = 60;

fn purge_child(path: &Path) {
    let clock = Arc::new(ManualClock::new(common_start()));
    let vault = Vault::open(
        path,
        KeySource::raw_key(KEY),
        VaultOptions::default().clock(clock.clone()),
    )
    .unwrap();
    let mut out = std::io::stdout().lock();
    for step in 1..=HOURS {
        clock.set(common_start() + Duration::from_secs(step * 3600));
        vault.purge_expired().unwrap();
        writeln!(out, "PURGED {step}").unwrap();
        out.flush().unwrap();
    }
    std::thread::park();
}

fn purge_is_all_or_nothing() {
    for round in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = fresh_vault(dir.path(), "purge.vault");
        {
            // Record i expires after i hours; a purge at hour h removes 1..=h.
            let vault = open(&path, KEY);
            let recs = (1..=HOURS)
                .map(|i| record(i).ttl(Duration::from_secs(i * 3600)))
                .collect();
            vault.put_batch(recs).unwrap();
        }
        let wanted = round * 9 + 1;
        let mut acked = 0;
        run_and_kill("purge", &path, &[], |_| {
            acked += 1;
            acked < wanted
        });
        let vault = open(&path, KEY);
        let stored = vault.verify().unwrap().records as u64;
        assert!(
            stored == HOURS - acked || stored == HOURS - acked - 1,
            "round {round}: {acked} purges acknowledged, {stored} records stored"
        );
        // Each purge removed exactly one record, and logged it in the same
        // transaction: as many entries as records gone.
        let purges: Vec<AuditEntry> = checked_audit(&vault)
            .into_iter()
            .filter(|e| e.action == AuditAction::Purge)
            .collect();
        assert_eq!(purges.len() as u64, HOURS - stored, "round {round}");
        assert!(
            purges
                .iter()
                .all(|e| e.count == 1 && e.outcome == AuditOutcome::Ok),
            "round {round}: {purges:?}"
        );
    }
}

const OTHER_KEY: [u8; 32] = [0x5D; 32];

fn change_key_child(path: &Path) {
    let vault = open(path, KEY);
    let mut out = std::io::stdout().lock();
    loop {
        for (name, key) in [("OTHER", OTHER_KEY), ("FIRST", KEY)] {
            vault.change_key(KeySource::raw_key(key)).unwrap();
            writeln!(out, "KEY {name}").unwrap();
            out.flush().unwrap();
        }
    }
}

fn change_key_leaves_exactly_one_working_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = fresh_vault(dir.path(), "rekey.vault");
    let ids = open(&path, KEY)
        .put_batch(
            (0..30)
                .map(|i| record(i).subject(SubjectId::new(format!("s{}", i % 6))))
                .collect(),
        )
        .unwrap();
    let mut changes_before = 0;
    for round in 0..6 {
        let wanted = round * 5 + 1;
        let mut last = String::new();
        let mut acked = 0;
        run_and_kill("change-key", &path, &[], |line| {
            last = line.to_owned();
            acked += 1;
            acked < wanted
        });
        let first = Vault::open(&path, KeySource::raw_key(KEY), options());
        let other = Vault::open(&path, KeySource::raw_key(OTHER_KEY), options());
        let (vault, first_is_current) = match (first, other) {
            (Ok(v), Err(Error::WrongKey)) => (v, true),
            (Err(Error::WrongKey), Ok(v)) => (v, false),
            (a, b) => panic!("round {round} (last ack {last}): first {a:?}, other {b:?}"),
        };
        // Every change flips the key and commits with its entry: the
        // number of entries says which key is current. The child keeps
        // changing keys while its acknowledgements wait in the pipe, so
        // more changes than were read may have committed, never fewer.
        let changes = checked_audit(&vault)
            .iter()
            .filter(|e| e.action == AuditAction::ChangeKey && e.outcome == AuditOutcome::Ok)
            .count();
        assert!(
            changes - changes_before >= acked,
            "round {round}: {acked} changes acknowledged, {} logged",
            changes - changes_before
        );
        assert_eq!(
            changes % 2 == 0,
            first_is_current,
            "round {round}: {changes} ChangeKey entries"
        );
        changes_before = changes;
        for id in &ids {
            vault.get(*id).unwrap();
        }
        let gets = audited_ids(&checked_audit(&vault), AuditAction::Get);
        assert_eq!(&gets[gets.len() - ids.len()..], ids.as_slice());
        vault.verify().unwrap();
        // Put it back under the first key for the next round.
        drop(vault);
        if !first_is_current {
            open(&path, OTHER_KEY)
                .change_key(KeySource::raw_key(KEY))
                .unwrap();
            changes_before += 1;
        }
    }
}

fn record(i: u64) -> NewRecord {
    NewRecord::new(ConversationId::new(format!("conv-{}", i % 5)))
        .subject(SubjectId::new(format!("user-{}", i % 3)))
        .prompt([Message::user(format!("prompt number {i}"))])
        .response(Message::assistant("x".repeat((i % 7) as usize * 300)))
}

/// The child: store records forever, reading each back, and acknowledge
/// both once `get` has returned.
fn child(path: &Path) {
    let options = VaultOptions::default().actor(Actor::new("child"));
    let vault = Vault::open(path, KeySource::raw_key(KEY), options).unwrap();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0.. {
        let id = vault.put(record(i)).unwrap();
        vault.get(id).unwrap();
        writeln!(out, "PUT {} {i}", id.as_u64()).unwrap();
        out.flush().unwrap();
    }
}

fn acknowledged_puts_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.vault");
    drop(Vault::create(&path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap());
    let exe = std::env::current_exe().unwrap();

    let mut acknowledged: Vec<(RecordId, u64)> = Vec::new();
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--crash-child", "put"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Vary the moment of death: after 1 to 37 acknowledged puts; the
        // child is mid-way through its next put (sealing, writing or
        // syncing) when the signal lands.
        let wanted = (round * 11) % 37 + 1;
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < wanted {
            let line = lines.next().expect("child ended early").unwrap();
            let mut parts = line.split_whitespace().skip(1);
            let id: u64 = parts.next().unwrap().parse().unwrap();
            let i: u64 = parts.next().unwrap().parse().unwrap();
            acknowledged.push((RecordId::from_u64(id), i));
            seen += 1;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let vault = Vault::open(&path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap();
        let entries = checked_audit(&vault);
        assert!(entries.iter().all(|e| e.outcome == AuditOutcome::Ok));
        let written = written_ids(&entries);
        let child_reads: HashSet<RecordId> = entries
            .iter()
            .filter(|e| e.action == AuditAction::Get && e.actor == "child")
            .flat_map(|e| e.records.iter().copied())
            .collect();
        for (id, _) in &acknowledged {
            assert!(written.contains(id), "round {round}: {id} has no Put entry");
            assert!(
                child_reads.contains(id),
                "round {round}: acknowledged read of {id} has no Get entry"
            );
        }
        // The put in flight, if it committed, committed with its entry.
        assert_eq!(written.len(), vault.verify().unwrap().records);
        for id in &written {
            vault.get(*id).unwrap();
        }
        for (id, i) in &acknowledged {
            let rec = vault
                .get(*id)
                .unwrap_or_else(|e| panic!("round {round}: acknowledged record {id} lost: {e}"));
            assert_eq!(rec.prompt()[0].content(), format!("prompt number {i}"));
            assert_eq!(
                rec.response().unwrap().content().len(),
                (*i % 7) as usize * 300
            );
        }
        let report = vault.verify().unwrap();
        assert!(report.records >= acknowledged.len());
    }
    println!(
        "crash: {KILLS} kills, {} acknowledged records all intact",
        acknowledged.len()
    );
}

/// Records the read children read: put by the parent, before any child.
const READABLE: u64 = 40;

/// The child: reads records forever (no write, so every entry stays in
/// its read log but for the folds the log makes itself every 1,024
/// reads), acknowledging each once `get` returned.
fn read_child(path: &Path) {
    let options = VaultOptions::default().actor(Actor::new("reader"));
    let vault = Vault::open(path, KeySource::raw_key(KEY), options).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let id = RecordId::from_u64(i % READABLE + 1);
        vault.get(id).unwrap();
        writeln!(out, "GET {i}").unwrap();
        out.flush().unwrap();
    }
}

fn vault_to_read(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("reads.vault");
    let vault = Vault::create(&path, KeySource::raw_key(KEY), VaultOptions::default()).unwrap();
    let ids = vault
        .put_batch((0..READABLE).map(record).collect())
        .unwrap();
    assert_eq!(ids.last().unwrap().as_u64(), READABLE);
    path
}

/// How many `Get` entries of the reader the chain holds, after checking it.
fn reader_gets(vault: &Vault) -> usize {
    checked_audit(vault)
        .iter()
        .filter(|e| e.action == AuditAction::Get && e.actor == "reader")
        .count()
}

fn read_logs_left(path: &Path) -> usize {
    let mut dir = path.as_os_str().to_owned();
    dir.push("-reads");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// Starts a reader child, kills it with SIGKILL once it has acknowledged
/// `wanted` reads, and returns how many it acknowledged in all: the child
/// runs ahead of the parent by what the pipe holds, so the lines still in
/// the pipe after the kill count too.
fn reads_until_killed(path: &Path, wanted: usize) -> usize {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--crash-child", "read"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..wanted {
        lines.next().expect("child ended early").unwrap();
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Each line reaches the pipe in one write of a few bytes, which a
    // pipe takes whole or not at all: no line is cut short.
    wanted + lines.map_while(Result::ok).count()
}

fn acknowledged_reads_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = vault_to_read(dir.path());
    let mut acknowledged = 0;
    // Killed after a few reads, and after more than a log folds itself.
    for wanted in [1, 7, 300, 1500] {
        acknowledged += reads_until_killed(&path, wanted);
        assert!(
            read_logs_left(&path) >= 1,
            "the killed reader's log is there"
        );
        let vault = open(&path, KEY);
        let logged = reader_gets(&vault);
        // The read in flight may have been logged too, never one less.
        assert!(
            logged == acknowledged || logged == acknowledged + 1,
            "after {wanted} reads: {logged} Get entries for {acknowledged} acknowledged"
        );
        acknowledged = logged;
        drop(vault);
        assert_eq!(read_logs_left(&path), 0, "folded and removed");
    }
}

fn a_dead_handles_read_log_removed_or_changed_is_found() {
    for damage in ["remove", "flip"] {
        let dir = tempfile::tempdir().unwrap();
        let path = vault_to_read(dir.path());
        let seen = reads_until_killed(&path, 20);
        let mut logs = path.as_os_str().to_owned();
        logs.push("-reads");
        for log in std::fs::read_dir(&logs).unwrap() {
            let log = log.unwrap().path();
            let mut bytes = std::fs::read(&log).unwrap();
            if damage == "remove" {
                std::fs::remove_file(&log).unwrap();
            } else if bytes.len() > 200 {
                let at = bytes.len() / 2;
                bytes[at] ^= 0x01;
                std::fs::write(&log, bytes).unwrap();
            }
        }
        let vault = open(&path, KEY);
        let damaged: Vec<AuditEntry> = vault
            .audit()
            .entries(..)
            .unwrap()
            .into_iter()
            .filter(|e| e.action == AuditAction::ReadLogDamaged)
            .collect();
        assert_eq!(damaged.len(), 1, "{damage}: one entry says reads were lost");
        match vault.audit().verify() {
            Err(Error::AuditTampered { seq }) => assert_eq!(seq, damaged[0].seq, "{damage}"),
            other => panic!("{damage}: verify gave {other:?}"),
        }
        let logged = vault
            .audit()
            .entries(..)
            .unwrap()
            .iter()
            .filter(|e| e.action == AuditAction::Get && e.actor == "reader")
            .count();
        if damage == "remove" {
            assert_eq!(logged, 0, "the reads went with the log");
        } else {
            assert!(
                logged < seen,
                "{damage}: entries after the flipped byte are not folded"
            );
        }
    }
}
