//! The vault's rules over the logical tables, written once above the
//! storage seam (`crate::store`) so that every backend keeps them alike:
//! which key seals a scope and when it rotates (`keys.rs`), what a purge
//! and an erasure remove (`purge.rs`), how the audit chain is read and
//! grown (`audit.rs`), how ids are handed out and failed opens counted
//! (`counters.rs`), maintenance notes (`notes.rs`) and staged records
//! (`staged.rs`).
//!
//! [`Tables`] reads outside a transaction; [`Txn`] is a write
//! transaction. Both run the same functions, over [`ReadTxn`].

mod audit;
mod counters;
mod keys;
mod notes;
mod purge;
pub(crate) mod read_logs;
mod staged;

pub(crate) use purge::{ERASED_PREFIX, ErasureNote};

use std::ops::ControlFlow;

use crate::error::{Error, Result};
use crate::keys::IdTag;
use crate::store::{
    Backend, Durability, KeyRow, PiiMapRow, ReadTxn, RecordRow, Row, Select, Table, VaultMeta,
    WriteTxn,
};

/// Names of the header and tag key rows in [`Table::Meta`].
const META_HEADER: &str = "header";
const META_TAG_KEY: &str = "tag_key";

/// Counts a key-less caller may see (all visible in the file anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StoreStats {
    pub(crate) records: u64,
    pub(crate) expired: u64,
    pub(crate) sealed_bytes: u64,
    pub(crate) oldest_expiry_ms: Option<i64>,
    pub(crate) keys: u64,
    pub(crate) audit_entries: u64,
}

/// A vault's storage, read outside a write transaction.
pub(crate) struct Tables {
    backend: Box<dyn Backend>,
}

impl Tables {
    pub(crate) fn new(backend: Box<dyn Backend>) -> Self {
        Self { backend }
    }

    /// Where reads' audit entries wait for the next write.
    pub(crate) fn read_logs(&self) -> &dyn crate::store::read_logs::ReadLogs {
        self.backend.read_logs()
    }

