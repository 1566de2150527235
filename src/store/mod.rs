//! Persistence. The vault sees storage only through [`Backend`]: rows of
//! sealed bytes and the few clear columns needed to find and purge them.
//! Nothing here knows a key; nothing above knows SQL.

mod sqlite;

pub(crate) use sqlite::{SqliteBackend, remove_database};

use crate::error::Result;
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
    /// How many records this key has sealed.
    pub(crate) sealed: u64,
    pub(crate) wrapped: Vec<u8>,
}

/// A record staged by a write-only ingestor. Read back leniently: a row
/// whose columns hold values of the wrong type reads with an empty
/// `sealed` (which no proof covers), so one bad row never fails a read of
/// the others.
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

/// One audit entry as stored: sealed body and chain MAC.
#[derive(Debug, Clone)]
pub(crate) struct AuditRow {
    pub(crate) seq: u64,
    pub(crate) at_ms: i64,
    pub(crate) sealed: Vec<u8>,
    pub(crate) mac: [u8; 32],
}

/// What a key-less maintenance purge did, kept in clear until a keyed
/// open folds it into the audit chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaintenanceNote {
    pub(crate) at_ms: i64,
    pub(crate) records: u64,
    pub(crate) keys: u64,
}

/// Counts a key-less caller may see (all visible in the file anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct StoreStats {
    pub(crate) records: u64,
    pub(crate) expired: u64,
    pub(crate) sealed_bytes: u64,
    pub(crate) oldest_expiry_ms: Option<i64>,
    pub(crate) keys: u64,
    pub(crate) audit_entries: u64,
}

/// The vault-wide values kept beside the tables.
#[derive(Debug, Clone)]
pub(crate) struct VaultMeta {
    /// The header bytes (FORMAT.md §1).
    pub(crate) header: Vec<u8>,
    /// The tag key, wrapped by the KEK.
    pub(crate) tag_key: Vec<u8>,
}

