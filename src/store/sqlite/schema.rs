//! The tables (FORMAT.md §8). SQLite keeps each CREATE statement's text
//! verbatim, so an opened file is checked against exactly these.

pub(super) const TABLES: &[(&str, &str, &str)] = &[
    (
        "table",
        "meta",
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID",
    ),
    (
        "table",
        "counters",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID",
    ),
    (
        "table",
        "keys",
        "CREATE TABLE keys (id INTEGER PRIMARY KEY, subject BLOB, not_after INTEGER NOT NULL, \
         sealed INTEGER NOT NULL, retired INTEGER NOT NULL, wrapped BLOB NOT NULL)",
    ),
    (
        "index",
        "keys_scope",
        "CREATE INDEX keys_scope ON keys (subject, not_after)",
    ),
    (
        "index",
        "keys_expiry",
        "CREATE INDEX keys_expiry ON keys (not_after)",
    ),
    (
        "table",
        "records",
        "CREATE TABLE records (id INTEGER PRIMARY KEY, conversation BLOB NOT NULL, subject BLOB, \
         expires_at INTEGER NOT NULL, sealed BLOB NOT NULL)",
    ),
    (
        "index",
        "records_conversation",
        "CREATE INDEX records_conversation ON records (conversation)",
    ),
    (
        "index",
        "records_subject",
        "CREATE INDEX records_subject ON records (subject) WHERE subject IS NOT NULL",
    ),
    (
        "index",
        "records_expiry",
        "CREATE INDEX records_expiry ON records (expires_at)",
    ),
    (
        "table",
        "audit",
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, sealed BLOB NOT NULL, \
         mac BLOB NOT NULL)",
    ),
    (
        "table",
        "maintenance",
        "CREATE TABLE maintenance (at INTEGER NOT NULL, records INTEGER NOT NULL, \
         keys INTEGER NOT NULL)",
    ),
    (
        "table",
        "ingest_keys",
        "CREATE TABLE ingest_keys (id INTEGER PRIMARY KEY, not_after INTEGER NOT NULL, \
         wrapped BLOB NOT NULL)",
    ),
    (
        "table",
        "ingest_records",
        "CREATE TABLE ingest_records (id INTEGER PRIMARY KEY, key_id INTEGER NOT NULL, \
         expires_at INTEGER NOT NULL, sealed BLOB NOT NULL)",
    ),
    (
        "index",
        "ingest_expiry",
        "CREATE INDEX ingest_expiry ON ingest_records (expires_at)",
    ),
    (
        "table",
        "pii_maps",
        "CREATE TABLE pii_maps (conversation BLOB PRIMARY KEY, subject BLOB, \
         expires_at INTEGER NOT NULL, sealed BLOB NOT NULL) WITHOUT ROWID",
    ),
    (
        "index",
        "pii_maps_expiry",
        "CREATE INDEX pii_maps_expiry ON pii_maps (expires_at)",
    ),
    (
        "index",
        "pii_maps_subject",
        "CREATE INDEX pii_maps_subject ON pii_maps (subject) WHERE subject IS NOT NULL",
    ),
];
