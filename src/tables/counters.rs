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

/// The highest id in `table`, 0 if it is empty.
pub(super) fn newest_id(r: &mut dyn ReadTxn, table: Table) -> Result<u64> {
    let mut newest = 0;
    r.scan(table, Select::Newest, &mut |row| {
        newest = match row {
            Ok(Row::Record(r)) => r.id,
            Ok(Row::Staged(s)) => s.id,
            Ok(_) => 0,
            Err(damaged) => damaged.id.unwrap_or(0),
        };
        Ok(std::ops::ControlFlow::Break(()))
    })?;
    Ok(newest)
}

pub(super) fn count_failed_open(w: &mut dyn WriteTxn) -> Result<()> {
    w.bump(Counter::FailedOpens, 1, 0).map(|_| ())
}

impl Txn<'_> {
    /// Reserves `n` consecutive record ids, none below `at_least`, and
    /// returns the first. A counter turned into text counts as 0: the
    /// floor still holds.
    pub(crate) fn allocate_record_ids(&mut self, n: u64, at_least: u64) -> Result<u64> {
        self.raw.bump(Counter::RecordIds, n, at_least)
    }

    /// The highest record id the storage shows in use or handed out: the
    /// largest of the stored records' ids, the staged ones' and the record
    /// counter's last. Unauthenticated: a floor for when the authenticated
    /// high-water mark is missing. Whatever the values' types (a damaged
    /// row still has its id): this runs when the file was tampered with.
    pub(crate) fn record_id_floor(&mut self) -> Result<u64> {
        let record = newest_id(&mut *self.raw, Table::Records)?;
        let staged = newest_id(&mut *self.raw, Table::Staged)?;
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