    /// Starts the one write transaction.
    pub(crate) fn write(&self, durability: Durability) -> Result<Txn<'_>> {
        Ok(Txn {
            raw: self.backend.write(durability)?,
            header: None,
            keys_apart: self.backend.keys_apart(),
        })
    }

    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        self.backend.read()
    }

    /// The header and wrapped tag key.
    pub(crate) fn meta(&self) -> Result<VaultMeta> {
        meta(&mut *self.read()?)
    }

    /// An optional vault-wide value by name (FORMAT.md §8), or `None`.
    pub(crate) fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>> {
        meta_value(&mut *self.read()?, name)
    }

    /// One stored record by id, or `None`.
    pub(crate) fn record(&self, id: u64) -> Result<Option<RecordRow>> {
        record(&mut *self.read()?, id)
    }

    /// Records of this conversation not expired at `now_ms`, by id.
    pub(crate) fn conversation(&self, tag: &IdTag, now_ms: i64) -> Result<Vec<RecordRow>> {
        records(&mut *self.read()?, Select::LiveConversation(tag, now_ms))
    }

    /// Records of this subject not expired at `now_ms`, by id.
    pub(crate) fn subject(&self, tag: &IdTag, now_ms: i64) -> Result<Vec<RecordRow>> {
        records(&mut *self.read()?, Select::LiveSubject(tag, now_ms))
    }

    /// Calls `each` for the live records of a conversation (if given),
    /// else of a subject (if given), else for every stored record,
    /// expired or not; by id. Through the index, so a query for one
    /// subject reads that subject's rows only.
    pub(crate) fn each_record_of(
        &self,
        conversation: Option<&IdTag>,
        subject: Option<&IdTag>,
        now_ms: i64,
        each: &mut dyn FnMut(RecordRow) -> Result<()>,
    ) -> Result<()> {
        let select = match (conversation, subject) {
            (Some(c), _) => Select::LiveConversation(c, now_ms),
            (None, Some(s)) => Select::LiveSubject(s, now_ms),
            (None, None) => Select::All,
        };
        self.each_selected(select, each)
    }

    /// The highest record id stored, 0 if none.
    pub(crate) fn newest_record_id(&self) -> Result<u64> {
        counters::newest_id(&mut *self.read()?, Table::Records)
    }

    /// The `meta` rows whose name starts with `prefix`, by name.
    pub(crate) fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        meta_with_prefix(&mut *self.read()?, prefix)
    }

    /// Calls `each` for the stored records with `from <= id <= to`,
    /// expired or not, by id.
    pub(crate) fn each_record_in(
        &self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(RecordRow) -> Result<()>,
    ) -> Result<()> {
        self.each_selected(Select::Range(from, to), each)
    }

    /// Calls `each` for every stored record, expired or not, by id.
    pub(crate) fn each_record(&self, each: &mut dyn FnMut(RecordRow) -> Result<()>) -> Result<()> {
        self.each_selected(Select::All, each)
    }

    fn each_selected(
        &self,
        select: Select<'_>,
        each: &mut dyn FnMut(RecordRow) -> Result<()>,
    ) -> Result<()> {
        self.read()?.scan(Table::Records, select, &mut |row| {
            each(into_record(row?)?)?;
            Ok(ControlFlow::Continue(()))
        })
    }

    /// One stored key by id, or `None` if it was destroyed.
    pub(crate) fn key(&self, id: u64) -> Result<Option<KeyRow>> {
        keys::key(&mut *self.read()?, id)
    }

    /// Every stored key.
    pub(crate) fn keys(&self) -> Result<Vec<KeyRow>> {
        keys::all(&mut *self.read()?)
    }

    /// Whether the keys are kept apart from the records.
    pub(crate) fn keys_apart(&self) -> bool {
        self.backend.keys_apart()
    }

    /// The note an erasure of this subject left, with the keys apart.
    pub(crate) fn erasure_note(&self, subject: &IdTag) -> Result<Option<ErasureNote>> {
        purge::erasure_note(&mut *self.read()?, subject)
    }

    /// Whether a key of this subject (or of none) whose epoch ends in
    /// `(after_ms, until_ms]` is stored.
    pub(crate) fn scope_has_key(
        &self,
        subject: Option<&IdTag>,
        after_ms: i64,
        until_ms: i64,
    ) -> Result<bool> {
        keys::scope_has_key(&mut *self.read()?, subject, after_ms, until_ms)
    }

    /// Calls `each` for the audit entries with `from <= seq <= to`, in order.
    pub(crate) fn audit_rows(
        &self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(crate::store::AuditRow) -> Result<()>,
    ) -> Result<()> {
        audit::rows(&mut *self.read()?, Select::Range(from, to), each)
    }

    /// A conversation's PII mapping, if it has one.
    pub(crate) fn pii_map(&self, conversation: &IdTag) -> Result<Option<PiiMapRow>> {
        pii_map(&mut *self.read()?, conversation)
    }

    /// Whether any staged record waits to be taken in.
    pub(crate) fn has_ingested(&self) -> Result<bool> {
        staged::has_waiting(&mut *self.read()?)
    }

    /// How many staged records were set aside (FORMAT.md §12).
    pub(crate) fn set_aside_count(&self) -> Result<u64> {
        Ok(self.read()?.tally(Table::Staged, Select::SetAside)?.rows)
    }

    /// The backend's own consistency check.
    pub(crate) fn check_integrity(&self) -> Result<()> {
        self.backend.check_integrity()
    }

    /// Counts and sizes, as of `now_ms`.
    pub(crate) fn stats(&self, now_ms: i64) -> Result<StoreStats> {
        let mut r = self.read()?;
        let records = r.tally(Table::Records, Select::All)?;
        Ok(StoreStats {
            records: records.rows,
            expired: r.tally(Table::Records, Select::ExpiredBy(now_ms))?.rows,
            sealed_bytes: records.bytes,
            oldest_expiry_ms: records.min_expiry_ms,
            keys: r.tally(Table::Keys, Select::All)?.rows,
            audit_entries: r.tally(Table::Audit, Select::All)?.rows,
        })
    }

    /// Counts one failed open (unauthenticated: it cannot be MACed).
    pub(crate) fn count_failed_open(&self) -> Result<()> {
        let mut txn = self.write(Durability::Durable)?;
        counters::count_failed_open(&mut *txn.raw)?;
        txn.commit()
    }
}

/// A write transaction: all or nothing, committed by [`Txn::commit`],
/// rolled back if dropped. Its reads see its own writes.
pub(crate) struct Txn<'a> {
    raw: Box<dyn WriteTxn + 'a>,
    /// The header as this transaction read it, kept after the first
    /// read: a batch over many subjects checks it for every key it makes,
    /// and only this transaction can change it while it runs.
    header: Option<Vec<u8>>,
    /// Whether the vault keeps its keys apart from its records.
    keys_apart: bool,
}

