//! The write transaction. Started with `BEGIN IMMEDIATE` so that id
//! counters and key use counts are read and bumped under the write lock,
//! also against other processes.

use std::sync::MutexGuard;

use rusqlite::{Connection, OptionalExtension, params};

use super::schema::{FAILED_OPENS, META_HEADER, META_TAG_KEY, NEXT_KEY, NEXT_RECORD};
use super::{all_keys, any_ingested, key_row, record_by_id, sql_id, storage_error};
use crate::error::{Error, Result};
use crate::keys::{IdTag, KeyScope};
use crate::store::{
    AuditRow, IngestKeyRow, IngestRow, KeyRow, MaintenanceNote, PiiMapRow, RecordRow, VaultMeta,
    WriteTxn,
};

/// The writer connection and the `synchronous` level it is set to, so a
/// run of light transactions (one per audited read) does not switch the
/// level back and forth each time.
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

pub(super) struct SqliteWrite<'a> {
    conn: MutexGuard<'a, Writer>,
    done: bool,
}

impl<'a> SqliteWrite<'a> {
    /// `light`: commit without waiting for fsync (`synchronous = NORMAL`;
    /// WAL keeps it crash-safe). Every other transaction runs at FULL.
    pub(super) fn begin(mut conn: MutexGuard<'a, Writer>, light: bool) -> Result<Self> {
        conn.set_full_sync(!light)?;
        // From here on, dropping rolls back if need be.
        let txn = Self { conn, done: false };
        run(&txn.conn, "BEGIN IMMEDIATE").map_err(storage_error)?;
        Ok(txn)
    }

    pub(super) fn count_failed_open(&mut self) -> Result<()> {
        self.bump_counter(FAILED_OPENS, 1).map(|_| ())
    }

    fn bump_counter(&mut self, name: &str, n: u64) -> Result<u64> {
        let n = sql_id(n)?;
        let first: i64 = self
            .conn
            .prepare_cached(
                "UPDATE counters SET next = next + ?2 WHERE name = ?1 RETURNING next - ?2",
            )
            .and_then(|mut s| s.query_row(params![name, n], |r| r.get(0)))
            .map_err(storage_error)?;
        u64::try_from(first).map_err(|_| Error::Corrupt {
            what: "negative id counter".into(),
        })
    }
}

impl Drop for SqliteWrite<'_> {
    fn drop(&mut self) {
        // Nothing to report to: the caller already has the error that made
        // it drop the transaction (or the commit succeeded).
        if !self.done {
            let _ = run(&self.conn, "ROLLBACK");
        }
    }
}

