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

use super::Vault;
use crate::aead::{AeadKey, NONCE_LEN, TAG_LEN};
use crate::error::Result;
use crate::secret::SecretKey;
use crate::tables::Txn;

/// Ids per block.
pub(super) const BLOCK: u64 = 1024;
const PREFIX: &str = "time-index/";
/// The first id the index covers, u64 BE.
const FROM_ROW: &str = "time-index-from";
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
        if txn.meta_value(FROM_ROW)?.is_none() {
            // Ids below the first one indexed may hold records stored
            // without the index (a vault older than it); those are always
            // read, and so is a block that starts below it.
            txn.set_meta_value(FROM_ROW, Some(&first.to_be_bytes()))?;
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

    /// The id ranges a query for records created in `[since, until)` must
    /// read, ascending: every id but the blocks whose row shows none of
    /// their records was created then.
    pub(super) fn time_ranges(&self, since_ms: i64, until_ms: i64) -> Result<Vec<(u64, u64)>> {
        let Some(from) = self.store.meta_value(FROM_ROW)? else {
            return Ok(vec![(0, u64::MAX)]);
        };
        let from = <[u8; 8]>::try_from(from.as_slice()).map_or(u64::MAX, u64::from_be_bytes);
        let mut skipped = Vec::new();
        for (name, row) in self.store.meta_with_prefix(PREFIX)? {
            let block = name
                .strip_prefix(PREFIX)
                .and_then(|hex| u64::from_str_radix(hex, 16).ok());
            // Ids start at 1: block 0 holds 1 to 1,023.
            let covered = |b: &u64| b.checked_mul(BLOCK).is_some_and(|id| id.max(1) >= from);
            let Some(block) = block.filter(covered) else {
                continue;
            };
            if let Some((min, max)) = self.time_index.open(block, &row)
                && (max < since_ms || min >= until_ms)
            {
                skipped.push(block);
            }
        }
        skipped.sort_unstable();
        let mut ranges = Vec::new();
        let mut next = 0;
        for block in skipped {
            let start = block * BLOCK;
            if start > next {
                ranges.push((next, start - 1));
            }
            next = start + BLOCK;
        }
        ranges.push((next, u64::MAX));
        Ok(ranges)
    }
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
