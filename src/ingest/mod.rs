//! Write-only ingest. A production service that logs prompts holds an
//! [`IngestKey`]: the vault's X25519 public key and a MAC secret. It can
//! append records, and read nothing back — not even what it wrote once
//! its process ends. Records are sealed with per-epoch data keys that the
//! ingestor wraps to the vault's public key, proven with the MAC secret,
//! and staged beside the vault's own records; a keyed vault handle checks
//! the proof and takes them in (re-sealing them under its own keys and
//! tags) at its next call, after which retention and erasure apply as to
//! any record.

mod proof;
mod wrap;

pub(crate) use proof::{CHECK_LEN, IngestMac, PROOF_LEN, StagedSlot};
pub(crate) use wrap::{new_secret, unwrap_with};

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use x25519_dalek::PublicKey;
use zeroize::Zeroizing;

use crate::VaultOptions;
use crate::clock::Clock;
use crate::codec::{self, to_millis};
use crate::error::{Error, Result};
use crate::keys::{DataKey, WRAPPED_LEN};
use crate::record::{NewRecord, RecordId};
use crate::retention::RetentionPolicy;
use crate::seal::{self, IngestBinding};
use crate::secret::{KEY_LEN, SecretKey};
use crate::store::{Durability, IngestKeyRow, IngestRow, Storage};
use crate::tables::Tables;

/// Meta row names (FORMAT.md §8).
pub(crate) const META_INGEST_PUBLIC: &str = "ingest_public";
pub(crate) const META_INGEST_SECRET: &str = "ingest_secret";
pub(crate) const META_INGEST_MAC: &str = "ingest_mac";
/// AAD label for the vault's X25519 secret wrapped by the KEK.
pub(crate) const INGEST_SECRET_AAD: &[u8] = b"llmvault/v1/ingest-secret";
/// AAD label for the ingest MAC secret wrapped by the KEK, followed by the
/// X25519 public key it goes with.
const INGEST_MAC_LABEL: &[u8] = b"llmvault/v2/ingest-mac";
/// Length of the `ingest_mac` row: the wrapped MAC secret and its check.
const INGEST_MAC_ROW_LEN: usize = WRAPPED_LEN + CHECK_LEN;

/// The `ingest_mac` row's two parts, (wrapped MAC secret, check), if it
/// has the one length it may have (FORMAT.md §4).
pub(crate) fn split_mac_row(row: &[u8]) -> Option<(&[u8], &[u8])> {
    (row.len() == INGEST_MAC_ROW_LEN).then(|| row.split_at(WRAPPED_LEN))
}
const INGEST_KEY_LABEL: &[u8] = b"llmvault/v1/ingest-key";
const TEXT_PREFIX: &str = "llmvault-ingest-2-";
/// The public-only key of format 1: it proves nothing, so it opens nothing.
const LEGACY_PREFIX: &str = "llmvault-ingest-1-";

/// The capability to append to one vault: its X25519 public key (to wrap
/// data keys to) and a random MAC secret (to prove each staged record).
/// A secret: whoever holds it can add records the vault will accept, so
/// keep it like a password, in the ingesting service's configuration. It
/// reads nothing.
///
/// Not `Clone`, `Display` or `Serialize`; `Debug` is redacted; the text
/// form is handed out in zeroizing memory.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let opts = llmvault::VaultOptions::default().kdf(llmvault::KdfParams::minimum());
/// # let path = dir.path().join("v");
/// use llmvault::{ConversationId, IngestKey, Ingestor, KeySource, NewRecord, Vault};
/// let vault = Vault::create(&path, KeySource::passphrase("pw"), &opts)?;
/// let text = vault.ingest_key()?.to_text(); // for the logging service's configuration
///
/// let ingestor = Ingestor::open(&path, &IngestKey::from_text(&text)?)?;
/// let id = ingestor.put(NewRecord::new(ConversationId::new("c")))?;
/// assert_eq!(vault.get(id)?.id(), id); // the vault's next call takes it in
/// # Ok::<(), llmvault::Error>(())
/// ```
pub struct IngestKey {
    public: [u8; 32],
    mac: SecretKey,
}

impl IngestKey {
    pub(crate) fn new(public: [u8; 32], mac: SecretKey) -> Self {
        Self { public, mac }
    }

    pub(crate) fn public(&self) -> PublicKey {
        PublicKey::from(self.public)
    }

    pub(crate) fn public_bytes(&self) -> &[u8; 32] {
        &self.public
    }

    pub(crate) fn mac(&self) -> IngestMac {
        IngestMac::new(&self.mac)
    }

    /// The printable form: `llmvault-ingest-2-` and 128 hex digits (the
    /// public key, then the MAC secret).
    pub fn to_text(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = Zeroizing::new(String::with_capacity(TEXT_PREFIX.len() + 4 * KEY_LEN));
        text.push_str(TEXT_PREFIX);
        for b in self.public.iter().chain(self.mac.expose()) {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        text
    }

    /// Parses the printable form.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if it is malformed, or if it is a format-1
    /// key (`llmvault-ingest-1-`): that was the public key alone, which
    /// anyone who can read the file has, so it is no proof of anything.
    /// Ask the vault's key holder for the current key
    /// ([`Vault::ingest_key`](crate::Vault::ingest_key)).
    pub fn from_text(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.starts_with(LEGACY_PREFIX) {
            return Err(Error::InvalidInput {
                what: "ingest key",
                reason: "a format-1 ingest key (llmvault-ingest-1-) is only the vault's public \
                         key and proves nothing; ask the vault's key holder for the current one"
                    .into(),
            });
        }
        let bad = || Error::InvalidInput {
            what: "ingest key",
            reason: format!("expected {TEXT_PREFIX} and 128 hex digits"),
        };
        let hex = text.strip_prefix(TEXT_PREFIX).ok_or_else(bad)?;
        if hex.len() != 4 * KEY_LEN || !hex.is_ascii() {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad());
        let mut public = [0u8; 32];
        for (i, b) in public.iter_mut().enumerate() {
            *b = byte(i)?;
        }
        let mut mac = SecretKey::zeroed();
        for (i, b) in mac.expose_mut().iter_mut().enumerate() {
            *b = byte(KEY_LEN + i)?;
        }
        Ok(Self { public, mac })
    }
}

impl std::str::FromStr for IngestKey {
    type Err = Error;

