//! When records were created, by block of ids, sealed: so that a query
//! with `since` / `until` opens the blocks that can hold its records, not
//! every record (FORMAT.md §8.1, "Time index").
//!
//! One `meta` row per block of [`BLOCK`] consecutive ids, written by the
//! transaction that stores a record in it: the earliest and latest
//! `created_at` of the records stored there, sealed, so the times stay as
//! hidden as inside the records. A block row only ever widens (a purge or
//! erasure leaves it as it was): it may name a block as possible that no
//! longer holds a match, never the other way round. A row that does not
//! open, and any block without a row, counts as possible. Ids below the
//! `meta` row `time-index-from` (records stored before the vault had an
//! index) are always read.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::Vault;
use crate::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use crate::codec::to_millis;
use crate::error::Result;
use crate::secret::SecretKey;
use crate::store::RecordRow;
use crate::tables::Txn;

/// Ids per block.
pub(super) const BLOCK: u64 = 1024;
const PREFIX: &str = "time-index/";
/// The first id the index covers, sealed as a block row of block
/// [`FROM_BLOCK`] (no block of ids has that number: ids are below 2^63).
const FROM_ROW: &str = "time-index-from";
const FROM_BLOCK: u64 = u64::MAX;
const KEY_LABEL: &[u8] = b"llmvault/v1/time-index-key";
const AAD_LABEL: &[u8] = b"llmvault/v1/time-index";
const ROW_LEN: usize = NONCE_LEN + 16 + TAG_LEN;

/// Seals and opens block rows.
pub(super) struct TimeIndexKey(AeadKey);

impl TimeIndexKey {
    pub(super) fn derive(tag_key: &SecretKey) -> Self {
        Self(AeadKey::new(&crate::derive::hkdf_key(
            None,
            tag_key.expose(),
            KEY_LABEL,
        )))
    }

    fn seal(&self, block: u64, (min, max): (i64, i64)) -> Vec<u8> {
        let nonce = crate::random::nonce();
        let mut out = Vec::with_capacity(ROW_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&min.to_be_bytes());
        out.extend_from_slice(&max.to_be_bytes());
        // Sixteen bytes never reach AES-GCM's limit; a failed seal leaves
        // zeros, which then do not open: the block counts as possible.
        let tag = self
            .0
            .seal(&nonce, &aad(block), &mut out[NONCE_LEN..])
            .unwrap_or_default();
        out.extend_from_slice(&tag);
        out
    }

    fn open(&self, block: u64, row: &[u8]) -> Option<(i64, i64)> {
        if row.len() != ROW_LEN {
            return None;
        }
        let nonce = row[..NONCE_LEN].try_into().ok()?;
        let tag = row[NONCE_LEN + 16..].try_into().ok()?;
        let mut times = row[NONCE_LEN..NONCE_LEN + 16].to_vec();
        self.0.open(nonce, &aad(block), &mut times, tag).ok()?;
        let min = i64::from_be_bytes(times[..8].try_into().ok()?);
        let max = i64::from_be_bytes(times[8..].try_into().ok()?);
        Some((min, max))
    }
}

fn aad(block: u64) -> Vec<u8> {
    let mut aad = AAD_LABEL.to_vec();
    aad.extend_from_slice(&block.to_be_bytes());
    aad
}

fn row_name(block: u64) -> String {
    format!("{PREFIX}{block:016x}")
}

/// Earliest and latest creation time per block, of what one transaction
/// stores.
#[derive(Default)]
pub(super) struct TimeMarks {
    blocks: BTreeMap<u64, (i64, i64)>,
    first_id: Option<u64>,
}

