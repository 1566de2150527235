//! [`Storage`]: which backend holds a vault, and its settings.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Backend;
use super::split::{SplitBackend, read_split_row};
use super::sqlite::{SqliteBackend, remove_database};
use crate::error::{Error, Result};

/// Default page cache of a SQLite vault's writer connection, in MiB. It
/// holds file pages as stored: sealed records, wrapped keys, never
/// plaintext.
pub const DEFAULT_PAGE_CACHE_MIB: u32 = 16;

/// Largest page cache [`Storage::page_cache_mib`] accepts (1 TiB); larger
/// values are clamped.
const MAX_PAGE_CACHE_MIB: u32 = 1 << 20;

/// Where a vault's rows are kept: one SQLite file, or the records in one
/// and the keys in another ([`Storage::keys_in`]). Holds no secret; cheap
/// to clone.
///
/// [`Vault::create`](crate::Vault::create) and
/// [`Vault::open`](crate::Vault::open) take a path and mean
/// `Storage::sqlite(path)`; the `*_in` calls take a `Storage`, for its
/// settings:
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use llmvault::{KdfParams, KeySource, Storage, Vault, VaultOptions};
/// let storage = Storage::sqlite(dir.path().join("log.vault")).page_cache_mib(64);
/// let opts = VaultOptions::default().kdf(KdfParams::minimum());
/// let vault = Vault::create_in(&storage, KeySource::passphrase("pw"), &opts)?;
/// # Ok::<(), llmvault::Error>(())
/// ```
#[derive(Clone)]
pub struct Storage {
    place: Place,
    /// Where the keys are kept, if apart from the records.
    keys: Option<Place>,
}

#[derive(Clone)]
enum Place {
    Sqlite {
        path: PathBuf,
        page_cache_mib: Option<u32>,
    },
    #[cfg(feature = "postgres")]
    Postgres(super::postgres::PostgresPlace),
    #[cfg(feature = "internals")]
    Memory(std::sync::Arc<super::memory::MemoryBackend>),
}

impl Storage {
    /// One SQLite database file at `path` (SQLite's `-wal` and `-shm`
    /// files sit beside it).
    pub fn sqlite(path: impl AsRef<Path>) -> Self {
        Self {
            place: Place::Sqlite {
                path: path.as_ref().to_path_buf(),
                page_cache_mib: None,
            },
            keys: None,
        }
    }

    /// A vault in a PostgreSQL database (feature `postgres`), shared by
    /// every process that opens it: many app servers log into one vault
    /// (README, "Many app servers"). `conninfo` is a `postgres://` URL or
    /// a `host=… dbname=…` string, as libpq takes them; it may carry the
    /// password, and is never printed (`Debug` shows hosts and database).
    ///
    /// TLS is on when a CA file is given ([`Storage::ca_file`]), and the
    /// server's certificate must chain to it and name the host
    /// (`sslmode=verify-full`, whatever the string says). Without one,
    /// only a server on this machine (`localhost`, a loopback address, a
    /// Unix socket) is reached, in clear; anything else, or
    /// `sslmode=require` without a CA file, is [`Error::InvalidInput`].
    ///
    /// The server sees what a SQLite vault file shows (FORMAT.md §10):
    /// sealed records, wrapped keys, keyed tags, expiry times.
    ///
    /// ```no_run
    /// use llmvault::{KeySource, Storage, Vault, VaultOptions};
    /// let storage = Storage::postgres("host=db.internal user=app dbname=llm")
    ///     .schema("llmvault")
    ///     .ca_file("/etc/llmvault/db-ca.pem")
    ///     .pool_size(8);
    /// let vault = Vault::open_in(&storage, KeySource::passphrase("pw"), &VaultOptions::default())?;
    /// # Ok::<(), llmvault::Error>(())
    /// ```
    #[cfg(feature = "postgres")]
    pub fn postgres(conninfo: impl Into<String>) -> Self {
        Self {
            place: Place::Postgres(super::postgres::PostgresPlace::new(conninfo.into())),
            keys: None,
        }
    }

