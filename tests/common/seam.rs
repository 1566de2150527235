//! Where the tests meet the storage seam (issue 14): a [`Storage`] per
//! [`Backend`], and the `*_in` constructors, named as in the library.
//!
//! SEAM: until `llmvault::Storage` and the `*_in` constructors land, a
//! storage is the path of a SQLite file, `Backend::Memory` runs on SQLite
//! too, and each function calls the path-based API. To switch, replace
//! the line under each `// SEAM:` comment by the comment's text, then
//! delete `mod path_storage`. Nothing outside this file changes.

use std::borrow::Borrow;
use std::path::Path;

use llmvault::{
    IngestKey, Ingestor, KeySource, Maintenance, RecoveryShare, Result, Vault, VaultOptions,
};

// SEAM: pub use llmvault::Storage;
pub use path_storage::Storage;

/// Stand-in for `llmvault::Storage` until it exists: a SQLite file.
mod path_storage {
    #[derive(Clone, Debug)]
    pub struct Storage(pub std::path::PathBuf);
}

/// The backends every suite listed in `on_each_backend!` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Memory,
}

/// Fresh storage for a new vault: the SQLite file at `path`, or an empty
/// in-memory store (which leaves `path` untouched).
pub fn storage(backend: Backend, path: &Path) -> Storage {
    match backend {
        // SEAM: Backend::Sqlite => Storage::sqlite(path),
        Backend::Sqlite => Storage(path.to_owned()),
        // SEAM: Backend::Memory => Storage::memory(),
        Backend::Memory => Storage(path.to_owned()),
    }
}

pub fn create_in(
    s: &Storage,
    key: impl Borrow<KeySource>,
    opts: impl Borrow<VaultOptions>,
) -> Result<Vault> {
    // SEAM: Vault::create_in(s, key, opts)
    Vault::create(&s.0, key, opts)
}

pub fn open_in(
    s: &Storage,
    key: impl Borrow<KeySource>,
    opts: impl Borrow<VaultOptions>,
) -> Result<Vault> {
    // SEAM: Vault::open_in(s, key, opts)
    Vault::open(&s.0, key, opts)
}

pub fn open_with_shares_in(
    s: &Storage,
    shares: &[RecoveryShare],
    opts: impl Borrow<VaultOptions>,
) -> Result<Vault> {
    // SEAM: Vault::open_with_shares_in(s, shares, opts)
    Vault::open_with_shares_and_options(&s.0, shares, opts)
}

pub fn open_for_maintenance_in(s: &Storage) -> Result<Maintenance> {
    // SEAM: Vault::open_for_maintenance_in(s)
    Vault::open_for_maintenance(&s.0)
}

pub fn ingestor_in(s: &Storage, key: &IngestKey) -> Result<Ingestor> {
    // SEAM: Ingestor::open_in(s, key)
    Ingestor::open(&s.0, key)
}

pub fn ingestor_in_with_options(
    s: &Storage,
    key: &IngestKey,
    opts: impl Borrow<VaultOptions>,
) -> Result<Ingestor> {
    // SEAM: Ingestor::open_in_with_options(s, key, opts)
    Ingestor::open_with_options(&s.0, key, opts)
}

/// Runs each listed test body, `fn name(backend: Backend)`, once per
/// backend, as the tests `name::sqlite` and `name::memory`.
#[macro_export]
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite)
                }

                #[test]
                fn memory() {
                    super::$name($crate::common::Backend::Memory)
                }
            }
        )*
    };
}
