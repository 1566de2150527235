//! The write transaction. Started with `BEGIN IMMEDIATE` so that id
//! counters and key use counts are read and bumped under the write lock,
//! also against other processes.

use std::ops::ControlFlow;
use std::sync::MutexGuard;

use rusqlite::{Connection, params};

use super::{rows, storage_error};
use crate::error::{Error, Result};
use crate::store::{Counter, Durability, ReadTxn, Row, Scanned, Select, Table, Tally, WriteTxn};
use crate::store::{FAILED_OPENS, NEXT_KEY, NEXT_RECORD};

/// The writer connection and the `synchronous` level it is set to, so a
/// run of buffered transactions (one per audited read) does not switch
/// the level back and forth each time.
pub(super) struct Writer {
    conn: Connection,
    /// `synchronous = FULL` (else `NORMAL`). Connections open at FULL.
    full_sync: bool,
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Self {
            conn,
            full_sync: true,
        }
    }

    fn set_full_sync(&mut self, full: bool) -> Result<()> {
        if self.full_sync != full {
            let level = if full { "FULL" } else { "NORMAL" };
            self.conn
                .execute_batch(&format!("PRAGMA synchronous = {level}"))
                .map_err(storage_error)?;
            self.full_sync = full;
        }
        Ok(())
    }
}

impl std::ops::Deref for Writer {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.conn
    }
}

/// Key ids a write transaction takes from the counter at once. Unused
/// ones go back at the commit, so the block costs nothing; a batch over
/// a thousand new subjects bumps the counter once instead of a thousand
/// times.
const KEY_ID_BLOCK: u64 = 1024;

pub(super) struct SqliteWrite<'a> {
    conn: MutexGuard<'a, Writer>,
    durability: Durability,
    done: bool,
    /// Key ids taken from the counter and not yet handed out, as
    /// `(next, end)`: the counter row says `end` until they go back.
    key_ids: Option<(u64, u64)>,
}

impl<'a> SqliteWrite<'a> {
    /// [`Durability::Buffered`] commits without waiting for fsync
    /// (`synchronous = NORMAL`; WAL keeps it crash-safe). Every other
    /// transaction runs at FULL.
    pub(super) fn begin(mut conn: MutexGuard<'a, Writer>, durability: Durability) -> Result<Self> {
        conn.set_full_sync(durability != Durability::Buffered)?;
        // From here on, dropping rolls back if need be.
        let txn = Self {
            conn,
            durability,
            done: false,
            key_ids: None,
        };
        run(&txn.conn, "BEGIN IMMEDIATE").map_err(storage_error)?;
        Ok(txn)
    }
}

impl Drop for SqliteWrite<'_> {
    fn drop(&mut self) {
        // Nothing to report to: the caller already has the error that made
        // it drop the transaction (or the commit succeeded).
        if !self.done {
            let _ = run(&self.conn, "ROLLBACK");
        } else if self.durability == Durability::Scrubbed {
            // Moves the committed pages into the main file (where
            // `secure_delete` overwrote what was deleted) and empties the
            // write-ahead log, which still holds the old pages. Busy or
            // failed: the next checkpoint (SQLite runs them on its own as
            // the WAL grows, and on close) moves the same pages.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
    }
}

impl SqliteWrite<'_> {
    /// `by` key ids from the block taken, none below `at_least`, if it
    /// has room.
    fn key_ids_from_block(&mut self, by: u64, at_least: u64) -> Option<u64> {
        let (next, end) = self.key_ids.as_mut()?;
        let first = (*next).max(at_least);
        let after = first.checked_add(by)?;
        if after > *end {
            return None;
        }
        *next = after;
        Some(first)
    }

    /// Gives the unused key ids of the block back: the counter row says
    /// exactly the next id to hand out again. Before the commit, and
    /// before the counters are read or written.
    fn return_key_ids(&mut self) -> Result<()> {
        if let Some((next, end)) = self.key_ids
            && next < end
        {
            let next = rows::int(next)?;
            self.conn
                .prepare_cached("UPDATE counters SET next = ?2 WHERE name = ?1")
                .and_then(|mut s| s.execute(params![NEXT_KEY, next]))
                .map_err(storage_error)?;
        }
        // Only once given back: a failed give-back leaves the block
        // known, to be given back by the next try.
        self.key_ids = None;
        Ok(())
    }

    /// Adds `by` to counter `name`, raised to `floor` first; the value
    /// before the addition.
    fn bump_row(&mut self, name: &str, by: u64, floor: u64) -> Result<u64> {
        let (by_sql, floor_sql) = (rows::int(by)?, rows::int(floor)?);
        let first: i64 = self
            .conn
            .prepare_cached(
                "UPDATE counters SET next = max(CASE WHEN typeof(next) = 'integer' \
                 THEN next ELSE 0 END, ?3) + ?2 WHERE name = ?1 RETURNING next - ?2",
            )
            .and_then(|mut s| s.query_row(params![name, by_sql, floor_sql], |r| r.get(0)))
            .map_err(storage_error)?;
        // SQLite ranks text and blobs above every integer, and an overflow
        // turns the sum into a real: neither may hand out a used id.
        match u64::try_from(first) {
            Ok(first) if first >= floor => Ok(first),
            _ => Err(corrupt("a counter")),
        }
    }
}

