//! The logical tables bound to PostgreSQL's SQL: one statement per table
//! and selector (prepared once per connection), and the decoding of a row
//! as stored. The shape follows `sqlite/rows.rs`; the server's types are
//! strict, so only sizes and signs can be wrong in a stored row.

use std::ops::ControlFlow;

use bytes::BytesMut;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::connect::Conn;
use super::storage_error;
use crate::error::{Error, Result};
use crate::keys::{ID_TAG_LEN, IdTag, KeyScope};
use crate::store::{
    AuditRow, Counter, Damaged, IngestKeyRow, IngestRow, KeyRow, MAX_STAGED_LEN, MaintenanceNote,
    PiiMapRow, RecordRow, Row, Scanned, Select, Table, Tally, prefix_end, unsupported,
};

/// One bound parameter.
#[derive(Debug)]
pub(super) enum Arg<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    Text(&'a str),
    OwnedText(String),
    /// SQL `NULL` (an absent subject tag).
    Null,
}

impl ToSql for Arg<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Arg::Int(n) => n.to_sql(ty, out),
            Arg::Bytes(b) => b.to_sql(ty, out),
            Arg::Text(s) => s.to_sql(ty, out),
            Arg::OwnedText(s) => s.to_sql(ty, out),
            Arg::Null => Ok(IsNull::Yes),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::INT8 | Type::BYTEA | Type::TEXT)
    }

    to_sql_checked!();
}

/// The table that holds a logical table's rows.
pub(super) fn table_name(table: Table) -> &'static str {
    match table {
        Table::Meta => "meta",
        Table::Counters => "counters",
        Table::Keys => "keys",
        Table::Records => "records",
        Table::Audit => "audit",
        Table::Notes => "maintenance",
        Table::IngestKeys => "ingest_keys",
        Table::Staged => "ingest_records",
        Table::PiiMaps => "pii_maps",
    }
}

/// A statement's text and its parameters.
pub(super) type Query<'a> = (&'static str, Vec<Arg<'a>>);

