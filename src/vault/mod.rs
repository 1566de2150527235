//! The public [`Vault`]: creating and opening, and the key-level calls.
//! Storing lives in `write.rs`, reading in `read.rs`.

mod audited;
mod export;
mod header;
mod high_water;
mod ingest;
mod maintenance;
mod options;
mod pii;
mod query;
mod read;
mod read_log;
mod recovery;
mod rekey;
mod reports;
mod take_in;
mod time_index;
mod write;

pub use audited::{AsActor, Audit};
pub use header::FORMAT_VERSION;
pub(crate) use high_water::{META_HIGH_WATER, clear_value as high_water_clear_value};
pub use maintenance::{Maintenance, VaultStats};
pub use options::{
    DEFAULT_KEY_CACHE, DEFAULT_MAX_RECORDS_PER_KEY, MAX_RECORDS_PER_KEY_LIMIT, VaultOptions,
};
pub use query::Query;
pub use reports::{EraseReport, PurgeReport, VerifyReport};

use std::borrow::Borrow;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::audit::{Actor, AuditAction, AuditKeys, AuditOutcome, Event};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::kdf::KeySource;
use crate::keys::{DataKey, Kek, Keyring, TAG_KEY_AAD, TagKey, data_key_aad};
use crate::record::RecordId;
use crate::retention::RetentionPolicy;
use crate::secret::SecretKey;
use crate::store::{KeyRow, RecordRow, Storage, VaultMeta};
use crate::tables::Tables;
use header::Header;

/// An encrypted log of model exchanges, kept in a [`Storage`] (one SQLite
/// file unless told otherwise).
///
/// `Send + Sync`: share it with `Arc` and call it from any thread. Writes
/// take turns; so does each `get`, which commits its audit entry in the
/// same transaction; scans (`verify`, `export`, conversations, audit
/// walks) run while a write commits.
pub struct Vault {
    store: Tables,
    /// The KEK and the header it was checked against, replaced together by
    /// `change_key`. Lock order: the store's write lock first, then this.
    unlocked: RwLock<Unlocked>,
    tags: TagKey,
    keyring: Keyring,
    policy: RetentionPolicy,
    clock: Arc<dyn Clock>,
    max_records_per_key: u64,
    kdf: crate::kdf::KdfParams,
    /// The most Argon2id work a header this handle writes may ask for.
    max_kdf: crate::kdf::KdfParams,
    audit_keys: AuditKeys,
    /// MACs the record high-water mark (`high_water.rs`).
    high_water_key: high_water::HighWaterKey,
    /// Who plain `Vault` calls are audited as.
    actor: Actor,
    /// Read entries that a full disk refused, for the next write.
    waiting_audit: std::sync::Mutex<Vec<audited::WaitingEntry>>,
    /// The process that opened this handle.
    born_pid: u32,
    /// The process `waiting_audit` belongs to.
    waiting_pid: std::sync::atomic::AtomicU32,
    /// How many waiting entries the open write transaction carries.
    flushed_audit: std::sync::atomic::AtomicUsize,
    /// Read entries written per batch (1: each read at once).
    audit_read_batch: usize,
    /// This handle's read logs (`read_log.rs`).
    read_logs: read_log::ReadLogs,
    /// Whether the open write transaction took the read logs in already.
    reads_taken: std::sync::atomic::AtomicBool,
    /// Whether the next fold also claims logs of handles that are gone.
    sweep_next: std::sync::atomic::AtomicBool,
    /// Seals the time index (`time_index.rs`).
    time_index: time_index::TimeIndexKey,
    /// Whether this handle has seen the time index's `time-index-from`
    /// row stored: then its writes need not read it again.
    time_index_from_seen: std::sync::atomic::AtomicBool,
    /// Creation times of what the open write transaction stored.
    time_marks: std::sync::Mutex<time_index::TimeMarks>,
    /// Finds personal data for `pseudonymize`.
    detector: crate::pii::Detector,
}

struct Unlocked {
    kek: Kek,
    header: Vec<u8>,
    /// The key the header's KEK is wrapped under (FORMAT.md §3), kept so
    /// the KEK can be replaced without the key source. `None` in a handle
    /// opened with recovery shares until it sets a key with `change_key`.
    unlock: Option<Kek>,
}