impl Txn<'_> {
    fn r(&mut self) -> &mut dyn ReadTxn {
        &mut *self.raw
    }

    /// Writes the rows a new vault starts with.
    pub(crate) fn initialize(&mut self, meta: &VaultMeta) -> Result<()> {
        counters::initialize(&mut *self.raw)?;
        self.set_meta(meta)
    }

    /// The header and wrapped tag key as this transaction sees them.
    pub(crate) fn meta(&mut self) -> Result<VaultMeta> {
        meta(self.r())
    }

    /// Whether the stored header is `expected` (another handle that
    /// changed the key changed it): read once per transaction.
    pub(crate) fn header_is(&mut self, expected: &[u8]) -> Result<bool> {
        if self.header.is_none() {
            let header = meta_value(self.r(), META_HEADER)?.ok_or_else(|| Error::Corrupt {
                what: format!("the vault's {META_HEADER} is missing"),
            })?;
            self.header = Some(header);
        }
        Ok(self.header.as_deref() == Some(expected))
    }

    /// Replaces the header and wrapped tag key.
    pub(crate) fn set_meta(&mut self, meta: &VaultMeta) -> Result<()> {
        self.set_meta_value(META_HEADER, Some(&meta.header))?;
        self.set_meta_value(META_TAG_KEY, Some(&meta.tag_key))
    }

    /// The `meta` rows whose name starts with `prefix`, inside the
    /// transaction.
    pub(crate) fn meta_with_prefix(&mut self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        meta_with_prefix(self.r(), prefix)
    }

    /// Reads an optional vault-wide value inside the transaction.
    pub(crate) fn meta_value(&mut self, name: &str) -> Result<Option<Vec<u8>>> {
        meta_value(self.r(), name)
    }

    /// Sets (or, with `None`, removes) an optional vault-wide value.
    pub(crate) fn set_meta_value(&mut self, name: &str, value: Option<&[u8]>) -> Result<()> {
        if name == META_HEADER {
            self.header = None;
        }
        match value {
            Some(v) => self.raw.put(&Row::Meta {
                name: name.to_owned(),
                value: v.to_vec(),
            }),
            None => self.raw.delete(Table::Meta, Select::Name(name)).map(|_| ()),
        }
    }

    /// One stored record by id, inside the transaction.
    pub(crate) fn record(&mut self, id: u64) -> Result<Option<RecordRow>> {
        record(self.r(), id)
    }

    /// Stores a record.
    pub(crate) fn insert_record(&mut self, row: RecordRow) -> Result<()> {
        self.raw.put(&Row::Record(row))?;
        failpoint!("record-inserted");
        Ok(())
    }

    /// A conversation's PII mapping, inside the transaction.
    pub(crate) fn pii_map(&mut self, conversation: &IdTag) -> Result<Option<PiiMapRow>> {
        pii_map(self.r(), conversation)
    }

    /// Stores (or replaces) a conversation's PII mapping.
    pub(crate) fn put_pii_map(&mut self, row: PiiMapRow) -> Result<()> {
        self.raw.put(&Row::PiiMap(row))
    }

    /// Makes everything durable.
    pub(crate) fn commit(self) -> Result<()> {
        self.commit_then(&mut || ())
    }

    /// Commits, then runs `after` while still keeping other writers out
    /// (so in-memory state that mirrors the commit changes with it).
    pub(crate) fn commit_then(mut self, after: &mut dyn FnMut()) -> Result<()> {
        failpoint!("commit-before");
        self.raw.commit()?;
        failpoint!("commit-after");
        after();
        Ok(())
    }
}

fn meta(r: &mut dyn ReadTxn) -> Result<VaultMeta> {
    let get = |r: &mut dyn ReadTxn, name| {
        meta_value(r, name)?.ok_or_else(|| Error::Corrupt {
            what: format!("the vault's {name} is missing"),
        })
    };
    Ok(VaultMeta {
        header: get(r, META_HEADER)?,
        tag_key: get(r, META_TAG_KEY)?,
    })
}

/// The `meta` rows whose name starts with `prefix`, by name.
fn meta_with_prefix(r: &mut dyn ReadTxn, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    r.scan(Table::Meta, Select::Prefix(prefix), &mut |row| match row? {
        Row::Meta { name, value } => {
            out.push((name, value));
            Ok(ControlFlow::Continue(()))
        }
        other => Err(wrong_row(&other)),
    })?;
    Ok(out)
}

fn meta_value(r: &mut dyn ReadTxn, name: &str) -> Result<Option<Vec<u8>>> {
    match r.get(Table::Meta, Select::Name(name))? {
        None => Ok(None),
        Some(Row::Meta { value, .. }) => Ok(Some(value)),
        Some(other) => Err(wrong_row(&other)),
    }
}

fn record(r: &mut dyn ReadTxn, id: u64) -> Result<Option<RecordRow>> {
    r.get(Table::Records, Select::Id(id))?
        .map(into_record)
        .transpose()
}

fn pii_map(r: &mut dyn ReadTxn, conversation: &IdTag) -> Result<Option<PiiMapRow>> {
    match r.get(Table::PiiMaps, Select::Conversation(conversation))? {
        None => Ok(None),
        Some(Row::PiiMap(m)) => Ok(Some(m)),
        Some(other) => Err(wrong_row(&other)),
    }
}

/// The selected records.
fn records(r: &mut dyn ReadTxn, select: Select<'_>) -> Result<Vec<RecordRow>> {
    let mut out = Vec::new();
    r.scan(Table::Records, select, &mut |row| {
        out.push(into_record(row?)?);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(out)
}

fn into_record(row: Row) -> Result<RecordRow> {
    match row {
        Row::Record(r) => Ok(r),
        other => Err(wrong_row(&other)),
    }
}

/// A backend handed back a row of another table than asked: its bug,
/// never the file's.
fn wrong_row(row: &Row) -> Error {
    Error::Storage(format!("the backend returned a row of {:?}", row.table()).into())
}
