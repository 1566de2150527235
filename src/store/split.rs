//! Keys kept apart from the records (DESIGN.md, "Keys apart"): one
//! [`Backend`] over two, a record store and a keys store, routing each
//! table (and each `meta` row, by name) to the store it belongs in. The
//! policy above the seam sees one vault and is unchanged.
//!
//! The keys store holds what can unwrap a record: the header, the wrapped
//! tag key, the data keys, the ingest secret and ingest-wrapped keys,
//! recovery material, the key id and key use counters and the failed-open
//! count, and the subjects erased since their keys' epochs last ended; and
//! the record high-water mark, which must not roll back with the records.
//! Everything else (records, staged records, PII mappings, the audit log
//! and its read logs, the time index) is in the record store, which can
//! then be backed up as usual: a copy of it opens only with a keys store,
//! and the current keys store no longer holds what an erasure or a purge
//! destroyed.
//!
//! # Two commits
//! A write transaction takes the record store's writer first and the keys
//! store's only when it first touches a key table, so every writer takes
//! the two in the same order. It commits the keys store first, then the
//! record store, having first made the record store send what it holds
//! back (`WriteTxn::flush`), so an error there stops the write before
//! either commits. A crash between the two leaves the keys store ahead:
//! - a write that adds a key (a `put`) added a key no record uses yet,
//!   and was not acknowledged;
//! - a write that destroys keys (erasure, purge) destroyed them, and the
//!   records they sealed stay until the next erasure or purge removes
//!   them: they read as [`Error::KeyDestroyed`], never as content.
//!
//! The reverse order could leave a destroyed record's key alive, or an
//! acknowledged record's key missing.

use std::ops::ControlFlow;

use super::read_logs::ReadLogs;
use super::{Backend, Counter, Durability, ReadTxn, Row, Scanned, Select, Table, Tally, WriteTxn};
use crate::error::{Error, Result};

/// `meta` rows kept in the keys store: the header and everything that
/// unwraps or proves keys; and the record high-water mark, the floor
/// below which no staged record is taken in, which must not roll back
/// with a restored record store (else a staged copy of an erased record,
/// restored with it, would be taken in again under a live ingest key).
/// Every other name stays with the records.
const KEY_META_ROWS: [&str; 7] = [
    "header",
    "tag_key",
    "recovery",
    "ingest_public",
    "ingest_secret",
    "ingest_mac",
    crate::vault::META_HIGH_WATER,
];

/// Prefixes of `meta` row names kept in the keys store.
const KEY_META_PREFIXES: [&str; 1] = [crate::tables::ERASED_PREFIX];

/// The `meta` row that names a store's half of a split vault: its role
/// (`records` or `keys`) then the vault's id. Written at create, in each
/// store, and never again.
pub(crate) const SPLIT_ROW: &str = "split";
/// Length of a split vault's id.
pub(crate) const VAULT_ID_LEN: usize = 16;
const ROLE_RECORDS: &[u8] = b"records";
const ROLE_KEYS: &[u8] = b"keys";

/// Which store a table, counter or `meta` row lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Records,
    Keys,
}

fn meta_side(name: &str) -> Side {
    if KEY_META_ROWS.contains(&name) || KEY_META_PREFIXES.iter().any(|p| name.starts_with(p)) {
        Side::Keys
    } else {
        Side::Records
    }
}

fn side(table: Table, select: &Select<'_>) -> Side {
    match (table, select) {
        (Table::Meta, Select::Name(name) | Select::Prefix(name)) => meta_side(name),
        (Table::Counters, Select::Counter(Counter::RecordIds)) => Side::Records,
        (Table::Keys | Table::IngestKeys | Table::Counters, _) => Side::Keys,
        _ => Side::Records,
    }
}

fn row_side(row: &Row) -> Side {
    match row {
        Row::Meta { name, .. } => meta_side(name),
        Row::Counter {
            counter: Counter::RecordIds,
            ..
        } => Side::Records,
        Row::Counter { .. } | Row::Key(_) | Row::IngestKey(_) => Side::Keys,
        _ => Side::Records,
    }
}