/// `SELECT` of the rows `select` names, their columns as [`decode`] reads
/// them, in the order the seam promises.
pub(super) fn select<'a>(table: Table, select: &Select<'a>) -> Result<Query<'a>> {
    use Select as S;
    use Table as T;
    Ok(match (table, select) {
        (T::Meta, S::Name(n)) => (
            "SELECT name, value FROM meta WHERE name = $1",
            vec![Arg::Text(n)],
        ),
        // Byte order ("C"), not the database's collation, as in SQLite.
        (T::Meta, S::Prefix(p)) => (
            "SELECT name, value FROM meta WHERE name COLLATE \"C\" >= $1 \
             AND name COLLATE \"C\" < $2 ORDER BY name COLLATE \"C\"",
            vec![Arg::Text(p), Arg::OwnedText(prefix_end(p))],
        ),
        (T::Counters, S::Counter(c)) => (
            "SELECT name, next FROM counters WHERE name = $1",
            vec![Arg::Text(c.row_name()?)],
        ),
        (T::Records, S::Id(id)) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records WHERE id = $1",
            vec![int(*id)?],
        ),
        (T::Records, S::Conversation(tag)) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records \
             WHERE conversation = $1 ORDER BY id",
            vec![Arg::Bytes(&tag[..])],
        ),
        (T::Records, S::Subject(Some(tag))) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records \
             WHERE subject = $1 ORDER BY id",
            vec![Arg::Bytes(&tag[..])],
        ),
        (T::Records, S::LiveConversation(tag, now)) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records \
             WHERE conversation = $1 AND expires_at > $2 ORDER BY id",
            vec![Arg::Bytes(&tag[..]), Arg::Int(*now)],
        ),
        (T::Records, S::LiveSubject(tag, now)) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records \
             WHERE subject = $1 AND expires_at > $2 ORDER BY id",
            vec![Arg::Bytes(&tag[..]), Arg::Int(*now)],
        ),
        (T::Records, S::All) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records ORDER BY id",
            vec![],
        ),
        (T::Records, S::Range(from, to)) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records \
             WHERE id >= $1 AND id <= $2 ORDER BY id",
            vec![clamped(*from), clamped(*to)],
        ),
        (T::Records, S::Newest) => (
            "SELECT id, conversation, subject, expires_at, sealed FROM records \
             ORDER BY id DESC LIMIT 1",
            vec![],
        ),
        (T::Keys, S::Id(id)) => (
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys WHERE id = $1",
            vec![int(*id)?],
        ),
        (T::Keys, S::All) => (
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys ORDER BY id",
            vec![],
        ),
        (T::Keys, S::Subject(Some(tag))) => (
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
             WHERE subject = $1 ORDER BY id",
            vec![Arg::Bytes(&tag[..])],
        ),
        (T::Keys, S::Subject(None)) => (
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
             WHERE subject IS NULL ORDER BY id",
            vec![],
        ),
        (T::Keys, S::Sealing(scope)) => match &scope.subject {
            Some(tag) => (
                "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                 WHERE subject = $1 AND not_after = $2 AND retired = 0 ORDER BY id DESC",
                vec![Arg::Bytes(&tag[..]), Arg::Int(scope.not_after_ms)],
            ),
            None => (
                "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                 WHERE subject IS NULL AND not_after = $1 AND retired = 0 ORDER BY id DESC",
                vec![Arg::Int(scope.not_after_ms)],
            ),
        },
        (
            T::Keys,
            S::EndingIn {
                subject,
                after_ms,
                until_ms,
            },
        ) => match subject {
            Some(tag) => (
                "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                 WHERE subject = $1 AND not_after > $2 AND not_after <= $3 ORDER BY id",
                vec![
                    Arg::Bytes(&tag[..]),
                    Arg::Int(*after_ms),
                    Arg::Int(*until_ms),
                ],
            ),
            None => (
                "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
                 WHERE subject IS NULL AND not_after > $1 AND not_after <= $2 ORDER BY id",
                vec![Arg::Int(*after_ms), Arg::Int(*until_ms)],
            ),
        },
        (T::Keys, S::ExpiredBy(t)) => (
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
             WHERE not_after <= $1 ORDER BY id",
            vec![Arg::Int(*t)],
        ),
        (T::Audit, S::Id(seq)) => (
            "SELECT seq, at, sealed, mac FROM audit WHERE seq = $1",
            vec![int(*seq)?],
        ),
        (T::Audit, S::All) => (
            "SELECT seq, at, sealed, mac FROM audit ORDER BY seq",
            vec![],
        ),
        (T::Audit, S::After(seq)) => (
            "SELECT seq, at, sealed, mac FROM audit WHERE seq > $1 ORDER BY seq",
            vec![clamped(*seq)],
        ),
        (T::Audit, S::Range(from, to)) => (
            "SELECT seq, at, sealed, mac FROM audit WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
            vec![clamped(*from), clamped(*to)],
        ),
        (T::Audit, S::Newest) => (
            "SELECT seq, at, sealed, mac FROM audit ORDER BY seq DESC LIMIT 1",
            vec![],
        ),
        (T::Audit, S::Tail) => (
            "SELECT seq, at, ''::bytea, mac FROM audit ORDER BY seq DESC LIMIT 1",
            vec![],
        ),
        (T::Notes, S::All) => (
            "SELECT at, records, keys FROM maintenance ORDER BY n",
            vec![],
        ),
        (T::IngestKeys, S::Id(id)) => (
            "SELECT id, not_after, wrapped FROM ingest_keys WHERE id = $1",
            vec![int(*id)?],
        ),
        (T::IngestKeys, S::All) => (
            "SELECT id, not_after, wrapped FROM ingest_keys ORDER BY id",
            vec![],
        ),
        (T::IngestKeys, S::ExpiredBy(t)) => (
            "SELECT id, not_after, wrapped FROM ingest_keys WHERE not_after <= $1 ORDER BY id",
            vec![Arg::Int(*t)],
        ),
        // A staged row longer than the cap comes back without its bytes.
        (T::Staged, S::Id(id)) => (
            "SELECT id, key_id, expires_at, CASE WHEN octet_length(sealed) <= $2::bigint THEN sealed END \
             FROM ingest_records WHERE id = $1",
            vec![int(*id)?, staged_cap()],
        ),
        (T::Staged, S::All) => (
            "SELECT id, key_id, expires_at, CASE WHEN octet_length(sealed) <= $1::bigint THEN sealed END \
             FROM ingest_records WHERE id > 0 ORDER BY id",
            vec![staged_cap()],
        ),
        (T::Staged, S::After(after)) => (
            "SELECT id, key_id, expires_at, CASE WHEN octet_length(sealed) <= $2::bigint THEN sealed END \
             FROM ingest_records WHERE id > GREATEST($1::bigint, 0) ORDER BY id",
            vec![clamped(*after), staged_cap()],
        ),
        (T::Staged, S::Newest) => (
            "SELECT id, key_id, expires_at, CASE WHEN octet_length(sealed) <= $1::bigint THEN sealed END \
             FROM ingest_records WHERE id > 0 ORDER BY id DESC LIMIT 1",
            vec![staged_cap()],
        ),
        (T::PiiMaps, S::Conversation(tag)) => (
            "SELECT conversation, subject, expires_at, sealed FROM pii_maps \
             WHERE conversation = $1",
            vec![Arg::Bytes(&tag[..])],
        ),
        _ => return Err(unsupported(table, select)),
    })
}

