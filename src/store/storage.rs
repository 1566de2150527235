//! [`Storage`]: which backend holds a vault, and its settings.

use std::fmt;
use std::path::{Path, PathBuf};

use super::Backend;
use super::sqlite::{SqliteBackend, remove_database};
use crate::error::Result;

/// Default page cache of a SQLite vault's writer connection, in MiB. It
/// holds file pages as stored: sealed records, wrapped keys, never
/// plaintext.
pub const DEFAULT_PAGE_CACHE_MIB: u32 = 16;

/// Largest page cache [`Storage::page_cache_mib`] accepts (1 TiB); larger
/// values are clamped.
const MAX_PAGE_CACHE_MIB: u32 = 1 << 20;

/// Where a vault's rows are kept: today one SQLite file. Holds no secret;
/// cheap to clone.
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
}

#[derive(Clone)]
enum Place {
    Sqlite {
        path: PathBuf,
        page_cache_mib: Option<u32>,
    },
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
        }
    }

    /// An empty vault store in memory, gone when the last clone of it is
    /// dropped; clones share it, so a vault created in it can be opened
    /// again. For the crate's own tests (`internals` feature).
    #[cfg(feature = "internals")]
    #[doc(hidden)]
    pub fn memory() -> Self {
        Self {
            place: Place::Memory(std::sync::Arc::default()),
        }
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
            #[cfg(feature = "internals")]
            Place::Memory(_) => {}
        }
        self
    }

    /// Whether something is already where a new vault would go.
    pub(crate) fn is_taken(&self) -> bool {
        match &self.place {
            Place::Sqlite { path, .. } => path.exists(),
            #[cfg(feature = "internals")]
            Place::Memory(m) => m.is_created(),
        }
    }

    /// Makes the storage of a new vault, its tables empty. `page_cache_mib`
    /// comes from the deprecated option when the storage does not set it.
    pub(crate) fn create(&self, page_cache_mib: Option<u32>) -> Result<Box<dyn Backend>> {
        match &self.place {
            Place::Sqlite {
                path,
                page_cache_mib: own,
            } => Ok(Box::new(SqliteBackend::create(
                path,
                cache(*own, page_cache_mib),
            )?)),
            #[cfg(feature = "internals")]
            Place::Memory(m) => {
                m.create()?;
                Ok(Box::new(std::sync::Arc::clone(m)))
            }
        }
    }

    /// Opens the storage of an existing vault.
    pub(crate) fn open(&self, page_cache_mib: Option<u32>) -> Result<Box<dyn Backend>> {
        match &self.place {
            Place::Sqlite {
                path,
                page_cache_mib: own,
            } => Ok(Box::new(SqliteBackend::open(
                path,
                cache(*own, page_cache_mib),
            )?)),
            #[cfg(feature = "internals")]
            Place::Memory(m) => {
                m.check_created()?;
                Ok(Box::new(std::sync::Arc::clone(m)))
            }
        }
    }

    /// Removes what a create that failed half-way made (best effort).
    pub(crate) fn discard(&self) {
        match &self.place {
            Place::Sqlite { path, .. } => remove_database(path),
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
        match &self.place {
            Place::Sqlite {
                path,
                page_cache_mib,
            } => f
                .debug_struct("Storage::Sqlite")
                .field("path", path)
                .field("page_cache_mib", page_cache_mib)
                .finish(),
            #[cfg(feature = "internals")]
            Place::Memory(_) => f.write_str("Storage::Memory"),
        }
    }
}