impl Vault {
    /// Creates a new vault at `path` (a database file; SQLite's `-wal` and
    /// `-shm` files sit beside it): `Vault::create_in(Storage::sqlite(path), ..)`.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] if a file is already there;
    /// [`Error::InvalidInput`] or [`Error::TtlTooLong`] for incoherent
    /// options; [`Error::Io`] if a key file cannot be read.
    pub fn create(
        path: impl AsRef<Path>,
        key: impl Borrow<KeySource>,
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        Self::create_in(Storage::sqlite(path), key, options)
    }

    /// Creates a new vault in `storage`.
    ///
    /// # Errors
    /// As [`Vault::create`].
    pub fn create_in(
        storage: impl Borrow<Storage>,
        key: impl Borrow<KeySource>,
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        let (storage, options) = (storage.borrow(), options.borrow());
        check_options(options)?;
        // Fail fast, before the KDF; the storage is claimed atomically.
        if storage.is_taken() {
            return Err(Error::AlreadyExists);
        }
        let (header, keys) = Header::new(key.borrow(), options.kdf)?;
        let tag_key = SecretKey::random();
        let meta = VaultMeta {
            header: header.to_bytes(),
            tag_key: keys.kek.wrap(&tag_key, TAG_KEY_AAD).to_vec(),
        };
        let store = Tables::new(storage.create(options.page_cache_mib)?);
        let unlocked = Unlocked {
            kek: keys.kek,
            header: meta.header.clone(),
            unlock: Some(keys.unlock),
        };
        let vault = Self::assemble(store, unlocked, &tag_key, options);
        // The vault's first rows and its first audit entry commit together.
        let logged = vault.begin().and_then(|mut txn| {
            txn.initialize(&meta)?;
            let create = Event::new(AuditAction::Create);
            vault.log_in(&mut txn, &vault.actor, &create, &AuditOutcome::Ok)?;
            vault.commit(txn)
        });
        if let Err(e) = logged {
            // A vault without its first audit entry is no vault: remove it.
            drop(vault);
            storage.discard();
            return Err(e);
        }
        Ok(vault)
    }

    /// Opens an existing vault. The KDF parameters come from the vault's
    /// header (bounds-checked before any work); `options` supplies the
    /// retention policy and clock.
    ///
    /// # Errors
    /// [`Error::WrongKey`] if `key` does not open it;
    /// [`Error::UnsupportedVersion`], [`Error::KdfParams`] or
    /// [`Error::Corrupt`] for a header or file that is not acceptable.
    pub fn open(
        path: impl AsRef<Path>,
        key: impl Borrow<KeySource>,
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        Self::open_in(Storage::sqlite(path), key, options)
    }

    /// Opens the vault in `storage`.
    ///
    /// # Errors
    /// As [`Vault::open`].
    pub fn open_in(
        storage: impl Borrow<Storage>,
        key: impl Borrow<KeySource>,
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        let options = options.borrow();
        let (store, meta, header) = open_store(storage.borrow(), options)?;
        if header.runs_kdf() {
            header.kdf.within(&options.max_kdf)?;
        }
        let keys = count_wrong_key(&store, header.unlock(key.borrow()))?;
        Self::unlocked_open(
            store,
            meta,
            (keys.kek, Some(keys.unlock)),
            options,
            AuditAction::Open,
        )
    }

    /// The rest of an open once the KEK is verified (with the unlock key,
    /// if the open had the key source): unwrap the tag key, fold pending
    /// maintenance notes and failed opens into the audit chain, and record
    /// the open itself.
    fn unlocked_open(
        store: Tables,
        meta: VaultMeta,
        (kek, unlock): (Kek, Option<Kek>),
        options: &VaultOptions,
        action: AuditAction,
    ) -> Result<Self> {
        let tag_key = kek
            .unwrap_key(&meta.tag_key, TAG_KEY_AAD)
            .ok_or(Error::KeyTampered { key_id: 0 })?;
        let unlocked = Unlocked {
            kek,
            header: meta.header,
            unlock,
        };
        let vault = Self::assemble(store, unlocked, &tag_key, options);
        let mut txn = vault.begin()?;
        vault.queue_maintenance_notes(txn.take_maintenance_notes()?);
        let failed = txn.take_failed_opens()?;
        if failed > 0 {
            let event = Event::new(AuditAction::FailedOpens).count(failed);
            vault.log_in(&mut txn, &vault.actor, &event, &AuditOutcome::Ok)?;
        }
        vault.log_in(
            &mut txn,
            &vault.actor,
            &Event::new(action),
            &AuditOutcome::Ok,
        )?;
        vault.commit(txn)?;
        vault.adopt_ingested()?;
        Ok(vault)
    }

