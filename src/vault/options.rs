//! How a vault is created and opened.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::audit::Actor;
use crate::clock::{Clock, SystemClock};
use crate::kdf::KdfParams;
use crate::retention::RetentionPolicy;

/// Default bound on records sealed by one data key before it is retired:
/// 2^24, far below the 2^32 random-nonce limit NIST sets for AES-GCM.
pub const DEFAULT_MAX_RECORDS_PER_KEY: u64 = 1 << 24;

/// Default for [`VaultOptions::key_cache`]: 4,096 unwrapped data keys,
/// about 4 MiB (docs/BENCHMARKS.md, "Bounded key cache"). A key per
/// subject and epoch, so this is the number of subjects whose records are
/// read or written often; a miss costs one unwrap (an AES-GCM open of 32
/// bytes and a key schedule, a few microseconds), a fraction of a `get`.
pub const DEFAULT_KEY_CACHE: usize = 4096;

/// Largest [`VaultOptions::max_records_per_key`] accepted: 2^32, NIST SP
/// 800-38D §8.3's limit on AES-GCM invocations with random 96-bit nonces
/// under one key.
pub const MAX_RECORDS_PER_KEY_LIMIT: u64 = 1 << 32;

/// Settings for [`Vault::create`](crate::Vault::create) and
/// [`Vault::open`](crate::Vault::open). Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use llmvault::{KdfParams, VaultOptions};
///
/// let opts = VaultOptions::default()
///     .kdf(KdfParams::new(64 * 1024, 3, 1)?)
///     .default_ttl(Duration::from_secs(30 * 86_400))
///     .max_ttl(Duration::from_secs(365 * 86_400));
/// # Ok::<(), llmvault::Error>(())
/// ```
#[derive(Clone)]
pub struct VaultOptions {
    pub(crate) kdf: KdfParams,
    pub(crate) max_kdf: KdfParams,
    pub(crate) retention: RetentionPolicy,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_records_per_key: u64,
    pub(crate) actor: Actor,
    pub(crate) audit_read_batch: usize,
    pub(crate) key_cache: usize,
    pub(crate) detector: crate::pii::Detector,
    /// Set by the deprecated [`VaultOptions::page_cache_mib`]; a
    /// [`Storage`](crate::Storage) that sets its own wins.
    pub(crate) page_cache_mib: Option<u32>,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            kdf: KdfParams::default(),
            max_kdf: KdfParams::DEFAULT_OPEN_LIMIT,
            retention: RetentionPolicy::default(),
            clock: Arc::new(SystemClock),
            max_records_per_key: DEFAULT_MAX_RECORDS_PER_KEY,
            actor: Actor::default(),
            audit_read_batch: 1,
            key_cache: DEFAULT_KEY_CACHE,
            detector: crate::pii::Detector::default(),
            page_cache_mib: None,
        }
    }
}

impl VaultOptions {
    /// Argon2id parameters for a new vault. An existing vault is opened
    /// with the parameters in its header, and
    /// [`Vault::change_key`](crate::Vault::change_key) never goes below
    /// them (it takes the stronger of these and the header's, each
    /// parameter on its own).
    pub fn kdf(mut self, params: KdfParams) -> Self {
        self.kdf = params;
        self
    }

    /// The most Argon2id work an existing vault's header may ask of
    /// [`Vault::open`](crate::Vault::open) (default
    /// [`KdfParams::DEFAULT_OPEN_LIMIT`]: 1 GiB, 8 passes, 16 lanes). A
    /// header that asks for more in any parameter is refused with
    /// [`Error::KdfParams`](crate::Error::KdfParams), naming what it asked
    /// and what is allowed, before any memory is allocated: a planted
    /// header cannot make an open take minutes and gigabytes. Raise it for
    /// vaults made with stronger settings on purpose.
    pub fn max_kdf(mut self, limit: KdfParams) -> Self {
        self.max_kdf = limit;
        self
    }

    /// Retention of records stored without their own TTL (default 30 days).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.retention.default_ttl = ttl;
        self
    }

    /// The longest retention a record may ask for (default: no ceiling).
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.retention.max_ttl = Some(ttl);
        self
    }

    /// Length of a retention epoch (default one day): records of one subject
    /// expiring in the same epoch share a data key, destroyed when the epoch
    /// ends. Shorter epochs destroy keys sooner and create more of them.
    pub fn retention_epoch(mut self, epoch: Duration) -> Self {
        self.retention.epoch = epoch;
        self
    }

    /// The clock that retention reads (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Who plain `Vault` calls are audited as (default: `"default"`).
    /// Use [`Vault::as_actor`](crate::Vault::as_actor) for per-call actors.
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }

    /// **Weakens the audit guarantee.** Write the audit entries of reads
    /// `n` at a time instead of one transaction per read (default 1).
    /// Reads get much faster; in return a read returns before its entry
    /// is written, and a crash can lose up to `n - 1` read entries (writes
    /// are always audited in their own transaction). Waiting entries go
    /// out with the next write, and when the vault is dropped.
    pub fn danger_audit_read_batch(mut self, n: usize) -> Self {
        self.audit_read_batch = n;
        self
    }

    /// The detector [`Vault::pseudonymize`](crate::Vault::pseudonymize)
    /// uses (default: [`Detector::default`](crate::pii::Detector)), e.g.
    /// one with a customer list added as terms.
    pub fn pii_detector(mut self, detector: crate::pii::Detector) -> Self {
        self.detector = detector;
        self
    }

    /// The SQLite page cache, in MiB: now a setting of the storage,
    /// [`Storage::page_cache_mib`](crate::Storage::page_cache_mib), which
    /// wins when both are set. Still applied by the calls that take a
    /// path (and by the `*_in` calls when their storage sets none).
    #[deprecated(
        since = "0.1.0",
        note = "use `Storage::sqlite(path).page_cache_mib(mib)`"
    )]
    pub fn page_cache_mib(mut self, mib: u32) -> Self {
        self.page_cache_mib = Some(mib);
        self
    }

    /// How many unwrapped data keys a handle keeps in memory (default
    /// [`DEFAULT_KEY_CACHE`]); past it, the least recently used one is
    /// dropped (and wiped once no call holds it) and unwrapped again when
    /// next needed. At least 1; `create` and `open` refuse 0 with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput).
    pub fn key_cache(mut self, keys: usize) -> Self {
        self.key_cache = keys;
        self
    }

    /// How many records one data key may seal before a fresh key replaces
    /// it (default [`DEFAULT_MAX_RECORDS_PER_KEY`]). At least 1, at most
    /// [`MAX_RECORDS_PER_KEY_LIMIT`]; `create` and `open` refuse other
    /// values with [`Error::InvalidInput`](crate::Error::InvalidInput).
    pub fn max_records_per_key(mut self, n: u64) -> Self {
        self.max_records_per_key = n;
        self
    }
}

impl fmt::Debug for VaultOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultOptions")
            .field("kdf", &self.kdf)
            .field("max_kdf", &self.max_kdf)
            .field("retention", &self.retention)
            .field("max_records_per_key", &self.max_records_per_key)
            .field("audit_read_batch", &self.audit_read_batch)
            .field("key_cache", &self.key_cache)
            .field("page_cache_mib", &self.page_cache_mib)
            .finish_non_exhaustive()
    }
}
