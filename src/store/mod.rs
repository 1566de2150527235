//! The storage seam: where a backend plugs in. A backend stores rows of
//! sealed bytes, and the few clear columns needed to find and purge them,
//! in the logical tables of FORMAT.md §8; it knows no key and no rule of
//! the vault's. The rules (which key seals, what an erasure removes, how
//! the audit chain grows) live once, above this, in `crate::tables`.
//!
//! Three backends: SQLite (`sqlite/`, the file format), PostgreSQL
//! (`postgres/`, feature `postgres`: one vault for many app servers) and,
//! for the crate's own tests, memory (`memory/`). [`Storage`] names one and opens it; with
//! the keys apart, `split.rs` is one backend over two.

#[cfg(all(test, feature = "internals"))]
mod contract;
#[cfg(feature = "internals")]
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
pub(crate) mod read_logs;
mod split;
mod sqlite;
mod storage;

pub use storage::{DEFAULT_PAGE_CACHE_MIB, Storage};

use std::ops::ControlFlow;

use crate::error::{Error, Result};
use crate::keys::{IdTag, KeyScope};

/// A stored record: sealed envelope plus the clear columns bound into it.
#[derive(Debug, Clone)]
pub(crate) struct RecordRow {
    pub(crate) id: u64,
    pub(crate) conversation: IdTag,
    pub(crate) subject: Option<IdTag>,
    pub(crate) expires_at_ms: i64,
    pub(crate) sealed: Vec<u8>,
}

/// A stored data key, wrapped by the KEK.
#[derive(Debug, Clone)]
pub(crate) struct KeyRow {
    pub(crate) id: u64,
    pub(crate) scope: KeyScope,
    /// Uses reserved on this key: never fewer than the records it sealed.
    pub(crate) sealed: u64,
    /// No longer seals records (rotated out); it still opens them.
    pub(crate) retired: bool,
    pub(crate) wrapped: Vec<u8>,
}

/// The longest staged row a backend hands out with its bytes: the largest
/// record `put` accepts, sealed, with its proof. A longer one reads with
/// `sealed` empty, its bytes never loaded, so a planted giant row cannot
/// make a take-in allocate it.
pub(crate) const MAX_STAGED_LEN: usize =
    crate::codec::MAX_RECORD_BYTES + crate::seal::SEAL_OVERHEAD + crate::ingest::PROOF_LEN;

/// A record staged by a write-only ingestor. Read back leniently: a row
/// whose columns hold values of the wrong type reads with an empty
/// `sealed` (which no proof covers), so one bad row never fails a read of
/// the others; so does one longer than [`MAX_STAGED_LEN`].
#[derive(Debug, Clone)]
pub(crate) struct IngestRow {
    pub(crate) id: u64,
    pub(crate) key_id: u64,
    pub(crate) expires_at_ms: i64,
    pub(crate) sealed: Vec<u8>,
}

/// A data key an ingestor wrapped to the vault's public key.
#[derive(Debug, Clone)]
pub(crate) struct IngestKeyRow {
    pub(crate) id: u64,
    pub(crate) not_after_ms: i64,
    pub(crate) wrapped: Vec<u8>,
}

/// A conversation's sealed PII mapping.
#[derive(Debug, Clone)]
pub(crate) struct PiiMapRow {
    pub(crate) conversation: IdTag,
    pub(crate) subject: Option<IdTag>,
    pub(crate) expires_at_ms: i64,
    pub(crate) sealed: Vec<u8>,
}

/// One audit entry as stored: sealed body and chain MAC. Read back
/// leniently: a column of the wrong type or size reads as empty, zero
/// time or zero MAC, so the entry fails its checks and a walk goes on.
#[derive(Debug, Clone)]
pub(crate) struct AuditRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) sealed: Vec<u8>,
    pub(crate) mac: [u8; 32],
    /// Whether the stored MAC was 32 bytes (else `mac` reads as zeros):
    /// no entry can be chained onto one that was not.
    pub(crate) mac_intact: bool,
}

/// What a key-less maintenance purge did, kept in clear until a keyed
/// open folds it into the audit chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaintenanceNote {
    pub(crate) at_ms: i64,
    pub(crate) records: u64,
    pub(crate) keys: u64,
}

/// The vault-wide values kept beside the tables.
#[derive(Debug, Clone)]
pub(crate) struct VaultMeta {
    /// The header bytes (FORMAT.md §1).
    pub(crate) header: Vec<u8>,
    /// The tag key, wrapped by the KEK.
    pub(crate) tag_key: Vec<u8>,
}

