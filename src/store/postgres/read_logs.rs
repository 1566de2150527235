//! Read logs of a PostgreSQL vault (src/store/read_logs.rs): a row per log
//! in `read_logs` saying who holds it and until when, and its bytes in
//! `read_log_bytes`, one row per append keyed by its offset.
//!
//! A hold is a lease, not a lock that dies with its process: no portable
//! SQL has one that needs no open transaction, and a transaction held open
//! for a handle's life would stop vacuum for the whole server. The holder
//! renews the lease with every append (in the same statement, which fails
//! once another has claimed the log); a log whose lease ran out is claimed
//! by the next sweep of any handle. A holder that finds its log claimed,
//! or cannot tell whether an append went in, calls the log lost, and the
//! vault starts a new one (the lost one is folded by whoever claims it).

use std::sync::Arc;

use postgres::fallible_iterator::FallibleIterator;

use super::connect::{Conn, Pool};
use super::storage_error;
use crate::error::{Error, Result};
use crate::store::read_logs::{Claim, LogName, ReadLogFile, ReadLogs};

/// How long a hold lasts after the holder last renewed it, in ms.
const LEASE_MS: i64 = 120_000;

/// How often an appending holder renews its hold: an append within this
/// of the last renewal only checks that the hold is still its own.
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The server's clock in ms (one clock for every holder and claimant).
macro_rules! now_ms {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

/// The most of a log a sweep reads (as for files, `sqlite/read_logs.rs`).
const MAX_READ: usize = 128 << 20;

pub(super) struct TableReadLogs {
    pool: Arc<Pool>,
}

impl TableReadLogs {
    pub(super) fn new(pool: Arc<Pool>) -> Self {
        Self { pool }
    }

    /// A held log, with a connection of its own: appends commit with
    /// `synchronous_commit = off` (on the server when they return, which
    /// survives a crash of this process; a crash of the server may lose
    /// the last ones, as a power cut may lose a file's).
    fn held(&self, name: &LogName, holder: [u8; 16]) -> Result<Box<dyn ReadLogFile>> {
        let mut file = HeldLog {
            pool: Arc::clone(&self.pool),
            name: *name,
            holder,
            conn: None,
            len: 0,
            lost: false,
            pid: std::process::id(),
            renewed: std::time::Instant::now(),
        };
        file.len = file.stored_len()?;
        Ok(Box::new(file))
    }
}

fn new_holder() -> [u8; 16] {
    let mut holder = [0; 16];
    crate::random::fill_from_os(&mut holder);
    holder
}

impl ReadLogs for TableReadLogs {
    fn create(&self, name: &LogName) -> Result<Box<dyn ReadLogFile>> {
        let holder = new_holder();
        self.pool.with(|c| {
            c.client
                .execute(
                    concat!(
                        "INSERT INTO read_logs (name, holder, held_until) VALUES ($1, $2, ",
                        now_ms!(),
                        " + $3)"
                    ),
                    &[&&name[..], &&holder[..], &LEASE_MS],
                )
                .map_err(storage_error)
        })?;
        self.held(name, holder)
    }

    fn claim(&self, name: &LogName) -> Result<Claim> {
        let holder = new_holder();
        let claimed = self.pool.with(|c| {
            c.client
                .execute(
                    concat!(
                        "UPDATE read_logs SET holder = $2, held_until = ",
                        now_ms!(),
                        " + $3 WHERE name = $1 AND held_until < ",
                        now_ms!()
                    ),
                    &[&&name[..], &&holder[..], &LEASE_MS],
                )
                .map_err(storage_error)
        })?;
        if claimed == 1 {
            return Ok(Claim::Claimed(self.held(name, holder)?));
        }
        let exists = self.pool.with(|c| {
            c.client
                .query_opt("SELECT 1 FROM read_logs WHERE name = $1", &[&&name[..]])
                .map_err(storage_error)
        })?;
        Ok(if exists.is_some() {
            Claim::Held
        } else {
            Claim::Missing
        })
    }

    fn names(&self) -> Result<Vec<LogName>> {
        let rows = self.pool.with(|c| {
            c.client
                .query("SELECT name FROM read_logs ORDER BY name", &[])
                .map_err(storage_error)
        })?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get::<_, Vec<u8>>(0).ok())
            .filter_map(|n| LogName::try_from(n.as_slice()).ok())
            .collect())
    }

    fn remove(&self, name: &LogName) -> Result<()> {
        self.pool.with(|c| {
            let mut txn = c.client.transaction().map_err(storage_error)?;
            txn.execute("DELETE FROM read_log_bytes WHERE name = $1", &[&&name[..]])
                .map_err(storage_error)?;
            txn.execute("DELETE FROM read_logs WHERE name = $1", &[&&name[..]])
                .map_err(storage_error)?;
            txn.commit().map_err(storage_error)
        })
    }
}

struct HeldLog {
    pool: Arc<Pool>,
    name: LogName,
    /// This hold's token: a claim by another replaces it.
    holder: [u8; 16],
    conn: Option<Conn>,
    /// The log's length as this holder last knew it: the next offset.
    len: u64,
    lost: bool,
    /// The process that holds it: a forked child shares the connection's
    /// socket and must never speak on it.
    pid: u32,
    /// When this holder last renewed the hold (by its own clock; the lease
    /// itself runs on the server's).
    renewed: std::time::Instant,
}