impl TimeMarks {
    pub(super) fn add(&mut self, id: u64, created_at_ms: i64) {
        self.first_id = Some(self.first_id.map_or(id, |f| f.min(id)));
        let span = self
            .blocks
            .entry(id / BLOCK)
            .or_insert((created_at_ms, created_at_ms));
        span.0 = span.0.min(created_at_ms);
        span.1 = span.1.max(created_at_ms);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

impl Vault {
    /// Writes, inside `txn`, the block rows the records it stored widen.
    pub(super) fn write_time_marks(&self, txn: &mut Txn<'_>, marks: TimeMarks) -> Result<()> {
        let Some(first) = marks.first_id else {
            return Ok(());
        };
        // Nothing deletes the row once stored, so a handle reads it until
        // it has seen it (a query on PostgreSQL: a round trip a write).
        // Were it deleted anyway, no id would count as indexed and queries
        // would read every record: slower, never wrong.
        if !self.time_index_from_seen.load(Ordering::Relaxed) {
            if txn.meta_value(FROM_ROW)?.is_some() {
                self.time_index_from_seen.store(true, Ordering::Relaxed);
            } else {
                // Ids below the first one indexed may hold records stored
                // without the index (a vault older than it); those are
                // always read, and so is a block that starts below it.
                // Sealed like a block row: lowered, it would let a query
                // skip such records. (Not marked seen: this transaction
                // may yet roll back.)
                let first = i64::try_from(first).unwrap_or(i64::MAX);
                let row = self.time_index.seal(FROM_BLOCK, (first, first));
                txn.set_meta_value(FROM_ROW, Some(&row))?;
            }
        }
        for (block, (min, max)) in marks.blocks {
            let name = row_name(block);
            let span = match txn.meta_value(&name)? {
                None => (min, max),
                Some(row) => match self.time_index.open(block, &row) {
                    Some((old_min, old_max)) => (old_min.min(min), old_max.max(max)),
                    // A row that does not open is made to cover all time.
                    None => (i64::MIN, i64::MAX),
                },
            };
            txn.set_meta_value(&name, Some(&self.time_index.seal(block, span)))?;
        }
        Ok(())
    }

    /// Calls `visit` for every record a query for records created in
    /// `[since, until)` (each bound optional) must look at: the one id
    /// range from the first block the index cannot rule out to the last,
    /// read in one statement, so in one snapshot. When the last block that
    /// may match is the newest, the range runs on to the end: a write
    /// committing meanwhile adds ids there, and is then seen whole or not
    /// at all. (Records a take-in adds under older ids may fall below the
    /// range's start; they are records of that write, not of the query's
    /// moment: see DESIGN.md.)
    pub(super) fn each_record_by_time(
        &self,
        since: Option<SystemTime>,
        until: Option<SystemTime>,
        visit: &mut dyn FnMut(RecordRow) -> Result<()>,
    ) -> Result<()> {
        let since_ms = since.map(to_millis);
        let until_ms = until.map(ceil_millis);
        // The newest id first: a write committing between these reads
        // then widens rows this query reads (more to read), never adds
        // blocks past a stale row of a block it also filled.
        let newest = self.store.newest_record_id()?;
        let rows = self.store.meta_with_prefix(PREFIX)?;
        let from = self.store.meta_value(FROM_ROW)?;
        match self.range_to_read(&rows, from.as_deref(), newest, since_ms, until_ms) {
            Some((first, last)) => self.store.each_record_in(first, last, visit),
            None => Ok(()),
        }
    }

    /// The ids to read: from the first block that may hold a match to the
    /// last one, among the blocks up to the newest record's; `None` if
    /// every block is ruled out.
    fn range_to_read(
        &self,
        rows: &[(String, Vec<u8>)],
        from: Option<&[u8]>,
        newest: u64,
        since_ms: Option<i64>,
        until_ms: Option<i64>,
    ) -> Option<(u64, u64)> {
        // Without the row, or with one that does not open, no id is
        // known to be indexed.
        let from = from
            .and_then(|f| self.time_index.open(FROM_BLOCK, f))
            .and_then(|(first, _)| u64::try_from(first).ok())
            .unwrap_or(u64::MAX);
        let mut spans = BTreeMap::new();
        for (name, row) in rows {
            let block = name
                .strip_prefix(PREFIX)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            if let Some(block) = block {
                spans.insert(block, self.time_index.open(block, row));
            }
        }
        let misses = |(min, max): (i64, i64)| {
            since_ms.is_some_and(|s| max < s) || until_ms.is_some_and(|u| min >= u)
        };
        // Ids start at 1: block 0 holds 1 to 1,023.
        let covered = |b: u64| (b * BLOCK).max(1) >= from;
        let possible =
            |b: u64| !(covered(b) && spans.get(&b).copied().flatten().is_some_and(misses));
        let last_block = newest / BLOCK;
        let first = (0..=last_block).find(|&b| possible(b))?;
        let last = (first..=last_block).rev().find(|&b| possible(b))?;
        let end = if last == last_block {
            u64::MAX
        } else {
            last * BLOCK + (BLOCK - 1)
        };
        Some((first * BLOCK, end))
    }
}

/// `t` in Unix ms, rounded up: a record created at `t` rounded down still
/// falls before an `until` of `t` when `t` has a fraction of a ms.
fn ceil_millis(t: SystemTime) -> i64 {
    let floor = to_millis(t);
    let fraction = t
        .duration_since(std::time::UNIX_EPOCH)
        .is_ok_and(|d| d.subsec_nanos() % 1_000_000 != 0);
    floor.saturating_add(i64::from(fraction))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_block_row_opens_only_as_its_own_block() {
        let key = TimeIndexKey::derive(&SecretKey::random());
        let row = key.seal(7, (10, 20));
        assert_eq!(key.open(7, &row), Some((10, 20)));
        assert_eq!(key.open(8, &row), None, "moved to another block");
        let mut bad = row.clone();
        bad[NONCE_LEN] ^= 1;
        assert_eq!(key.open(7, &bad), None);
        let other = TimeIndexKey::derive(&SecretKey::random());
        assert_eq!(other.open(7, &row), None);
    }

    #[test]
    fn marks_keep_each_blocks_earliest_and_latest() {
        let mut marks = TimeMarks::default();
        marks.add(5, 300);
        marks.add(6, 100);
        marks.add(BLOCK + 1, 50);
        assert_eq!(marks.blocks[&0], (100, 300));
        assert_eq!(marks.blocks[&1], (50, 50));
        assert_eq!(marks.first_id, Some(5));
    }
}