/// What a store's [`SPLIT_ROW`] holds: its role and the vault's id.
pub(crate) fn split_row(keys: bool, vault_id: &[u8; VAULT_ID_LEN]) -> Row {
    let mut value = if keys { ROLE_KEYS } else { ROLE_RECORDS }.to_vec();
    value.extend_from_slice(vault_id);
    Row::Meta {
        name: SPLIT_ROW.to_owned(),
        value,
    }
}

/// The role (`true`: keys) and vault id a store's [`SPLIT_ROW`] names, or
/// `None` for a store that is not half of a split vault.
pub(crate) fn read_split_row(backend: &dyn Backend) -> Result<Option<(bool, Vec<u8>)>> {
    let row = backend.read()?.get(Table::Meta, Select::Name(SPLIT_ROW))?;
    let Some(Row::Meta { value, .. }) = row else {
        return Ok(None);
    };
    if let Some(id) = value.strip_prefix(ROLE_KEYS) {
        return Ok(Some((true, id.to_vec())));
    }
    if let Some(id) = value.strip_prefix(ROLE_RECORDS) {
        return Ok(Some((false, id.to_vec())));
    }
    Err(Error::StorageMismatch)
}

/// A vault whose keys are in a store of their own.
pub(crate) struct SplitBackend {
    records: Box<dyn Backend>,
    keys: Box<dyn Backend>,
}

impl SplitBackend {
    /// The two halves of one vault: each store's [`SPLIT_ROW`] must name
    /// its role and the same vault id, or the pair is refused with
    /// [`Error::StorageMismatch`] before any other row is read.
    pub(crate) fn pair(records: Box<dyn Backend>, keys: Box<dyn Backend>) -> Result<Self> {
        match (read_split_row(&*records)?, read_split_row(&*keys)?) {
            (Some((false, a)), Some((true, b))) if a == b && a.len() == VAULT_ID_LEN => {
                Ok(Self { records, keys })
            }
            _ => Err(Error::StorageMismatch),
        }
    }

    /// Marks two new, empty stores as the halves of one vault.
    pub(crate) fn mark_new(records: &dyn Backend, keys: &dyn Backend) -> Result<()> {
        let mut vault_id = [0u8; VAULT_ID_LEN];
        crate::random::fill_from_os(&mut vault_id);
        for (backend, is_keys) in [(keys, true), (records, false)] {
            let mut txn = backend.write(Durability::Durable)?;
            txn.put(&split_row(is_keys, &vault_id))?;
            txn.commit()?;
        }
        Ok(())
    }
}

impl Backend for SplitBackend {
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(SplitRead {
            backends: self,
            records: None,
            keys: None,
        }))
    }

    fn write(&self, durability: Durability) -> Result<Box<dyn WriteTxn + '_>> {
        // The record store's writer first, always: see the module docs.
        let records = self.records.write(durability)?;
        Ok(Box::new(SplitWrite {
            backends: self,
            durability,
            records,
            keys: None,
        }))
    }

    fn check_integrity(&self) -> Result<()> {
        self.keys.check_integrity()?;
        self.records.check_integrity()
    }

    fn read_logs(&self) -> &dyn ReadLogs {
        self.records.read_logs()
    }

    fn keys_apart(&self) -> bool {
        true
    }
}

/// A read of both stores, each started when first needed.
struct SplitRead<'a> {
    backends: &'a SplitBackend,
    records: Option<Box<dyn ReadTxn + 'a>>,
    keys: Option<Box<dyn ReadTxn + 'a>>,
}

impl<'a> SplitRead<'a> {
    fn on(&mut self, side: Side) -> Result<&mut (dyn ReadTxn + 'a)> {
        let (slot, backend) = match side {
            Side::Records => (&mut self.records, &self.backends.records),
            Side::Keys => (&mut self.keys, &self.backends.keys),
        };
        if slot.is_none() {
            *slot = Some(backend.read()?);
        }
        slot.as_deref_mut()
            .ok_or_else(|| Error::Storage("a read did not start".into()))
    }
}

