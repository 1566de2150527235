//! What a purge and an erasure remove, in one transaction each. The
//! cascades are here, once: a backend only deletes what it is told.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use super::{Txn, into_record};
use crate::error::Result;
use crate::keys::IdTag;
use crate::store::{Row, Select, Table};

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
        let mut ids = self.key_ids(at)?;
        self.raw.delete(Table::Keys, at)?;
        // A row that does not decode is no key anyone can use, and must
        // not stop the purge; the delete reaches it by its expiry if it has one.
        let mut ingest = Vec::new();
        self.raw.scan(Table::IngestKeys, at, &mut |row| {
            if let Ok(Row::IngestKey(k)) = row {
                ingest.push(k.id);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        self.raw.delete(Table::IngestKeys, at)?;
        ids.extend(ingest);
        Ok(ids)
    }

    /// Erases a subject (crypto-shredding): their PII mappings (those
    /// bound to them, and those of every conversation their records are
    /// in), their records, and their keys. Returns (records, key ids).
    pub(crate) fn delete_subject(&mut self, tag: &IdTag) -> Result<(usize, Vec<u64>)> {
        let subject = Select::Subject(Some(tag));
        let mut conversations = BTreeSet::new();
        // A damaged record of theirs does not stop the erasure: its row
        // goes with the others, only its conversation's mapping cannot be
        // told from it.
        self.raw.scan(Table::Records, subject, &mut |row| {
            if let Ok(row) = row.and_then(into_record) {
                conversations.insert(row.conversation);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        for conversation in &conversations {
            self.raw
                .delete(Table::PiiMaps, Select::Conversation(conversation))?;
        }
        self.raw.delete(Table::PiiMaps, subject)?;
        let records = self.raw.delete(Table::Records, subject)?;
        failpoint!("erase-records-deleted");
        let keys = self.key_ids(subject)?;
        self.raw.delete(Table::Keys, subject)?;
        Ok((usize::try_from(records).unwrap_or(usize::MAX), keys))
    }

    fn key_ids(&mut self, select: Select<'_>) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        self.raw.scan(Table::Keys, select, &mut |row| {
            if let Ok(Row::Key(k)) = row {
                ids.push(k.id);
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(ids)
    }
}
