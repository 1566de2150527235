//! The record high-water mark (FORMAT.md §12): the highest record id this
//! vault has stored, by `put` or by taking a staged record in, MACed under
//! a key derived from the tag key. Take-in refuses a staged id at or below
//! it, so a staged record can never take the id of a record stored (or
//! stored and deleted) before, whatever the id counter says: the counter
//! is in clear, the mark is not forgeable without the key.
//!
//! ```text
//! mark key = HKDF( salt = none, IKM = tag key, info = "llmvault/v2/high-water-key" )
//! row      = H (u64 BE) ‖ HMAC-SHA256( mark key, "llmvault/v2/high-water" ‖ H (u64 BE) )
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Vault;
use crate::audit::{AuditAction, AuditOutcome};
use crate::error::Result;
use crate::secret::SecretKey;
use crate::tables::Txn;

/// The `meta` row holding the mark.
pub(crate) const META_HIGH_WATER: &str = "record_high_water";
/// The `meta` row caching how far take-in has read the audit log for
/// stored ids: seq (u64 BE) ‖ highest id (u64 BE) ‖ MAC.
pub(crate) const META_AUDITED_HIGH_WATER: &str = "record_high_water_audited";
const AUDITED_LABEL: &[u8] = b"llmvault/v2/audited-high-water";
const AUDITED_ROW_LEN: usize = 8 + 8 + 32;

const KEY_LABEL: &[u8] = b"llmvault/v2/high-water-key";
const MAC_LABEL: &[u8] = b"llmvault/v2/high-water";
const ROW_LEN: usize = 8 + 32;

/// The key that MACs the mark. From the tag key, not the KEK, so that
/// `change_key` leaves the row valid (as it does the audit chain).
pub(super) struct HighWaterKey {
    mac: Hmac<Sha256>,
}

impl HighWaterKey {
    pub(super) fn derive(tag_key: &SecretKey) -> Self {
        let key = crate::derive::hkdf_key(None, tag_key.expose(), KEY_LABEL);
        Self {
            mac: crate::derive::hmac_with(&key),
        }
    }

    fn state(&self, mark: u64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(MAC_LABEL);
        mac.update(&mark.to_be_bytes());
        mac
    }

    fn row(&self, mark: u64) -> [u8; ROW_LEN] {
        let mut row = [0u8; ROW_LEN];
        row[..8].copy_from_slice(&mark.to_be_bytes());
        row[8..].copy_from_slice(&self.state(mark).finalize().into_bytes());
        row
    }

    fn audited_state(&self, seq: u64, highest: u64) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(AUDITED_LABEL);
        mac.update(&seq.to_be_bytes());
        mac.update(&highest.to_be_bytes());
        mac
    }

    fn audited_row(&self, seq: u64, highest: u64) -> [u8; AUDITED_ROW_LEN] {
        let mut row = [0u8; AUDITED_ROW_LEN];
        row[..8].copy_from_slice(&seq.to_be_bytes());
        row[8..16].copy_from_slice(&highest.to_be_bytes());
        row[16..].copy_from_slice(&self.audited_state(seq, highest).finalize().into_bytes());
        row
    }

    /// (seq, highest id) from a cache row whose MAC verifies.
    fn read_audited(&self, row: &[u8]) -> Option<(u64, u64)> {
        if row.len() != AUDITED_ROW_LEN {
            return None;
        }
        let word = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&row[at..at + 8]);
            u64::from_be_bytes(b)
        };
        let (seq, highest) = (word(0), word(8));
        self.audited_state(seq, highest)
            .verify_slice(&row[16..])
            .ok()?;
        Some((seq, highest))
    }

    /// The mark a row holds if its MAC verifies (constant time).
    fn read(&self, row: &[u8]) -> Option<u64> {
        let mark = clear_value(row)?;
        self.state(mark).verify_slice(&row[8..]).ok()?;
        Some(mark)
    }
}

/// The mark as a row shows it, unauthenticated. Ingestors (which have no
/// key to check it) allocate above it, so a rewound id counter does not
/// make an honest ingestor stage records that take-in then refuses.
pub(crate) fn clear_value(row: &[u8]) -> Option<u64> {
    if row.len() != ROW_LEN {
        return None;
    }
    let mut mark = [0u8; 8];
    mark.copy_from_slice(&row[..8]);
    Some(u64::from_be_bytes(mark))
}

