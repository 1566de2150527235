//! The write transaction: `BEGIN`, then the one row of `writer_turn`
//! locked `FOR UPDATE`, so id counters, key use counts and the audit
//! chain's head are read and moved by one writer at a time, across every
//! process and server.

use std::ops::ControlFlow;
use std::sync::MutexGuard;
use std::time::Duration;

use super::connect::{Conn, Pool};
use super::held_back::HeldBack;
use super::{is_retryable, rows, storage_error};
use crate::error::{Error, Result};
use crate::store::{Counter, Durability, ReadTxn, Row, Scanned, Select, Table, Tally, WriteTxn};
use crate::store::{FAILED_OPENS, NEXT_RECORD};

/// Attempts at taking the writers' turn when the server reports a
/// serialization failure or a deadlock (not expected under one lock row,
/// but the servers that speak PostgreSQL's protocol differ).
const BEGIN_ATTEMPTS: u32 = 5;

pub(super) struct PostgresWrite<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
    _turn: MutexGuard<'a, ()>,
    durability: Durability,
    /// A statement failed: the server aborted the transaction, and a
    /// `COMMIT` would roll it back while reporting success.
    failed: bool,
    done: bool,
    /// Tables rows were deleted from or written over, vacuumed after a
    /// scrubbed commit (their old versions are dead rows until then).
    deleted: Vec<&'static str>,
    held: HeldBack,
}

impl<'a> PostgresWrite<'a> {
    pub(super) fn begin(
        pool: &'a Pool,
        turn: MutexGuard<'a, ()>,
        durability: Durability,
    ) -> Result<Self> {
        // Durable transactions ask for `synchronous_commit = on` whatever
        // the server's default; reads' audit entries need only reach the
        // server (a crash of this process loses nothing).
        let begin = match durability {
            Durability::Buffered => {
                "BEGIN; SET LOCAL synchronous_commit = off; \
                 SELECT one FROM writer_turn FOR UPDATE"
            }
            Durability::Durable | Durability::Scrubbed => {
                "BEGIN; SET LOCAL synchronous_commit = on; \
                 SELECT one FROM writer_turn FOR UPDATE"
            }
        };
        let mut attempt = 0;
        loop {
            let (mut conn, was_idle) = pool.take()?;
            let mut begun = conn.client.batch_execute(begin);
            if begun.is_err() && was_idle && conn.client.is_closed() {
                // Closed while idle (a server restart): nothing ran.
                conn = pool.connector().connect()?;
                begun = conn.client.batch_execute(begin);
            }
            match begun {
                Ok(()) => {
                    return Ok(Self {
                        pool,
                        conn: Some(conn),
                        _turn: turn,
                        durability,
                        failed: false,
                        done: false,
                        deleted: Vec::new(),
                        held: HeldBack::default(),
                    });
                }
                Err(e) => {
                    let retry = is_retryable(&e) && attempt + 1 < BEGIN_ATTEMPTS;
                    let rolled_back = conn.client.batch_execute("ROLLBACK").is_ok();
                    pool.give_back(conn, rolled_back);
                    if !retry {
                        return Err(storage_error(e));
                    }
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(10 << attempt));
                }
            }
        }
    }

    /// Runs `f` on the transaction's connection; a failure marks the
    /// transaction failed.
    fn run<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        self.with_held(|_, conn| f(conn))
    }
}

