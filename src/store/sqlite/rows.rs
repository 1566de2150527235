//! The logical tables bound to SQL: one statement per table and selector,
//! each kept in the connection's statement cache, and the decoding of a
//! row as stored (FORMAT.md §8).

use std::ops::ControlFlow;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, params_from_iter};

use super::storage_error;
use crate::error::{Error, Result};
use crate::keys::{ID_TAG_LEN, IdTag, KeyScope};
use crate::store::{
    AuditRow, Counter, Damaged, IngestKeyRow, IngestRow, KeyRow, MAX_STAGED_LEN, MaintenanceNote,
    PiiMapRow, RecordRow, Row, Scanned, Select, Table, Tally, prefix_end, unsupported,
};

/// A statement's text and its parameters (borrowed where they can be: a
/// record's sealed bytes are not copied to be bound).
pub(super) type Query<'a> = (&'static str, Args<'a>);

/// The most parameters a statement here takes.
const MAX_ARGS: usize = 6;

/// A statement's parameters, kept inline: every `get` runs several
/// statements, and a list on the heap for each showed in its profile.
pub(super) struct Args<'a> {
    values: [ToSqlOutput<'a>; MAX_ARGS],
    len: usize,
}

impl<'a> Args<'a> {
    fn new<const N: usize>(given: [ToSqlOutput<'a>; N]) -> Self {
        const { assert!(N <= MAX_ARGS) };
        let mut values = std::array::from_fn(|_| ToSqlOutput::Owned(Value::Null));
        for (slot, value) in values.iter_mut().zip(given) {
            *slot = value;
        }
        Self { values, len: N }
    }

    fn bound(&self) -> impl Iterator<Item = &ToSqlOutput<'a>> {
        self.values.iter().take(self.len)
    }
}

