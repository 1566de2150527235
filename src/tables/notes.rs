//! Maintenance notes: what a key-less purge did, in clear until a keyed
//! open folds them into the audit chain.

use std::ops::ControlFlow;

use super::{Txn, wrong_row};
use crate::error::Result;
use crate::store::{MaintenanceNote, Row, Select, Table};

impl Txn<'_> {
    /// Records what a key-less purge did.
    pub(crate) fn note_maintenance(&mut self, note: &MaintenanceNote) -> Result<()> {
        self.raw.put(&Row::Note(*note))
    }

    /// Reads and clears the maintenance notes, oldest first.
    pub(crate) fn take_maintenance_notes(&mut self) -> Result<Vec<MaintenanceNote>> {
        let mut notes = self.notes()?;
        // Only when there are any: every keyed open takes them, and an
        // empty table needs no write.
        if !notes.is_empty() {
            self.raw.delete(Table::Notes, Select::All)?;
        }
        notes.sort_by_key(|n| n.at_ms);
        Ok(notes)
    }

    /// The latest time of a maintenance note not yet folded in. A note
    /// that does not decode is passed over: this is the key-less job's
    /// clock check, which no writer of the file is held to anyway.
    pub(crate) fn newest_maintenance_note(&mut self) -> Result<Option<i64>> {
        let mut newest = None;
        self.raw.scan(Table::Notes, Select::All, &mut |row| {
            if let Ok(Row::Note(n)) = row {
                newest = newest.max(Some(n.at_ms));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(newest)
    }

    fn notes(&mut self) -> Result<Vec<MaintenanceNote>> {
        let mut notes = Vec::new();
        self.raw
            .scan(Table::Notes, Select::All, &mut |row| match row? {
                Row::Note(n) => {
                    notes.push(n);
                    Ok(ControlFlow::Continue(()))
                }
                other => Err(wrong_row(&other)),
            })?;
        Ok(notes)
    }
}