    /// PostgreSQL: the schema that holds the vault's tables (default
    /// `llmvault`; made if missing). Several vaults can share a database,
    /// one schema each. Lowercase letters, digits and `_`; anything else
    /// fails the open with [`Error::InvalidInput`].
    #[cfg(feature = "postgres")]
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        if let Place::Postgres(p) = &mut self.place {
            p.schema = schema.into();
        }
        self
    }

    /// PostgreSQL: the PEM file of the CA certificate(s) the server's
    /// certificate must chain to; turns TLS on (rustls).
    #[cfg(feature = "postgres")]
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Self {
        if let Place::Postgres(p) = &mut self.place {
            p.ca_file = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// PostgreSQL: connections kept open between calls (default 4; at
    /// least 1). More are opened while more threads call at once and
    /// closed after; each handle also keeps one for its read log.
    #[cfg(feature = "postgres")]
    pub fn pool_size(mut self, connections: usize) -> Self {
        if let Place::Postgres(p) = &mut self.place {
            p.pool_size = connections.max(1);
        }
        self
    }

    /// An empty vault store in memory, gone when the last clone of it is
    /// dropped; clones share it, so a vault created in it can be opened
    /// again. For the crate's own tests (`internals` feature).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn memory() -> Self {
        Self {
            place: Place::Memory(std::sync::Arc::default()),
            keys: None,
        }
    }

    /// Keeps the vault's keys in `keys`, apart from its records, which stay
    /// in `self` (DESIGN.md, "Keys apart"). The keys store holds the header,
    /// every wrapped key, the ingest and recovery material: everything that
    /// can unwrap a record. The record store holds the sealed records, the
    /// PII mappings and the audit log.
    ///
    /// An erasure or a purge destroys keys in the keys store; a backup of
    /// the record store taken before it then opens (with the current keys
    /// store) with those records unreadable, [`Error::KeyDestroyed`], and
    /// the next purge removes them. So back up the record store as usual
    /// and keep backups of the keys store no longer than your erasure
    /// deadline.
    ///
    /// The two stores are made together by
    /// [`Vault::create_in`](crate::Vault::create_in) and carry one vault
    /// id: any other pairing is refused with [`Error::StorageMismatch`].
    /// `keys`' own settings are kept; its own `keys_in`, if any, is not.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use llmvault::{KdfParams, KeySource, Storage, Vault, VaultOptions};
    /// let storage = Storage::sqlite(dir.path().join("records.vault"))
    ///     .keys_in(Storage::sqlite(dir.path().join("keys.vault")));
    /// let opts = VaultOptions::default().kdf(KdfParams::minimum());
    /// let key = KeySource::passphrase("pw");
    /// drop(Vault::create_in(&storage, &key, &opts)?);
    /// let vault = Vault::open_in(&storage, &key, &opts)?;
    /// # Ok::<(), llmvault::Error>(())
    /// ```
    pub fn keys_in(mut self, keys: Storage) -> Self {
        self.keys = Some(keys.place);
        self
    }

    /// SQLite: the page cache of the connection that writes and serves
    /// `get`, in MiB (default [`DEFAULT_PAGE_CACHE_MIB`]; SQLite allocates
    /// it as pages are read; clamped to 1 MiB – 1 TiB). Random reads run
    /// from memory once the vault file fits. It holds pages as stored on
    /// disk (sealed records), so a large cache keeps no plaintext in
    /// memory. Scans run on pooled readers with SQLite's default cache.
    pub fn page_cache_mib(mut self, mib: u32) -> Self {
        match &mut self.place {
            Place::Sqlite { page_cache_mib, .. } => {
                *page_cache_mib = Some(mib.clamp(1, MAX_PAGE_CACHE_MIB));
            }
            #[cfg(feature = "postgres")]
            Place::Postgres(_) => {}
            #[cfg(feature = "internals")]
            Place::Memory(_) => {}
        }
        self
    }

    /// Whether something is already where a new vault would go.
    pub(crate) fn is_taken(&self) -> bool {
        self.places().any(Place::is_taken)
    }

    /// Makes the storage of a new vault, its tables empty. `page_cache_mib`
    /// comes from the deprecated option when the storage does not set it.
    pub(crate) fn create(&self, page_cache_mib: Option<u32>) -> Result<Box<dyn Backend>> {
        let records = self.place.create(page_cache_mib)?;
        let Some(keys_place) = &self.keys else {
            return Ok(records);
        };
        let made = keys_place.create(None).and_then(|keys| {
            SplitBackend::mark_new(&*records, &*keys)?;
            SplitBackend::pair(records, keys)
        });
        match made {
            Ok(split) => Ok(Box::new(split)),
            Err(e) => {
                // The record store is ours (just made); the keys store too,
                // unless it was there before.
                self.place.discard();
                if !matches!(e, Error::AlreadyExists) {
                    keys_place.discard();
                }
                Err(e)
            }
        }
    }

    /// Opens the storage of an existing vault: with the keys apart, checks
    /// that the two stores are the halves of one vault; without, that the
    /// store is not one half of a split vault.
    pub(crate) fn open(&self, page_cache_mib: Option<u32>) -> Result<Box<dyn Backend>> {
        let records = self.place.open(page_cache_mib)?;
        match &self.keys {
            None if read_split_row(&*records)?.is_some() => Err(Error::StorageMismatch),
            None => Ok(records),
            Some(keys) => Ok(Box::new(SplitBackend::pair(records, keys.open(None)?)?)),
        }
    }

    /// Removes what a create that failed half-way made (best effort).
    pub(crate) fn discard(&self) {
        self.places().for_each(Place::discard);
    }

    fn places(&self) -> impl Iterator<Item = &Place> {
        std::iter::once(&self.place).chain(self.keys.as_ref())
    }
}

