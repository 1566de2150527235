//! The newest time the audit log vouches for, so that a purge can refuse
//! a clock that runs behind it (FORMAT.md §11, "Newest time").
//!
//! A keyed purge takes the latest `at` of the entries that authenticate,
//! leaving out `MaintenancePurge` entries (their times come from clear
//! notes anyone who can write the file could have set). So that it does
//! not read the whole log each time, it keeps what it found in the `meta`
//! row `audit_newest`, MACed with the chain key, and next time reads only
//! the entries after it.

use hmac::Mac;

use super::{AuditAction, AuditKeys, open_entry};
use crate::codec::from_millis;
use crate::error::{Error, Result};
use crate::tables::Txn;

/// The `meta` row that keeps the newest time found so far (FORMAT.md §8).
pub(crate) const NEWEST_ROW: &str = "audit_newest";
const NEWEST_LABEL: &[u8] = b"llmvault/v1/audit-newest";
const ROW_LEN: usize = 8 + 8 + 32;

/// The latest authenticated entry time among entries `1..=seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Newest {
    seq: u64,
    at_ms: Option<i64>,
}

impl Newest {
    /// Reads the kept row and the entries after it, inside `txn`.
    pub(crate) fn keyed(keys: &AuditKeys, txn: &mut Txn<'_>) -> Result<Self> {
        // A row that does not authenticate is ignored: the walk then
        // starts from the first entry, and only costs time.
        let mut newest = txn
            .meta_value(NEWEST_ROW)?
            .and_then(|row| Self::open(keys, &row))
            .unwrap_or(Self {
                seq: 0,
                at_ms: None,
            });
        // The kept row vouches for entries up to its seq, so it advances
        // only over an unbroken run of entries that authenticate: a junk
        // or damaged row (and everything after it) is read again next time.
        let mut unbroken = true;
        txn.audit_rows_after(newest.seq, &mut |row| {
            let entry = open_entry(keys, &row);
            unbroken &= entry.is_some() && row.seq == newest.seq.saturating_add(1);
            if unbroken {
                newest.seq = row.seq;
            }
            if entry.is_some_and(|e| e.action != AuditAction::MaintenancePurge) {
                newest.at_ms = newest.at_ms.max(Some(row.at_ms));
            }
            Ok(())
        })?;
        Ok(newest)
    }

    /// What a key-less job can see: the times of maintenance notes not yet
    /// folded in, of the newest entry and of the kept row, none of them
    /// checked (it holds no key).
    pub(crate) fn clear(txn: &mut Txn<'_>) -> Result<Option<i64>> {
        let mut at_ms = txn.newest_maintenance_note()?;
        let (tail, _) = txn.audit_tail()?;
        txn.audit_rows_after(tail.saturating_sub(1), &mut |row| {
            at_ms = at_ms.max(Some(row.at_ms));
            Ok(())
        })?;
        let kept = txn.meta_value(NEWEST_ROW)?;
        let kept_at = kept
            .filter(|r| r.len() == ROW_LEN)
            .and_then(|r| <[u8; 8]>::try_from(&r[8..16]).ok())
            .map(i64::from_be_bytes);
        Ok(at_ms.max(kept_at))
    }

    /// Refuses `now_ms` if it is earlier than the newest time.
    pub(crate) fn check(now_ms: i64, newest_ms: Option<i64>) -> Result<()> {
        match newest_ms {
            Some(newest) if now_ms < newest => Err(Error::ClockBehind {
                now: from_millis(now_ms),
                newest: from_millis(newest),
            }),
            _ => Ok(()),
        }
    }

    /// The time to check a clock against.
    pub(crate) fn at_ms(&self) -> Option<i64> {
        self.at_ms
    }

    /// The row to keep, so the next purge reads only what comes after.
    pub(crate) fn row(&self, keys: &AuditKeys) -> Option<Vec<u8>> {
        let at_ms = self.at_ms?;
        let mut row = Vec::with_capacity(ROW_LEN);
        row.extend_from_slice(&self.seq.to_be_bytes());
        row.extend_from_slice(&at_ms.to_be_bytes());
        row.extend_from_slice(&mac(keys, self.seq, at_ms).finalize().into_bytes());
        Some(row)
    }

    fn open(keys: &AuditKeys, row: &[u8]) -> Option<Self> {
        if row.len() != ROW_LEN {
            return None;
        }
        let seq = u64::from_be_bytes(row[..8].try_into().ok()?);
        let at_ms = i64::from_be_bytes(row[8..16].try_into().ok()?);
        mac(keys, seq, at_ms).verify_slice(&row[16..]).ok()?;
        Some(Self {
            seq,
            at_ms: Some(at_ms),
        })
    }
}

fn mac(keys: &AuditKeys, seq: u64, at_ms: i64) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = keys.mac();
    mac.update(NEWEST_LABEL);
    mac.update(&seq.to_be_bytes());
    mac.update(&at_ms.to_be_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;

    #[test]
    fn the_kept_row_opens_only_unaltered_and_under_its_key() {
        let keys = AuditKeys::derive(&SecretKey::zeroed());
        let newest = Newest {
            seq: 41,
            at_ms: Some(1_767_229_200_000),
        };
        let row = newest.row(&keys).unwrap();
        assert_eq!(row.len(), ROW_LEN);
        assert_eq!(Newest::open(&keys, &row), Some(newest));
        for i in [0, 8, 15, 16, 47] {
            let mut bad = row.clone();
            bad[i] ^= 1;
            assert_eq!(Newest::open(&keys, &bad), None, "byte {i}");
        }
        let other = AuditKeys::derive(&SecretKey::random());
        assert_eq!(Newest::open(&other, &row), None);
        assert_eq!(Newest::open(&keys, &row[..47]), None);
    }

    #[test]
    fn a_clock_behind_the_newest_time_is_refused() {
        assert!(Newest::check(10, None).is_ok());
        assert!(Newest::check(10, Some(10)).is_ok());
        assert!(matches!(
            Newest::check(9, Some(10)),
            Err(Error::ClockBehind { .. })
        ));
    }
}