    /// As [`IngestKey::from_text`].
    fn from_str(s: &str) -> Result<Self> {
        Self::from_text(s)
    }
}

impl fmt::Debug for IngestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestKey").finish_non_exhaustive()
    }
}

/// The AAD of the ingest MAC secret wrapped by the KEK (FORMAT.md §4):
/// bound to the public key, so the two rows can only be swapped together.
pub(crate) fn ingest_mac_aad(public: &[u8; 32]) -> Vec<u8> {
    let mut aad = INGEST_MAC_LABEL.to_vec();
    aad.extend_from_slice(public);
    aad
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
/// fn peek(ingestor: &llmvault::ingest::Ingestor, id: llmvault::RecordId) {
///     let _ = ingestor.get(id); // an ingestor cannot read
/// }
/// ```
pub struct Ingestor {
    store: Tables,
    public: PublicKey,
    mac: IngestMac,
    /// The vault's `ingest_public` and `ingest_mac` rows as they were when
    /// the key was checked: each write checks they still are.
    rows: (Vec<u8>, Vec<u8>),
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
    /// [`Error::WrongKey`] if `key` is not this vault's current ingest key:
    /// another vault's, one replaced by
    /// [`Vault::rotate_ingest_key`](crate::Vault::rotate_ingest_key), or
    /// any key for a vault that has not issued one since format 1.
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
        Self::open_in_with_options(Storage::sqlite(path), key, options)
    }

    /// As [`Ingestor::open`], for a vault in `storage`.
    ///
    /// # Errors
    /// As [`Ingestor::open`].
    pub fn open_in(storage: impl Borrow<Storage>, key: &IngestKey) -> Result<Self> {
        Self::open_in_with_options(storage, key, VaultOptions::default())
    }

    /// As [`Ingestor::open_with_options`], for a vault in `storage`.
    ///
    /// # Errors
    /// As [`Ingestor::open`].
    pub fn open_in_with_options(
        storage: impl Borrow<Storage>,
        key: &IngestKey,
        options: impl Borrow<VaultOptions>,
    ) -> Result<Self> {
        let options = options.borrow();
        options.retention.validate()?;
        let store = Tables::new(storage.borrow().open(options.page_cache_mib)?);
        crate::vault::check_header(&store.meta()?.header)?;
        let public = store.meta_value(META_INGEST_PUBLIC)?.unwrap_or_default();
        let mac_row = store.meta_value(META_INGEST_MAC)?.unwrap_or_default();
        let mac = key.mac();
        // The MAC secret is checked against the check value beside its
        // wrapped copy: a key whose secret is not the vault's would stage
        // records that take-in refuses, so refuse it here instead.
        let checked = split_mac_row(&mac_row)
            .is_some_and(|(_, check)| mac.verify_check(key.public_bytes(), check));
        if public != key.public_bytes()[..] || !checked {
            return Err(Error::WrongKey);
        }
        Ok(Self {
            store,
            public: key.public(),
            mac,
            rows: (public, mac_row),
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
        let mut txn = self.store.write(Durability::Durable)?;
        // A rotated ingest key: records sealed now would be refused.
        if txn.meta_value(META_INGEST_PUBLIC)?.as_deref() != Some(&self.rows.0[..])
            || txn.meta_value(META_INGEST_MAC)?.as_deref() != Some(&self.rows.1[..])
        {
            return Err(Error::KeyChanged);
        }
        // Above the vault's high-water mark as the row shows it: take-in
        // refuses ids at or below it, and the counter may have been rewound.
        let above = txn
            .meta_value(crate::vault::META_HIGH_WATER)?
            .and_then(|row| crate::vault::high_water_clear_value(&row))
            .and_then(|mark| mark.checked_add(1))
            .unwrap_or(1);
        let first = txn.allocate_record_ids(staged.len() as u64, above)?;
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
                    txn.insert_ingest_key(IngestKeyRow {
                        id: key_id,
                        not_after_ms,
                        wrapped: wrap::wrap_to(&self.public, &secret, &aad),
                    })?;
                    (
                        Arc::new(DataKey::new(key_id, &secret)),
                        self.max_records_per_key,
                    )
                }
            };
            let binding = IngestBinding { id, expires_at_ms };
            let mut sealed =
                seal::seal(&key, &binding, plaintext).map_err(|_| crate::vault::too_large())?;
            let slot = StagedSlot {
                id: id.as_u64(),
                key_id: key.id,
                expires_at_ms,
            };
            let proof = self.mac.prove(&slot, &sealed);
            sealed.extend_from_slice(&proof);
            txn.insert_ingested(IngestRow {
                id: slot.id,
                key_id: slot.key_id,
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
        f.debug_struct("Ingestor").finish_non_exhaustive()
    }
}
