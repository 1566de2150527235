//! Staged records and the keys ingestors wrap (FORMAT.md §12).

use std::ops::ControlFlow;

use super::{Txn, wrong_row};
use crate::error::Result;
use crate::store::{IngestKeyRow, IngestRow, ReadTxn, Row, Select, Table};

/// Whether a staged record waits (set-aside ones do not count).
pub(super) fn has_waiting(r: &mut dyn ReadTxn) -> Result<bool> {
    Ok(r.get(Table::Staged, Select::All)?.is_some())
}

impl Txn<'_> {
    /// Whether any staged record waits, inside the transaction.
    pub(crate) fn has_ingested(&mut self) -> Result<bool> {
        has_waiting(self.r())
    }

    /// Stages an ingested record.
    pub(crate) fn insert_ingested(&mut self, row: IngestRow) -> Result<()> {
        self.raw.put(&Row::Staged(row))
    }

    /// Up to `limit` staged records waiting with ids above `after`, by id.
    /// A row longer than [`crate::store::MAX_STAGED_LEN`] comes with no
    /// bytes.
    pub(crate) fn staged(&mut self, after: u64, limit: usize) -> Result<Vec<IngestRow>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.raw
            .scan(Table::Staged, Select::After(after), &mut |row| match row? {
                Row::Staged(s) => {
                    out.push(s);
                    Ok(if out.len() < limit {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    })
                }
                other => Err(wrong_row(&other)),
            })?;
        Ok(out)
    }

    /// Sets a staged record aside: later take-ins skip it, and its expiry
    /// becomes at most `expires_cap_ms` so that a purge removes it.
    pub(crate) fn set_aside_staged(&mut self, id: u64, expires_cap_ms: i64) -> Result<()> {
        self.raw.set_aside(id, expires_cap_ms)
    }

    /// Removes a staged record (taken in).
    pub(crate) fn delete_ingested(&mut self, id: u64) -> Result<()> {
        self.raw.delete(Table::Staged, Select::Id(id)).map(|_| ())
    }

    /// Stores a key an ingestor wrapped to the vault's public key.
    pub(crate) fn insert_ingest_key(&mut self, key: IngestKeyRow) -> Result<()> {
        self.raw.put(&Row::IngestKey(key))
    }

    /// An ingest key by id.
    pub(crate) fn ingest_key(&mut self, id: u64) -> Result<Option<IngestKeyRow>> {
        match self.raw.get(Table::IngestKeys, Select::Id(id))? {
            None => Ok(None),
            Some(Row::IngestKey(k)) => Ok(Some(k)),
            Some(other) => Err(wrong_row(&other)),
        }
    }

    /// Deletes every ingest data key (after the ingest key changed, none
    /// can be unwrapped any more).
    pub(crate) fn delete_ingest_keys(&mut self) -> Result<()> {
        self.raw.delete(Table::IngestKeys, Select::All).map(|_| ())
    }
}