/// A logical table (FORMAT.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Table {
    /// Named vault-wide values: the header, the wrapped tag key, the
    /// high-water mark, the ingest material. Keyed by name.
    Meta,
    /// Named integers: the id counters and the failed-open count.
    Counters,
    /// Data keys, wrapped. Keyed by id.
    Keys,
    /// Sealed records. Keyed by id.
    Records,
    /// The audit chain. Keyed by sequence number.
    Audit,
    /// What key-less maintenance did, until a keyed open chains it. No key.
    Notes,
    /// Data keys ingestors wrapped to the vault's public key. Keyed by id.
    IngestKeys,
    /// Records ingestors staged. Keyed by id; set-aside rows apart.
    Staged,
    /// Sealed PII mappings. Keyed by conversation tag.
    PiiMaps,
}

/// The integers in [`Table::Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Counter {
    /// The next record id to hand out.
    RecordIds,
    /// The next key id to hand out.
    KeyIds,
    /// Failed opens since the last keyed open.
    FailedOpens,
    /// How many records key `id` has sealed (its row's use count, not a
    /// row of [`Table::Counters`]).
    KeyUses(u64),
}

/// The names of the counters' rows in [`Table::Counters`] (FORMAT.md §8.1),
/// the same in every backend.
pub(crate) const NEXT_RECORD: &str = "record";
pub(crate) const NEXT_KEY: &str = "key";
/// Failed opens since the last successful one (not an id: a count).
pub(crate) const FAILED_OPENS: &str = "failed_opens";

impl Counter {
    /// The name of the counter's row; a key's use count has none (it is a
    /// column of the key's row).
    pub(crate) fn row_name(self) -> Result<&'static str> {
        match self {
            Counter::RecordIds => Ok(NEXT_RECORD),
            Counter::KeyIds => Ok(NEXT_KEY),
            Counter::FailedOpens => Ok(FAILED_OPENS),
            Counter::KeyUses(_) => Err(Error::Storage(
                "a key's use count is a column of its row".into(),
            )),
        }
    }
}

/// The least string above every string that starts with `prefix` (an
/// ASCII prefix: its last byte plus one), for [`Select::Prefix`] as a range.
pub(crate) fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last = last.saturating_add(1);
    }
    String::from_utf8_lossy(&end).into_owned()
}

/// One row of one table.
#[derive(Debug, Clone)]
pub(crate) enum Row {
    /// A named value in [`Table::Meta`].
    Meta { name: String, value: Vec<u8> },
    /// A counter; `None` when the stored value is not an integer (only a
    /// writer of the file can make it so).
    Counter {
        counter: Counter,
        value: Option<i64>,
    },
    /// A data key.
    Key(KeyRow),
    /// A record.
    Record(RecordRow),
    /// An audit entry.
    Audit(AuditRow),
    /// A maintenance note.
    Note(MaintenanceNote),
    /// An ingest data key.
    IngestKey(IngestKeyRow),
    /// A staged record waiting to be taken in.
    Staged(IngestRow),
    /// A PII mapping.
    PiiMap(PiiMapRow),
}

impl Row {
    /// The table this row belongs in.
    pub(crate) fn table(&self) -> Table {
        match self {
            Self::Meta { .. } => Table::Meta,
            Self::Counter { .. } => Table::Counters,
            Self::Key(_) => Table::Keys,
            Self::Record(_) => Table::Records,
            Self::Audit(_) => Table::Audit,
            Self::Note(_) => Table::Notes,
            Self::IngestKey(_) => Table::IngestKeys,
            Self::Staged(_) => Table::Staged,
            Self::PiiMap(_) => Table::PiiMaps,
        }
    }
}

