//! The default backend: one SQLite file in WAL mode, `secure_delete` on,
//! one writer connection (which also serves short reads when idle) and a
//! pool of readers so scans run while a write commits.

mod connection;
mod schema;
mod write;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use super::{AuditRow, Backend, KeyRow, PiiMapRow, RecordRow, StoreStats, VaultMeta, WriteTxn};
use crate::error::{Error, Result};
use crate::keys::{ID_TAG_LEN, IdTag, KeyScope};
use schema::{FAILED_OPENS, META_HEADER, META_TAG_KEY, NEXT_KEY, NEXT_RECORD, TABLES};

/// Removes a database file and SQLite's files beside it (best effort): for
/// a create that failed half-way.
pub(crate) fn remove_database(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
}

/// Readers kept open between calls; more are opened under load and closed after.
const MAX_IDLE_READERS: usize = 8;

/// A vault stored in one SQLite database file.
pub(crate) struct SqliteBackend {
    path: std::path::PathBuf,
    writer: Mutex<write::Writer>,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteBackend {
    /// Creates a new vault file; fails if anything exists at `path`. A
    /// create that fails half-way removes what it wrote.
    pub(crate) fn create(path: &Path, meta: &VaultMeta, cache_mib: u32) -> Result<Self> {
        // Claim the path atomically: SQLite treats an empty file as a new
        // database, and two creators cannot both get here. Owner-only from
        // the first byte; SQLite gives the -wal and -shm files it creates
        // beside it the database file's permissions.
        let mut claim = std::fs::OpenOptions::new();
        claim.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut claim, 0o600);
        claim.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::AlreadyExists,
            _ => Error::Io(e),
        })?;
        Self::initialize(path, meta, cache_mib).inspect_err(|_| remove_database(path))
    }

    fn initialize(path: &Path, meta: &VaultMeta, cache_mib: u32) -> Result<Self> {
        let conn = connection::open(path, Some(cache_mib))?;
        connection::enable_wal(&conn)?;
        let mut batch = String::from("BEGIN IMMEDIATE;");
        for (_, _, sql) in TABLES {
            batch.push_str(sql);
            batch.push(';');
        }
        conn.execute_batch(&batch).map_err(storage_error)?;
        let init = (|| {
            conn.execute(
                "INSERT INTO counters (name, next) VALUES (?1, 1), (?2, 1), (?3, 0)",
                params![NEXT_RECORD, NEXT_KEY, FAILED_OPENS],
            )?;
            conn.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2), (?3, ?4)",
                params![META_HEADER, meta.header, META_TAG_KEY, meta.tag_key],
            )?;
            conn.execute_batch("COMMIT")
        })();
        init.map_err(storage_error)?;
        Ok(Self::with_writer(path, conn))
    }

    /// Opens an existing vault file, refusing one whose schema is not ours.
    /// The writer connection keeps a page cache of up to `cache_mib` MiB.
    pub(crate) fn open(path: &Path, cache_mib: u32) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no vault file at the given path",
            )));
        }
        let conn = connection::open(path, Some(cache_mib))?;
        connection::check_schema(&conn)?;
        Ok(Self::with_writer(path, conn))
    }

    fn with_writer(path: &Path, writer: Connection) -> Self {
        Self {
            path: path.to_path_buf(),
            writer: Mutex::new(write::Writer::new(writer)),
            readers: Mutex::new(Vec::new()),
        }
    }

    /// Runs a short read on the writer connection when no write holds it,
    /// else on a pooled reader. A connection's page cache survives its own
    /// commits but is dropped whenever another connection has committed;
    /// the writer commits after every audited read, so the pooled readers
    /// would read every page from the OS again each time. Long scans use
    /// [`Self::read`] so they never hold writers up.
    fn read_short<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        match self.writer.try_lock() {
            Ok(conn) => f(&conn).map_err(storage_error),
            Err(std::sync::TryLockError::Poisoned(p)) => f(&p.into_inner()).map_err(storage_error),
            Err(std::sync::TryLockError::WouldBlock) => self.read(f),
        }
    }

    /// Runs `f` on a reader connection from the pool.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            // Readers keep SQLite's default cache: the writer's commits
            // (one per audited read) drop a reader's cache anyway.
            None => connection::open(&self.path, None)?,
        };
        let out = f(&conn).map_err(storage_error);
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }
}

impl Backend for SqliteBackend {
    fn meta(&self) -> Result<VaultMeta> {
        self.read(read_meta)
    }

    fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read_short(|c| {
            c.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    fn record(&self, id: u64) -> Result<Option<RecordRow>> {
        let id = sql_id(id)?;
        self.read_short(|c| record_by_id(c, id))?.transpose()
    }

    fn conversation(&self, tag: &IdTag, now_ms: i64) -> Result<Vec<RecordRow>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, conversation, subject, expires_at, sealed FROM records \
                 WHERE conversation = ?1 AND expires_at > ?2 ORDER BY id",
            )?
            .query_map(params![&tag[..], now_ms], record_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?
        .into_iter()
        .collect()
    }

    fn subject(&self, tag: &IdTag, now_ms: i64) -> Result<Vec<RecordRow>> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT id, conversation, subject, expires_at, sealed FROM records \
                 WHERE subject = ?1 AND expires_at > ?2 ORDER BY id",
            )?
            .query_map(params![&tag[..], now_ms], record_row)?
            .collect::<rusqlite::Result<Vec<_>>>()
        })?
        .into_iter()
        .collect()
    }

    fn each_record(&self, each: &mut dyn FnMut(RecordRow) -> Result<()>) -> Result<()> {
        let mut outcome: Result<()> = Ok(());
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id, conversation, subject, expires_at, sealed FROM records ORDER BY id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let step = record_row(row)?.and_then(&mut *each);
                if let Err(e) = step {
                    outcome = Err(e);
                    break;
                }
            }
            Ok(())
        })?;
        outcome
    }

    fn key(&self, id: u64) -> Result<Option<KeyRow>> {
        let id = sql_id(id)?;
        self.read_short(|c| {
            c.prepare_cached(
                "SELECT id, subject, not_after, sealed, wrapped FROM keys WHERE id = ?1",
            )?
            .query_row([id], key_row)
            .optional()
        })?
        .transpose()
    }

    fn scope_has_key(&self, subject: Option<&IdTag>, after_ms: i64, until_ms: i64) -> Result<bool> {
        let subject = subject.map(|t| &t[..]);
        self.read_short(|c| {
            c.prepare_cached(
                "SELECT 1 FROM keys WHERE subject IS ?1 AND not_after > ?2 AND not_after <= ?3 LIMIT 1",
            )?
            .exists(params![subject, after_ms, until_ms])
        })
    }

    fn keys(&self) -> Result<Vec<KeyRow>> {
        self.read(all_keys)?.into_iter().collect()
    }

    fn scrub(&self) {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // Busy or failed: the next checkpoint (SQLite runs them on its
        // own as the WAL grows, and on close) moves the same pages.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    fn audit_rows(
        &self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(AuditRow) -> Result<()>,
    ) -> Result<()> {
        let (from, to) = (sql_id(from)?, sql_id(to.min(i64::MAX as u64))?);
        let mut outcome: Result<()> = Ok(());
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, sealed, mac FROM audit WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
            )?;
            let mut rows = stmt.query([from, to])?;
            while let Some(row) = rows.next()? {
                if let Err(e) = audit_row(row)?.and_then(&mut *each) {
                    outcome = Err(e);
                    break;
                }
            }
            Ok(())
        })?;
        outcome
    }

    fn pii_map(&self, conversation: &IdTag) -> Result<Option<PiiMapRow>> {
        self.read_short(|c| pii_map_row(c, conversation))?
            .transpose()
    }

    fn has_ingested(&self) -> Result<bool> {
        self.read_short(any_ingested)
    }

    fn check_integrity(&self) -> Result<()> {
        // `integrity_check`, not `quick_check`: only the full check
        // compares every index with its table, and a damaged index is
        // what makes a lookup silently leave a record out.
        let first: String =
            self.read(|c| c.query_row("PRAGMA integrity_check(1)", [], |r| r.get(0)))?;
        if first == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt {
                what: format!("SQLite's integrity check: {first}"),
            })
        }
    }

    fn set_aside_count(&self) -> Result<u64> {
        let n: i64 = self.read(|c| {
            c.query_row(
                "SELECT count(*) FROM ingest_records WHERE id < 0",
                [],
                |r| r.get(0),
            )
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn stats(&self, now_ms: i64) -> Result<StoreStats> {
        self.read(|c| {
            let (records, sealed_bytes, oldest): (i64, i64, Option<i64>) = c.query_row(
                "SELECT count(*), coalesce(sum(length(sealed)), 0), min(expires_at) FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
            let expired: i64 = c.query_row(
                "SELECT count(*) FROM records WHERE expires_at <= ?1",
                [now_ms],
                |r| r.get(0),
            )?;
            let as_u64 = |n: i64| u64::try_from(n).unwrap_or(0);
            Ok(StoreStats {
                records: as_u64(records),
                expired: as_u64(expired),
                sealed_bytes: as_u64(sealed_bytes),
                oldest_expiry_ms: oldest,
                keys: as_u64(count("SELECT count(*) FROM keys")?),
                audit_entries: as_u64(count("SELECT count(*) FROM audit")?),
            })
        })
    }

    fn count_failed_open(&self) -> Result<()> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = write::SqliteWrite::begin(conn, false)?;
        txn.count_failed_open()?;
        Box::new(txn).commit()
    }

    fn write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(write::SqliteWrite::begin(conn, false)?))
    }

    fn write_light(&self) -> Result<Box<dyn WriteTxn + '_>> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(write::SqliteWrite::begin(conn, true)?))
    }
}

fn read_meta(c: &Connection) -> rusqlite::Result<VaultMeta> {
    let get = |name: &str| {
        c.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
            r.get::<_, Vec<u8>>(0)
        })
    };
    Ok(VaultMeta {
        header: get(META_HEADER)?,
        tag_key: get(META_TAG_KEY)?,
    })
}