impl Vault {
    /// The high-water mark inside `txn`. A missing or altered row (a vault
    /// written before the mark existed, or tampering) gives the highest id the file
    /// shows in use instead, staged ids included: that refuses every
    /// staged record waiting, errs on the safe side, and is never below a
    /// genuine mark, since every id the vault stored came from the counter
    /// it takes into account.
    pub(super) fn high_water(&self, txn: &mut Txn<'_>) -> Result<u64> {
        self.read_high_water(txn).map(|(mark, _)| mark)
    }

    /// As [`Vault::high_water`], and whether the row held it (else the
    /// caller writes it, so that ids staged from now on pass again).
    pub(super) fn read_high_water(&self, txn: &mut Txn<'_>) -> Result<(u64, bool)> {
        let stored = txn
            .meta_value(META_HIGH_WATER)?
            .and_then(|row| self.high_water_key.read(&row));
        match stored {
            Some(mark) => Ok((mark, true)),
            None => Ok((txn.record_id_floor()?, false)),
        }
    }

    /// The highest record id an authenticated, successful `Put`,
    /// `PutBatch` or `Ingest` entry names: what the audit chain says was
    /// stored, which an older copy of the loose high-water row cannot
    /// lower. Take-in refuses staged ids up to it as well, so putting back
    /// an old staged row together with an old high-water row does not
    /// bring an erased record back while its `Ingest` entry is in the log.
    ///
    /// Reads only the entries after a MACed cache row, and moves that row
    /// on over the run of entries that authenticate: each entry is opened
    /// about once over the vault's life. An older copy of the cache row
    /// only makes it read more.
    pub(super) fn audited_high_water(&self, txn: &mut Txn<'_>) -> Result<u64> {
        let (mut seq, mut highest) = txn
            .meta_value(META_AUDITED_HIGH_WATER)?
            .and_then(|row| self.high_water_key.read_audited(&row))
            .unwrap_or((0, 0));
        let start = seq;
        let mut unbroken = true;
        txn.audit_rows_after(seq, &mut |row| {
            let entry = crate::audit::open_entry(&self.audit_keys, &row);
            unbroken &= entry.is_some() && row.seq == seq.saturating_add(1);
            if unbroken {
                seq = row.seq;
            }
            let stored = entry.filter(|e| {
                e.outcome == AuditOutcome::Ok
                    && matches!(
                        e.action,
                        AuditAction::Put | AuditAction::PutBatch | AuditAction::Ingest
                    )
            });
            if let Some(e) = stored {
                let listed = e.records.iter().map(|r| r.as_u64()).max();
                let summarized = e.record_summary.as_ref().map(|s| s.highest.as_u64());
                highest = highest
                    .max(listed.unwrap_or(0))
                    .max(summarized.unwrap_or(0));
            }
            Ok(())
        })?;
        if seq != start {
            txn.set_meta_value(
                META_AUDITED_HIGH_WATER,
                Some(&self.high_water_key.audited_row(seq, highest)),
            )?;
        }
        Ok(highest)
    }

    /// Writes the mark, in the transaction that stores records up to it.
    pub(super) fn set_high_water(&self, txn: &mut Txn<'_>, mark: u64) -> Result<()> {
        txn.set_meta_value(META_HIGH_WATER, Some(&self.high_water_key.row(mark)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_verifies_and_no_edit_passes() {
        let key = HighWaterKey::derive(&SecretKey::from_bytes([5; 32]));
        let row = key.row(42);
        assert_eq!(key.read(&row), Some(42));
        assert_eq!(clear_value(&row), Some(42));
        for i in 0..row.len() {
            let mut bad = row;
            bad[i] ^= 1;
            assert_eq!(key.read(&bad), None, "byte {i}");
        }
        assert_eq!(key.read(&row[..39]), None);
        let other = HighWaterKey::derive(&SecretKey::from_bytes([6; 32]));
        assert_eq!(other.read(&row), None);
    }
}