/// `SELECT count(*)`, the sealed bytes and the earliest expiry of the rows
/// `select` names.
pub(super) fn tally(table: Table, select: &Select<'_>) -> Result<Query<'static>> {
    use Select as S;
    use Table as T;
    Ok(match (table, select) {
        (T::Records, S::All) => (
            "SELECT count(*), coalesce(sum(octet_length(sealed)), 0)::bigint, min(expires_at) \
             FROM records",
            vec![],
        ),
        (T::Records, S::ExpiredBy(t)) => (
            "SELECT count(*), coalesce(sum(octet_length(sealed)), 0)::bigint, min(expires_at) \
             FROM records WHERE expires_at <= $1",
            vec![Arg::Int(*t)],
        ),
        (T::Keys, S::All) => ("SELECT count(*), 0::bigint, NULL::bigint FROM keys", vec![]),
        (T::Audit, S::All) => (
            "SELECT count(*), 0::bigint, NULL::bigint FROM audit",
            vec![],
        ),
        (T::Staged, S::SetAside) => (
            "SELECT count(*), 0::bigint, NULL::bigint FROM ingest_records WHERE id < 0",
            vec![],
        ),
        _ => return Err(unsupported(table, select)),
    })
}

/// `DELETE` of the rows `select` names.
pub(super) fn delete<'a>(table: Table, select: &Select<'a>) -> Result<Query<'a>> {
    use Select as S;
    use Table as T;
    Ok(match (table, select) {
        (T::Meta, S::Name(n)) => ("DELETE FROM meta WHERE name = $1", vec![Arg::Text(n)]),
        (T::Records, S::Id(id)) => ("DELETE FROM records WHERE id = $1", vec![int(*id)?]),
        (T::Records, S::ExpiredBy(t)) => (
            "DELETE FROM records WHERE expires_at <= $1",
            vec![Arg::Int(*t)],
        ),
        (T::Records, S::Subject(Some(tag))) => (
            "DELETE FROM records WHERE subject = $1",
            vec![Arg::Bytes(&tag[..])],
        ),
        (T::Keys, S::Id(id)) => ("DELETE FROM keys WHERE id = $1", vec![int(*id)?]),
        (T::Keys, S::ExpiredBy(t)) => {
            ("DELETE FROM keys WHERE not_after <= $1", vec![Arg::Int(*t)])
        }
        (T::Keys, S::Subject(Some(tag))) => (
            "DELETE FROM keys WHERE subject = $1",
            vec![Arg::Bytes(&tag[..])],
        ),
        (T::Notes, S::All) => ("DELETE FROM maintenance", vec![]),
        (T::IngestKeys, S::All) => ("DELETE FROM ingest_keys", vec![]),
        (T::IngestKeys, S::ExpiredBy(t)) => (
            "DELETE FROM ingest_keys WHERE not_after <= $1",
            vec![Arg::Int(*t)],
        ),
        (T::Staged, S::Id(id)) => ("DELETE FROM ingest_records WHERE id = $1", vec![int(*id)?]),
        (T::Staged, S::ExpiredBy(t)) => (
            "DELETE FROM ingest_records WHERE expires_at <= $1",
            vec![Arg::Int(*t)],
        ),
        (T::PiiMaps, S::ExpiredBy(t)) => (
            "DELETE FROM pii_maps WHERE expires_at <= $1",
            vec![Arg::Int(*t)],
        ),
        (T::PiiMaps, S::Subject(Some(tag))) => (
            "DELETE FROM pii_maps WHERE subject = $1",
            vec![Arg::Bytes(&tag[..])],
        ),
        (T::PiiMaps, S::Conversation(tag)) => (
            "DELETE FROM pii_maps WHERE conversation = $1",
            vec![Arg::Bytes(&tag[..])],
        ),
        (T::PiiMaps, S::ConversationsOf(tag)) => (
            "DELETE FROM pii_maps WHERE conversation IN \
             (SELECT DISTINCT conversation FROM records WHERE subject = $1)",
            vec![Arg::Bytes(&tag[..])],
        ),
        _ => return Err(unsupported(table, select)),
    })
}