/// Which rows of a table an operation reaches. Scans come back in key
/// order (maintenance notes in the order they were put), except
/// [`Select::Newest`], [`Select::Tail`] and [`Select::Sealing`] (highest
/// id first). Not every table takes every selector: a backend
/// answers a pairing the vault never makes with [`Error::Storage`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Select<'a> {
    /// Every row (in [`Table::Staged`]: every row waiting, none set aside).
    All,
    /// The row with this id (records, keys, audit, ingest keys, staged).
    Id(u64),
    /// The row with this name ([`Table::Meta`]).
    Name(&'a str),
    /// Rows whose name starts with this ASCII prefix ([`Table::Meta`]),
    /// ascending.
    Prefix(&'a str),
    /// The counter ([`Table::Counters`]).
    Counter(Counter),
    /// Rows with an id above this one, ascending (audit, staged waiting).
    After(u64),
    /// Rows with `from <= id <= to`, ascending (audit, records).
    Range(u64, u64),
    /// The row with the highest id (records, staged, audit).
    Newest,
    /// The newest audit entry without its body (`sealed` reads empty):
    /// what every append chains onto, read on every call.
    Tail,
    /// Rows of this conversation tag (records; the one PII mapping).
    Conversation(&'a IdTag),
    /// Records of this conversation not expired at this time in ms.
    LiveConversation(&'a IdTag, i64),
    /// Rows of this subject tag (records, PII mappings); for keys, keys of
    /// this subject or, with `None`, of none.
    Subject(Option<&'a IdTag>),
    /// Records of this subject not expired at this time in ms.
    LiveSubject(&'a IdTag, i64),
    /// The PII mappings of every conversation a record of this subject is
    /// in ([`Table::PiiMaps`]), found without reading the records.
    ConversationsOf(&'a IdTag),
    /// Keys of this scope not retired, newest first ([`Table::Keys`]).
    Sealing(&'a KeyScope),
    /// Keys of this subject (or of none) whose epoch ends in
    /// `(after_ms, until_ms]` ([`Table::Keys`]).
    EndingIn {
        subject: Option<&'a IdTag>,
        after_ms: i64,
        until_ms: i64,
    },
    /// Rows whose expiry (for keys, the epoch's end) is at or before this
    /// time in ms: records, staged, PII mappings, keys, ingest keys.
    ExpiredBy(i64),
    /// Staged rows set aside ([`Table::Staged`]).
    SetAside,
}

/// A stored row whose values do not decode (only a writer of the file can
/// make one): its id where the id itself could be read, and the error.
#[derive(Debug)]
pub(crate) struct Damaged {
    pub(crate) id: Option<u64>,
    pub(crate) error: Error,
}

impl From<Damaged> for Error {
    fn from(damaged: Damaged) -> Self {
        damaged.error
    }
}

/// One row of a scan: decoded, or [`Damaged`].
pub(crate) type Scanned = std::result::Result<Row, Damaged>;

/// What [`ReadTxn::tally`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tally {
    /// Rows selected.
    pub(crate) rows: u64,
    /// Their sealed bytes, summed (records only; else 0).
    pub(crate) bytes: u64,
    /// The earliest expiry among them (records only).
    pub(crate) min_expiry_ms: Option<i64>,
}

/// How far a write transaction's commit must reach before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Handed to the operating system, not waited for on disk: the audit
    /// entries of reads. A crash of the process loses nothing; a power cut
    /// may lose the last few.
    Buffered,
    /// On disk (or the server's equivalent) before `commit` returns.
    Durable,
    /// Durable, and then no copy of what the transaction deleted or
    /// overwrote is left where the backend keeps its own copies (SQLite:
    /// the write-ahead log). For purges, erasures and key changes. Best
    /// effort past the commit: a reader holding an old snapshot only
    /// postpones it.
    Scrubbed,
}

/// Where a vault's rows live: the one seam a backend plugs into.
///
/// # The contract every backend keeps
/// - **Atomic commit.** A [`WriteTxn`] is all or nothing: committed by
///   [`WriteTxn::commit`], rolled back if dropped uncommitted. After any
///   operation of it fails, every later one and `commit` may fail too
///   (PostgreSQL aborts the transaction), and it never commits a part of
///   it.
/// - **One writer at a time.** Write transactions are serialized against
///   every other writer of the same storage, in this process and in any
///   other: the audit chain, the id counters and the key-use counts are
///   read and then written inside one. A transaction keeps other writers
///   out from `write` until it is dropped (also after its commit, so the
///   vault can change what it holds in memory to match).
///   Waiting too long for the turn is [`Error::Busy`].
/// - **Reads see commits.** A [`ReadTxn`] (and a write transaction, for
///   its own changes) sees every transaction committed before it began.
///   Separate calls of one read need not share a snapshot.
/// - **Deleted means gone.** A deleted row is never returned again, by
///   any selector. With [`Durability::Scrubbed`], its bytes (above all a
///   key row's wrapped key) are overwritten, not just unlinked, in every
///   place the backend keeps them: a later copy of the storage must not
///   hold them.
/// - **Stored bytes are untrusted.** A row whose values are of the wrong
///   type or size reads as [`Error::Corrupt`], never as a panic; staged
///   rows and audit rows read leniently instead (see [`IngestRow`],
///   [`AuditRow`]), so one bad row never stops a walk over the others.
/// - **Errors** a caller can act on: [`Error::Busy`], [`Error::DiskFull`],
///   [`Error::Corrupt`]; anything else is [`Error::Storage`].
pub(crate) trait Backend: Send + Sync {
    /// Starts a read.
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>>;
    /// Starts the one write transaction (see the contract).
    fn write(&self, durability: Durability) -> Result<Box<dyn WriteTxn + '_>>;
    /// The backend's own consistency check: damaged pages or an index that
    /// disagrees with its table, which no authenticated read notices (a
    /// lookup then just finds fewer rows).
    fn check_integrity(&self) -> Result<()>;
    /// Where reads' audit entries wait for the next write (see
    /// [`read_logs`]).
    fn read_logs(&self) -> &dyn read_logs::ReadLogs;
    /// Whether the keys are kept in a store apart from the records, whose
    /// backups can then outlive an erasure (`split.rs`).
    fn keys_apart(&self) -> bool {
        false
    }
}

/// Reads of the logical tables.
pub(crate) trait ReadTxn {
    /// The first row of a selection (for [`Select::Id`], [`Select::Name`],
    /// [`Select::Counter`], [`Select::Newest`], a PII mapping's
    /// [`Select::Conversation`]: the one row), or `None`.
    fn get(&mut self, table: Table, key: Select<'_>) -> Result<Option<Row>>;
    /// Calls `each` for the selected rows until it breaks. A row whose
    /// stored values do not decode comes as [`Damaged`] (with its id
    /// where that reads), and the scan goes on past it if `each` does: a
    /// purge must still learn which keys it destroyed.
    fn scan(
        &mut self,
        table: Table,
        select: Select<'_>,
        each: &mut dyn FnMut(Scanned) -> Result<ControlFlow<()>>,
    ) -> Result<()>;
    /// Counts the selected rows.
    fn tally(&mut self, table: Table, select: Select<'_>) -> Result<Tally>;
}

/// A write transaction (see the contract on [`Backend`]).
pub(crate) trait WriteTxn: ReadTxn {
    /// Stores a row. Meta values, counters and PII mappings replace the
    /// one with the same key; keys, records, audit entries, staged rows
    /// and ingest keys are only added (a taken key fails with
    /// [`Error::Storage`]: a backend never overwrites them; a changed key
    /// row is deleted and put again); a note is always added. The failure
    /// of a taken key may come at the put or, at the latest, at the
    /// commit: a backend may hold rows back and send them together.
    fn put(&mut self, row: &Row) -> Result<()>;
    /// Deletes the selected rows; returns how many.
    fn delete(&mut self, table: Table, select: Select<'_>) -> Result<u64>;
    /// Raises a counter to at least `at_least` (a stored value that is not
    /// an integer counts as 0), adds `by`, and returns the value before
    /// the add: the first of `by` ids reserved. A missing counter is
    /// [`Error::Storage`]. For [`Counter::KeyUses`] of a key that is gone
    /// nothing happens and `at_least` is not used; it returns 0.
    fn bump(&mut self, counter: Counter, by: u64, at_least: u64) -> Result<u64>;
    /// Moves a waiting staged row among the set-aside ones (FORMAT.md
    /// §12) with its expiry lowered to at most `expires_cap_ms` (or set to
    /// it, if the stored one is not an integer), without reading its bytes.
    fn set_aside(&mut self, id: u64, expires_cap_ms: i64) -> Result<()>;
    /// A hint that `Sealing` lookups of these scopes follow in this
    /// transaction (a `put_batch` over many subjects), so a backend that
    /// pays a round trip per statement can fetch them in one. The answers
    /// are the same without it.
    fn prefetch_sealing(&mut self, scopes: &[KeyScope]) -> Result<()> {
        let _ = scopes;
        Ok(())
    }
    /// Sends whatever the backend holds back to the database now, so that
    /// an error in it comes before the commit (the keys-apart backend
    /// calls it on the record store before committing the keys store).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// Makes every change reach the transaction's [`Durability`]. Writers
    /// stay out until the transaction is dropped (a [`Durability::Scrubbed`]
    /// one scrubs then, after the vault's own bookkeeping).
    fn commit(&mut self) -> Result<()>;
}

/// The error for a table and selector no backend is asked to pair.
pub(crate) fn unsupported(table: Table, select: &Select<'_>) -> Error {
    Error::Storage(format!("no such selection: {select:?} of {table:?}").into())
}
