//! Many app servers, one vault on PostgreSQL: four processes, each with
//! its own `Vault` handle, `put`, `put_batch`, `get`, `erase_subject`,
//! `purge_expired`, `rotate_keys` and (one of them) `change_key` at the
//! same time. Then every acknowledged record reads back unless it was
//! erased or expired, the audit chain verifies and names every call of
//! every process, and no data key sealed more records than its bound.
//! A second phase shows that a subject erased by one process cannot be
//! read by another that holds its key in memory.
//!
//! Needs the server `.ci/postgres` starts (fails under `CI=true` without
//! it, else skips). Runs without libtest's harness so that the same
//! binary is the child.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{audited_ids, checked_audit, postgres_server};
use llmvault::audit::Actor;
use llmvault::{
    AuditAction, ConversationId, Error, KdfParams, KeySource, Message, NewRecord, RecordId,
    Storage, SubjectId, Vault, VaultOptions,
};

const SERVERS: usize = 4;
const ROUNDS: usize = 90;
/// Small, so keys fill up and are replaced while the servers write.
const KEY_BOUND: u64 = 7;

fn keys() -> [KeySource; 2] {
    [
        KeySource::raw_key([0x51; 32]),
        KeySource::raw_key([0x52; 32]),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--server") {
        server(&args[at + 1], args[at + 2].parse().unwrap());
        return;
    }
    if let Some(at) = args.iter().position(|a| a == "--holder") {
        holder(&args[at + 1]);
        return;
    }
    if postgres_server().is_none() {
        println!("fleet: skipped, no PostgreSQL server (run under `bash .ci/postgres`)");
        return;
    }
    let schema = format!("fleet_{}", std::process::id());
    four_servers_share_one_vault(&schema);
    an_erasure_reaches_a_key_cached_in_another_process(&schema);
    println!("fleet: 2 passed, 0 failed");
}

fn storage(schema: &str) -> Storage {
    let (conninfo, ca) = postgres_server().unwrap();
    Storage::postgres(conninfo).ca_file(ca).schema(schema)
}

fn options(actor: &str) -> VaultOptions {
    VaultOptions::default()
        .kdf(KdfParams::minimum())
        .max_records_per_key(KEY_BOUND)
        .actor(Actor::new(actor))
}

/// Opens with whichever key is current (one server changes it mid-run).
fn open(schema: &str, actor: &str) -> Vault {
    loop {
        for key in keys().iter().rev() {
            match Vault::open_in(storage(schema), key, options(actor)) {
                Ok(v) => return v,
                Err(Error::WrongKey | Error::Busy) => {}
                Err(e) => panic!("{actor}: open: {e}"),
            }
        }
    }
}

/// Runs `op` until it ends other than `Busy`; on `KeyChanged` (another
/// server changed the key) opens the vault again and retries.
fn retry<T>(
    vault: &mut Vault,
    schema: &str,
    actor: &str,
    mut op: impl FnMut(&Vault) -> Result<T, Error>,
) -> Result<T, Error> {
    loop {
        match op(vault) {
            Err(Error::Busy) => {}
            Err(Error::KeyChanged) => *vault = open(schema, actor),
            other => return other,
        }
    }
}

fn record(actor: &str, n: usize, subject: &str, short: bool) -> NewRecord {
    let ttl = if short {
        Duration::from_millis(1)
    } else {
        Duration::from_secs(86_400)
    };
    NewRecord::new(ConversationId::new(format!("conv-{actor}")))
        .subject(SubjectId::new(subject))
        .prompt([Message::user(format!("{actor} {n}"))])
        .ttl(ttl)
}

