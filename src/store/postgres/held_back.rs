//! Writes a transaction holds back so that many go to the server in one
//! round trip: a `put_batch` of 1,000 records over 1,000 new subjects
//! would otherwise wait on the network for each record, each new key, each
//! key id and each use count, a fold of 1,024 reads' entries for each
//! audit row, and every write for its `meta` rows (the high-water mark,
//! the time index). Every read of the transaction still sees them: a read
//! of records, of the audit log or of `meta` sends the held-back rows of
//! its table first, a read of keys merges or sends the held-back keys, and use
//! counts are added to every key row read. The commit sends the rest.

use std::collections::HashMap;

use postgres::Statement;
use postgres::types::ToSql;

use super::connect::Conn;
use super::storage_error;
use crate::error::{Error, Result};
use crate::keys::KeyScope;
use crate::store::NEXT_KEY;
use crate::store::{AuditRow, KeyRow, RecordRow, Row};

/// Key ids reserved at once: the unused ones go back at the commit.
const KEY_ID_BLOCK: u64 = 64;

#[derive(Default)]
pub(super) struct HeldBack {
    records: Vec<RecordRow>,
    audit: Vec<AuditRow>,
    /// `meta` rows to store, one per name (the last value put).
    meta: Vec<(String, Vec<u8>)>,
    keys: Vec<KeyRow>,
    /// Uses of keys already on the server, by id.
    key_uses: HashMap<u64, u64>,
    /// Key ids reserved on the server and not handed out: `next..end`.
    key_ids: Option<(u64, u64)>,
    /// The server's active keys of the scopes a `prefetch_sealing` named,
    /// as read then (before the held-back use counts, which `seen` adds):
    /// valid until held-back keys or counts are sent.
    prefetched: Option<HashMap<KeyScope, Vec<KeyRow>>>,
}

fn int(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::InvalidInput {
        what: "id",
        reason: "out of range".into(),
    })
}

impl HeldBack {
    pub(super) fn put_record(&mut self, row: &RecordRow) {
        self.records.push(row.clone());
    }