/// `SELECT` of the rows `select` names, their columns as [`decode`] reads
/// them.
pub(super) fn select<'a>(table: Table, select: &Select<'a>) -> Result<Query<'a>> {
    use Select as S;
    use Table as T;
    let sql = match (table, select) {
        (T::Meta, S::Name(n)) => {
            return Ok((
                "SELECT name, value FROM meta WHERE name = ?1",
                Args::new([text(n)]),
            ));
        }
        (T::Meta, S::Prefix(p)) => {
            return Ok((
                "SELECT name, value FROM meta WHERE name >= ?1 AND name < ?2 ORDER BY name",
                Args::new([text(p), ToSqlOutput::Owned(prefix_end(p).into())]),
            ));
        }
        (T::Counters, S::Counter(c)) => {
            return Ok((
                "SELECT name, next FROM counters WHERE name = ?1",
                Args::new([text(c.row_name()?)]),
            ));
        }
        (T::Records, S::Id(id)) => {
            return Ok((
                "SELECT id, conversation, subject, expires_at, sealed FROM records WHERE id = ?1",
                Args::new([int(*id)?]),
            ));
        }
        (T::Records, S::Conversation(tag)) => {
            return Ok((
                "SELECT id, conversation, subject, expires_at, sealed FROM records \
                 WHERE conversation = ?1 ORDER BY id",
                Args::new([blob(&tag[..])]),
            ));
        }
        (T::Records, S::Subject(Some(tag))) => {
            return Ok((
                "SELECT id, conversation, subject, expires_at, sealed FROM records \
                 WHERE subject = ?1 ORDER BY id",
                Args::new([blob(&tag[..])]),
            ));
        }
        (T::Records, S::LiveConversation(tag, now)) => {
            return Ok((
                "SELECT id, conversation, subject, expires_at, sealed FROM records \
                 WHERE conversation = ?1 AND expires_at > ?2",
                Args::new([blob(&tag[..]), int_v(*now)]),
            ));
        }
        (T::Records, S::LiveSubject(tag, now)) => {
            return Ok((
                "SELECT id, conversation, subject, expires_at, sealed FROM records \
                 WHERE subject = ?1 AND expires_at > ?2",
                Args::new([blob(&tag[..]), int_v(*now)]),
            ));
        }
        (T::Records, S::All) => {
            "SELECT id, conversation, subject, expires_at, sealed FROM records ORDER BY id"
        }
        (T::Records, S::Range(from, to)) => {
            return Ok((
                "SELECT id, conversation, subject, expires_at, sealed FROM records \
                 WHERE id >= ?1 AND id <= ?2 ORDER BY id",
                Args::new([clamped(*from), clamped(*to)]),
            ));
        }
        (T::Records, S::Newest) => {
            "SELECT id, conversation, subject, expires_at, sealed FROM records \
             ORDER BY id DESC LIMIT 1"
        }
        (T::Keys, S::Id(id)) => {
            return Ok((
                "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys WHERE id = ?1",
                Args::new([int(*id)?]),
            ));
        }
        (T::Keys, S::All) => {
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys ORDER BY id"
        }
        // A subject or none as two statements, never `subject IS ?`: SQLite
        // plans `IS ?` by the bound value, so it re-parsed the statement
        // on every step, and a `put_batch` over many subjects spent 40 %
        // of its time in the parser.
        (T::Keys, S::Subject(Some(tag))) => {
            return Ok((
                "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                 WHERE subject = ?1 ORDER BY id",
                Args::new([blob(&tag[..])]),
            ));
        }
        (T::Keys, S::Subject(None)) => {
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
             WHERE subject IS NULL ORDER BY id"
        }
        (T::Keys, S::Sealing(scope)) => {
            return Ok(match &scope.subject {
                Some(tag) => (
                    "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                     WHERE subject = ?1 AND not_after = ?2 AND retired = 0",
                    Args::new([blob(&tag[..]), int_v(scope.not_after_ms)]),
                ),
                None => (
                    "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                     WHERE subject IS NULL AND not_after = ?1 AND retired = 0",
                    Args::new([int_v(scope.not_after_ms)]),
                ),
            });
        }
        (
            T::Keys,
            S::EndingIn {
                subject,
                after_ms,
                until_ms,
            },
        ) => {
            return Ok(match subject {
                Some(tag) => (
                    "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                     WHERE subject = ?1 AND not_after > ?2 AND not_after <= ?3",
                    Args::new([blob(&tag[..]), int_v(*after_ms), int_v(*until_ms)]),
                ),
                None => (
                    "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                     WHERE subject IS NULL AND not_after > ?1 AND not_after <= ?2",
                    Args::new([int_v(*after_ms), int_v(*until_ms)]),
                ),
            });
        }
        (T::Keys, S::ExpiredBy(t)) => {
            return Ok((
                "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                 WHERE not_after <= ?1",
                Args::new([int_v(*t)]),
            ));
        }
        (T::Audit, S::Id(seq)) => {
            return Ok((
                "SELECT seq, at, sealed, mac FROM audit WHERE seq = ?1",
                Args::new([int(*seq)?]),
            ));
        }
        (T::Audit, S::All) => "SELECT seq, at, sealed, mac FROM audit ORDER BY seq",
        (T::Audit, S::After(seq)) => {
            return Ok((
                "SELECT seq, at, sealed, mac FROM audit WHERE seq > ?1 ORDER BY seq",
                Args::new([clamped(*seq)]),
            ));
        }
        (T::Audit, S::Range(from, to)) => {
            return Ok((
                "SELECT seq, at, sealed, mac FROM audit WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
                Args::new([clamped(*from), clamped(*to)]),
            ));
        }
        (T::Audit, S::Newest) => "SELECT seq, at, sealed, mac FROM audit ORDER BY seq DESC LIMIT 1",
        (T::Audit, S::Tail) => "SELECT seq, at, x'', mac FROM audit ORDER BY seq DESC LIMIT 1",
        (T::Notes, S::All) => "SELECT at, records, keys FROM maintenance ORDER BY rowid",
        (T::IngestKeys, S::Id(id)) => {
            return Ok((
                "SELECT id, not_after, wrapped FROM ingest_keys WHERE id = ?1",
                Args::new([int(*id)?]),
            ));
        }
        (T::IngestKeys, S::All) => "SELECT id, not_after, wrapped FROM ingest_keys ORDER BY id",
        (T::IngestKeys, S::ExpiredBy(t)) => {
            return Ok((
                "SELECT id, not_after, wrapped FROM ingest_keys WHERE not_after <= ?1 ORDER BY id",
                Args::new([int_v(*t)]),
            ));
        }
        // Staged rows: a row longer than the cap comes back without its
        // bytes, which SQLite then never reads from the overflow pages.
        (T::Staged, S::Id(id)) => {
            return Ok((
                "SELECT id, key_id, expires_at, CASE WHEN length(sealed) <= ?2 THEN sealed END \
                 FROM ingest_records WHERE id = ?1",
                Args::new([int(*id)?, staged_cap()]),
            ));
        }
        (T::Staged, S::All) => {
            return Ok((
                "SELECT id, key_id, expires_at, CASE WHEN length(sealed) <= ?1 THEN sealed END \
                 FROM ingest_records WHERE id > 0 ORDER BY id",
                Args::new([staged_cap()]),
            ));
        }
        (T::Staged, S::After(after)) => {
            return Ok((
                "SELECT id, key_id, expires_at, CASE WHEN length(sealed) <= ?2 THEN sealed END \
                 FROM ingest_records WHERE id > max(?1, 0) ORDER BY id",
                Args::new([clamped(*after), staged_cap()]),
            ));
        }
        (T::Staged, S::Newest) => {
            return Ok((
                "SELECT id, key_id, expires_at, CASE WHEN length(sealed) <= ?1 THEN sealed END \
                 FROM ingest_records WHERE id > 0 ORDER BY id DESC LIMIT 1",
                Args::new([staged_cap()]),
            ));
        }
        (T::PiiMaps, S::Conversation(tag)) => {
            return Ok((
                "SELECT conversation, subject, expires_at, sealed FROM pii_maps \
                 WHERE conversation = ?1",
                Args::new([blob(&tag[..])]),
            ));
        }
        _ => return Err(unsupported(table, select)),
    };
    Ok((sql, Args::new([])))
}