impl Place {
    fn is_taken(&self) -> bool {
        match self {
            Place::Sqlite { path, .. } => path.exists(),
            #[cfg(feature = "postgres")]
            Place::Postgres(p) => super::postgres::PostgresBackend::is_taken(p),
            #[cfg(feature = "internals")]
            Place::Memory(m) => m.is_created(),
        }
    }

    fn create(&self, page_cache_mib: Option<u32>) -> Result<Box<dyn Backend>> {
        match self {
            Place::Sqlite {
                path,
                page_cache_mib: own,
            } => Ok(Box::new(SqliteBackend::create(
                path,
                cache(*own, page_cache_mib),
            )?)),
            #[cfg(feature = "postgres")]
            Place::Postgres(p) => Ok(Box::new(super::postgres::PostgresBackend::create(p)?)),
            #[cfg(feature = "internals")]
            Place::Memory(m) => {
                m.create()?;
                Ok(Box::new(std::sync::Arc::clone(m)))
            }
        }
    }

    fn open(&self, page_cache_mib: Option<u32>) -> Result<Box<dyn Backend>> {
        match self {
            Place::Sqlite {
                path,
                page_cache_mib: own,
            } => Ok(Box::new(SqliteBackend::open(
                path,
                cache(*own, page_cache_mib),
            )?)),
            #[cfg(feature = "postgres")]
            Place::Postgres(p) => Ok(Box::new(super::postgres::PostgresBackend::open(p)?)),
            #[cfg(feature = "internals")]
            Place::Memory(m) => {
                m.check_created()?;
                Ok(Box::new(std::sync::Arc::clone(m)))
            }
        }
    }

    fn discard(&self) {
        match self {
            Place::Sqlite { path, .. } => remove_database(path),
            #[cfg(feature = "postgres")]
            Place::Postgres(p) => super::postgres::PostgresBackend::discard(p),
            #[cfg(feature = "internals")]
            Place::Memory(m) => m.discard(),
        }
    }
}

fn cache(own: Option<u32>, from_options: Option<u32>) -> u32 {
    own.or(from_options)
        .unwrap_or(DEFAULT_PAGE_CACHE_MIB)
        .clamp(1, MAX_PAGE_CACHE_MIB)
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.keys {
            None => self.place.fmt(f),
            Some(keys) => f
                .debug_struct("Storage")
                .field("records", &self.place)
                .field("keys", keys)
                .finish(),
        }
    }
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Sqlite {
                path,
                page_cache_mib,
            } => f
                .debug_struct("Storage::Sqlite")
                .field("path", path)
                .field("page_cache_mib", page_cache_mib)
                .finish(),
            #[cfg(feature = "postgres")]
            Place::Postgres(p) => p.fmt(f),
            #[cfg(feature = "internals")]
            Place::Memory(_) => f.write_str("Storage::Memory"),
        }
    }
}