/// One app server. Prints one line per call that succeeded:
/// `put ID N SUBJECT long|short`, `get ID`, `erase SUBJECT`, `purge`,
/// `rotate`, `changekey`.
fn server(schema: &str, index: usize) {
    let actor = format!("server-{index}");
    let mut vault = open(schema, &actor);
    let mut out = std::io::stdout().lock();
    let mut long: Vec<(RecordId, String)> = Vec::new();
    let mut n = 0;
    for round in 0..ROUNDS {
        let subject = format!("{actor}-s{}", round % 3);
        let id = retry(&mut vault, schema, &actor, |v| {
            v.put(record(&actor, n, &subject, false))
        })
        .unwrap();
        writeln!(out, "put {} {n} {subject} long", id.as_u64()).unwrap();
        long.push((id, subject.clone()));
        n += 1;
        let batch: Vec<(usize, bool)> = (0..3).map(|k| (n + k, k == 2)).collect();
        let ids = retry(&mut vault, schema, &actor, |v| {
            v.put_batch(
                batch
                    .iter()
                    .map(|&(m, short)| record(&actor, m, &subject, short))
                    .collect(),
            )
        })
        .unwrap();
        for (id, &(m, short)) in ids.iter().zip(&batch) {
            let kind = if short { "short" } else { "long" };
            writeln!(out, "put {} {m} {subject} {kind}", id.as_u64()).unwrap();
            if !short {
                long.push((*id, subject.clone()));
            }
        }
        n += 3;
        // A read of an earlier record of this server's, not erased.
        let (id, _) = long[(round * 7) % long.len()].clone();
        let got = retry(&mut vault, schema, &actor, |v| v.get(id)).unwrap();
        assert!(got.prompt()[0].content().starts_with(&actor));
        writeln!(out, "get {}", id.as_u64()).unwrap();
        if round % 9 == 8 {
            let gone = format!("{actor}-s{}", (round / 9) % 3);
            retry(&mut vault, schema, &actor, |v| {
                v.erase_subject(&SubjectId::new(&gone))
            })
            .unwrap();
            writeln!(out, "erase {gone}").unwrap();
            for (id, _) in long.iter().filter(|(_, s)| *s == gone) {
                let after = vault.get(*id);
                assert!(
                    matches!(
                        after,
                        Err(Error::NotFound { .. } | Error::KeyDestroyed { .. })
                    ),
                    "{actor}: erased record {id} read: {after:?}"
                );
            }
            long.retain(|(_, s)| *s != gone);
        }
        if round % 6 == 5 {
            retry(&mut vault, schema, &actor, Vault::purge_expired).unwrap();
            writeln!(out, "purge").unwrap();
        }
        if index == 1 && round % 10 == 3 {
            retry(&mut vault, schema, &actor, Vault::rotate_keys).unwrap();
            writeln!(out, "rotate").unwrap();
        }
        if index == 0 && round == ROUNDS / 2 {
            let [_, new] = keys();
            retry(&mut vault, schema, &actor, |v| v.change_key(&new)).unwrap();
            writeln!(out, "changekey").unwrap();
        }
        out.flush().unwrap();
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

struct Put {
    n: usize,
    subject: String,
    long: bool,
    /// Its subject was erased after it was stored.
    erased: bool,
}

#[derive(Default)]
struct Calls {
    puts: HashMap<u64, Put>,
    gets: Vec<u64>,
    erased: Vec<String>,
    purges: u64,
    rotations: u64,
    key_changes: u64,
}

fn parse(output: &str) -> Calls {
    let mut calls = Calls::default();
    for line in output.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["put", id, n, subject, kind] => {
                let put = Put {
                    n: n.parse().unwrap(),
                    subject: (*subject).to_owned(),
                    long: *kind == "long",
                    erased: false,
                };
                calls.puts.insert(id.parse().unwrap(), put);
            }
            ["get", id] => calls.gets.push(id.parse().unwrap()),
            ["erase", subject] => {
                for put in calls.puts.values_mut() {
                    put.erased |= put.subject == *subject;
                }
                calls.erased.push((*subject).to_owned());
            }
            ["purge"] => calls.purges += 1,
            ["rotate"] => calls.rotations += 1,
            ["changekey"] => calls.key_changes += 1,
            _ => panic!("unexpected line from a server: {line}"),
        }
    }
    calls
}