/// The `INSERT` that stores `row` (replacing the row with its key for
/// meta values, counters and PII mappings; only adding for the rest).
pub(super) fn put(row: &Row) -> Result<Query<'_>> {
    Ok(match row {
        Row::Meta { name, value } => (
            "INSERT INTO meta (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            vec![Arg::Text(name), Arg::Bytes(value)],
        ),
        Row::Counter { counter, value } => (
            "INSERT INTO counters (name, next) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET next = excluded.next",
            vec![
                Arg::Text(counter.row_name()?),
                Arg::Int(value.ok_or_else(|| Error::InvalidInput {
                    what: "counter",
                    reason: "must be an integer".into(),
                })?),
            ],
        ),
        Row::Key(k) => (
            "INSERT INTO keys (id, subject, not_after, sealed, retired, wrapped) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                int(k.id)?,
                opt_tag(k.scope.subject.as_ref()),
                Arg::Int(k.scope.not_after_ms),
                int(k.sealed)?,
                Arg::Int(i64::from(k.retired)),
                Arg::Bytes(&k.wrapped),
            ],
        ),
        Row::Record(r) => (
            "INSERT INTO records (id, conversation, subject, expires_at, sealed) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                int(r.id)?,
                Arg::Bytes(&r.conversation[..]),
                opt_tag(r.subject.as_ref()),
                Arg::Int(r.expires_at_ms),
                Arg::Bytes(&r.sealed),
            ],
        ),
        Row::Audit(a) => (
            "INSERT INTO audit (seq, at, sealed, mac) VALUES ($1, $2, $3, $4)",
            vec![
                int(a.seq)?,
                Arg::Int(a.at_ms),
                Arg::Bytes(&a.sealed),
                Arg::Bytes(&a.mac),
            ],
        ),
        // Numbered in the order put: writers take turns, so `max + 1`
        // cannot race (no sequence, which a restore could rewind).
        Row::Note(n) => (
            "INSERT INTO maintenance (n, at, records, keys) \
             SELECT coalesce(max(n), 0) + 1, $1, $2, $3 FROM maintenance",
            vec![Arg::Int(n.at_ms), int(n.records)?, int(n.keys)?],
        ),
        Row::IngestKey(k) => (
            "INSERT INTO ingest_keys (id, not_after, wrapped) VALUES ($1, $2, $3)",
            vec![int(k.id)?, Arg::Int(k.not_after_ms), Arg::Bytes(&k.wrapped)],
        ),
        Row::Staged(s) => (
            "INSERT INTO ingest_records (id, key_id, expires_at, sealed) VALUES ($1, $2, $3, $4)",
            vec![
                int(s.id)?,
                int(s.key_id)?,
                Arg::Int(s.expires_at_ms),
                Arg::Bytes(&s.sealed),
            ],
        ),
        Row::PiiMap(m) => (
            "INSERT INTO pii_maps (conversation, subject, expires_at, sealed) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (conversation) DO UPDATE SET \
             subject = excluded.subject, expires_at = excluded.expires_at, \
             sealed = excluded.sealed",
            vec![
                Arg::Bytes(&m.conversation[..]),
                opt_tag(m.subject.as_ref()),
                Arg::Int(m.expires_at_ms),
                Arg::Bytes(&m.sealed),
            ],
        ),
    })
}

