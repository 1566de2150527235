//! The PostgreSQL binding of the logical tables (FORMAT.md §8,
//! "PostgreSQL"): one schema of a database, shared by every process that
//! opens the vault. Writers take turns on one locked row; reads run on
//! pooled connections and append their audit entries to read logs in
//! tables of their own, so readers on many servers never wait for one
//! another (DESIGN.md, "Many app servers").

mod connect;
mod held_back;
mod read_logs;
mod rows;
mod schema;
mod write;

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use postgres::error::SqlState;

pub(crate) use connect::PostgresPlace;
use connect::{Connector, Pool};

use super::{Backend, Durability, ReadTxn, Row, Scanned, Select, Table, Tally, WriteTxn};
use crate::error::{Error, Result};

/// A vault stored in one schema of a PostgreSQL database.
pub(super) struct PostgresBackend {
    pool: Arc<Pool>,
    /// This process's writers take turns here before they queue for the
    /// row lock, which then only other processes contend for.
    writer: Mutex<()>,
    read_logs: read_logs::TableReadLogs,
}

impl PostgresBackend {
    fn connect(place: &PostgresPlace) -> Result<Self> {
        let pool = Arc::new(Pool::new(Connector::new(place)?, place.pool_size));
        Ok(Self {
            read_logs: read_logs::TableReadLogs::new(Arc::clone(&pool)),
            pool,
            writer: Mutex::new(()),
        })
    }

    /// Makes the vault's tables in the schema (and the schema, if need
    /// be); [`Error::AlreadyExists`] when a vault is there.
    pub(super) fn create(place: &PostgresPlace) -> Result<Self> {
        let backend = Self::connect(place)?;
        let schema = backend.pool.connector().schema().to_owned();
        backend.pool.with(|conn| schema::create(conn, &schema))?;
        Ok(backend)
    }

    /// Opens the vault in the schema, refusing one without its tables.
    pub(super) fn open(place: &PostgresPlace) -> Result<Self> {
        let backend = Self::connect(place)?;
        let schema = backend.pool.connector().schema().to_owned();
        backend.pool.with(|conn| schema::check(conn, &schema))?;
        Ok(backend)
    }

    /// Whether the schema holds a vault's tables, whole or in part. A
    /// server that cannot be reached is not taken: the create then fails
    /// with the reason.
    pub(super) fn is_taken(place: &PostgresPlace) -> bool {
        let Ok(backend) = Self::connect(place) else {
            return false;
        };
        let schema = backend.pool.connector().schema().to_owned();
        matches!(
            backend.pool.with(|conn| schema::check(conn, &schema)),
            Ok(()) | Err(Error::Corrupt { .. })
        )
    }

    /// Drops what a create that failed half-way made (best effort).
    pub(super) fn discard(place: &PostgresPlace) {
        if let Ok(backend) = Self::connect(place) {
            let schema = backend.pool.connector().schema().to_owned();
            let _ = backend.pool.with(|conn| {
                schema::drop_tables(conn, &schema);
                Ok(())
            });
        }
    }
}

struct PostgresRead<'a> {
    backend: &'a PostgresBackend,
}

impl ReadTxn for PostgresRead<'_> {
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>> {
        let query = rows::select(table, &key)?;
        self.backend
            .pool
            .with(|conn| rows::first(conn, table, &query))
    }

    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let query = rows::select(table, &select)?;
        // One transaction, so a long scan reads one snapshot and streams
        // from one portal.
        let mut rows_seen = false;
        self.backend.pool.with(|conn| {
            if rows_seen {
                // Run again after the connection closed mid-scan: rows
                // would come twice.
                return Err(Error::Storage("the connection closed during a scan".into()));
            }
            conn.client
                .batch_execute("BEGIN READ ONLY")
                .map_err(storage_error)?;
            let out = rows::scan(conn, table, &query, &mut |row| {
                rows_seen = true;
                each(row)
            });
            let end = conn.client.batch_execute("COMMIT").map_err(storage_error);
            out.and(end)
        })
    }

    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally> {
        let query = rows::tally(table, &select)?;
        self.backend.pool.with(|conn| rows::count(conn, &query))
    }
}

impl Backend for PostgresBackend {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(PostgresRead { backend: self }))
    }

    fn write(&self, durability: Durability) -> Result<Box<dyn WriteTxn + '_>> {
        let turn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(write::PostgresWrite::begin(
            &self.pool, turn, durability,
        )?))
    }

    fn check_integrity(&self) -> Result<()> {
        // The server checks its own pages (and `amcheck` is an extension,
        // which this backend does not require); what is left to check here
        // is that every table is where it should be.
        let schema = self.pool.connector().schema().to_owned();
        self.pool.with(|conn| schema::check(conn, &schema))
    }

    fn read_logs(&self) -> &dyn super::read_logs::ReadLogs {
        &self.read_logs
    }
}

/// Maps the server's errors onto the ones a caller can act on. A server
/// error is reported by its SQLSTATE and message, never its detail, which
/// can quote the values of a row.
pub(super) fn storage_error(e: postgres::Error) -> Error {
    let Some(db) = e.as_db_error() else {
        return Error::Storage(Box::new(e));
    };
    let code = db.code();
    if *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::QUERY_CANCELED
    {
        Error::Busy
    } else if *code == SqlState::DISK_FULL {
        Error::DiskFull
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        Error::Corrupt {
            what: format!("PostgreSQL: {}", db.message()),
        }
    } else {
        Error::Storage(format!("PostgreSQL {}: {}", code.code(), db.message()).into())
    }
}

/// Whether an error means the transaction should be run again.
pub(super) fn is_retryable(e: &postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}
