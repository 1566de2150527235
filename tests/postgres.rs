//! What only the PostgreSQL backend has: its TLS rules, schemas that keep
//! vaults of one database apart, a connection string that is never
//! printed, and purge cycles that do not grow the tables. The behaviour
//! it shares with SQLite is proven by the suites of the storage seam
//! (`on_each_backend!`), which run against the same server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Backend, available, key, new_vault_on, postgres_server, record};
use llmvault::{Error, KdfParams, Storage, Vault, VaultOptions};

/// The tests here run one at a time: a transaction open in another test
/// (any, in the same cluster) holds back what a vacuum may remove, and the
/// purge-cycle test measures exactly that.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts() -> VaultOptions {
    VaultOptions::default().kdf(KdfParams::minimum())
}

fn schema(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

#[test]
fn tls_is_verified_and_never_silently_off() {
    let _serial = serial();
    if !available(Backend::Postgres) {
        return;
    }
    let (conninfo, ca) = postgres_server().unwrap();
    // A server that is not on this machine: TLS or nothing.
    let remote = Storage::postgres("host=db.example.net user=app dbname=llm");
    let err = Vault::create_in(&remote, key(), opts()).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    // `require` or `verify-full` without a CA to verify with.
    for mode in ["require", "verify-full", "verify-ca"] {
        let storage = Storage::postgres(format!("{conninfo} sslmode={mode}"));
        let err = Vault::create_in(&storage, key(), opts()).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{mode}: {err:?}");
    }
    // A CA file and `sslmode=disable` contradict each other.
    let storage = Storage::postgres(format!("{conninfo} sslmode=disable")).ca_file(&ca);
    assert!(matches!(
        Vault::create_in(&storage, key(), opts()),
        Err(Error::InvalidInput { .. })
    ));
    // A CA the server's certificate does not chain to: refused at the
    // handshake, nothing stored.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=not the server's CA", "-keyout"])
        .arg(dir.path().join("other.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .unwrap();
    assert!(made.status.success());
    let wrong = Storage::postgres(conninfo.clone())
        .ca_file(&other_ca)
        .schema(schema("wrong_ca"));
    let err = Vault::create_in(&wrong, key(), opts()).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    // The right CA, verify-full as given: works.
    let right = Storage::postgres(format!("{conninfo} sslmode=verify-full"))
        .ca_file(&ca)
        .schema(schema("right_ca"));
    Vault::create_in(&right, key(), opts()).unwrap();
}

#[test]
fn schemas_keep_vaults_of_one_database_apart() {
    let _serial = serial();
    if !available(Backend::Postgres) {
        return;
    }
    let (conninfo, ca) = postgres_server().unwrap();
    let at = |name: &str| {
        Storage::postgres(conninfo.clone())
            .ca_file(&ca)
            .schema(schema(name))
    };
    let a = Vault::create_in(at("apart_a"), key(), opts()).unwrap();
    let b = Vault::create_in(
        at("apart_b"),
        llmvault::KeySource::passphrase("other"),
        opts(),
    )
    .unwrap();
    let id = a.put(record("c", Some("s"), "in a")).unwrap();
    assert!(
        b.conversation(&llmvault::ConversationId::new("c"))
            .unwrap()
            .is_empty()
    );
    assert!(a.get(id).is_ok());
    // A second create in a taken schema is refused; an empty one opens as
    // no vault at all.
    assert!(matches!(
        Vault::create_in(at("apart_a"), key(), opts()),
        Err(Error::AlreadyExists)
    ));
    assert!(matches!(
        Vault::open_in(at("apart_none"), key(), opts()),
        Err(Error::Io(_))
    ));
    // Names that are not plain identifiers never reach SQL.
    let evil = Storage::postgres(conninfo.clone())
        .ca_file(&ca)
        .schema("x\"; DROP SCHEMA public; --");
    assert!(matches!(
        Vault::create_in(&evil, key(), opts()),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn the_connection_string_is_never_printed() {
    let storage = Storage::postgres("host=db.internal user=app password=hunter2-secret dbname=llm")
        .schema("logs");
    let shown = format!("{storage:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("db.internal") && shown.contains("logs"),
        "{shown}"
    );
    let url = Storage::postgres("postgres://app:hunter2-secret@db.internal/llm");
    assert!(!format!("{url:?}").contains("hunter2"));
}

/// The size of the records table with its indexes and TOAST, in bytes.
fn records_size(t: &common::TestVault) -> i64 {
    t.raw().one("SELECT pg_total_relation_size('records')", &[])
}

#[test]
fn purge_cycles_do_not_grow_the_tables() {
    let _serial = serial();
    if !available(Backend::Postgres) {
        return;
    }
    let t = new_vault_on(Backend::Postgres);
    let text = "x".repeat(1024);
    let mut sizes = Vec::new();
    for cycle in 0..10 {
        for batch in 0..5 {
            let records = (0..100)
                .map(|i| {
                    record(&format!("c{cycle}-{batch}"), Some(&format!("s{i}")), &text)
                        .ttl(Duration::from_secs(86_400))
                })
                .collect();
            t.put_batch(records).unwrap();
        }
        t.clock.advance(Duration::from_secs(2 * 86_400));
        assert_eq!(t.purge_expired().unwrap().records, 500);
        sizes.push(records_size(&t));
    }
    eprintln!("records table after each purge cycle (bytes): {sizes:?}");
    // The space a purge frees is reused by the next cycle's records: after
    // the first cycles the table stops growing (some slack for the pages a
    // cycle's rows happen to land in).
    let settled = sizes[1].max(sizes[2]);
    assert!(
        sizes.iter().skip(3).all(|&s| s <= settled + settled / 2),
        "the table grows with every cycle: {sizes:?}"
    );
}