    fn assemble(
        store: Tables,
        unlocked: Unlocked,
        tag_key: &SecretKey,
        options: &VaultOptions,
    ) -> Self {
        Self {
            store,
            unlocked: RwLock::new(unlocked),
            tags: TagKey::new(tag_key),
            keyring: Keyring::new(options.key_cache),
            policy: options.retention,
            clock: Arc::clone(&options.clock),
            max_records_per_key: options.max_records_per_key,
            kdf: options.kdf,
            max_kdf: options.max_kdf,
            audit_keys: AuditKeys::derive(tag_key),
            high_water_key: high_water::HighWaterKey::derive(tag_key),
            actor: options.actor.clone(),
            waiting_audit: std::sync::Mutex::new(Vec::new()),
            waiting_pid: std::sync::atomic::AtomicU32::new(std::process::id()),
            born_pid: std::process::id(),
            flushed_audit: std::sync::atomic::AtomicUsize::new(0),
            audit_read_batch: options.audit_read_batch.max(1),
            read_logs: read_log::ReadLogs::new(),
            reads_taken: std::sync::atomic::AtomicBool::new(false),
            // The open's own transaction sweeps.
            sweep_next: std::sync::atomic::AtomicBool::new(true),
            time_index: time_index::TimeIndexKey::derive(tag_key),
            time_index_from_seen: std::sync::atomic::AtomicBool::new(false),
            time_marks: std::sync::Mutex::default(),
            detector: options.detector.clone(),
        }
    }

    /// The data key that sealed `record`, from memory or unwrapped from
    /// the store.
    ///
    /// A key id that is not stored means the key was destroyed (purge,
    /// erasure), or the envelope's key id was altered, or a purge or
    /// erasure removed record and key while we read. Told apart in that
    /// order: the record is gone → not found; a key of the record's own
    /// scope (subject and epoch) still exists → it would have been sealed
    /// under a live key, so its key id was altered.
    fn data_key(&self, key_id: u64, record: &RecordRow) -> Result<Arc<DataKey>> {
        if let Some(key) = self.keyring.get(key_id) {
            return Ok(key);
        }
        let seen = self.keyring.generation();
        if let Some(row) = self.store.key(key_id)? {
            return self.unwrap_row(&row, seen);
        }
        let id = RecordId::from_u64(record.id);
        if self.store.record(record.id)?.is_none() {
            return Err(Error::NotFound { id });
        }
        let epoch_end = self
            .policy
            .epoch_end_ms(record.expires_at_ms)
            .ok_or(Error::Tampered { id })?;
        let subject = record.subject.as_ref();
        if !self
            .store
            .scope_has_key(subject, record.expires_at_ms, epoch_end)?
        {
            return Err(Error::KeyDestroyed { id });
        }
        // With the keys apart, a record put back from a backup after its
        // subject was erased names a key the erasure destroyed, while the
        // subject may have a new key for the same epoch since.
        let erased = match subject {
            Some(tag) => self.store.erasure_note(tag)?,
            None => None,
        };
        match erased {
            Some(note) if key_id < note.key_floor && epoch_end <= note.until_ms => {
                Err(Error::KeyDestroyed { id })
            }
            _ => Err(Error::Tampered { id }),
        }
    }

    /// The data key of a stored key row, from memory only if it was
    /// authenticated for the scope the row names now (else unwrapped,
    /// which fails for an edited scope: the wrap's AAD binds it). `seen`:
    /// the keyring's generation from before the row was read.
    fn unwrap_row(&self, row: &KeyRow, seen: u64) -> Result<Arc<DataKey>> {
        if let Some(key) = self.keyring.get_scoped(row.id, &row.scope) {
            return Ok(key);
        }
        let unlocked = self.unlocked.read().unwrap_or_else(|e| e.into_inner());
        let Some(secret) = unlocked
            .kek
            .unwrap_key(&row.wrapped, &data_key_aad(row.id, &row.scope))
        else {
            // Another handle may have rewrapped every key under a new KEK.
            return Err(if self.store.meta()?.header != unlocked.header {
                Error::KeyChanged
            } else {
                Error::KeyTampered { key_id: row.id }
            });
        };
        let key = Arc::new(DataKey::new(row.id, &secret));
        self.keyring.insert_read(row.scope, Arc::clone(&key), seen);
        Ok(key)
    }

