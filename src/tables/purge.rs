//! What a purge and an erasure remove, in one transaction each. The
//! cascades are here, once: a backend only deletes what it is told.
//!
//! With the keys apart (DESIGN.md, "Keys apart") a backup of the record
//! store can bring an erased subject's records back after their keys are
//! gone. So there an erasure also leaves a note in the keys store that the
//! subject was erased (a `meta` row `erased/<subject tag>`, FORMAT.md §8),
//! kept until the last epoch of the keys it destroyed ends; a purge finds
//! the restored records by it and deletes those whose key is gone. A
//! single-file vault's backups hold its keys too, so it keeps no note.

use std::ops::ControlFlow;

use super::Txn;
use crate::error::Result;
use crate::keys::IdTag;
use crate::store::{ReadTxn, Row, Select, Table};

/// Prefix of the `meta` rows naming an erased subject's tag (hex); the
/// value is the end of the last epoch its destroyed keys had (i64 BE ms).
pub(crate) const ERASED_PREFIX: &str = "erased/";

impl Txn<'_> {
    /// Deletes what expired by `now_ms`: PII mappings, staged records
    /// (set-aside ones too) and records; and records of erased subjects
    /// whose key is gone (put back from a backup). Returns how many
    /// records and staged records went.
    pub(crate) fn delete_expired(&mut self, now_ms: i64) -> Result<usize> {
        let at = Select::ExpiredBy(now_ms);
        self.raw.delete(Table::PiiMaps, at)?;
        let staged = self.raw.delete(Table::Staged, at)?;
        let records = self.raw.delete(Table::Records, at)?;
        let restored = self.delete_restored(now_ms)?;
        Ok(usize::try_from(staged + records + restored).unwrap_or(usize::MAX))
    }

    /// Deletes the records of every erased subject whose key is gone, and
    /// forgets the erasures whose keys' epochs have all ended by `now_ms`
    /// (any record such a key sealed has expired: the expiry purge takes
    /// it). Records the subject stored after the erasure, under new keys,
    /// stay.
    fn delete_restored(&mut self, now_ms: i64) -> Result<u64> {
        let mut deleted = 0;
        for (name, value) in super::meta_with_prefix(&mut *self.raw, ERASED_PREFIX)? {
            let until = <[u8; 8]>::try_from(value.as_slice()).map(i64::from_be_bytes);
            let tag = name
                .strip_prefix(ERASED_PREFIX)
                .and_then(crate::store::read_logs::name_from_hex);
            let (Ok(until), Some(tag)) = (until, tag) else {
                // Not a row this crate writes: drop it, it guards nothing.
                self.raw.delete(Table::Meta, Select::Name(&name))?;
                continue;
            };
            if until <= now_ms {
                self.raw.delete(Table::Meta, Select::Name(&name))?;
                continue;
            }
            let mut keyless = Vec::new();
            let mut key_ids = Vec::new();
            self.raw
                .scan(Table::Records, Select::Subject(Some(&tag)), &mut |row| {
                    if let Ok(Row::Record(r)) = row {
                        // A record whose key id does not read is damaged,
                        // not restored: `verify` names it.
                        if let Ok(key_id) = crate::seal::key_id(&r.sealed) {
                            key_ids.push((r.id, key_id));
                        }
                    }
                    Ok(ControlFlow::Continue(()))
                })?;
            for (id, key_id) in key_ids {
                if self.raw.get(Table::Keys, Select::Id(key_id))?.is_none() {
                    keyless.push(id);
                }
            }
            for id in keyless {
                deleted += self.raw.delete(Table::Records, Select::Id(id))?;
            }
        }
        Ok(deleted)
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
        let mut keys = Vec::new();
        let mut last_epoch_end = None;
        self.raw.scan(Table::Keys, subject, &mut |row| {
            match row {
                Ok(Row::Key(k)) => {
                    keys.push(k.id);
                    last_epoch_end = last_epoch_end.max(Some(k.scope.not_after_ms));
                }
                Ok(_) => {}
                Err(damaged) => keys.extend(damaged.id),
            }
            Ok(ControlFlow::Continue(()))
        })?;
        self.raw.delete(Table::Keys, subject)?;
        if let Some(until) = last_epoch_end.filter(|_| self.raw.keys_apart()) {
            let name = format!(
                "{ERASED_PREFIX}{}",
                crate::store::read_logs::name_to_hex(tag)
            );
            let kept = super::meta_value(&mut *self.raw, &name)?
                .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                .map_or(i64::MIN, i64::from_be_bytes);
            self.raw.put(&Row::Meta {
                name,
                value: until.max(kept).to_be_bytes().to_vec(),
            })?;
        }
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
