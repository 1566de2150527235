//! Streaming records out. An export hands plaintext to code the vault does
//! not control, so it fails closed like every other read: its `Export`
//! entry is committed before the first record reaches the callback, and an
//! `ExportFinished` entry records how many went out and how it ended, a
//! panicking callback included.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use super::{Query, Vault};
use crate::audit::{Actor, AuditAction, AuditOutcome, Event};
use crate::error::Result;
use crate::record::Record;

/// The outcome recorded when the callback panicked.
const PANICKED: &str = "the export callback panicked";

impl Vault {
    /// Streams the live records matching `query` to `each`, in id order,
    /// one at a time: memory stays flat whatever the vault's size.
    ///
    /// Audited twice: an `Export` entry naming the filter is committed
    /// (durably) before the first record is handed out, and an
    /// `ExportFinished` entry afterwards gives the count, the records
    /// (listed, or summarized past
    /// [`AUDIT_MAX_LISTED_RECORDS`](crate::audit::AUDIT_MAX_LISTED_RECORDS)) and
    /// how it ended. If `each` panics, the panic is recorded in the
    /// `ExportFinished` entry and then resumed.
    ///
    /// # Errors
    /// As [`Vault::query`], or the first error `each` returns. If the
    /// `Export` entry cannot be written (`Busy`, `DiskFull`, `Storage`),
    /// nothing is exported: unlike point reads, an export is refused on a
    /// full disk.
    pub fn export(&self, query: &Query, each: &mut dyn FnMut(Record) -> Result<()>) -> Result<u64> {
        self.export_as(&self.actor, query, each)
    }

    pub(super) fn export_as(
        &self,
        actor: &Actor,
        query: &Query,
        each: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<u64> {
        self.adopt_ingested()?;
        let start = Event::new(AuditAction::Export).query(self.filter_of(query));
        self.log_durably(actor, &start)?;
        let mut finished = Event::new(AuditAction::ExportFinished);
        let streamed = catch_unwind(AssertUnwindSafe(|| {
            self.scan(query, &mut finished, true, each)
        }));
        match streamed {
            Ok(result) => {
                let count = finished.count;
                let logged = self.log_alone(actor, finished, &result);
                result?;
                logged?;
                Ok(count)
            }
            Err(panic) => {
                // Best effort: the `Export` entry is already in the chain.
                let _ = self.log_outcome(actor, finished, AuditOutcome::Failed(PANICKED.into()));
                resume_unwind(panic)
            }
        }
    }

    /// Appends an entry in a transaction of its own at full durability,
    /// with no waiting in memory on a full disk: for an entry that must
    /// exist before the call goes on.
    fn log_durably(&self, actor: &Actor, event: &Event) -> Result<()> {
        let mut txn = self.begin()?;
        self.log_in(&mut txn, actor, event, &AuditOutcome::Ok)?;
        self.commit(txn)
    }
}