impl HeldLog {
    fn lost_error() -> Error {
        Error::Storage("this handle's read log is no longer held by it".into())
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        if self.pid != std::process::id() {
            self.lost = true;
            return Err(Self::lost_error());
        }
        if self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            let mut conn = self.pool.connector().connect()?;
            conn.client
                .batch_execute("SET synchronous_commit = off")
                .map_err(storage_error)?;
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::Storage("no connection".into()))
    }

    /// The stored length, if this holder still holds the log.
    fn stored_len(&mut self) -> Result<u64> {
        let (name, holder) = (self.name, self.holder);
        let conn = self.conn()?;
        let statement = conn.statement(
            "SELECT (SELECT coalesce(max(at + octet_length(bytes)), 0) \
             FROM read_log_bytes WHERE name = $1) FROM read_logs \
             WHERE name = $1 AND holder = $2",
        )?;
        let row = conn
            .client
            .query_opt(&statement, &[&&name[..], &&holder[..]])
            .map_err(storage_error)?;
        let Some(row) = row else {
            self.lost = true;
            return Err(Self::lost_error());
        };
        let len: i64 = row.try_get(0).map_err(storage_error)?;
        Ok(u64::try_from(len).unwrap_or(0))
    }

    fn fail(&mut self, e: postgres::Error) -> Error {
        // The statement may or may not have gone in: only a fresh log is
        // sure to continue where this holder thinks it ends.
        self.lost = true;
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        storage_error(e)
    }
}

impl ReadLogFile for HeldLog {
    fn append(&mut self, bytes: &[u8]) -> Result<()> {
        if self.lost {
            return Err(Self::lost_error());
        }
        let (name, holder) = (self.name, self.holder);
        let at = i64::try_from(self.len).map_err(|_| Self::lost_error())?;
        let renew = self.renewed.elapsed() >= RENEW_EVERY;
        let started = std::time::Instant::now();
        let conn = self.conn()?;
        let written = if renew {
            let statement = conn.statement(concat!(
                "WITH held AS (UPDATE read_logs SET held_until = ",
                now_ms!(),
                " + $5 WHERE name = $1 AND holder = $2 RETURNING name) \
                 INSERT INTO read_log_bytes (name, at, bytes) SELECT name, $3, $4 FROM held"
            ))?;
            conn.client.execute(
                &statement,
                &[&&name[..], &&holder[..], &at, &bytes, &LEASE_MS],
            )
        } else {
            // The row is locked to share, not updated: no dead row per
            // read, and a claim (which updates the holder) waits for this
            // append to commit, or this append for the claim, which then
            // no longer matches: an append never lands in a claimed log.
            let statement = conn.statement(
                "INSERT INTO read_log_bytes (name, at, bytes) SELECT name, $3, $4 \
                 FROM read_logs WHERE name = $1 AND holder = $2 FOR SHARE",
            )?;
            conn.client
                .execute(&statement, &[&&name[..], &&holder[..], &at, &bytes])
        };
        match written {
            Ok(1) => {
                self.len += bytes.len() as u64;
                if renew {
                    self.renewed = started;
                }
                Ok(())
            }
            Ok(_) => {
                self.lost = true;
                Err(Self::lost_error())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn read_from(&mut self, offset: u64) -> Result<Vec<u8>> {
        let (name, holder) = (self.name, self.holder);
        let from = i64::try_from(offset).unwrap_or(i64::MAX);
        let conn = self.conn()?;
        let statement = conn.statement(
            "SELECT b.at, substring(b.bytes FROM 1 FOR $4::integer) FROM read_log_bytes b \
             JOIN read_logs l ON l.name = b.name \
             WHERE b.name = $1 AND l.holder = $2 AND b.at + octet_length(b.bytes) > $3 \
             ORDER BY b.at",
        )?;
        let out = match chunks_from(conn, &statement, &name, &holder, from) {
            Ok(out) => out,
            Err(e) => return Err(self.fail(e)),
        };
        if out.is_empty() && self.stored_len().is_err() {
            return Err(Self::lost_error());
        }
        Ok(out)
    }

    fn held(&mut self) -> bool {
        if self.lost {
            return false;
        }
        match self.stored_len() {
            Ok(len) if len != self.len => {
                self.lost = true;
                false
            }
            // Unreachable is not lost: the fold that asks fails anyway.
            _ => !self.lost,
        }
    }
}

/// A log's bytes from offset `from`, streamed, each row cut to the cap on
/// the server: a planted giant row is never loaded whole. Appends are
/// contiguous; a gap or an overlap is damage, which the reader of the
/// entries reports: the bytes stop there.
fn chunks_from(
    conn: &mut Conn,
    statement: &postgres::Statement,
    name: &LogName,
    holder: &[u8; 16],
    from: i64,
) -> std::result::Result<Vec<u8>, postgres::Error> {
    let cap = i32::try_from(MAX_READ).unwrap_or(i32::MAX);
    let args: [&(dyn postgres::types::ToSql + Sync); 4] = [&&name[..], &&holder[..], &from, &cap];
    let mut rows = conn.client.query_raw(statement, args)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let at: i64 = row.try_get(0)?;
        let chunk: Vec<u8> = row.try_get(1)?;
        let start = usize::try_from(from.saturating_sub(at)).unwrap_or(0);
        let expected = from.saturating_add(i64::try_from(out.len()).unwrap_or(i64::MAX));
        if at.max(from) != expected || start > chunk.len() {
            break;
        }
        out.extend_from_slice(&chunk[start..]);
        if out.len() >= MAX_READ {
            out.truncate(MAX_READ);
            break;
        }
    }
    Ok(out)
}

impl Drop for HeldLog {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take().and_then(Conn::forget_if_inherited) else {
            return;
        };
        // Released, so a sweep need not wait out the lease (a log removed
        // already has no row to release).
        let _ = conn.client.execute(
            "UPDATE read_logs SET held_until = 0 WHERE name = $1 AND holder = $2",
            &[&&self.name[..], &&self.holder[..]],
        );
    }
}