impl PostgresWrite<'_> {
    /// Runs `f` on the connection and what is held back; a failure marks
    /// the transaction failed.
    fn with_held<T>(&mut self, f: impl FnOnce(&mut HeldBack, &mut Conn) -> Result<T>) -> Result<T> {
        let held = &mut self.held;
        let failed = &mut self.failed;
        if *failed || self.done {
            return Err(Error::Storage(
                "the write transaction already failed or ended".into(),
            ));
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| Error::Storage("the write transaction has no connection".into()))?;
        let out = f(held, conn);
        if out.is_err() {
            *failed = true;
        }
        out
    }

    /// Notes a table whose rows this transaction deleted or overwrote.
    fn touched(&mut self, table: Table) {
        let name = rows::table_name(table);
        if self.durability == Durability::Scrubbed && !self.deleted.contains(&name) {
            self.deleted.push(name);
        }
    }

    /// Sends what was held back that an operation on `table` must see
    /// (keys' `Sealing` selections merge the held-back keys instead).
    fn flush_for(&mut self, table: Table, select: &Select<'_>) -> Result<()> {
        match (table, select) {
            // A PII mapping's `ConversationsOf` reads records too.
            (Table::Records | Table::PiiMaps, _) => self.with_held(HeldBack::flush_records),
            (Table::Audit, _) => self.with_held(HeldBack::flush_audit),
            (Table::Meta, _) => self.with_held(HeldBack::flush_meta),
            (Table::Keys, Select::Sealing(_)) => Ok(()),
            (Table::Keys, _) => self.with_held(HeldBack::flush_keys),
            (Table::Counters, _) => self.with_held(HeldBack::flush_key_ids),
            _ => Ok(()),
        }
    }

    /// The rows `select` names, as this transaction sees them, in order.
    fn selected(
        &mut self,
        table: Table,
        select: &Select<'_>,
        first_only: bool,
    ) -> Result<Vec<Scanned>> {
        if let (Table::Keys, Select::Sealing(scope)) = (table, select)
            && let Some(rows) = self.held.prefetched_sealing(scope)
        {
            let mut found: Vec<Scanned> = rows
                .into_iter()
                .chain(self.held.sealing(scope))
                .map(|k| Ok(self.held.seen(Row::Key(k))))
                .collect();
            sort_newest_first(&mut found);
            return Ok(found);
        }
        if let (Table::Meta, Select::Name(name)) = (table, select) {
            // One `meta` row by name: the held-back value if there is one,
            // else the server's (the held-back rows are other names).
            if let Some(value) = self.with_held(|held, _| Ok(held.meta_value(name)))? {
                return Ok(vec![Ok(Row::Meta {
                    name: (*name).to_owned(),
                    value,
                })]);
            }
        } else {
            self.flush_for(table, select)?;
        }
        let query = rows::select(table, select)?;
        let mut found = Vec::new();
        self.run(|c| {
            rows::scan(c, table, &query, &mut |row| {
                found.push(row);
                Ok(if first_only && !matches!(select, Select::Sealing(_)) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            })
        })?;
        let mut found: Vec<Scanned> = found
            .into_iter()
            .map(|r| r.map(|row| self.held.seen(row)))
            .collect();
        if let (Table::Keys, Select::Sealing(scope)) = (table, select) {
            // Highest id first, the server's rows and the held-back ones.
            found.extend(
                self.held
                    .sealing(scope)
                    .into_iter()
                    .map(|k| Ok(Row::Key(k))),
            );
            sort_newest_first(&mut found);
        }
        Ok(found)
    }
}

/// Key rows highest id first, damaged ones by the id they read with (as
/// the server orders them), so a damaged newest key is found first.
fn sort_newest_first(rows: &mut [Scanned]) {
    rows.sort_by_key(|r| match r {
        Ok(Row::Key(k)) => std::cmp::Reverse(k.id),
        Ok(_) => std::cmp::Reverse(0),
        Err(d) => std::cmp::Reverse(d.id.unwrap_or(0)),
    });
}

impl Drop for PostgresWrite<'_> {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let healthy = if self.done {
            if self.durability == Durability::Scrubbed && !self.deleted.is_empty() {
                // What a purge, an erasure or a key change deleted is pruned
                // now, not at the next autovacuum: its space is reused by
                // the next inserts, so purge cycles do not grow the tables
                // (best effort; DESIGN.md says what the server may still
                // keep of a deleted row).
                let _ = conn
                    .client
                    .batch_execute(&format!("VACUUM {}", self.deleted.join(", ")));
            }
            true
        } else {
            conn.client.batch_execute("ROLLBACK").is_ok()
        };
        self.pool.give_back(conn, healthy);
    }
}

impl ReadTxn for PostgresWrite<'_> {
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>> {
        match self.selected(table, &key, true)?.into_iter().next() {
            Some(row) => Ok(Some(row?)),
            None => Ok(None),
        }
    }

    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        if table != Table::Keys {
            // Streamed: a scan of records may be the whole vault.
            self.flush_for(table, &select)?;
            let query = rows::select(table, &select)?;
            return self.run(|c| rows::scan(c, table, &query, each));
        }
        for row in self.selected(table, &select, false)? {
            if each(row)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally> {
        self.flush_for(table, &Select::All)?;
        let query = rows::tally(table, &select)?;
        self.run(|c| rows::count(c, &query))
    }
}