    pub(super) fn put_meta(&mut self, name: &str, value: &[u8]) {
        match self.meta.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => value.clone_into(v),
            None => self.meta.push((name.to_owned(), value.to_vec())),
        }
    }

    /// The held-back value of `meta` row `name`.
    pub(super) fn meta_value(&self, name: &str) -> Option<Vec<u8>> {
        self.meta
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    pub(super) fn put_audit(&mut self, row: &AuditRow) {
        self.audit.push(row.clone());
    }

    pub(super) fn put_key(&mut self, row: &KeyRow) {
        // Uses counted before the key existed counted on nothing (as for a
        // key that is gone); a stored key of the id fails the insert.
        self.key_uses.remove(&row.id);
        self.keys.push(row.clone());
    }

    /// Adds `n` uses to key `id`.
    pub(super) fn add_uses(&mut self, id: u64, n: u64) {
        if let Some(k) = self.keys.iter_mut().find(|k| k.id == id) {
            k.sealed = k.sealed.saturating_add(n);
        } else {
            let uses = self.key_uses.entry(id).or_insert(0);
            *uses = uses.saturating_add(n);
        }
    }

    /// A row read from the server as this transaction sees it.
    pub(super) fn seen(&self, row: Row) -> Row {
        match row {
            Row::Key(mut k) => {
                if let Some(n) = self.key_uses.get(&k.id) {
                    k.sealed = k.sealed.saturating_add(*n);
                }
                Row::Key(k)
            }
            other => other,
        }
    }

    /// Keeps what a prefetch read: every scope asked, with its rows (none
    /// for a scope without keys). A damaged row keeps nothing, so lookups
    /// go to the server and report it as they would have.
    pub(super) fn prefetched(&mut self, scopes: &[KeyScope], found: Vec<crate::store::Scanned>) {
        let mut by_scope: HashMap<KeyScope, Vec<KeyRow>> =
            scopes.iter().map(|s| (*s, Vec::new())).collect();
        for row in found {
            match row {
                Ok(Row::Key(k)) => by_scope.entry(k.scope).or_default().push(k),
                _ => return,
            }
        }
        self.prefetched = Some(by_scope);
    }

    /// The server's rows of a `Sealing(scope)` selection, if a prefetch
    /// read them and nothing sent since can have changed them.
    pub(super) fn prefetched_sealing(&self, scope: &KeyScope) -> Option<Vec<KeyRow>> {
        self.prefetched.as_ref()?.get(scope).cloned()
    }

    /// The held-back keys a `Sealing(scope)` selection takes in.
    pub(super) fn sealing(&self, scope: &KeyScope) -> Vec<KeyRow> {
        self.keys
            .iter()
            .filter(|k| k.scope == *scope && !k.retired)
            .cloned()
            .collect()
    }

    /// A key id from the reserved block, if it has room.
    pub(super) fn key_id(&mut self, by: u64, at_least: u64) -> Option<u64> {
        let (next, end) = self.key_ids.as_mut()?;
        let first = (*next).max(at_least);
        let after = first.checked_add(by)?;
        if after > *end {
            return None;
        }
        *next = after;
        Some(first)
    }

    /// Reserves a block of key ids on the server (`UPDATE … RETURNING`)
    /// and hands out the first `by`; `None` without a counter row (which
    /// leaves the transaction as it was).
    pub(super) fn reserve_key_ids(
        &mut self,
        conn: &mut Conn,
        by: u64,
        at_least: u64,
    ) -> Result<Option<u64>> {
        self.flush_key_ids(conn)?;
        let reserve = by.max(KEY_ID_BLOCK);
        let Some(first) = super::rows::bump_counter(conn, NEXT_KEY, reserve, at_least)? else {
            return Ok(None);
        };
        let end = first
            .checked_add(reserve)
            .ok_or_else(|| super::rows::corrupt("a counter"))?;
        self.key_ids = Some((first.saturating_add(by), end));
        Ok(Some(first))
    }

    /// Gives the unused reserved key ids back: the counter says exactly
    /// the next id to hand out again.
    pub(super) fn flush_key_ids(&mut self, conn: &mut Conn) -> Result<()> {
        let Some((next, _)) = self.key_ids.take() else {
            return Ok(());
        };
        let statement = conn.statement("UPDATE counters SET next = $2 WHERE name = $1")?;
        conn.client
            .execute(
                &statement,
                &[&super::rows::Arg::Text(NEXT_KEY), &int(next)?],
            )
            .map_err(storage_error)
            .map(|_| ())
    }

    pub(super) fn flush_records(&mut self, conn: &mut Conn) -> Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.records);
        let columns = RecordColumns::of(&rows)?;
        let statement = conn.statement(
            "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bigint[], \
             $5::bytea[])",
        )?;
        execute(conn, &statement, &columns.params())
    }

    pub(super) fn flush_meta(&mut self, conn: &mut Conn) -> Result<()> {
        if self.meta.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.meta);
        let columns = MetaColumns::of(&rows);
        let statement = conn.statement(
            "INSERT INTO meta (name, value) SELECT * FROM unnest($1::text[], $2::bytea[]) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )?;
        execute(conn, &statement, &columns.params())
    }

    /// Audit entries go as they were chained; a `seq` already stored
    /// fails the insert (and the transaction) as a row of its own would.
    pub(super) fn flush_audit(&mut self, conn: &mut Conn) -> Result<()> {
        if self.audit.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.audit);
        let columns = AuditColumns::of(&rows)?;
        let statement = conn.statement(
            "INSERT INTO audit (seq, at, sealed, mac) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])",
        )?;
        execute(conn, &statement, &columns.params())
    }

    pub(super) fn flush_keys(&mut self, conn: &mut Conn) -> Result<()> {
        self.prefetched = None;
        if !self.keys.is_empty() {
            let rows = std::mem::take(&mut self.keys);
            let columns = KeyColumns::of(&rows)?;
            let statement = conn.statement(
                "INSERT INTO keys (id, subject, not_after, sealed, retired, wrapped) \
                 SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], \
                 $5::bigint[], $6::bytea[])",
            )?;
            execute(conn, &statement, &columns.params())?;
        }
        if !self.key_uses.is_empty() {
            let uses = std::mem::take(&mut self.key_uses);
            let columns = UseColumns::of(&uses)?;
            let statement = conn.statement(
                "UPDATE keys SET sealed = keys.sealed + u.n \
                 FROM unnest($1::bigint[], $2::bigint[]) AS u(id, n) WHERE keys.id = u.id",
            )?;
            execute(conn, &statement, &columns.params())?;
        }
        Ok(())
    }

    /// Sends everything (before the commit), in one statement: each kind
    /// of held-back write is a data-modifying `WITH` of it, empty arrays
    /// change nothing, so every commit sends the same prepared statement
    /// in one round trip. The use counts update only keys already on the
    /// server (a key made here carries its count in its row), so no row
    /// is both inserted and updated by it (were one, sibling `WITH`s see
    /// the same snapshot and the update would miss it: `put_key` drops a
    /// pending count of its id, and every read of keys sends both first).
    pub(super) fn flush_all(&mut self, conn: &mut Conn) -> Result<()> {
        self.prefetched = None;
        if self.keys.is_empty()
            && self.key_uses.is_empty()
            && self.records.is_empty()
            && self.audit.is_empty()
            && self.meta.is_empty()
            && self.key_ids.is_none()
        {
            return Ok(());
        }
        let keys = std::mem::take(&mut self.keys);
        let uses = std::mem::take(&mut self.key_uses);
        let records = std::mem::take(&mut self.records);
        let audit = std::mem::take(&mut self.audit);
        let meta = std::mem::take(&mut self.meta);
        let next_key_id = self.key_ids.take().map(|(next, _)| int(next)).transpose()?;
        let (keys, uses) = (KeyColumns::of(&keys)?, UseColumns::of(&uses)?);
        let (records, audit) = (RecordColumns::of(&records)?, AuditColumns::of(&audit)?);
        let meta = MetaColumns::of(&meta);
        let statement = conn.statement(
            "WITH held_keys AS (INSERT INTO keys (id, subject, not_after, sealed, retired, wrapped) \
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], \
             $5::bigint[], $6::bytea[])), \
             held_uses AS (UPDATE keys SET sealed = keys.sealed + u.n \
             FROM unnest($7::bigint[], $8::bigint[]) AS u(id, n) WHERE keys.id = u.id), \
             held_records AS (INSERT INTO records (id, conversation, subject, expires_at, sealed) \
             SELECT * FROM unnest($9::bigint[], $10::bytea[], $11::bytea[], $12::bigint[], \
             $13::bytea[])), \
             held_audit AS (INSERT INTO audit (seq, at, sealed, mac) \
             SELECT * FROM unnest($14::bigint[], $15::bigint[], $16::bytea[], $17::bytea[])), \
             held_key_ids AS (UPDATE counters SET next = $18::bigint \
             WHERE name = $19 AND $18::bigint IS NOT NULL), \
             held_meta AS (INSERT INTO meta (name, value) \
             SELECT * FROM unnest($20::text[], $21::bytea[]) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value) \
             SELECT 1",
        )?;
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(21);
        params.extend(keys.params());
        params.extend(uses.params());
        params.extend(records.params());
        params.extend(audit.params());
        params.extend([&next_key_id as &(dyn ToSql + Sync), &NEXT_KEY]);
        params.extend(meta.params());
        execute(conn, &statement, &params)
    }
}

