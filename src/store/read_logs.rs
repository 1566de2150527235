//! Where a backend keeps read logs: small append-only files of read audit
//! entries, one per vault handle, beside the tables (FORMAT.md §11, "Read logs").
//!
//! A read's entry must be durable to the operating system before the read
//! returns. Appending it to a file is one `write`; committing it to the
//! tables is a transaction under the one writer. So reads append here and
//! the vault folds the entries into the chain with its next write. What a
//! backend provides is only this: named logs that one handle holds at a
//! time (a lock that ends with the process, so a killed handle's log can
//! be claimed and folded by another), appends, reads, removal.

use crate::error::Result;

/// A read log's name: 16 random bytes, drawn by the handle that makes it.
pub(crate) type LogName = [u8; 16];

/// A log name as 32 lowercase hex digits (file names, `meta` rows, the
/// damage entry's text).
pub(crate) fn name_to_hex(name: &LogName) -> String {
    name.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inverse of [`name_to_hex`]; `None` for anything else.
pub(crate) fn name_from_hex(text: &str) -> Option<LogName> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut name = [0; 16];
    for (i, byte) in name.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(name)
}

/// What [`ReadLogs::claim`] found.
pub(crate) enum Claim {
    /// No log of that name.
    Missing,
    /// A live handle holds it.
    Held,
    /// Now held by the caller.
    Claimed(Box<dyn ReadLogFile>),
}

/// The read logs of one vault.
pub(crate) trait ReadLogs: Send + Sync {
    /// Makes a new, empty log, held by the caller until the returned file
    /// is dropped (or its process ends).
    fn create(&self, name: &LogName) -> Result<Box<dyn ReadLogFile>>;
    /// Takes hold of an existing log no live handle holds.
    fn claim(&self, name: &LogName) -> Result<Claim>;
    /// The names of every log there is, held or not.
    fn names(&self) -> Result<Vec<LogName>>;
    /// Removes a log the caller holds.
    fn remove(&self, name: &LogName) -> Result<()>;
}

/// One held read log.
pub(crate) trait ReadLogFile: Send {
    /// Appends `bytes` as one write, durable to the operating system when
    /// it returns; a failed append leaves the log as it was before.
    fn append(&mut self, bytes: &[u8]) -> Result<()>;
    /// The log's bytes from `offset` to its end.
    fn read_from(&mut self, offset: u64) -> Result<Vec<u8>>;
    /// Whether the caller still holds the log as it left it. `false` once
    /// another handle claimed it (a hold that is a lease can run out), or
    /// once an append's outcome went unreported: nothing more may be
    /// appended or folded from here, and the caller starts another log;
    /// the lost one's entries are folded by whoever claims it. A file held
    /// with a lock that ends only with its process is never lost.
    fn held(&mut self) -> bool {
        true
    }
}