impl WriteTxn for PostgresWrite<'_> {
    fn prefetch_sealing(&mut self, scopes: &[crate::keys::KeyScope]) -> Result<()> {
        // What it reads must reflect every key and use count so far.
        self.with_held(HeldBack::flush_keys)?;
        let found = self.run(|c| rows::sealing_keys_of(c, scopes))?;
        self.held.prefetched(scopes, found);
        Ok(())
    }

    fn put(&mut self, row: &Row) -> Result<()> {
        match row {
            Row::Record(r) => {
                return self.with_held(|held, _| {
                    held.put_record(r);
                    Ok(())
                });
            }
            Row::Key(k) => {
                return self.with_held(|held, _| {
                    held.put_key(k);
                    Ok(())
                });
            }
            Row::Audit(a) => {
                return self.with_held(|held, _| {
                    held.put_audit(a);
                    Ok(())
                });
            }
            Row::Meta { name, value } => {
                self.with_held(|held, _| {
                    held.put_meta(name, value);
                    Ok(())
                })?;
                // A value replaced in place.
                self.touched(Table::Meta);
                return Ok(());
            }
            Row::Counter { .. } => self.flush_for(Table::Counters, &Select::All)?,
            _ => {}
        }
        let query = rows::put(row)?;
        self.run(|c| rows::execute(c, &query))?;
        // Meta values, counters and PII mappings replace a row in place.
        if matches!(row, Row::Meta { .. } | Row::Counter { .. } | Row::PiiMap(_)) {
            self.touched(row.table());
        }
        Ok(())
    }

    fn delete(&mut self, table: Table, select: Select<'_>) -> Result<u64> {
        self.flush_for(table, &Select::All)?;
        let query = rows::delete(table, &select)?;
        let deleted = self.run(|c| rows::execute(c, &query))?;
        if deleted > 0 {
            self.touched(table);
        }
        Ok(deleted)
    }

    fn bump(&mut self, counter: Counter, by: u64, at_least: u64) -> Result<u64> {
        rows::int(by)?;
        let name = match counter {
            Counter::KeyUses(id) => {
                rows::int(id)?;
                return self.with_held(|held, _| {
                    held.add_uses(id, by);
                    Ok(0)
                });
            }
            Counter::KeyIds => {
                let first = self.with_held(|held, conn| match held.key_id(by, at_least) {
                    Some(first) => Ok(Some(first)),
                    None => held.reserve_key_ids(conn, by, at_least),
                })?;
                return first.ok_or_else(|| Error::Storage("no key id counter".into()));
            }
            Counter::RecordIds => NEXT_RECORD,
            Counter::FailedOpens => FAILED_OPENS,
        };
        let first = self.run(|c| rows::bump_counter(c, name, by, at_least))?;
        // A missing counter changed nothing: the transaction goes on.
        first.ok_or_else(|| Error::Storage(format!("no counter {name}").into()))
    }

    fn set_aside(&mut self, id: u64, expires_cap_ms: i64) -> Result<()> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(());
        };
        self.run(|c| {
            // Under -id, unless a row set aside before holds it (the same
            // row staged again): then below every id there is.
            let taken = c
                .client
                .query_opt("SELECT 1 FROM ingest_records WHERE id = $1", &[&-id])
                .map_err(storage_error)?
                .is_some();
            let to = if taken {
                let lowest: Option<i64> = c
                    .client
                    .query_one("SELECT min(id) FROM ingest_records", &[])
                    .and_then(|r| r.try_get(0))
                    .map_err(storage_error)?;
                lowest.and_then(|l| l.checked_sub(1))
            } else {
                Some(-id)
            };
            match to {
                // No negative id is left (only a forger gets here): drop it.
                None => c
                    .client
                    .execute("DELETE FROM ingest_records WHERE id = $1", &[&id])
                    .map_err(storage_error),
                Some(to) => c
                    .client
                    .execute(
                        "UPDATE ingest_records SET id = $2, expires_at = LEAST(expires_at, $3) \
                         WHERE id = $1",
                        &[&id, &to, &expires_cap_ms],
                    )
                    .map_err(storage_error),
            }
            .map(|_| ())
        })
    }

    fn flush(&mut self) -> Result<()> {
        self.with_held(HeldBack::flush_all)
    }

    fn commit(&mut self) -> Result<()> {
        if self.done {
            return Err(Error::Storage("the transaction was committed".into()));
        }
        if self.failed {
            return Err(Error::Storage(
                "the write transaction was rolled back by the database".into(),
            ));
        }
        self.with_held(HeldBack::flush_all)?;
        if self.durability == Durability::Scrubbed {
            // Key rows retired or rewrapped, use counts raised: updated
            // in place, their old versions dead rows.
            self.touched(Table::Keys);
        }
        // `SELECT 1` first: in a transaction the server aborted (an error
        // a statement reported after the rows this transaction read), it
        // fails, where a bare `COMMIT` would roll back and report success.
        self.run(|c| {
            c.client
                .batch_execute("SELECT 1; COMMIT")
                .map_err(storage_error)
        })?;
        self.done = true;
        Ok(())
    }
}
