//! Writes a transaction holds back so that many go to the server in one
//! round trip: a `put_batch` of 1,000 records over 1,000 new subjects
//! would otherwise wait on the network for each record, each new key, each
//! key id and each use count, and a fold of 1,024 reads' entries for each
//! audit row. Every read of the transaction still sees them: a read of
//! records or of the audit log sends the held-back rows of its table
//! first, a read of keys merges or sends the held-back keys, and use
//! counts are added to every key row read. The commit sends the rest.

use std::collections::HashMap;

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
        let ids = rows.iter().map(|r| int(r.id)).collect::<Result<Vec<_>>>()?;
        let conversations: Vec<&[u8]> = rows.iter().map(|r| &r.conversation[..]).collect();
        let subjects: Vec<Option<&[u8]>> = rows
            .iter()
            .map(|r| r.subject.as_ref().map(|t| &t[..]))
            .collect();
        let expiries: Vec<i64> = rows.iter().map(|r| r.expires_at_ms).collect();
        let sealed: Vec<&[u8]> = rows.iter().map(|r| r.sealed.as_slice()).collect();
        let statement = conn.statement(
            "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
             SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[], $4::bigint[], \
             $5::bytea[])",
        )?;
        conn.client
            .execute(
                &statement,
                &[&ids, &conversations, &subjects, &expiries, &sealed],
            )
            .map_err(storage_error)
            .map(|_| ())
    }

    /// Audit entries go as they were chained; a `seq` already stored
    /// fails the insert (and the transaction) as a row of its own would.
    pub(super) fn flush_audit(&mut self, conn: &mut Conn) -> Result<()> {
        if self.audit.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.audit);
        let seqs = rows
            .iter()
            .map(|a| int(a.seq))
            .collect::<Result<Vec<_>>>()?;
        let at: Vec<i64> = rows.iter().map(|a| a.at_ms).collect();
        let sealed: Vec<&[u8]> = rows.iter().map(|a| a.sealed.as_slice()).collect();
        let macs: Vec<&[u8]> = rows.iter().map(|a| &a.mac[..]).collect();
        let statement = conn.statement(
            "INSERT INTO audit (seq, at, sealed, mac) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])",
        )?;
        conn.client
            .execute(&statement, &[&seqs, &at, &sealed, &macs])
            .map_err(storage_error)
            .map(|_| ())
    }

    pub(super) fn flush_keys(&mut self, conn: &mut Conn) -> Result<()> {
        self.prefetched = None;
        if !self.keys.is_empty() {
            let rows = std::mem::take(&mut self.keys);
            let ids = rows.iter().map(|k| int(k.id)).collect::<Result<Vec<_>>>()?;
            let subjects: Vec<Option<&[u8]>> = rows
                .iter()
                .map(|k| k.scope.subject.as_ref().map(|t| &t[..]))
                .collect();
            let not_after: Vec<i64> = rows.iter().map(|k| k.scope.not_after_ms).collect();
            let sealed = rows
                .iter()
                .map(|k| int(k.sealed))
                .collect::<Result<Vec<_>>>()?;
            let retired: Vec<i64> = rows.iter().map(|k| i64::from(k.retired)).collect();
            let wrapped: Vec<&[u8]> = rows.iter().map(|k| k.wrapped.as_slice()).collect();
            let statement = conn.statement(
                "INSERT INTO keys (id, subject, not_after, sealed, retired, wrapped) \
                 SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], \
                 $5::bigint[], $6::bytea[])",
            )?;
            conn.client
                .execute(
                    &statement,
                    &[&ids, &subjects, &not_after, &sealed, &retired, &wrapped],
                )
                .map_err(storage_error)?;
        }
        if !self.key_uses.is_empty() {
            let uses = std::mem::take(&mut self.key_uses);
            let ids = uses.keys().map(|id| int(*id)).collect::<Result<Vec<_>>>()?;
            let adds = uses.values().map(|n| int(*n)).collect::<Result<Vec<_>>>()?;
            let statement = conn.statement(
                "UPDATE keys SET sealed = keys.sealed + u.n \
                 FROM unnest($1::bigint[], $2::bigint[]) AS u(id, n) WHERE keys.id = u.id",
            )?;
            conn.client
                .execute(&statement, &[&ids, &adds])
                .map_err(storage_error)?;
        }
        Ok(())
    }

    /// Sends everything (before the commit).
    pub(super) fn flush_all(&mut self, conn: &mut Conn) -> Result<()> {
        self.flush_keys(conn)?;
        self.flush_records(conn)?;
        self.flush_audit(conn)?;
        self.flush_key_ids(conn)
    }
}
