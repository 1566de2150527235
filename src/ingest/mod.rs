//! Write-only ingest. A production service that logs prompts holds only the
//! vault's X25519 *public* key: it can append records, and read nothing
//! back — not even what it wrote once its process ends. Records are sealed
//! with per-epoch data keys that the ingestor wraps to the vault's public
//! key, and staged beside the vault's own records; a keyed vault handle
//! takes them in (re-sealing them under its own keys and tags) at its next
//! call, after which retention and erasure apply as to any record.

mod wrap;

pub(crate) use wrap::{new_secret, unwrap_with};

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use x25519_dalek::PublicKey;

use crate::VaultOptions;
use crate::clock::Clock;
use crate::codec::{self, to_millis};
use crate::error::{Error, Result};
use crate::keys::DataKey;
use crate::record::{NewRecord, RecordId};
use crate::retention::RetentionPolicy;
use crate::seal::{self, IngestBinding};
use crate::secret::SecretKey;
use crate::store::{Backend, IngestKeyRow, IngestRow, SqliteBackend};

/// Meta row names (FORMAT.md §8).
pub(crate) const META_INGEST_PUBLIC: &str = "ingest_public";
pub(crate) const META_INGEST_SECRET: &str = "ingest_secret";
/// AAD label for the vault's X25519 secret wrapped by the KEK.
pub(crate) const INGEST_SECRET_AAD: &[u8] = b"llmvault/v1/ingest-secret";
const INGEST_KEY_LABEL: &[u8] = b"llmvault/v1/ingest-key";
const TEXT_PREFIX: &str = "llmvault-ingest-1-";

/// The public key that lets an [`Ingestor`] append to a vault. Not a
/// secret: it can write, never read. Printable with `Display`, parsed
/// with `FromStr`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IngestKey {
    public: [u8; 32],
}

impl IngestKey {
    pub(crate) fn from_public(public: [u8; 32]) -> Self {
        Self { public }
    }

    pub(crate) fn public(&self) -> PublicKey {
        PublicKey::from(self.public)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.public
    }
}

impl fmt::Display for IngestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(TEXT_PREFIX)?;
        self.public.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for IngestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IngestKey({self})")
    }
}

impl std::str::FromStr for IngestKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidInput {
            what: "ingest key",
            reason: format!("expected {TEXT_PREFIX} and 64 hex digits"),
        };
        let hex = s.trim().strip_prefix(TEXT_PREFIX).ok_or_else(bad)?;
        if hex.len() != 64 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut public = [0u8; 32];
        for (i, byte) in public.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Self { public })
    }
}

/// The AAD binding an ingest data key to its id and epoch (FORMAT.md §12).
pub(crate) fn ingest_key_aad(id: u64, not_after_ms: i64) -> Vec<u8> {
    let mut aad = INGEST_KEY_LABEL.to_vec();
    aad.extend_from_slice(&id.to_be_bytes());
    aad.extend_from_slice(&not_after_ms.to_be_bytes());
    aad
}

/// A write-only handle on a vault file. It can append records; it has no
/// call that reads, and nothing it holds opens a record or unwraps a key.
///
/// ```compile_fail
/// fn peek(ingestor: &llmvault::Ingestor, id: llmvault::RecordId) {
///     let _ = ingestor.get(id); // an ingestor cannot read
/// }
/// ```
pub struct Ingestor {
    store: SqliteBackend,
    key: IngestKey,
    policy: RetentionPolicy,
    clock: Arc<dyn Clock>,
    max_records_per_key: u64,
    /// This process's data keys, by epoch end, with their remaining uses.
    /// Never stored in clear; gone when the process ends.
    keys: Mutex<HashMap<i64, (Arc<DataKey>, u64)>>,
}

impl Ingestor {
    /// Opens a vault file for appending, with default options.
    ///
    /// # Errors
    /// [`Error::WrongKey`] if `key` is not this vault's ingest key.
    pub fn open(path: impl AsRef<Path>, key: &IngestKey) -> Result<Self> {
        Self::open_with_options(path, key, VaultOptions::default())
    }