fn execute(conn: &mut Conn, statement: &Statement, params: &[&(dyn ToSql + Sync)]) -> Result<()> {
    conn.client
        .execute(statement, params)
        .map_err(storage_error)
        .map(|_| ())
}

/// Held-back key rows as the arrays of their `unnest`.
struct KeyColumns<'a> {
    ids: Vec<i64>,
    subjects: Vec<Option<&'a [u8]>>,
    not_after: Vec<i64>,
    sealed: Vec<i64>,
    retired: Vec<i64>,
    wrapped: Vec<&'a [u8]>,
}

impl<'a> KeyColumns<'a> {
    fn of(rows: &'a [KeyRow]) -> Result<Self> {
        Ok(Self {
            ids: rows.iter().map(|k| int(k.id)).collect::<Result<_>>()?,
            subjects: rows
                .iter()
                .map(|k| k.scope.subject.as_ref().map(|t| &t[..]))
                .collect(),
            not_after: rows.iter().map(|k| k.scope.not_after_ms).collect(),
            sealed: rows.iter().map(|k| int(k.sealed)).collect::<Result<_>>()?,
            retired: rows.iter().map(|k| i64::from(k.retired)).collect(),
            wrapped: rows.iter().map(|k| k.wrapped.as_slice()).collect(),
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.ids,
            &self.subjects,
            &self.not_after,
            &self.sealed,
            &self.retired,
            &self.wrapped,
        ]
    }
}

/// Held-back use counts, by key id, as the arrays of their `unnest`.
struct UseColumns {
    ids: Vec<i64>,
    adds: Vec<i64>,
}

impl UseColumns {
    fn of(uses: &HashMap<u64, u64>) -> Result<Self> {
        Ok(Self {
            ids: uses.keys().map(|id| int(*id)).collect::<Result<_>>()?,
            adds: uses.values().map(|n| int(*n)).collect::<Result<_>>()?,
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 2] {
        [&self.ids, &self.adds]
    }
}

/// Held-back records as the arrays of their `unnest`.
struct RecordColumns<'a> {
    ids: Vec<i64>,
    conversations: Vec<&'a [u8]>,
    subjects: Vec<Option<&'a [u8]>>,
    expiries: Vec<i64>,
    sealed: Vec<&'a [u8]>,
}

impl<'a> RecordColumns<'a> {
    fn of(rows: &'a [RecordRow]) -> Result<Self> {
        Ok(Self {
            ids: rows.iter().map(|r| int(r.id)).collect::<Result<_>>()?,
            conversations: rows.iter().map(|r| &r.conversation[..]).collect(),
            subjects: rows
                .iter()
                .map(|r| r.subject.as_ref().map(|t| &t[..]))
                .collect(),
            expiries: rows.iter().map(|r| r.expires_at_ms).collect(),
            sealed: rows.iter().map(|r| r.sealed.as_slice()).collect(),
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 5] {
        [
            &self.ids,
            &self.conversations,
            &self.subjects,
            &self.expiries,
            &self.sealed,
        ]
    }
}

/// Held-back audit rows as the arrays of their `unnest`.
struct AuditColumns<'a> {
    seqs: Vec<i64>,
    at: Vec<i64>,
    sealed: Vec<&'a [u8]>,
    macs: Vec<&'a [u8]>,
}

impl<'a> AuditColumns<'a> {
    fn of(rows: &'a [AuditRow]) -> Result<Self> {
        Ok(Self {
            seqs: rows.iter().map(|a| int(a.seq)).collect::<Result<_>>()?,
            at: rows.iter().map(|a| a.at_ms).collect(),
            sealed: rows.iter().map(|a| a.sealed.as_slice()).collect(),
            macs: rows.iter().map(|a| &a.mac[..]).collect(),
        })
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 4] {
        [&self.seqs, &self.at, &self.sealed, &self.macs]
    }
}

/// Held-back `meta` rows as the arrays of their `unnest`.
struct MetaColumns<'a> {
    names: Vec<&'a str>,
    values: Vec<&'a [u8]>,
}

impl<'a> MetaColumns<'a> {
    fn of(rows: &'a [(String, Vec<u8>)]) -> Self {
        Self {
            names: rows.iter().map(|(n, _)| n.as_str()).collect(),
            values: rows.iter().map(|(_, v)| v.as_slice()).collect(),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 2] {
        [&self.names, &self.values]
    }
}