/// Where a vault's rows live.
pub(crate) trait Backend: Send + Sync {
    /// Reads the header and wrapped tag key.
    fn meta(&self) -> Result<VaultMeta>;
    /// An optional vault-wide value by name (FORMAT.md §8), or `None`.
    fn meta_value(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// One live record by id, or `None`.
    fn record(&self, id: u64) -> Result<Option<RecordRow>>;
    /// Records with this conversation tag not expired at `now_ms`, by id.
    fn conversation(&self, tag: &IdTag, now_ms: i64) -> Result<Vec<RecordRow>>;
    /// Records with this subject tag not expired at `now_ms`, by id.
    fn subject(&self, tag: &IdTag, now_ms: i64) -> Result<Vec<RecordRow>>;
    /// Calls `each` for every stored record, expired or not, by id.
    fn each_record(&self, each: &mut dyn FnMut(RecordRow) -> Result<()>) -> Result<()>;
    /// One stored key by id, or `None` if it was destroyed.
    fn key(&self, id: u64) -> Result<Option<KeyRow>>;
    /// Whether a key of this subject (or of none) whose epoch ends in
    /// `(after_ms, until_ms]` is stored.
    fn scope_has_key(&self, subject: Option<&IdTag>, after_ms: i64, until_ms: i64) -> Result<bool>;
    /// Every stored key.
    fn keys(&self) -> Result<Vec<KeyRow>>;
    /// Calls `each` for the audit entries with `from <= seq <= to`, in order.
    fn audit_rows(
        &self,
        from: u64,
        to: u64,
        each: &mut dyn FnMut(AuditRow) -> Result<()>,
    ) -> Result<()>;
    /// A conversation's PII mapping, if it has one.
    fn pii_map(&self, conversation: &IdTag) -> Result<Option<PiiMapRow>>;
    /// Whether any ingested record waits to be taken in (set-aside rows
    /// do not count).
    fn has_ingested(&self) -> Result<bool>;
    /// How many staged records were set aside (FORMAT.md §12).
    fn set_aside_count(&self) -> Result<u64>;
    /// The storage engine's own consistency check: damaged pages or an
    /// index that disagrees with its table, which no authenticated read
    /// notices (a lookup then just finds fewer rows).
    fn check_integrity(&self) -> Result<()>;
    /// Counts and sizes, as of `now_ms`.
    fn stats(&self, now_ms: i64) -> Result<StoreStats>;
    /// Counts one failed open (unauthenticated: it cannot be MACed).
    fn count_failed_open(&self) -> Result<()>;
    /// Moves committed changes into the main file and empties the
    /// write-ahead log, so deleted rows leave no copy in it. Best effort:
    /// the delete is already committed, and a reader holding an old
    /// snapshot only postpones this to a later checkpoint.
    fn scrub(&self);
    /// Starts the one write transaction; others wait (or get `Busy`).
    fn write(&self) -> Result<Box<dyn WriteTxn + '_>>;
    /// A write transaction that commits without waiting for the disk to
    /// confirm: for audit entries of reads. Crash-safe (WAL), though a
    /// power cut may lose the last few.
    fn write_light(&self) -> Result<Box<dyn WriteTxn + '_>>;
}

/// A write transaction: all or nothing, committed by [`WriteTxn::commit`],
/// rolled back if dropped.
pub(crate) trait WriteTxn {
    /// Reserves `n` consecutive record ids, none below `at_least`, and
    /// returns the first.
    fn allocate_record_ids(&mut self, n: u64, at_least: u64) -> Result<u64>;
    /// The highest record id the file shows in use or handed out: the
    /// largest of the stored records' ids, the staged ones' and the record
    /// counter's last. Unauthenticated: a floor for when the authenticated
    /// high-water mark is missing.
    fn record_id_floor(&mut self) -> Result<u64>;
    /// Reserves a key id.
    fn allocate_key_id(&mut self) -> Result<u64>;
    /// The key currently sealing records of `scope`, if there is one.
    fn active_key(&mut self, scope: &KeyScope) -> Result<Option<KeyRow>>;
    /// Stores a new key.
    fn insert_key(&mut self, key: &KeyRow) -> Result<()>;
    /// Counts `n` more records sealed by key `id`.
    fn add_key_use(&mut self, id: u64, n: u64) -> Result<()>;
    /// Stops key `id` from sealing any more records.
    fn retire_key(&mut self, id: u64) -> Result<()>;
    /// Retires every active key; returns how many.
    fn retire_all_keys(&mut self) -> Result<usize>;
    /// Replaces a key's wrapped bytes (after a change of KEK).
    fn rewrap_key(&mut self, id: u64, wrapped: &[u8]) -> Result<()>;
    /// Stores a record.
    fn insert_record(&mut self, row: &RecordRow) -> Result<()>;
    /// Deletes records expired at `now_ms`; returns how many.
    fn delete_expired(&mut self, now_ms: i64) -> Result<usize>;
    /// Deletes keys whose epoch ended by `now_ms`; returns their ids.
    fn delete_keys_ended(&mut self, now_ms: i64) -> Result<Vec<u64>>;
    /// Deletes a subject's records and keys; returns (records, key ids).
    fn delete_subject(&mut self, tag: &IdTag) -> Result<(usize, Vec<u64>)>;
    /// Every stored key (for rewrapping).
    fn keys(&mut self) -> Result<Vec<KeyRow>>;
    /// The header and wrapped tag key as this transaction sees them.
    fn meta(&mut self) -> Result<VaultMeta>;
    /// Replaces the header and wrapped tag key.
    fn set_meta(&mut self, meta: &VaultMeta) -> Result<()>;
    /// The newest audit entry's seq and MAC; (0, zeros) for an empty log.
    fn audit_tail(&mut self) -> Result<(u64, [u8; 32])>;
    /// Appends an audit entry.
    fn append_audit(&mut self, row: &AuditRow) -> Result<()>;
    /// Calls `each` for the audit entries with `seq > after`, in order,
    /// as this transaction sees them.
    fn audit_rows_after(
        &mut self,
        after: u64,
        each: &mut dyn FnMut(AuditRow) -> Result<()>,
    ) -> Result<()>;
    /// Reads and resets the count of failed opens.
    fn take_failed_opens(&mut self) -> Result<u64>;
    /// Sets (or, with `None`, removes) an optional vault-wide value.
    fn set_meta_value(&mut self, name: &str, value: Option<&[u8]>) -> Result<()>;
    /// Reads an optional vault-wide value inside the transaction.
    fn meta_value(&mut self, name: &str) -> Result<Option<Vec<u8>>>;
    /// A conversation's PII mapping, inside the transaction.
    fn pii_map(&mut self, conversation: &IdTag) -> Result<Option<PiiMapRow>>;
    /// Stores (or replaces) a conversation's PII mapping.
    fn put_pii_map(&mut self, row: &PiiMapRow) -> Result<()>;
    /// Stores a key an ingestor wrapped to the vault's public key.
    fn insert_ingest_key(&mut self, key: &IngestKeyRow) -> Result<()>;
    /// Stages an ingested record.
    fn insert_ingested(&mut self, row: &IngestRow) -> Result<()>;
    /// Up to `limit` staged records waiting to be taken in with ids above
    /// `after`, by id (set-aside rows are left out). A row whose sealed
    /// bytes are longer than `max_len` comes back with none, unread, so a
    /// planted giant row cannot make a take-in allocate it.
    fn staged(&mut self, after: u64, limit: usize, max_len: usize) -> Result<Vec<IngestRow>>;
    /// Sets a staged record aside: later take-ins skip it, and its expiry
    /// becomes at most `expires_cap_ms` so that a purge removes it.
    fn set_aside_staged(&mut self, id: u64, expires_cap_ms: i64) -> Result<()>;
    /// Deletes every ingest data key (after the ingest key changed, none
    /// can be unwrapped any more).
    fn delete_ingest_keys(&mut self) -> Result<()>;
    /// Whether the transaction is still open: a storage error in one of
    /// its statements can make the database roll it back.
    fn is_active(&self) -> bool;
    /// As [`Backend::has_ingested`], inside the transaction.
    fn has_ingested(&mut self) -> Result<bool>;
    /// As [`Backend::record`], inside the transaction.
    fn record(&mut self, id: u64) -> Result<Option<RecordRow>>;
    /// An ingest key by id.
    fn ingest_key(&mut self, id: u64) -> Result<Option<IngestKeyRow>>;
    /// Removes a staged record (taken in).
    fn delete_ingested(&mut self, id: u64) -> Result<()>;
    /// Records what a key-less purge did.
    fn note_maintenance(&mut self, note: &MaintenanceNote) -> Result<()>;
    /// Reads and clears the maintenance notes, oldest first.
    fn take_maintenance_notes(&mut self) -> Result<Vec<MaintenanceNote>>;
    /// The latest time of a maintenance note not yet folded in.
    fn newest_maintenance_note(&mut self) -> Result<Option<i64>>;
    /// Makes everything durable.
    fn commit(self: Box<Self>) -> Result<()>;
    /// Commits, then runs `after` while still holding the write lock (so
    /// in-memory state that mirrors the commit changes with it).
    fn commit_then(self: Box<Self>, after: &mut dyn FnMut()) -> Result<()>;
}