/// `SELECT count(*)`, the sealed bytes and the earliest expiry of the rows
/// `select` names.
pub(super) fn tally(table: Table, select: &Select<'_>) -> Result<Query<'static>> {
    use Select as S;
    use Table as T;
    Ok(match (table, select) {
        (T::Records, S::All) => (
            "SELECT count(*), coalesce(sum(length(sealed)), 0), min(expires_at) FROM records",
            Args::new([]),
        ),
        (T::Records, S::ExpiredBy(t)) => (
            "SELECT count(*), coalesce(sum(length(sealed)), 0), min(expires_at) FROM records \
             WHERE expires_at <= ?1",
            Args::new([int_v(*t)]),
        ),
        (T::Keys, S::All) => ("SELECT count(*), 0, NULL FROM keys", Args::new([])),
        (T::Audit, S::All) => ("SELECT count(*), 0, NULL FROM audit", Args::new([])),
        (T::Staged, S::SetAside) => (
            "SELECT count(*), 0, NULL FROM ingest_records WHERE id < 0",
            Args::new([]),
        ),
        _ => return Err(unsupported(table, select)),
    })
}

/// `DELETE` of the rows `select` names.
pub(super) fn delete<'a>(table: Table, select: &Select<'a>) -> Result<Query<'a>> {
    use Select as S;
    use Table as T;
    let at = |t: &i64| Args::new([int_v(*t)]);
    Ok(match (table, select) {
        (T::Meta, S::Name(n)) => ("DELETE FROM meta WHERE name = ?1", Args::new([text(n)])),
        (T::Records, S::Id(id)) => ("DELETE FROM records WHERE id = ?1", Args::new([int(*id)?])),
        (T::Records, S::ExpiredBy(t)) => ("DELETE FROM records WHERE expires_at <= ?1", at(t)),
        (T::Records, S::Subject(Some(tag))) => (
            "DELETE FROM records WHERE subject = ?1",
            Args::new([blob(&tag[..])]),
        ),
        (T::Keys, S::Id(id)) => ("DELETE FROM keys WHERE id = ?1", Args::new([int(*id)?])),
        (T::Keys, S::ExpiredBy(t)) => ("DELETE FROM keys WHERE not_after <= ?1", at(t)),
        (T::Keys, S::Subject(Some(tag))) => (
            "DELETE FROM keys WHERE subject = ?1",
            Args::new([blob(&tag[..])]),
        ),
        (T::Notes, S::All) => ("DELETE FROM maintenance", Args::new([])),
        (T::IngestKeys, S::All) => ("DELETE FROM ingest_keys", Args::new([])),
        (T::IngestKeys, S::ExpiredBy(t)) => {
            ("DELETE FROM ingest_keys WHERE not_after <= ?1", at(t))
        }
        (T::Staged, S::Id(id)) => (
            "DELETE FROM ingest_records WHERE id = ?1",
            Args::new([int(*id)?]),
        ),
        (T::Staged, S::ExpiredBy(t)) => {
            ("DELETE FROM ingest_records WHERE expires_at <= ?1", at(t))
        }
        (T::PiiMaps, S::ExpiredBy(t)) => ("DELETE FROM pii_maps WHERE expires_at <= ?1", at(t)),
        (T::PiiMaps, S::Subject(Some(tag))) => (
            "DELETE FROM pii_maps WHERE subject = ?1",
            Args::new([blob(&tag[..])]),
        ),
        (T::PiiMaps, S::Conversation(tag)) => (
            "DELETE FROM pii_maps WHERE conversation = ?1",
            Args::new([blob(&tag[..])]),
        ),
        (T::PiiMaps, S::ConversationsOf(tag)) => (
            "DELETE FROM pii_maps WHERE conversation IN \
             (SELECT DISTINCT conversation FROM records WHERE subject = ?1)",
            Args::new([blob(&tag[..])]),
        ),
        _ => return Err(unsupported(table, select)),
    })
}