impl ReadTxn for SplitRead<'_> {
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>> {
        self.on(side(table, &key))?.get(table, key)
    }

    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.on(side(table, &select))?.scan(table, select, each)
    }

    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally> {
        self.on(side(table, &select))?.tally(table, select)
    }
}

/// A write transaction over both stores: the record store's begun at
/// once, the keys store's when a key table is first touched.
struct SplitWrite<'a> {
    backends: &'a SplitBackend,
    durability: Durability,
    records: Box<dyn WriteTxn + 'a>,
    keys: Option<Box<dyn WriteTxn + 'a>>,
}

impl<'a> SplitWrite<'a> {
    fn on(&mut self, side: Side) -> Result<&mut (dyn WriteTxn + 'a)> {
        if side == Side::Records {
            return Ok(&mut *self.records);
        }
        if self.keys.is_none() {
            self.keys = Some(self.backends.keys.write(self.durability)?);
        }
        self.keys
            .as_deref_mut()
            .ok_or_else(|| Error::Storage("a write did not start".into()))
    }
}

impl ReadTxn for SplitWrite<'_> {
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>> {
        self.on(side(table, &key))?.get(table, key)
    }

    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        self.on(side(table, &select))?.scan(table, select, each)
    }

    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally> {
        self.on(side(table, &select))?.tally(table, select)
    }
}

impl WriteTxn for SplitWrite<'_> {
    fn prefetch_sealing(&mut self, scopes: &[crate::keys::KeyScope]) -> Result<()> {
        self.on(side(Table::Keys, &Select::All))?
            .prefetch_sealing(scopes)
    }

    fn put(&mut self, row: &Row) -> Result<()> {
        self.on(row_side(row))?.put(row)
    }

    fn delete(&mut self, table: Table, select: Select<'_>) -> Result<u64> {
        self.on(side(table, &select))?.delete(table, select)
    }

    fn bump(&mut self, counter: Counter, by: u64, at_least: u64) -> Result<u64> {
        let side = row_side(&Row::Counter {
            counter,
            value: None,
        });
        self.on(side)?.bump(counter, by, at_least)
    }

    fn set_aside(&mut self, id: u64, expires_cap_ms: i64) -> Result<()> {
        self.records.set_aside(id, expires_cap_ms)
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(keys) = self.keys.as_mut() {
            keys.flush()?;
        }
        self.records.flush()
    }

    fn commit(&mut self) -> Result<()> {
        // Keys first: see the module docs. What the record store still
        // holds back goes before, so that its errors (a taken audit seq,
        // a full disk) stop the write before the keys store commits.
        self.records.flush()?;
        if let Some(keys) = self.keys.as_mut() {
            keys.commit()?;
            failpoint!("split-between-commits");
        }
        self.records.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_material_goes_to_the_keys_store_and_the_rest_stays_with_the_records() {
        for name in KEY_META_ROWS {
            assert_eq!(meta_side(name), Side::Keys, "{name}");
        }
        assert_eq!(meta_side("erased/00"), Side::Keys);
        assert_eq!(meta_side("record_high_water"), Side::Keys);
        for name in [
            "audit_newest",
            "record_high_water_audited",
            "time-index/0000000000000000",
            "time-index-from",
            "read-log/00",
            SPLIT_ROW,
        ] {
            assert_eq!(meta_side(name), Side::Records, "{name}");
        }
        assert_eq!(
            side(Table::Counters, &Select::Counter(Counter::RecordIds)),
            Side::Records
        );
        for counter in [Counter::KeyIds, Counter::FailedOpens, Counter::KeyUses(3)] {
            assert_eq!(side(Table::Counters, &Select::Counter(counter)), Side::Keys);
        }
        assert_eq!(side(Table::Keys, &Select::All), Side::Keys);
        assert_eq!(side(Table::IngestKeys, &Select::All), Side::Keys);
        for table in [
            Table::Records,
            Table::Audit,
            Table::Notes,
            Table::Staged,
            Table::PiiMaps,
        ] {
            assert_eq!(side(table, &Select::All), Side::Records, "{table:?}");
        }
    }
}
