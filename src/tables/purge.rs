//! What a purge and an erasure remove, in one transaction each. The
//! cascades are here, once: a backend only deletes what it is told.

use std::ops::ControlFlow;

use super::Txn;
use crate::error::Result;
use crate::keys::IdTag;
use crate::store::{ReadTxn, Row, Select, Table};

impl Txn<'_> {
    /// Deletes what expired by `now_ms`: PII mappings, staged records
    /// (set-aside ones too) and records. Returns how many records and
    /// staged records went.
    pub(crate) fn delete_expired(&mut self, now_ms: i64) -> Result<usize> {
        let at = Select::ExpiredBy(now_ms);
        self.raw.delete(Table::PiiMaps, at)?;
        let staged = self.raw.delete(Table::Staged, at)?;
        let records = self.raw.delete(Table::Records, at)?;
        Ok(usize::try_from(staged + records).unwrap_or(usize::MAX))
    }

    /// Deletes the keys, and the ingest keys, whose epoch ended by
    /// `now_ms`; returns their ids.
    pub(crate) fn delete_keys_ended(&mut self, now_ms: i64) -> Result<Vec<u64>> {
        let at = Select::ExpiredBy(now_ms);
        let mut ids = ids_of(&mut *self.raw, Table::Keys, at)?;
        self.raw.delete(Table::Keys, at)?;
        ids.extend(ids_of(&mut *self.raw, Table::IngestKeys, at)?);
        self.raw.delete(Table::IngestKeys, at)?;
        Ok(ids)
    }

    /// Erases a subject (crypto-shredding): their PII mappings (those
    /// bound to them, and those of every conversation their records are
    /// in), their records, and their keys. Returns (records, key ids).
    pub(crate) fn delete_subject(&mut self, tag: &IdTag) -> Result<(usize, Vec<u64>)> {
        let subject = Select::Subject(Some(tag));
        // Before the records go: they say which conversations are theirs.
        self.raw
            .delete(Table::PiiMaps, Select::ConversationsOf(tag))?;
        self.raw.delete(Table::PiiMaps, subject)?;
        let records = self.raw.delete(Table::Records, subject)?;
        failpoint!("erase-records-deleted");
        let keys = ids_of(&mut *self.raw, Table::Keys, subject)?;
        self.raw.delete(Table::Keys, subject)?;
        Ok((usize::try_from(records).unwrap_or(usize::MAX), keys))
    }
}

/// The ids of the selected key rows, damaged ones too: a key row that does
/// not decode is destroyed all the same, and its cached copy forgotten.
fn ids_of(r: &mut dyn ReadTxn, table: Table, select: Select<'_>) -> Result<Vec<u64>> {
    let mut ids = Vec::new();
    r.scan(table, select, &mut |row| {
        let id = match row {
            Ok(Row::Key(k)) => Some(k.id),
            Ok(Row::IngestKey(k)) => Some(k.id),
            Ok(_) => None,
            Err(damaged) => damaged.id,
        };
        ids.extend(id);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(ids)
}