/// The `INSERT` that stores `row`. Mutable rows (meta values, counters,
/// PII mappings) replace the one with their key; keys, records, audit
/// entries, staged rows and ingest keys are only ever added, so a taken
/// key fails instead of overwriting.
pub(super) fn put(row: &Row) -> Result<Query<'_>> {
    Ok(match row {
        Row::Meta { name, value } => (
            "INSERT INTO meta (name, value) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            Args::new([text(name), blob(value)]),
        ),
        Row::Counter { counter, value } => (
            "INSERT INTO counters (name, next) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET next = excluded.next",
            Args::new([
                text(counter.row_name()?),
                int_v(value.ok_or_else(|| Error::InvalidInput {
                    what: "counter",
                    reason: "must be an integer".into(),
                })?),
            ]),
        ),
        Row::Key(k) => (
            "INSERT INTO keys (id, subject, not_after, sealed, retired, wrapped) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            Args::new([
                int(k.id)?,
                opt_tag(k.scope.subject.as_ref()),
                int_v(k.scope.not_after_ms),
                int(k.sealed)?,
                int_v(i64::from(k.retired)),
                blob(&k.wrapped),
            ]),
        ),
        Row::Record(r) => (
            "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            Args::new([
                int(r.id)?,
                blob(&r.conversation[..]),
                opt_tag(r.subject.as_ref()),
                int_v(r.expires_at_ms),
                blob(&r.sealed),
            ]),
        ),
        Row::Audit(a) => (
            "INSERT INTO audit (seq, at, sealed, mac) VALUES (?1, ?2, ?3, ?4)",
            Args::new([int(a.seq)?, int_v(a.at_ms), blob(&a.sealed), blob(&a.mac)]),
        ),
        Row::Note(n) => (
            "INSERT INTO maintenance (at, records, keys) VALUES (?1, ?2, ?3)",
            Args::new([int_v(n.at_ms), int(n.records)?, int(n.keys)?]),
        ),
        Row::IngestKey(k) => (
            "INSERT INTO ingest_keys (id, not_after, wrapped) VALUES (?1, ?2, ?3)",
            Args::new([int(k.id)?, int_v(k.not_after_ms), blob(&k.wrapped)]),
        ),
        Row::Staged(s) => (
            "INSERT INTO ingest_records (id, key_id, expires_at, sealed) VALUES (?1, ?2, ?3, ?4)",
            Args::new([
                int(s.id)?,
                int(s.key_id)?,
                int_v(s.expires_at_ms),
                blob(&s.sealed),
            ]),
        ),
        Row::PiiMap(m) => (
            "INSERT INTO pii_maps (conversation, subject, expires_at, sealed) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (conversation) DO UPDATE SET \
             subject = excluded.subject, expires_at = excluded.expires_at, \
             sealed = excluded.sealed",
            Args::new([
                blob(&m.conversation[..]),
                opt_tag(m.subject.as_ref()),
                int_v(m.expires_at_ms),
                blob(&m.sealed),
            ]),
        ),
    })
}

/// The order a selection's rows must come in, where its statement leaves
/// it to us: SQLite re-prepares a statement that filters on two columns
/// and orders by a third every time the table has grown (it weighs the
/// index against a sort by the table's size), so a `put` over many
/// subjects spent 40 % of its time in the parser on the active-key
/// lookup. Those statements have no `ORDER BY`; their few rows are
/// sorted here.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Order {
    AsRead,
    Ascending,
    Descending,
}