impl ReadTxn for SqliteWrite<'_> {
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>> {
        if table == Table::Counters {
            self.return_key_ids()?;
        }
        let order = rows::order_of(table, &key);
        rows::first(&self.conn, table, rows::select(table, &key)?, order)
    }

    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        if table == Table::Counters {
            self.return_key_ids()?;
        }
        let order = rows::order_of(table, &select);
        rows::scan(
            &self.conn,
            table,
            rows::select(table, &select)?,
            order,
            each,
        )
    }

    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally> {
        if table == Table::Counters {
            self.return_key_ids()?;
        }
        rows::count(&self.conn, rows::tally(table, &select)?)
    }
}

impl WriteTxn for SqliteWrite<'_> {
    fn put(&mut self, row: &Row) -> Result<()> {
        if matches!(row, Row::Counter { .. }) {
            self.return_key_ids()?;
        }
        rows::execute(&self.conn, rows::put(row)?).map(|_| ())
    }

    fn delete(&mut self, table: Table, select: Select<'_>) -> Result<u64> {
        rows::execute(&self.conn, rows::delete(table, &select)?)
    }

    fn bump(&mut self, counter: Counter, by: u64, at_least: u64) -> Result<u64> {
        let (name, floor) = match counter {
            Counter::KeyUses(id) => {
                let (id, by) = (rows::int(id)?, rows::int(by)?);
                self.conn
                    .prepare_cached("UPDATE keys SET sealed = sealed + ?2 WHERE id = ?1")
                    .and_then(|mut s| s.execute(params![id, by]))
                    .map_err(storage_error)?;
                return Ok(0);
            }
            Counter::KeyIds => {
                if let Some(first) = self.key_ids_from_block(by, at_least) {
                    return Ok(first);
                }
                self.return_key_ids()?;
                let block = by.max(KEY_ID_BLOCK);
                let first = self.bump_row(NEXT_KEY, block, at_least)?;
                let (Some(next), Some(end)) = (first.checked_add(by), first.checked_add(block))
                else {
                    return Err(corrupt("a counter"));
                };
                self.key_ids = Some((next, end));
                return Ok(first);
            }
            Counter::RecordIds => (NEXT_RECORD, at_least),
            Counter::FailedOpens => (FAILED_OPENS, at_least),
        };
        self.bump_row(name, by, floor)
    }

    fn set_aside(&mut self, id: u64, expires_cap_ms: i64) -> Result<()> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(());
        };
        // Under -id, unless a row set aside before holds it (the same row
        // staged again): then below every id there is.
        let taken = self
            .conn
            .prepare_cached("SELECT 1 FROM ingest_records WHERE id = ?1")
            .and_then(|mut s| s.exists([-id]))
            .map_err(storage_error)?;
        let to = if taken {
            let lowest: i64 = self
                .conn
                .prepare_cached("SELECT min(id) FROM ingest_records")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(storage_error)?;
            lowest.checked_sub(1)
        } else {
            Some(-id)
        };
        let Some(to) = to else {
            // No negative id is left (only a forger gets here): drop it.
            self.conn
                .prepare_cached("DELETE FROM ingest_records WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .map_err(storage_error)?;
            return Ok(());
        };
        self.conn
            .prepare_cached(
                "UPDATE ingest_records SET id = ?2, expires_at = CASE \
                 WHEN typeof(expires_at) = 'integer' AND expires_at < ?3 THEN expires_at \
                 ELSE ?3 END WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, to, expires_cap_ms]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        if self.done {
            return Err(Error::Storage("the transaction was committed".into()));
        }
        if self.conn.is_autocommit() {
            // Rolled back under us by a storage error: nothing to commit,
            // and what was written since went in unprotected.
            return Err(Error::Storage(
                "the write transaction was rolled back by the database".into(),
            ));
        }
        self.return_key_ids()?;
        run(&self.conn, "COMMIT").map_err(storage_error)?;
        self.done = true;
        Ok(())
    }
}

/// Runs `BEGIN`, `COMMIT` or `ROLLBACK` from the statement cache: every
/// audited read opens a transaction, and parsing them again each time
/// showed in profiles. (Not for `PRAGMA`s: SQLite applies those when
/// compiling and re-prepares them on every run anyway.)
fn run(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt { what: what.into() }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteBackend;
    use crate::store::{Backend, Durability};

    /// `PRAGMA synchronous` as the open transaction sees it: 2 FULL, 1 NORMAL.
    fn level(backend: &SqliteBackend, durability: Durability) -> i64 {
        drop(backend.write(durability).unwrap());
        let writer = backend.writer.lock().unwrap();
        writer
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// Buffered transactions leave the writer at NORMAL between them; every
    /// durable one must still run at FULL, whatever ran before it.
    #[test]
    fn durable_transactions_run_at_full_sync_after_buffered_ones() {
        use Durability::{Buffered, Durable, Scrubbed};
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::create(&dir.path().join("v"), 2).unwrap();
        for (durability, expected) in [
            (Durable, 2),
            (Buffered, 1),
            (Buffered, 1),
            (Durable, 2),
            (Buffered, 1),
            (Scrubbed, 2),
        ] {
            assert_eq!(level(&backend, durability), expected, "{durability:?}");
        }
    }
}
