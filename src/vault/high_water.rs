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
use crate::error::Result;
use crate::secret::SecretKey;
use crate::store::WriteTxn;

/// The `meta` row holding the mark.
pub(crate) const META_HIGH_WATER: &str = "record_high_water";

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
    pub(super) fn high_water(&self, txn: &mut dyn WriteTxn) -> Result<u64> {
        self.read_high_water(txn).map(|(mark, _)| mark)
    }

    /// As [`Vault::high_water`], and whether the row held it (else the
    /// caller writes it, so that ids staged from now on pass again).
    pub(super) fn read_high_water(&self, txn: &mut dyn WriteTxn) -> Result<(u64, bool)> {
        let stored = txn
            .meta_value(META_HIGH_WATER)?
            .and_then(|row| self.high_water_key.read(&row));
        match stored {
            Some(mark) => Ok((mark, true)),
            None => Ok((txn.record_id_floor()?, false)),
        }
    }

    /// Writes the mark, in the transaction that stores records up to it.
    pub(super) fn set_high_water(&self, txn: &mut dyn WriteTxn, mark: u64) -> Result<()> {
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