/// The [`Order`] of a selection.
pub(super) fn order_of(table: Table, select: &Select<'_>) -> Order {
    match (table, select) {
        (Table::Records, Select::LiveConversation(..) | Select::LiveSubject(..))
        | (Table::Keys, Select::EndingIn { .. } | Select::ExpiredBy(_)) => Order::Ascending,
        (Table::Keys, Select::Sealing(_)) => Order::Descending,
        _ => Order::AsRead,
    }
}

/// Runs a `SELECT` from [`select`] and hands each decoded row to `each`,
/// in `order`.
pub(super) fn scan(
    conn: &Connection,
    table: Table,
    (sql, params): Query<'_>,
    order: Order,
    each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage_error)?;
    let mut rows = stmt
        .query(params_from_iter(params.bound()))
        .map_err(storage_error)?;
    let mut held = Vec::new();
    while let Some(r) = rows.next().map_err(storage_error)? {
        let id = id_of(table, r);
        let row = decode(table, r)
            .map_err(storage_error)
            .and_then(|row| row)
            .map_err(|error| Damaged { id, error });
        if order != Order::AsRead {
            held.push((id.unwrap_or(0), row));
        } else if each(row)?.is_break() {
            return Ok(());
        }
    }
    match order {
        Order::AsRead => {}
        Order::Ascending => held.sort_by_key(|(id, _)| *id),
        Order::Descending => held.sort_by_key(|(id, _)| std::cmp::Reverse(*id)),
    }
    for (_, row) in held {
        if each(row)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// The first row a `SELECT` from [`select`] returns.
pub(super) fn first(
    conn: &Connection,
    table: Table,
    query: Query<'_>,
    order: Order,
) -> Result<Option<Row>> {
    let mut found = None;
    scan(conn, table, query, order, &mut |row| {
        found = Some(row?);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(found)
}

/// Runs a statement from [`tally`].
pub(super) fn count(conn: &Connection, (sql, params): Query<'_>) -> Result<Tally> {
    let (rows, bytes, min_expiry_ms): (i64, i64, Option<i64>) = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row(params_from_iter(params.bound()), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
        })
        .map_err(storage_error)?;
    Ok(Tally {
        rows: u64::try_from(rows).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
        min_expiry_ms,
    })
}

/// Runs a statement that changes rows; returns how many.
pub(super) fn execute(conn: &Connection, (sql, params): Query<'_>) -> Result<u64> {
    let n = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params_from_iter(params.bound())))
        .map_err(storage_error)?;
    Ok(n as u64)
}

/// The id of a row of a table keyed by one (the first column, an integer
/// primary key), whatever its other columns hold.
fn id_of(table: Table, r: &rusqlite::Row<'_>) -> Option<u64> {
    match table {
        Table::Records | Table::Keys | Table::Audit | Table::IngestKeys | Table::Staged => {
            match r.get_ref(0) {
                Ok(ValueRef::Integer(n)) => u64::try_from(n).ok(),
                _ => None,
            }
        }
        Table::Meta | Table::Counters | Table::Notes | Table::PiiMaps => None,
    }
}