    fn now_ms(&self) -> i64 {
        crate::codec::to_millis(self.clock.now())
    }
}

/// Parses a stored header without a key: format, bounds, layout. For
/// handles that hold no key (ingestors) and the fuzz hooks.
pub(crate) fn check_header(bytes: &[u8]) -> Result<()> {
    Header::parse(bytes).map(|_| ())
}

#[cfg(feature = "internals")]
pub(crate) use take_in::{open_staged, proved_envelope};

/// For `internals`: the bytes of a valid header made with the cheapest KDF.
#[cfg(feature = "internals")]
pub(crate) fn sample_header_for_fuzz() -> Vec<u8> {
    Header::new(
        &KeySource::raw_key([9; 32]),
        crate::kdf::KdfParams::minimum(),
    )
    .map(|(h, _)| h.to_bytes())
    .unwrap_or_default()
}

/// What every keyed open does before it knows the key: check the options,
/// open the file (its schema checked) and parse its header (bounds checked).
fn open_store(storage: &Storage, options: &VaultOptions) -> Result<(Tables, VaultMeta, Header)> {
    check_options(options)?;
    let store = Tables::new(storage.open(options.page_cache_mib)?);
    let meta = store.meta()?;
    let header = Header::parse(&meta.header)?;
    Ok((store, meta, header))
}

/// Passes an unlock result through; a wrong key is first counted in the
/// store, since it cannot be MACed without the key (it is folded into the
/// audit chain at the next successful open). Counting is best effort: the
/// caller needs to hear about the wrong key either way.
fn count_wrong_key<T>(store: &Tables, unlocked: Result<T>) -> Result<T> {
    if matches!(unlocked, Err(Error::WrongKey)) {
        let _ = store.count_failed_open();
    }
    unlocked
}

/// Ids must not be empty: an empty one would tag every such record alike.
pub(crate) fn check_ids(rec: &crate::record::NewRecord) -> Result<()> {
    if rec.conversation.as_str().is_empty() {
        return Err(Error::InvalidInput {
            what: "conversation id",
            reason: "must not be empty".into(),
        });
    }
    if rec.subject.as_ref().is_some_and(|s| s.as_str().is_empty()) {
        return Err(Error::InvalidInput {
            what: "subject id",
            reason: "must not be empty".into(),
        });
    }
    Ok(())
}

/// The error for a record beyond the codec's caps.
pub(crate) fn too_large() -> Error {
    Error::InvalidInput {
        what: "record",
        reason: format!(
            "over {} bytes encoded, or over {} messages, tags or metadata entries",
            crate::codec::MAX_RECORD_BYTES,
            crate::codec::MAX_ITEMS
        ),
    }
}

fn check_options(options: &VaultOptions) -> Result<()> {
    options.retention.validate()?;
    if !(1..=MAX_RECORDS_PER_KEY_LIMIT).contains(&options.max_records_per_key) {
        return Err(Error::InvalidInput {
            what: "max_records_per_key",
            reason: format!(
                "{} is outside 1..={MAX_RECORDS_PER_KEY_LIMIT} (NIST SP 800-38D §8.3 caps \
                 random-nonce AES-GCM at 2^32 messages per key)",
                options.max_records_per_key
            ),
        });
    }
    if options.key_cache == 0 {
        return Err(Error::InvalidInput {
            what: "key_cache",
            reason: "must hold at least one key".into(),
        });
    }
    // A vault this handle creates must be one these options can open.
    options.kdf.within(&options.max_kdf)?;
    Ok(())
}

impl Drop for Vault {
    /// Folds this handle's read logs into the chain and removes them, with
    /// read entries still waiting in memory (batched reads, or a disk that
    /// was full); best effort, there is no one left to tell. What stays
    /// behind is folded by the next handle's sweep.
    fn drop(&mut self) {
        // Not in a forked child that drops its parent's handle: the logs
        // and the connections are the parent's.
        if self.born_pid == std::process::id() {
            let _ = self.fold_reads(read_log::Fold::Close);
        }
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}
