//! What a purge and an erasure remove, in one transaction each. The
//! cascades are here, once: a backend only deletes what it is told.
//!
//! With the keys apart (DESIGN.md, "Keys apart") a backup of the record
//! store can bring an erased subject's records back after their keys are
//! gone. So there an erasure also leaves a note in the keys store that the
//! subject was erased (a `meta` row `erased/<subject tag>`, FORMAT.md §8),
//! kept until the last epoch of the keys it destroyed ends; a purge finds
//! the restored records by it and deletes those whose key is gone, with
//! the PII mappings of their conversations. A single-file vault's backups
//! hold its keys too, so it keeps no note.

use std::ops::ControlFlow;

use super::Txn;
use crate::error::Result;
use crate::keys::IdTag;
use crate::store::read_logs::{name_from_hex, name_to_hex};
use crate::store::{Counter, ReadTxn, Row, Select, Table};

/// Prefix of the `meta` rows naming an erased subject's tag (hex).
pub(crate) const ERASED_PREFIX: &str = "erased/";

/// What an erasure note says: until when it is kept (the end of the last
/// epoch of the keys the erasure destroyed), and the key id counter when
/// it was written (every key of the subject below it was destroyed).
/// Stored as `until (i64 BE) ‖ key floor (u64 BE)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErasureNote {
    pub(crate) until_ms: i64,
    pub(crate) key_floor: u64,
}

impl ErasureNote {
    fn name(tag: &IdTag) -> String {
        format!("{ERASED_PREFIX}{}", name_to_hex(tag))
    }

    fn to_bytes(self) -> Vec<u8> {
        let mut out = self.until_ms.to_be_bytes().to_vec();
        out.extend_from_slice(&self.key_floor.to_be_bytes());
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (until, floor) = bytes.split_first_chunk::<8>()?;
        Some(Self {
            until_ms: i64::from_be_bytes(*until),
            key_floor: u64::from_be_bytes(<[u8; 8]>::try_from(floor).ok()?),
        })
    }
}

/// The erasure note of a subject, if there is one that parses.
pub(super) fn erasure_note(r: &mut dyn ReadTxn, tag: &IdTag) -> Result<Option<ErasureNote>> {
    Ok(super::meta_value(r, &ErasureNote::name(tag))?.and_then(|v| ErasureNote::from_bytes(&v)))
}

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
            let note = ErasureNote::from_bytes(&value);
            let tag = name.strip_prefix(ERASED_PREFIX).and_then(name_from_hex);
            let (Some(note), Some(tag)) = (note, tag) else {
                // Not a row this crate writes: drop it, it guards nothing.
                self.raw.delete(Table::Meta, Select::Name(&name))?;
                continue;
            };
            if note.until_ms <= now_ms {
                self.raw.delete(Table::Meta, Select::Name(&name))?;
                continue;
            }
            let mut found = Vec::new();
            self.raw
                .scan(Table::Records, Select::Subject(Some(&tag)), &mut |row| {
                    if let Ok(Row::Record(r)) = row {
                        // A record whose key id does not read is damaged,
                        // not restored: `verify` names it.
                        if let Ok(key_id) = crate::seal::key_id(&r.sealed) {
                            found.push((r.id, r.conversation, key_id));
                        }
                    }
                    Ok(ControlFlow::Continue(()))
                })?;
            for (id, conversation, key_id) in found {
                if self.raw.get(Table::Keys, Select::Id(key_id))?.is_some() {
                    continue;
                }
                // The erasure deleted the mappings of the subject's
                // conversations, whatever key sealed them; the backup
                // brought them back with the records.
                self.raw
                    .delete(Table::PiiMaps, Select::Conversation(&conversation))?;
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
        let mut last_epoch_end: Option<i64> = None;
        self.raw.scan(Table::Keys, subject, &mut |row| {
            match row {
                Ok(Row::Key(k)) => {
                    keys.push(k.id);
                    last_epoch_end = last_epoch_end.max(Some(k.scope.not_after_ms));
                }
                Ok(_) => {}
                Err(damaged) => {
                    keys.extend(damaged.id);
                    // Its epoch unknown: the note is kept until the latest
                    // epoch a record could name.
                    last_epoch_end = Some(i64::MAX);
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        self.raw.delete(Table::Keys, subject)?;
        if self.keys_apart && !keys.is_empty() {
            let earlier = erasure_note(&mut *self.raw, tag)?;
            let key_floor = match self
                .raw
                .get(Table::Counters, Select::Counter(Counter::KeyIds))?
            {
                Some(Row::Counter {
                    value: Some(next), ..
                }) => u64::try_from(next).unwrap_or(0),
                _ => 0,
            };
            let note = ErasureNote {
                until_ms: last_epoch_end.unwrap_or(i64::MAX),
                key_floor,
            };
            let note = earlier.map_or(note, |e| ErasureNote {
                until_ms: note.until_ms.max(e.until_ms),
                key_floor: note.key_floor.max(e.key_floor),
            });
            self.raw.put(&Row::Meta {
                name: ErasureNote::name(tag),
                value: note.to_bytes(),
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