    /// As [`Ingestor::open`], with the retention policy and clock of
    /// `options` (its KDF settings are not used: no key is derived).
    ///
    /// # Errors
    /// As [`Ingestor::open`].
    pub fn open_with_options(
        path: impl AsRef<Path>,
        key: &IngestKey,
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        let options = options.borrow();
        options.retention.validate()?;
        let store = SqliteBackend::open(path.as_ref(), options.page_cache_mib)?;
        crate::vault::parse_header_for_fuzz(&store.meta()?.header)?;
        if store.meta_value(META_INGEST_PUBLIC)?.as_deref() != Some(&key.bytes()[..]) {
            return Err(Error::WrongKey);
        }
        Ok(Self {
            store,
            key: *key,
            policy: options.retention,
            clock: Arc::clone(&options.clock),
            max_records_per_key: options.max_records_per_key.max(1),
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// Appends one record; returns its id.
    ///
    /// # Errors
    /// As [`Vault::put`](crate::Vault::put).
    pub fn put(&self, record: NewRecord) -> Result<RecordId> {
        self.put_batch(vec![record])?
            .into_iter()
            .next()
            .ok_or(Error::InvalidInput {
                what: "record",
                reason: "nothing was stored".into(),
            })
    }

    /// Appends records in one transaction.
    ///
    /// # Errors
    /// As [`Vault::put_batch`](crate::Vault::put_batch).
    pub fn put_batch(&self, records: Vec<NewRecord>) -> Result<Vec<RecordId>> {
        let now = self.clock.now();
        let now_ms = to_millis(now);
        let mut staged = Vec::with_capacity(records.len());
        for rec in &records {
            crate::vault::check_ids(rec)?;
            let expires_at_ms = self.policy.expiry_ms(now, rec.ttl)?;
            let created_ms = rec.created_at.map_or(now_ms, to_millis);
            let plaintext = codec::record::encode(
                rec,
                created_ms,
                expires_at_ms,
                seal::HEADER_LEN,
                seal::TAG_LEN,
            )
            .map_err(|_| crate::vault::too_large())?;
            staged.push((expires_at_ms, plaintext));
        }
        drop(records);

        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let mut fresh: HashMap<i64, (Arc<DataKey>, u64)> = HashMap::new();
        let mut txn = self.store.write()?;
        if txn.meta_value(META_INGEST_PUBLIC)?.as_deref() != Some(&self.key.bytes()[..]) {
            return Err(Error::KeyChanged);
        }
        let first = txn.allocate_record_ids(staged.len() as u64)?;
        let mut ids = Vec::with_capacity(staged.len());
        for (offset, (expires_at_ms, plaintext)) in staged.into_iter().enumerate() {
            let id = RecordId::from_u64(first + offset as u64);
            let not_after_ms = self
                .policy
                .epoch_end_ms(expires_at_ms)
                .ok_or_else(crate::retention::unrepresentable_expiry)?;
            let usable = fresh
                .get(&not_after_ms)
                .or_else(|| keys.get(&not_after_ms))
                .filter(|(_, left)| *left > 0)
                .map(|(k, left)| (Arc::clone(k), *left));
            let (key, left) = match usable {
                Some(k) => k,
                None => {
                    let key_id = txn.allocate_key_id()?;
                    let secret = SecretKey::random();
                    let aad = ingest_key_aad(key_id, not_after_ms);
                    txn.insert_ingest_key(&IngestKeyRow {
                        id: key_id,
                        not_after_ms,
                        wrapped: wrap::wrap_to(&self.key.public(), &secret, &aad),
                    })?;
                    (
                        Arc::new(DataKey::new(key_id, &secret)),
                        self.max_records_per_key,
                    )
                }
            };
            let binding = IngestBinding { id, expires_at_ms };
            let sealed =
                seal::seal(&key, &binding, plaintext).map_err(|_| crate::vault::too_large())?;
            txn.insert_ingested(&IngestRow {
                id: id.as_u64(),
                key_id: key.id,
                expires_at_ms,
                sealed,
            })?;
            fresh.insert(not_after_ms, (key, left - 1));
            ids.push(id);
        }
        txn.commit()?;
        keys.extend(fresh);
        Ok(ids)
    }
}

impl fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ingestor")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
