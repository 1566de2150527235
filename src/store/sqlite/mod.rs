//! The SQLite binding of the logical tables (FORMAT.md §8): one file in
//! WAL mode, `secure_delete` on, one writer connection (which also serves
//! short reads when idle) and a pool of readers so scans run while a write
//! commits.

mod connection;
mod read;
mod read_logs;
mod rows;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, ErrorCode};

use super::{Backend, Durability, ReadTxn, WriteTxn};
use crate::error::{Error, Result};
use schema::TABLES;

/// Removes a database file and SQLite's files beside it (best effort): for
/// a create that failed half-way.
pub(super) fn remove_database(path: &Path) {
    // Found while the database file is still there to resolve.
    let logs = read_logs::dir_of(path);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_dir_all(logs);
}

/// Readers kept open between calls; more are opened under load and closed after.
const MAX_IDLE_READERS: usize = 8;

/// A vault stored in one SQLite database file.
pub(super) struct SqliteBackend {
    path: PathBuf,
    writer: Mutex<write::Writer>,
    readers: Mutex<Vec<Connection>>,
    read_logs: read_logs::FileReadLogs,
}

impl SqliteBackend {
    /// Creates a new database with the vault's tables, empty; fails if
    /// anything exists at `path`. A create that fails half-way removes
    /// what it wrote.
    pub(super) fn create(path: &Path, cache_mib: u32) -> Result<Self> {
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
        // Read logs left by a vault that was at this path before belong
        // to no vault now (its database is gone): never sweep them in.
        match std::fs::remove_dir_all(read_logs::dir_of(path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                remove_database(path);
                return Err(Error::Io(e));
            }
            _ => {}
        }
        Self::initialize(path, cache_mib).inspect_err(|_| remove_database(path))
    }

    fn initialize(path: &Path, cache_mib: u32) -> Result<Self> {
        let conn = connection::open(path, Some(cache_mib))?;
        connection::enable_wal(&conn)?;
        let mut batch = String::from("BEGIN IMMEDIATE;");
        for (_, _, sql) in TABLES {
            batch.push_str(sql);
            batch.push(';');
        }
        batch.push_str("COMMIT;");
        conn.execute_batch(&batch).map_err(storage_error)?;
        Ok(Self::with_writer(path, conn))
    }

    /// Opens an existing vault file, refusing one whose schema is not ours.
    /// The writer connection keeps a page cache of up to `cache_mib` MiB.
    pub(super) fn open(path: &Path, cache_mib: u32) -> Result<Self> {
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
            read_logs: read_logs::FileReadLogs::new(path),
        }
    }

    /// Runs a short read on the writer connection when no write holds it,
    /// else on a pooled reader. A connection's page cache survives its own
    /// commits but is dropped whenever another connection has committed,
    /// so the writer's is the one warm after writes (and it is the larger
    /// one). Long scans use [`Self::pooled`] so they never hold writers up.
    fn short<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match self.writer.try_lock() {
            Ok(conn) => f(&conn),
            Err(std::sync::TryLockError::Poisoned(p)) => f(&p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => self.pooled(f),
        }
    }

    /// Runs `f` on a reader connection from the pool.
    fn pooled<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            // Readers keep SQLite's default cache: every commit of the
            // writer (each write, each fold of read logs) drops it anyway.
            None => connection::open(&self.path, None)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        out
    }
}

impl Backend for SqliteBackend {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(read::SqliteRead { backend: self }))
    }

    fn write(&self, durability: Durability) -> Result<Box<dyn WriteTxn + '_>> {
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(write::SqliteWrite::begin(conn, durability)?))
    }

    fn check_integrity(&self) -> Result<()> {
        // `integrity_check`, not `quick_check`: only the full check
        // compares every index with its table, and a damaged index is
        // what makes a lookup silently leave a record out.
        let first: String = self.pooled(|c| {
            c.query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))
                .map_err(storage_error)
        })?;
        if first == "ok" {
            Ok(())
        } else {
            Err(Error::Corrupt {
                what: format!("SQLite's integrity check: {first}"),
            })
        }
    }

    fn read_logs(&self) -> &dyn super::read_logs::ReadLogs {
        &self.read_logs
    }
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