impl WriteTxn for SqliteWrite<'_> {
    fn allocate_record_ids(&mut self, n: u64, at_least: u64) -> Result<u64> {
        let floor = at_least;
        let (n, at_least) = (sql_id(n)?, sql_id(at_least)?);
        let first: i64 = self
            .conn
            .prepare_cached(
                "UPDATE counters SET next = max(CASE WHEN typeof(next) = 'integer' \
                 THEN next ELSE 0 END, ?3) + ?2 WHERE name = ?1 RETURNING next - ?2",
            )
            .and_then(|mut s| s.query_row(params![NEXT_RECORD, n, at_least], |r| r.get(0)))
            .map_err(storage_error)?;
        // SQLite ranks text and blobs above every integer: a counter
        // turned into one must not hand out ids below `at_least`.
        match u64::try_from(first) {
            Ok(first) if first >= floor => Ok(first),
            _ => Err(corrupt("record id counter")),
        }
    }

    fn record_id_floor(&mut self) -> Result<u64> {
        // Whatever the values' types: this runs when the file was tampered
        // with, and must not fail on a counter made text.
        let floor: i64 = self
            .conn
            .prepare_cached(
                "SELECT max( \
                   coalesce((SELECT max(id) FROM records), 0), \
                   coalesce((SELECT max(id) FROM ingest_records), 0), \
                   coalesce((SELECT CASE WHEN typeof(next) = 'integer' THEN max(next, 1) - 1 END \
                             FROM counters WHERE name = ?1), 0))",
            )
            .and_then(|mut s| s.query_row([NEXT_RECORD], |r| r.get(0)))
            .map_err(storage_error)?;
        Ok(u64::try_from(floor).unwrap_or(0))
    }

    fn allocate_key_id(&mut self) -> Result<u64> {
        self.bump_counter(NEXT_KEY, 1)
    }

    fn active_key(&mut self, scope: &KeyScope) -> Result<Option<KeyRow>> {
        let subject = scope.subject.as_ref().map(|t| &t[..]);
        self.conn
            .prepare_cached(
                "SELECT id, subject, not_after, sealed, wrapped FROM keys \
                 WHERE not_after = ?1 AND subject IS ?2 AND retired = 0 ORDER BY id DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row(params![scope.not_after_ms, subject], key_row)
                    .optional()
            })
            .map_err(storage_error)?
            .transpose()
    }

    fn insert_key(&mut self, key: &KeyRow) -> Result<()> {
        let subject = key.scope.subject.as_ref().map(|t| &t[..]);
        let (id, sealed) = (sql_id(key.id)?, sql_id(key.sealed)?);
        self.conn
            .prepare_cached(
                "INSERT INTO keys (id, subject, not_after, sealed, retired, wrapped) \
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    subject,
                    key.scope.not_after_ms,
                    sealed,
                    key.wrapped
                ])
            })
            .map_err(storage_error)?;
        Ok(())
    }

    fn add_key_use(&mut self, id: u64, n: u64) -> Result<()> {
        let (id, n) = (sql_id(id)?, sql_id(n)?);
        self.conn
            .prepare_cached("UPDATE keys SET sealed = sealed + ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, n]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn retire_key(&mut self, id: u64) -> Result<()> {
        let id = sql_id(id)?;
        self.conn
            .prepare_cached("UPDATE keys SET retired = 1 WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn retire_all_keys(&mut self) -> Result<usize> {
        self.conn
            .execute("UPDATE keys SET retired = 1 WHERE retired = 0", [])
            .map_err(storage_error)
    }

    fn rewrap_key(&mut self, id: u64, wrapped: &[u8]) -> Result<()> {
        let id = sql_id(id)?;
        self.conn
            .prepare_cached("UPDATE keys SET wrapped = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, wrapped]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn insert_record(&mut self, row: &RecordRow) -> Result<()> {
        let id = sql_id(row.id)?;
        let subject = row.subject.as_ref().map(|t| &t[..]);
        self.conn
            .prepare_cached(
                "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    &row.conversation[..],
                    subject,
                    row.expires_at_ms,
                    row.sealed
                ])
            })
            .map_err(storage_error)?;
        failpoint!("record-inserted");
        Ok(())
    }

    fn delete_expired(&mut self, now_ms: i64) -> Result<usize> {
        self.conn
            .prepare_cached("DELETE FROM pii_maps WHERE expires_at <= ?1")
            .and_then(|mut s| s.execute([now_ms]))
            .map_err(storage_error)?;
        let staged = self
            .conn
            .prepare_cached("DELETE FROM ingest_records WHERE expires_at <= ?1")
            .and_then(|mut s| s.execute([now_ms]))
            .map_err(storage_error)?;
        let records = self
            .conn
            .prepare_cached("DELETE FROM records WHERE expires_at <= ?1")
            .and_then(|mut s| s.execute([now_ms]))
            .map_err(storage_error)?;
        Ok(staged + records)
    }

    fn delete_keys_ended(&mut self, now_ms: i64) -> Result<Vec<u64>> {
        let ingest: Vec<i64> = self
            .conn
            .prepare_cached("DELETE FROM ingest_keys WHERE not_after <= ?1 RETURNING id")
            .and_then(|mut s| s.query_map([now_ms], |r| r.get(0))?.collect())
            .map_err(storage_error)?;
        let mut ids: Vec<i64> = self
            .conn
            .prepare_cached("DELETE FROM keys WHERE not_after <= ?1 RETURNING id")
            .and_then(|mut s| s.query_map([now_ms], |r| r.get(0))?.collect())
            .map_err(storage_error)?;
        ids.extend(ingest);
        Ok(ids
            .into_iter()
            .filter_map(|i| u64::try_from(i).ok())
            .collect())
    }

    fn delete_subject(&mut self, tag: &IdTag) -> Result<(usize, Vec<u64>)> {
        // The subject's PII mappings: those bound to them, and those of the
        // conversations their records are in.
        self.conn
            .prepare_cached(
                "DELETE FROM pii_maps WHERE subject = ?1 OR conversation IN \
                 (SELECT DISTINCT conversation FROM records WHERE subject = ?1)",
            )
            .and_then(|mut s| s.execute([&tag[..]]))
            .map_err(storage_error)?;
        let records = self
            .conn
            .prepare_cached("DELETE FROM records WHERE subject = ?1")
            .and_then(|mut s| s.execute([&tag[..]]))
            .map_err(storage_error)?;
        failpoint!("erase-records-deleted");
        let keys: Vec<i64> = self
            .conn
            .prepare_cached("DELETE FROM keys WHERE subject = ?1 RETURNING id")
            .and_then(|mut s| s.query_map([&tag[..]], |r| r.get(0))?.collect())
            .map_err(storage_error)?;
        Ok((
            records,
            keys.into_iter()
                .filter_map(|i| u64::try_from(i).ok())
                .collect(),
        ))
    }

    fn keys(&mut self) -> Result<Vec<KeyRow>> {
        all_keys(&self.conn)
            .map_err(storage_error)?
            .into_iter()
            .collect()
    }

    fn meta(&mut self) -> Result<VaultMeta> {
        super::read_meta(&self.conn).map_err(storage_error)
    }

    fn set_meta(&mut self, meta: &VaultMeta) -> Result<()> {
        self.conn
            .execute(
                "UPDATE meta SET value = CASE name WHEN ?1 THEN ?2 WHEN ?3 THEN ?4 END \
                 WHERE name IN (?1, ?3)",
                params![META_HEADER, meta.header, META_TAG_KEY, meta.tag_key],
            )
            .map_err(storage_error)?;
        Ok(())
    }

    fn audit_tail(&mut self) -> Result<(u64, [u8; 32])> {
        let tail: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1")
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(storage_error)?;
        match tail {
            None => Ok((0, [0; 32])),
            Some((seq, mac)) => Ok((
                u64::try_from(seq).map_err(|_| corrupt("negative audit seq"))?,
                <[u8; 32]>::try_from(mac.as_slice())
                    .map_err(|_| corrupt("audit mac of the wrong length"))?,
            )),
        }
    }

    fn append_audit(&mut self, row: &AuditRow) -> Result<()> {
        let seq = sql_id(row.seq)?;
        self.conn
            .prepare_cached("INSERT INTO audit (seq, at, sealed, mac) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![seq, row.at_ms, row.sealed, &row.mac[..]]))
            .map_err(storage_error)?;
        failpoint!("audit-appended");
        Ok(())
    }

    fn audit_rows_after(
        &mut self,
        after: u64,
        each: &mut dyn FnMut(AuditRow) -> Result<()>,
    ) -> Result<()> {
        let after = sql_id(after.min(i64::MAX as u64))?;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, at, sealed, mac FROM audit WHERE seq > ?1 ORDER BY seq")
            .map_err(storage_error)?;
        let mut rows = stmt.query([after]).map_err(storage_error)?;
        while let Some(row) = rows.next().map_err(storage_error)? {
            super::audit_row(row)
                .map_err(storage_error)?
                .and_then(&mut *each)?;
        }
        Ok(())
    }

    fn take_failed_opens(&mut self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT next FROM counters WHERE name = ?1",
                [FAILED_OPENS],
                |r| r.get(0),
            )
            .map_err(storage_error)?;
        if n != 0 {
            self.conn
                .execute(
                    "UPDATE counters SET next = 0 WHERE name = ?1",
                    [FAILED_OPENS],
                )
                .map_err(storage_error)?;
        }
        Ok(u64::try_from(n).unwrap_or(0))
    }

    // Both from the statement cache: every `put` reads and writes the
    // high-water mark.
    fn set_meta_value(&mut self, name: &str, value: Option<&[u8]>) -> Result<()> {
        let done = match value {
            Some(v) => self
                .conn
                .prepare_cached(
                    "INSERT INTO meta (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut s| s.execute(params![name, v])),
            None => self
                .conn
                .prepare_cached("DELETE FROM meta WHERE name = ?1")
                .and_then(|mut s| s.execute([name])),
        };
        done.map(|_| ()).map_err(storage_error)
    }

    fn meta_value(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE name = ?1")
            .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
            .map_err(storage_error)
    }

    fn pii_map(&mut self, conversation: &IdTag) -> Result<Option<PiiMapRow>> {
        super::pii_map_row(&self.conn, conversation)
            .map_err(storage_error)?
            .transpose()
    }

    fn put_pii_map(&mut self, row: &PiiMapRow) -> Result<()> {
        let subject = row.subject.as_ref().map(|t| &t[..]);
        self.conn
            .execute(
                "INSERT INTO pii_maps (conversation, subject, expires_at, sealed) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (conversation) DO UPDATE SET subject = excluded.subject, \
                 expires_at = excluded.expires_at, sealed = excluded.sealed",
                params![&row.conversation[..], subject, row.expires_at_ms, row.sealed],
            )
            .map_err(storage_error)?;
        Ok(())
    }

    fn insert_ingest_key(&mut self, key: &IngestKeyRow) -> Result<()> {
        let id = sql_id(key.id)?;
        self.conn
            .execute(
                "INSERT INTO ingest_keys (id, not_after, wrapped) VALUES (?1, ?2, ?3)",
                params![id, key.not_after_ms, key.wrapped],
            )
            .map_err(storage_error)?;
        Ok(())
    }

    fn insert_ingested(&mut self, row: &IngestRow) -> Result<()> {
        let (id, key_id) = (sql_id(row.id)?, sql_id(row.key_id)?);
        self.conn
            .prepare_cached(
                "INSERT INTO ingest_records (id, key_id, expires_at, sealed) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![id, key_id, row.expires_at_ms, row.sealed]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn is_active(&self) -> bool {
        !self.conn.is_autocommit()
    }

    fn has_ingested(&mut self) -> Result<bool> {
        any_ingested(&self.conn).map_err(storage_error)
    }

    fn record(&mut self, id: u64) -> Result<Option<RecordRow>> {
        record_by_id(&self.conn, sql_id(id)?)
            .map_err(storage_error)?
            .transpose()
    }

    fn staged(&mut self, after: u64, limit: usize, max_len: usize) -> Result<Vec<IngestRow>> {
        let after = sql_id(after)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let max_len = i64::try_from(max_len).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached(
                "SELECT id, key_id, expires_at, \
                 CASE WHEN length(sealed) <= ?3 THEN sealed END \
                 FROM ingest_records WHERE id > max(?1, 0) ORDER BY id LIMIT ?2",
            )
            .and_then(|mut s| {
                s.query_map(params![after, limit, max_len], staged_row)?
                    .collect()
            })
            .map_err(storage_error)
    }

    fn set_aside_staged(&mut self, id: u64, expires_cap_ms: i64) -> Result<()> {
        let id = sql_id(id)?;
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
            return self.delete_ingested(u64::try_from(id).unwrap_or(0));
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

    fn delete_ingest_keys(&mut self) -> Result<()> {
        self.conn
            .execute("DELETE FROM ingest_keys", [])
            .map_err(storage_error)?;
        Ok(())
    }

    fn ingest_key(&mut self, id: u64) -> Result<Option<IngestKeyRow>> {
        let sql = sql_id(id)?;
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT not_after, wrapped FROM ingest_keys WHERE id = ?1")
            .and_then(|mut s| {
                s.query_row([sql], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(storage_error)?;
        Ok(row.map(|(not_after_ms, wrapped)| IngestKeyRow {
            id,
            not_after_ms,
            wrapped,
        }))
    }

    fn delete_ingested(&mut self, id: u64) -> Result<()> {
        let id = sql_id(id)?;
        self.conn
            .prepare_cached("DELETE FROM ingest_records WHERE id = ?1")
            .and_then(|mut s| s.execute([id]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn note_maintenance(&mut self, note: &MaintenanceNote) -> Result<()> {
        let (records, keys) = (sql_id(note.records)?, sql_id(note.keys)?);
        self.conn
            .execute(
                "INSERT INTO maintenance (at, records, keys) VALUES (?1, ?2, ?3)",
                params![note.at_ms, records, keys],
            )
            .map_err(storage_error)?;
        Ok(())
    }

    fn take_maintenance_notes(&mut self) -> Result<Vec<MaintenanceNote>> {
        let notes: Vec<(i64, i64, i64)> = self
            .conn
            .prepare_cached("DELETE FROM maintenance RETURNING at, records, keys")
            .and_then(|mut s| {
                s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(storage_error)?;
        let mut notes: Vec<MaintenanceNote> = notes
            .into_iter()
            .map(|(at_ms, records, keys)| MaintenanceNote {
                at_ms,
                records: u64::try_from(records).unwrap_or(0),
                keys: u64::try_from(keys).unwrap_or(0),
            })
            .collect();
        notes.sort_by_key(|n| n.at_ms);
        Ok(notes)
    }

    fn newest_maintenance_note(&mut self) -> Result<Option<i64>> {
        self.conn
            .query_row(
                "SELECT max(at) FROM maintenance WHERE typeof(at) = 'integer'",
                [],
                |r| r.get(0),
            )
            .map_err(storage_error)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        self.commit_then(&mut || ())
    }

    fn commit_then(mut self: Box<Self>, after: &mut dyn FnMut()) -> Result<()> {
        if self.conn.is_autocommit() {
            // Rolled back under us by a storage error: nothing to commit,
            // and what was written since went in unprotected.
            return Err(Error::Storage(
                "the write transaction was rolled back by the database".into(),
            ));
        }
        failpoint!("commit-before");
        run(&self.conn, "COMMIT").map_err(storage_error)?;
        failpoint!("commit-after");
        self.done = true;
        after();
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

/// A staged row as stored, never an error for values of the wrong type
/// (see [`IngestRow`]). The id is the rowid: always an integer, and the
/// query takes positive ones only.
fn staged_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IngestRow> {
    use rusqlite::types::ValueRef;
    let id: i64 = r.get(0)?;
    let id = u64::try_from(id).unwrap_or(0);
    let columns = (r.get_ref(1)?, r.get_ref(2)?, r.get_ref(3)?);
    Ok(match columns {
        (ValueRef::Integer(key_id), ValueRef::Integer(expires_at_ms), ValueRef::Blob(sealed))
            if key_id >= 0 =>
        {
            IngestRow {
                id,
                key_id: key_id.unsigned_abs(),
                expires_at_ms,
                sealed: sealed.to_vec(),
            }
        }
        _ => IngestRow {
            id,
            key_id: 0,
            expires_at_ms: 0,
            sealed: Vec::new(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::SqliteBackend;
    use crate::store::{Backend, VaultMeta};

    /// `PRAGMA synchronous` as the open transaction sees it: 2 FULL, 1 NORMAL.
    fn level(backend: &SqliteBackend, light: bool) -> i64 {
        let txn = if light {
            backend.write_light()
        } else {
            backend.write()
        }
        .unwrap();
        drop(txn);
        let writer = backend.writer.lock().unwrap();
        writer
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// Light transactions leave the writer at NORMAL between them; every
    /// full one must still run at FULL, whatever ran before it.
    #[test]
    fn full_transactions_run_at_full_sync_after_light_ones() {
        let dir = tempfile::tempdir().unwrap();
        let meta = VaultMeta {
            header: vec![1],
            tag_key: vec![2],
        };
        let backend = SqliteBackend::create(&dir.path().join("v"), &meta, 2).unwrap();
        assert_eq!(level(&backend, false), 2);
        assert_eq!(level(&backend, true), 1);
        assert_eq!(level(&backend, true), 1);
        assert_eq!(level(&backend, false), 2);
        assert_eq!(level(&backend, true), 1);
        assert_eq!(level(&backend, false), 2);
    }
}
