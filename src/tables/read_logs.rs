//! Which read logs the chain knows of, and how far each is folded in: one
//! [`Table::Meta`] row per log, `read-log/<name in hex>` → entries folded
//! (u64 BE; [`FOLDED_ALL`] once the log is folded whole and may go).

use super::Txn;
use crate::error::{Error, Result};
use crate::store::read_logs::{LogName, name_from_hex, name_to_hex};
use crate::store::{Row, Select, Table};

const PREFIX: &str = "read-log/";

/// The fold point of a log folded whole: its file may be removed, and a
/// file left behind by a crash after that commit is not folded again.
pub(crate) const FOLDED_ALL: u64 = u64::MAX;

fn row_name(name: &LogName) -> String {
    format!("{PREFIX}{}", name_to_hex(name))
}

impl Txn<'_> {
    /// Every read log the chain knows of, with how many of its entries
    /// are folded in.
    pub(crate) fn read_logs(&mut self) -> Result<Vec<(LogName, u64)>> {
        self.meta_with_prefix(PREFIX)?
            .into_iter()
            .map(|(name, value)| {
                let folded = <[u8; 8]>::try_from(value.as_slice())
                    .ok()
                    .map(u64::from_be_bytes);
                name.strip_prefix(PREFIX)
                    .and_then(name_from_hex)
                    .zip(folded)
                    .ok_or_else(|| Error::Corrupt {
                        what: "a read log row that does not decode".into(),
                    })
            })
            .collect()
    }

    /// Records that `folded` entries of log `name` are in the chain
    /// (0 for a new log).
    pub(crate) fn set_read_log(&mut self, name: &LogName, folded: u64) -> Result<()> {
        self.raw.put(&Row::Meta {
            name: row_name(name),
            value: folded.to_be_bytes().to_vec(),
        })
    }

    /// Forgets log `name` (folded whole, its file gone).
    pub(crate) fn forget_read_log(&mut self, name: &LogName) -> Result<()> {
        self.raw
            .delete(Table::Meta, Select::Name(&row_name(name)))
            .map(|_| ())
    }
}