fn all_keys(c: &Connection) -> rusqlite::Result<Vec<Result<KeyRow>>> {
    c.prepare_cached("SELECT id, subject, not_after, sealed, wrapped FROM keys ORDER BY id")?
        .query_map([], key_row)?
        .collect()
}

/// Decodes a record row. The outer result is SQLite's; the inner one says
/// whether the stored values are well-formed.
fn record_by_id(c: &Connection, id: i64) -> rusqlite::Result<Option<Result<RecordRow>>> {
    c.prepare_cached(
        "SELECT id, conversation, subject, expires_at, sealed FROM records WHERE id = ?1",
    )?
    .query_row([id], record_row)
    .optional()
}

/// Staged rows waiting to be taken in have positive ids; set-aside ones
/// live under negative ids (FORMAT.md §12), so this is one seek in the
/// rowid tree however many were set aside.
fn any_ingested(c: &Connection) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT 1 FROM ingest_records WHERE id > 0 LIMIT 1")?
        .exists([])
}

fn record_row(r: &Row<'_>) -> rusqlite::Result<Result<RecordRow>> {
    let id: i64 = r.get(0)?;
    let conversation: Vec<u8> = r.get(1)?;
    let subject: Option<Vec<u8>> = r.get(2)?;
    let expires_at_ms: i64 = r.get(3)?;
    let sealed: Vec<u8> = r.get(4)?;
    Ok((|| {
        Ok(RecordRow {
            id: u64::try_from(id).map_err(|_| corrupt("negative record id"))?,
            conversation: id_tag(&conversation)?,
            subject: subject.as_deref().map(id_tag).transpose()?,
            expires_at_ms,
            sealed,
        })
    })())
}

fn key_row(r: &Row<'_>) -> rusqlite::Result<Result<KeyRow>> {
    let id: i64 = r.get(0)?;
    let subject: Option<Vec<u8>> = r.get(1)?;
    let not_after_ms: i64 = r.get(2)?;
    let sealed: i64 = r.get(3)?;
    let wrapped: Vec<u8> = r.get(4)?;
    Ok((|| {
        Ok(KeyRow {
            id: u64::try_from(id).map_err(|_| corrupt("negative key id"))?,
            scope: KeyScope {
                subject: subject.as_deref().map(id_tag).transpose()?,
                not_after_ms,
            },
            sealed: u64::try_from(sealed).map_err(|_| corrupt("negative key use count"))?,
            wrapped,
        })
    })())
}

/// An audit row as stored. A column of the wrong type or size (only a
/// writer of the file can put one there) reads as empty, zero time or
/// zero MAC: the entry then fails its seal and chain check, is named by
/// the verifiers, and a full walk goes on past it.
pub(super) fn audit_row(r: &Row<'_>) -> rusqlite::Result<Result<AuditRow>> {
    use rusqlite::types::ValueRef;
    let seq: i64 = r.get(0)?;
    let at_ms = match r.get_ref(1)? {
        ValueRef::Integer(n) => n,
        _ => 0,
    };
    let sealed = match r.get_ref(2)? {
        ValueRef::Blob(b) => b.to_vec(),
        _ => Vec::new(),
    };
    let mac = match r.get_ref(3)? {
        ValueRef::Blob(b) => <[u8; 32]>::try_from(b).unwrap_or([0; 32]),
        _ => [0; 32],
    };
    Ok(u64::try_from(seq)
        .map_err(|_| corrupt("negative audit seq"))
        .map(|seq| AuditRow {
            seq,
            at_ms,
            sealed,
            mac,
        }))
}

pub(super) fn pii_map_row(
    c: &Connection,
    conversation: &IdTag,
) -> rusqlite::Result<Option<Result<PiiMapRow>>> {
    c.prepare_cached("SELECT subject, expires_at, sealed FROM pii_maps WHERE conversation = ?1")?
        .query_row([&conversation[..]], |r| {
            let subject: Option<Vec<u8>> = r.get(0)?;
            let expires_at_ms: i64 = r.get(1)?;
            let sealed: Vec<u8> = r.get(2)?;
            Ok(subject
                .as_deref()
                .map(id_tag)
                .transpose()
                .map(|subject| PiiMapRow {
                    conversation: *conversation,
                    subject,
                    expires_at_ms,
                    sealed,
                }))
        })
        .optional()
}

fn id_tag(bytes: &[u8]) -> Result<IdTag> {
    <[u8; ID_TAG_LEN]>::try_from(bytes).map_err(|_| corrupt("tag of the wrong length"))
}

fn sql_id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| Error::InvalidInput {
        what: "id",
        reason: "out of range".into(),
    })
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt { what: what.into() }
}

/// Maps SQLite's errors onto the ones a caller can act on.
pub(super) fn storage_error(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Busy,
        Some(ErrorCode::DiskFull) => Error::DiskFull,
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => Error::Corrupt {
            what: e.to_string(),
        },
        _ => match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => Error::Corrupt {
                what: format!("unexpected stored value: {e}"),
            },
            other => Error::Storage(Box::new(other)),
        },
    }
}
