//! The tables in PostgreSQL (FORMAT.md §8, "PostgreSQL"): the same logical
//! tables and columns as the SQLite file, as `bytea` and `bigint`, and
//! three of the server's own: the writers' turn and the read logs.

use super::connect::{Conn, quoted};
use super::storage_error;
use crate::error::{Error, Result};

/// Each table's name and its `CREATE` statement (indexes after their table).
pub(super) const TABLES: &[(&str, &str)] = &[
    (
        "meta",
        "CREATE TABLE meta (name text PRIMARY KEY, value bytea NOT NULL)",
    ),
    (
        "counters",
        "CREATE TABLE counters (name text PRIMARY KEY, next bigint NOT NULL)",
    ),
    (
        "keys",
        "CREATE TABLE keys (id bigint PRIMARY KEY, subject bytea, not_after bigint NOT NULL, \
         sealed bigint NOT NULL, retired bigint NOT NULL, wrapped bytea NOT NULL)",
    ),
    ("", "CREATE INDEX keys_scope ON keys (subject, not_after)"),
    ("", "CREATE INDEX keys_expiry ON keys (not_after)"),
    (
        "records",
        "CREATE TABLE records (id bigint PRIMARY KEY, conversation bytea NOT NULL, \
         subject bytea, expires_at bigint NOT NULL, sealed bytea NOT NULL)",
    ),
    (
        "",
        "CREATE INDEX records_conversation ON records (conversation)",
    ),
    (
        "",
        "CREATE INDEX records_subject ON records (subject) WHERE subject IS NOT NULL",
    ),
    ("", "CREATE INDEX records_expiry ON records (expires_at)"),
    (
        "audit",
        "CREATE TABLE audit (seq bigint PRIMARY KEY, at bigint NOT NULL, sealed bytea NOT NULL, \
         mac bytea NOT NULL)",
    ),
    (
        "maintenance",
        "CREATE TABLE maintenance (n bigint PRIMARY KEY, at bigint NOT NULL, \
         records bigint NOT NULL, keys bigint NOT NULL)",
    ),
    (
        "ingest_keys",
        "CREATE TABLE ingest_keys (id bigint PRIMARY KEY, not_after bigint NOT NULL, \
         wrapped bytea NOT NULL)",
    ),
    (
        "ingest_records",
        "CREATE TABLE ingest_records (id bigint PRIMARY KEY, key_id bigint NOT NULL, \
         expires_at bigint NOT NULL, sealed bytea NOT NULL)",
    ),
    (
        "",
        "CREATE INDEX ingest_expiry ON ingest_records (expires_at)",
    ),
    (
        "pii_maps",
        "CREATE TABLE pii_maps (conversation bytea PRIMARY KEY, subject bytea, \
         expires_at bigint NOT NULL, sealed bytea NOT NULL)",
    ),
    ("", "CREATE INDEX pii_maps_expiry ON pii_maps (expires_at)"),
    (
        "",
        "CREATE INDEX pii_maps_subject ON pii_maps (subject) WHERE subject IS NOT NULL",
    ),
    // The one row every write transaction locks first (`SELECT … FOR
    // UPDATE`): writers of one vault take turns, in every process.
    (
        "writer_turn",
        "CREATE TABLE writer_turn (one boolean PRIMARY KEY)",
    ),
    ("", "INSERT INTO writer_turn VALUES (true)"),
    // Read logs (src/store/read_logs.rs): who holds each, until when (the
    // server's clock, ms), and its bytes as appended.
    (
        "read_logs",
        "CREATE TABLE read_logs (name bytea PRIMARY KEY, holder bytea NOT NULL, \
         held_until bigint NOT NULL)",
    ),
    (
        "read_log_bytes",
        "CREATE TABLE read_log_bytes (name bytea NOT NULL, at bigint NOT NULL, \
         bytes bytea NOT NULL, PRIMARY KEY (name, at))",
    ),
];

fn table_names() -> impl Iterator<Item = &'static str> {
    TABLES.iter().map(|(t, _)| *t).filter(|t| !t.is_empty())
}

/// The vault's tables found in the schema.
fn found_tables(conn: &mut Conn, schema: &str) -> Result<Vec<String>> {
    let rows = conn
        .client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .map_err(storage_error)?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<_, String>(0).ok())
        .filter(|t| table_names().any(|n| n == t))
        .collect())
}

/// Makes the schema (if need be) and the tables, in one transaction;
/// [`Error::AlreadyExists`] if a vault is there already.
pub(super) fn create(conn: &mut Conn, schema: &str) -> Result<()> {
    let mut batch = format!(
        "BEGIN; CREATE SCHEMA IF NOT EXISTS {}; SET LOCAL search_path TO {};",
        quoted(schema),
        quoted(schema)
    );
    if !found_tables(conn, schema)?.is_empty() {
        return Err(Error::AlreadyExists);
    }
    for (_, sql) in TABLES {
        batch.push_str(sql);
        batch.push(';');
    }
    batch.push_str("COMMIT;");
    match conn.client.batch_execute(&batch) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = conn.client.batch_execute("ROLLBACK");
            // Two creators at once: the second finds the first's tables.
            use postgres::error::SqlState;
            match e.code() {
                Some(c) if *c == SqlState::DUPLICATE_TABLE || *c == SqlState::UNIQUE_VIOLATION => {
                    Err(Error::AlreadyExists)
                }
                _ => Err(storage_error(e)),
            }
        }
    }
}

/// Refuses a schema that does not hold exactly a vault's tables.
pub(super) fn check(conn: &mut Conn, schema: &str) -> Result<()> {
    let found = found_tables(conn, schema)?;
    if found.is_empty() {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no vault in the given PostgreSQL schema",
        )));
    }
    let missing: Vec<&str> = table_names()
        .filter(|n| !found.iter().any(|f| f == n))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Corrupt {
            what: format!("PostgreSQL schema lacks the tables {}", missing.join(", ")),
        })
    }
}

/// Drops the vault's tables (a create that failed half-way; best effort).
/// The schema stays: it may hold other things.
pub(super) fn drop_tables(conn: &mut Conn, schema: &str) {
    let tables: Vec<String> = table_names()
        .map(|t| format!("{}.{}", quoted(schema), t))
        .collect();
    let _ = conn
        .client
        .batch_execute(&format!("DROP TABLE IF EXISTS {}", tables.join(", ")));
}
