//! Opening a SQLite connection the way SQLite's "Defense Against the Dark
//! Arts" advises for files of unknown provenance.

use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use super::schema::TABLES;
use crate::error::{Error, Result};

/// How long a writer waits for another writer before giving up with `Busy`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Opens an existing database file; with `cache_mib`, its page cache may
/// grow to that many MiB (SQLite allocates it as pages are read), else it
/// keeps SQLite's default of about 2 MB.
pub(super) fn open(path: &Path, cache_mib: Option<u32>) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(super::storage_error)?;
    harden(&conn).map_err(super::storage_error)?;
    if let Some(mib) = cache_mib {
        // Negative: a size in KiB rather than in pages.
        let cache_kib = -i64::from(mib) * 1024;
        conn.pragma_update(None, "cache_size", cache_kib)
            .map_err(super::storage_error)?;
    }
    Ok(conn)
}

/// `wal_autocheckpoint` is 4000 pages (about 16 MiB at 4 KiB pages), not
/// SQLite's 1000: every audited read commits a page or two, and a longer
/// WAL copies the same audit pages back once instead of several times.
fn harden(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Room for every statement the vault runs (rusqlite keeps 16), so the
    // hot ones are never evicted and parsed again.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(
        "PRAGMA cell_size_check = ON;
         PRAGMA mmap_size = 0;
         PRAGMA trusted_schema = OFF;
         PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA synchronous = FULL;
         PRAGMA wal_autocheckpoint = 4000;",
    )?;
    Ok(())
}

/// Switches a new file to WAL (the mode is stored in the file).
pub(super) fn enable_wal(conn: &Connection) -> Result<()> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(super::storage_error)?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(Error::Corrupt {
            what: format!("could not switch to WAL journal (got {mode})"),
        })
    }
}

/// Refuses a file whose schema is not exactly ours: a crafted file could
/// otherwise carry triggers or views that run on our statements.
pub(super) fn check_schema(conn: &Connection) -> Result<()> {
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
        .map_err(super::storage_error)?;
    let found = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(super::storage_error)?;
    let mut expected: Vec<(String, String, Option<String>)> = TABLES
        .iter()
        .map(|(t, n, s)| ((*t).to_owned(), (*n).to_owned(), Some((*s).to_owned())))
        .collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    if found.is_empty() {
        return Err(Error::Corrupt {
            what: "not a vault (no tables)".into(),
        });
    }
    if found != expected {
        return Err(Error::Corrupt {
            what: "schema is not a vault's (unexpected or altered tables)".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_cache_size_reaches_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        std::fs::File::create(&path).unwrap();
        let conn = open(&path, Some(3)).unwrap();
        let kib: i64 = conn
            .query_row("PRAGMA cache_size", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kib, -3 * 1024);
        let pages: i64 = conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pages, 4000);
    }
}