/// Decodes a row of `table` as [`select`] reads its columns. The outer
/// result is SQLite's; the inner one says whether the stored values are
/// well-formed.
fn decode(table: Table, r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Row>> {
    Ok(match table {
        Table::Meta => Ok(Row::Meta {
            name: r.get(0)?,
            value: r.get(1)?,
        }),
        Table::Counters => {
            let name: String = r.get(0)?;
            let value = match r.get_ref(1)? {
                ValueRef::Integer(n) => Some(n),
                _ => None,
            };
            [Counter::RecordIds, Counter::KeyIds, Counter::FailedOpens]
                .into_iter()
                .find(|c| c.row_name().is_ok_and(|n| n == name))
                .map(|counter| Row::Counter { counter, value })
                .ok_or_else(|| corrupt("unknown counter"))
        }
        Table::Keys => key_row(r)?.map(Row::Key),
        Table::Records => record_row(r)?.map(Row::Record),
        Table::Audit => Ok(Row::Audit(audit_row(r)?)),
        Table::Notes => {
            // The time must be one (it is checked against the clock); the
            // counts only go into an audit entry, and a bad one reads as 0,
            // as a negative one always did.
            let at_ms: i64 = r.get(0)?;
            let count = |v: ValueRef<'_>| match v {
                ValueRef::Integer(n) => u64::try_from(n).unwrap_or(0),
                _ => 0,
            };
            Ok(Row::Note(MaintenanceNote {
                at_ms,
                records: count(r.get_ref(1)?),
                keys: count(r.get_ref(2)?),
            }))
        }
        Table::IngestKeys => {
            let (id, not_after_ms, wrapped): (i64, i64, Vec<u8>) =
                (r.get(0)?, r.get(1)?, r.get(2)?);
            u64::try_from(id)
                .map_err(|_| corrupt("negative ingest key id"))
                .map(|id| {
                    Row::IngestKey(IngestKeyRow {
                        id,
                        not_after_ms,
                        wrapped,
                    })
                })
        }
        Table::Staged => Ok(Row::Staged(staged_row(r)?)),
        Table::PiiMaps => {
            let conversation: Vec<u8> = r.get(0)?;
            let subject: Option<Vec<u8>> = r.get(1)?;
            let expires_at_ms: i64 = r.get(2)?;
            let sealed: Vec<u8> = r.get(3)?;
            (|| {
                Ok(Row::PiiMap(PiiMapRow {
                    conversation: id_tag(&conversation)?,
                    subject: subject.as_deref().map(id_tag).transpose()?,
                    expires_at_ms,
                    sealed,
                }))
            })()
        }
    })
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RecordRow>> {
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

fn key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<KeyRow>> {
    let id: i64 = r.get(0)?;
    let subject: Option<Vec<u8>> = r.get(1)?;
    let not_after_ms: i64 = r.get(2)?;
    let sealed: i64 = r.get(3)?;
    // As the old `retired = 0` filter read it: only an integer 0 is active.
    let retired = !matches!(r.get_ref(4)?, ValueRef::Integer(0));
    let wrapped: Vec<u8> = r.get(5)?;
    Ok((|| {
        Ok(KeyRow {
            id: u64::try_from(id).map_err(|_| corrupt("negative key id"))?,
            scope: KeyScope {
                subject: subject.as_deref().map(id_tag).transpose()?,
                not_after_ms,
            },
            sealed: u64::try_from(sealed).map_err(|_| corrupt("negative key use count"))?,
            retired,
            wrapped,
        })
    })())
}

/// An audit row as stored. A column of the wrong type or size (only a
/// writer of the file can put one there) reads as empty, zero time or
/// zero MAC: the entry then fails its seal and chain check, is named by
/// the verifiers, and a full walk goes on past it.
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRow> {
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
        ValueRef::Blob(b) => <[u8; 32]>::try_from(b).ok(),
        _ => None,
    };
    // The primary key is an integer; only a negative one is out of range,
    // and it sorts before every entry a walk asks for.
    Ok(AuditRow {
        seq: u64::try_from(seq).unwrap_or(0),
        at_ms,
        sealed,
        mac: mac.unwrap_or([0; 32]),
        mac_intact: mac.is_some(),
    })
}

/// A staged row as stored, never an error for values of the wrong type
/// (see [`IngestRow`]). The id is the rowid: always an integer; a
/// set-aside one (negative) reads as 0.
fn staged_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IngestRow> {
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

fn id_tag(bytes: &[u8]) -> Result<IdTag> {
    <[u8; ID_TAG_LEN]>::try_from(bytes).map_err(|_| corrupt("tag of the wrong length"))
}

/// An id as SQLite's signed integer.
pub(super) fn int(id: u64) -> Result<ToSqlOutput<'static>> {
    i64::try_from(id)
        .map(int_v)
        .map_err(|_| Error::InvalidInput {
            what: "id",
            reason: "out of range".into(),
        })
}

fn int_v(n: i64) -> ToSqlOutput<'static> {
    ToSqlOutput::Owned(Value::Integer(n))
}

/// A bound of a range: past SQLite's largest integer is the same as it.
fn clamped(n: u64) -> ToSqlOutput<'static> {
    int_v(i64::try_from(n).unwrap_or(i64::MAX))
}

fn staged_cap() -> ToSqlOutput<'static> {
    clamped(MAX_STAGED_LEN as u64)
}

fn text(s: &str) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
}

fn blob(b: &[u8]) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(ValueRef::Blob(b))
}

fn opt_tag(tag: Option<&IdTag>) -> ToSqlOutput<'_> {
    tag.map_or(ToSqlOutput::Owned(Value::Null), |t| blob(&t[..]))
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt { what: what.into() }
}
