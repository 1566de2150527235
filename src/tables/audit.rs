//! The audit chain as stored: its tail, appends, walks.

use std::ops::ControlFlow;

use super::{Txn, wrong_row};
use crate::error::{Error, Result};
use crate::store::{AuditRow, ReadTxn, Row, Select, Table};

/// Calls `each` for the selected entries, in order.
pub(super) fn rows(
    r: &mut dyn ReadTxn,
    select: Select<'_>,
    each: &mut dyn FnMut(AuditRow) -> Result<()>,
) -> Result<()> {
    r.scan(Table::Audit, select, &mut |row| match row? {
        Row::Audit(a) => each(a).map(|()| ControlFlow::Continue(())),
        other => Err(wrong_row(&other)),
    })
}

impl Txn<'_> {
    /// The newest audit entry's seq and MAC; (0, zeros) for an empty log.
    /// A tail whose stored MAC is not 32 bytes cannot be chained onto.
    pub(crate) fn audit_tail(&mut self) -> Result<(u64, [u8; 32])> {
        match self.raw.get(Table::Audit, Select::Tail)? {
            None => Ok((0, [0; 32])),
            Some(Row::Audit(a)) if !a.mac_intact => Err(Error::Corrupt {
                what: "audit mac of the wrong length".into(),
            }),
            // Entries start at 1; a tail at 0 is one whose seq was negative.
            Some(Row::Audit(a)) if a.seq == 0 => Err(Error::Corrupt {
                what: "negative audit seq".into(),
            }),
            Some(Row::Audit(a)) => Ok((a.seq, a.mac)),
            Some(other) => Err(wrong_row(&other)),
        }
    }

    /// Appends an audit entry.
    pub(crate) fn append_audit(&mut self, row: AuditRow) -> Result<()> {
        self.raw.put(&Row::Audit(row))?;
        failpoint!("audit-appended");
        Ok(())
    }

    /// Calls `each` for the audit entries with `seq > after`, in order,
    /// as this transaction sees them.
    pub(crate) fn audit_rows_after(
        &mut self,
        after: u64,
        each: &mut dyn FnMut(AuditRow) -> Result<()>,
    ) -> Result<()> {
        rows(self.r(), Select::After(after), each)
    }
}
