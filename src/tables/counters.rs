//! Record ids, key ids and the failed-open count.

use super::{Txn, wrong_row};
use crate::error::{Error, Result};
use crate::store::{Counter, ReadTxn, Row, Select, Table, WriteTxn};

/// The counters a new vault starts with: ids from 1, no failed open.
pub(super) fn initialize(w: &mut dyn WriteTxn) -> Result<()> {
    for (counter, value) in [
        (Counter::RecordIds, 1),
        (Counter::KeyIds, 1),
        (Counter::FailedOpens, 0),
    ] {
        w.put(&Row::Counter {
            counter,
            value: Some(value),
        })?;
    }
    Ok(())
}

/// A counter's stored value: `Ok(None)` if it is missing or not an
/// integer (only a writer of the file can make it so).
fn value(r: &mut dyn ReadTxn, counter: Counter) -> Result<Option<i64>> {
    match r.get(Table::Counters, Select::Counter(counter))? {
        None => Ok(None),
        Some(Row::Counter { value, .. }) => Ok(value),
        Some(other) => Err(wrong_row(&other)),
    }
}

pub(super) fn count_failed_open(w: &mut dyn WriteTxn) -> Result<()> {
    w.bump(Counter::FailedOpens, 1).map(|_| ())
}

/// The id `n` ids past `first`, if there is one.
fn past(first: u64, n: u64) -> Result<i64> {
    first
        .checked_add(n)
        .and_then(|next| i64::try_from(next).ok())
        .ok_or_else(|| Error::Corrupt {
            what: "the record id counter is at its end".into(),
        })
}

impl Txn<'_> {
    /// Reserves `n` consecutive record ids, none below `at_least`, and
    /// returns the first. A counter turned into text (or removed) counts
    /// as 0: the floor still holds.
    pub(crate) fn allocate_record_ids(&mut self, n: u64, at_least: u64) -> Result<u64> {
        let stored = value(self.r(), Counter::RecordIds)?
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0);
        let first = stored.max(at_least);
        self.raw.put(&Row::Counter {
            counter: Counter::RecordIds,
            value: Some(past(first, n)?),
        })?;
        Ok(first)
    }

    /// The highest record id the storage shows in use or handed out: the
    /// largest of the stored records' ids, the staged ones' and the record
    /// counter's last. Unauthenticated: a floor for when the authenticated
    /// high-water mark is missing. Whatever the values' types: this runs
    /// when the file was tampered with, and must not fail on a counter
    /// made text.
    pub(crate) fn record_id_floor(&mut self) -> Result<u64> {
        let record = match self.raw.get(Table::Records, Select::Newest) {
            Ok(Some(Row::Record(r))) => r.id,
            _ => 0,
        };
        let staged = match self.raw.get(Table::Staged, Select::Newest) {
            Ok(Some(Row::Staged(s))) => s.id,
            _ => 0,
        };
        let counter = value(self.r(), Counter::RecordIds)?
            .and_then(|v| u64::try_from(v).ok())
            .map_or(0, |next| next.max(1) - 1);
        Ok(record.max(staged).max(counter))
    }

    /// Reads and resets the count of failed opens.
    pub(crate) fn take_failed_opens(&mut self) -> Result<u64> {
        let n = value(self.r(), Counter::FailedOpens)?.ok_or_else(|| Error::Corrupt {
            what: "the failed-open count is not a number".into(),
        })?;
        if n != 0 {
            self.raw.put(&Row::Counter {
                counter: Counter::FailedOpens,
                value: Some(0),
            })?;
        }
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