fn params<'b>(args: &'b [Arg<'_>]) -> impl ExactSizeIterator<Item = &'b dyn ToSql> {
    args.iter().map(|a| a as &dyn ToSql)
}

/// Runs a `SELECT` from [`select`] and hands each decoded row to `each`,
/// streaming (a scan of every record never holds them all).
pub(super) fn scan(
    conn: &mut Conn,
    table: Table,
    (sql, args): &Query<'_>,
    each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let statement = conn.statement(sql)?;
    let mut rows = conn
        .client
        .query_raw(&statement, params(args))
        .map_err(storage_error)?;
    while let Some(r) = rows.next().map_err(storage_error)? {
        let id = id_of(table, &r);
        let row = decode(table, &r).map_err(|error| Damaged { id, error });
        if each(row)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// The first row a `SELECT` from [`select`] returns.
pub(super) fn first(conn: &mut Conn, table: Table, query: &Query<'_>) -> Result<Option<Row>> {
    let mut found = None;
    scan(conn, table, query, &mut |row| {
        found = Some(row?);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(found)
}

/// Runs a statement from [`tally`].
pub(super) fn count(conn: &mut Conn, (sql, args): &Query<'_>) -> Result<Tally> {
    let statement = conn.statement(sql)?;
    let row = conn
        .client
        .query_one(&statement, &refs(args))
        .map_err(storage_error)?;
    let (rows, bytes, min_expiry_ms): (i64, i64, Option<i64>) = (
        row.try_get(0).map_err(storage_error)?,
        row.try_get(1).map_err(storage_error)?,
        row.try_get(2).map_err(storage_error)?,
    );
    Ok(Tally {
        rows: u64::try_from(rows).unwrap_or(0),
        bytes: u64::try_from(bytes).unwrap_or(0),
        min_expiry_ms,
    })
}

fn refs<'b>(args: &'b [Arg<'_>]) -> Vec<&'b (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

/// Runs a statement that changes rows; returns how many.
pub(super) fn execute(conn: &mut Conn, (sql, args): &Query<'_>) -> Result<u64> {
    let statement = conn.statement(sql)?;
    conn.client
        .execute(&statement, &refs(args))
        .map_err(storage_error)
}

/// Raises counter row `name` to at least `at_least`, adds `by`, and returns
/// the value before the add: the first id reserved; `None` without the row
/// (which changes nothing). An overflow is a damaged counter.
pub(super) fn bump_counter(
    conn: &mut Conn,
    name: &'static str,
    by: u64,
    at_least: u64,
) -> Result<Option<u64>> {
    let statement = conn.statement(
        "UPDATE counters SET next = GREATEST(next, $3) + $2 WHERE name = $1 \
         RETURNING next - $2",
    )?;
    let found = conn
        .client
        .query_opt(&statement, &[&Arg::Text(name), &int(by)?, &int(at_least)?])
        .map_err(|e| match e.code() {
            // A stored value near the end of the range.
            Some(code) if *code == postgres::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE => {
                corrupt("a counter")
            }
            _ => storage_error(e),
        })?;
    let Some(row) = found else {
        return Ok(None);
    };
    let first: i64 = row.try_get(0).map_err(storage_error)?;
    match u64::try_from(first) {
        Ok(first) if first >= at_least => Ok(Some(first)),
        _ => Err(corrupt("a counter")),
    }
}

/// The keys not retired of every scope given, in one statement per kind
/// of scope (with a subject, and without), for `prefetch_sealing`.
pub(super) fn sealing_keys_of(conn: &mut Conn, scopes: &[KeyScope]) -> Result<Vec<Scanned>> {
    let (mut subjects, mut epochs, mut subjectless) = (Vec::new(), Vec::new(), Vec::new());
    for scope in scopes {
        match &scope.subject {
            Some(tag) => {
                subjects.push(&tag[..]);
                epochs.push(scope.not_after_ms);
            }
            None => subjectless.push(scope.not_after_ms),
        }
    }
    let mut found = Vec::new();
    if !subjects.is_empty() {
        let statement = conn.statement(
            "SELECT k.id, k.subject, k.not_after, k.sealed, k.retired, k.wrapped FROM keys k \
             JOIN unnest($1::bytea[], $2::bigint[]) AS s(subject, not_after) \
             ON k.subject = s.subject AND k.not_after = s.not_after WHERE k.retired = 0",
        )?;
        let rows = conn
            .client
            .query(&statement, &[&subjects, &epochs])
            .map_err(storage_error)?;
        found.extend(rows.iter().map(|r| {
            decode(Table::Keys, r).map_err(|error| Damaged {
                id: id_of(Table::Keys, r),
                error,
            })
        }));
    }
    if !subjectless.is_empty() {
        let statement = conn.statement(
            "SELECT id, subject, not_after, sealed, retired, wrapped FROM keys \
             WHERE subject IS NULL AND not_after = ANY($1::bigint[]) AND retired = 0",
        )?;
        let rows = conn
            .client
            .query(&statement, &[&subjectless])
            .map_err(storage_error)?;
        found.extend(rows.iter().map(|r| {
            decode(Table::Keys, r).map_err(|error| Damaged {
                id: id_of(Table::Keys, r),
                error,
            })
        }));
    }
    Ok(found)
}

/// The id of a row of a table keyed by one, whatever its other columns hold.
fn id_of(table: Table, r: &postgres::Row) -> Option<u64> {
    match table {
        Table::Records | Table::Keys | Table::Audit | Table::IngestKeys | Table::Staged => r
            .try_get::<_, i64>(0)
            .ok()
            .and_then(|n| u64::try_from(n).ok()),
        Table::Meta | Table::Counters | Table::Notes | Table::PiiMaps => None,
    }
}

fn get<'r, T: postgres::types::FromSql<'r>>(r: &'r postgres::Row, i: usize) -> Result<T> {
    r.try_get(i).map_err(|e| Error::Corrupt {
        what: format!("unexpected stored value: {e}"),
    })
}

/// Decodes a row of `table` as [`select`] reads its columns.
fn decode(table: Table, r: &postgres::Row) -> Result<Row> {
    Ok(match table {
        Table::Meta => Row::Meta {
            name: get(r, 0)?,
            value: get(r, 1)?,
        },
        Table::Counters => {
            let name: String = get(r, 0)?;
            let value: i64 = get(r, 1)?;
            [Counter::RecordIds, Counter::KeyIds, Counter::FailedOpens]
                .into_iter()
                .find(|c| c.row_name().is_ok_and(|n| n == name))
                .map(|counter| Row::Counter {
                    counter,
                    value: Some(value),
                })
                .ok_or_else(|| corrupt("unknown counter"))?
        }
        Table::Keys => {
            let id: i64 = get(r, 0)?;
            let subject: Option<Vec<u8>> = get(r, 1)?;
            let retired: i64 = get(r, 4)?;
            Row::Key(KeyRow {
                id: u64::try_from(id).map_err(|_| corrupt("negative key id"))?,
                scope: KeyScope {
                    subject: subject.as_deref().map(id_tag).transpose()?,
                    not_after_ms: get(r, 2)?,
                },
                sealed: u64::try_from(get::<i64>(r, 3)?)
                    .map_err(|_| corrupt("negative key use count"))?,
                retired: retired != 0,
                wrapped: get(r, 5)?,
            })
        }
        Table::Records => {
            let id: i64 = get(r, 0)?;
            let conversation: Vec<u8> = get(r, 1)?;
            let subject: Option<Vec<u8>> = get(r, 2)?;
            Row::Record(RecordRow {
                id: u64::try_from(id).map_err(|_| corrupt("negative record id"))?,
                conversation: id_tag(&conversation)?,
                subject: subject.as_deref().map(id_tag).transpose()?,
                expires_at_ms: get(r, 3)?,
                sealed: get(r, 4)?,
            })
        }
        // Lenient (see `AuditRow`): a MAC of the wrong size reads as zeros.
        Table::Audit => {
            let mac: Vec<u8> = get(r, 3).unwrap_or_default();
            let mac = <[u8; 32]>::try_from(mac.as_slice()).ok();
            Row::Audit(AuditRow {
                seq: u64::try_from(get::<i64>(r, 0).unwrap_or(0)).unwrap_or(0),
                at_ms: get(r, 1).unwrap_or(0),
                sealed: get(r, 2).unwrap_or_default(),
                mac: mac.unwrap_or([0; 32]),
                mac_intact: mac.is_some(),
            })
        }
        Table::Notes => Row::Note(MaintenanceNote {
            at_ms: get(r, 0)?,
            records: u64::try_from(get::<i64>(r, 1)?).unwrap_or(0),
            keys: u64::try_from(get::<i64>(r, 2)?).unwrap_or(0),
        }),
        Table::IngestKeys => {
            let id: i64 = get(r, 0)?;
            Row::IngestKey(IngestKeyRow {
                id: u64::try_from(id).map_err(|_| corrupt("negative ingest key id"))?,
                not_after_ms: get(r, 1)?,
                wrapped: get(r, 2)?,
            })
        }
        // Lenient (see `IngestRow`): bad values read as an empty row.
        Table::Staged => {
            let id = u64::try_from(get::<i64>(r, 0).unwrap_or(0)).unwrap_or(0);
            let key_id: Option<i64> = get(r, 1).ok();
            let expires_at_ms: Option<i64> = get(r, 2).ok();
            let sealed: Option<Vec<u8>> = get(r, 3).ok().flatten();
            Row::Staged(match (key_id, expires_at_ms, sealed) {
                (Some(key_id), Some(expires_at_ms), Some(sealed)) if key_id >= 0 => IngestRow {
                    id,
                    key_id: key_id.unsigned_abs(),
                    expires_at_ms,
                    sealed,
                },
                _ => IngestRow {
                    id,
                    key_id: 0,
                    expires_at_ms: 0,
                    sealed: Vec::new(),
                },
            })
        }
        Table::PiiMaps => {
            let conversation: Vec<u8> = get(r, 0)?;
            let subject: Option<Vec<u8>> = get(r, 1)?;
            Row::PiiMap(PiiMapRow {
                conversation: id_tag(&conversation)?,
                subject: subject.as_deref().map(id_tag).transpose()?,
                expires_at_ms: get(r, 2)?,
                sealed: get(r, 3)?,
            })
        }
    })
}

fn id_tag(bytes: &[u8]) -> Result<IdTag> {
    <[u8; ID_TAG_LEN]>::try_from(bytes).map_err(|_| corrupt("tag of the wrong length"))
}

/// An id as the server's signed `bigint`.
pub(super) fn int(id: u64) -> Result<Arg<'static>> {
    i64::try_from(id)
        .map(Arg::Int)
        .map_err(|_| Error::InvalidInput {
            what: "id",
            reason: "out of range".into(),
        })
}

/// A bound of a range: past the largest `bigint` is the same as it.
fn clamped(n: u64) -> Arg<'static> {
    Arg::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn staged_cap() -> Arg<'static> {
    clamped(MAX_STAGED_LEN as u64)
}

fn opt_tag(tag: Option<&IdTag>) -> Arg<'_> {
    tag.map_or(Arg::Null, |t| Arg::Bytes(&t[..]))
}

pub(super) fn corrupt(what: &str) -> Error {
    Error::Corrupt { what: what.into() }
}