fn four_servers_share_one_vault(schema: &str) {
    let [first, current] = keys();
    drop(Vault::create_in(storage(schema), &first, options("setup")).unwrap());

    let children: Vec<Child> = (0..SERVERS)
        .map(|i| spawn(&["--server", schema, &i.to_string()]))
        .collect();
    let mut all = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "server-{i} failed");
        all.push(parse(&String::from_utf8(output.stdout).unwrap()));
    }

    let vault = Vault::open_in(storage(schema), &current, options("checker")).unwrap();
    // Every acknowledged record reads back, unless erased or expired; no
    // erased one does.
    let (mut checked, mut erased) = (0, 0);
    for (i, calls) in all.iter().enumerate() {
        for (id, put) in &calls.puts {
            let got = vault.get(RecordId::from_u64(*id));
            if put.erased {
                assert!(
                    matches!(
                        got,
                        Err(Error::NotFound { .. } | Error::KeyDestroyed { .. })
                    ),
                    "server-{i}'s erased record {id}: {got:?}"
                );
                erased += 1;
            } else if put.long {
                let got = got.unwrap_or_else(|e| panic!("server-{i}'s record {id}: {e}"));
                assert_eq!(got.prompt()[0].content(), format!("server-{i} {}", put.n));
                checked += 1;
            }
        }
    }
    assert!(
        checked >= SERVERS * ROUNDS / 4 && erased >= SERVERS * ROUNDS / 4,
        "only {checked} live and {erased} erased records checked"
    );

    // The chain verifies and names every call of every server.
    let entries = checked_audit(&vault);
    for (i, calls) in all.iter().enumerate() {
        let actor = format!("server-{i}");
        let theirs: Vec<_> = entries
            .iter()
            .filter(|e| e.actor == actor)
            .cloned()
            .collect();
        let mut written: HashSet<u64> = audited_ids(&theirs, AuditAction::Put)
            .iter()
            .map(|r| r.as_u64())
            .collect();
        written.extend(
            audited_ids(&theirs, AuditAction::PutBatch)
                .iter()
                .map(|r| r.as_u64()),
        );
        assert_eq!(
            written,
            calls.puts.keys().copied().collect(),
            "{actor}'s writes"
        );
        let mut read: Vec<u64> = audited_ids(&theirs, AuditAction::Get)
            .iter()
            .map(|r| r.as_u64())
            .collect();
        read.sort_unstable();
        let mut gets = calls.gets.clone();
        gets.sort_unstable();
        // Reads after an erasure that found nothing are audited as
        // failures; the successful ones are exactly those printed.
        assert_eq!(read, gets, "{actor}'s reads");
        let count = |action: AuditAction| {
            theirs
                .iter()
                .filter(|e| e.action == action && e.outcome == llmvault::AuditOutcome::Ok)
                .count() as u64
        };
        assert_eq!(count(AuditAction::Erase), calls.erased.len() as u64);
        assert_eq!(count(AuditAction::Purge), calls.purges);
        assert_eq!(count(AuditAction::RotateKeys), calls.rotations);
        assert_eq!(count(AuditAction::ChangeKey), calls.key_changes);
    }
    assert_eq!(all[0].key_changes, 1);
    assert!(all[1].rotations >= 3);

    // No data key sealed more records than its bound.
    let mut sql = sql_client();
    let most: i64 = sql
        .query_one(
            &format!("SELECT coalesce(max(sealed), 0) FROM \"{schema}\".keys"),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        (1..=KEY_BOUND as i64).contains(&most),
        "a key sealed {most} records (bound {KEY_BOUND})"
    );
}

/// A plain client of the test server, for what the vault does not show.
fn sql_client() -> postgres::Client {
    let (conninfo, _) = postgres_server().unwrap();
    postgres::Client::connect(&conninfo, postgres::NoTls).unwrap()
}

/// Holds a subject's record (and so its key) in memory, waits, then
/// reads it again after another process erased the subject.
fn holder(schema: &str) {
    let mut vault = open(schema, "holder");
    let subject = SubjectId::new("shared");
    let id = retry(&mut vault, schema, "holder", |v| {
        v.put(record("holder", 0, "shared", false))
    })
    .unwrap();
    vault.get(id).unwrap();
    println!("{}", id.as_u64());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    let after = vault.get(id);
    let verdict = match after {
        Err(Error::NotFound { .. } | Error::KeyDestroyed { .. }) => "refused",
        Ok(_) => "read",
        Err(e) => panic!("holder: {e}"),
    };
    // The subject can be written again, under a new key.
    let again = retry(&mut vault, schema, "holder", |v| {
        v.put(record("holder", 1, "shared", false))
    })
    .unwrap();
    vault.get(again).unwrap();
    assert!(!vault.subject_records(&subject).unwrap().is_empty());
    println!("{verdict}");
}

fn an_erasure_reaches_a_key_cached_in_another_process(schema: &str) {
    let mut child = spawn(&["--holder", schema]);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let id: u64 = lines.next().unwrap().unwrap().parse().unwrap();
    let [_, current] = keys();
    let vault = Vault::open_in(storage(schema), &current, options("eraser")).unwrap();
    assert!(vault.get(RecordId::from_u64(id)).is_ok());
    vault.erase_subject(&SubjectId::new("shared")).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "refused");
    assert!(child.wait().unwrap().success());
}
