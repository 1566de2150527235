//! Where the tests meet the storage seam: a [`Storage`] per [`Backend`],
//! and the macro that runs a test body on each. With the keys apart
//! (`Storage::keys_in`) each backend is also run split in two stores, so
//! every suite shows that keeping the keys apart changes no behaviour.

use std::path::Path;

pub use llmvault::Storage;

/// The backends every suite listed in `on_each_backend!` runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Memory,
    /// The records in the SQLite file at the path, the keys in a second
    /// file beside it.
    SplitSqlite,
    /// The records and the keys in two in-memory stores.
    SplitMemory,
}

/// Fresh storage for a new vault: the SQLite file at `path` (and, split,
/// its keys store beside it), or empty in-memory stores (which leave
/// `path` untouched).
pub fn storage(backend: Backend, path: &Path) -> Storage {
    match backend {
        Backend::Sqlite => Storage::sqlite(path),
        Backend::Memory => Storage::memory(),
        Backend::SplitSqlite => Storage::sqlite(path).keys_in(Storage::sqlite(keys_path(path))),
        Backend::SplitMemory => Storage::memory().keys_in(Storage::memory()),
    }
}

/// Where a split SQLite vault at `path` keeps its keys store.
pub fn keys_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".keys");
    name.into()
}

/// Runs each listed test body, `fn name(backend: Backend)`, once per
/// backend, as the tests `name::sqlite`, `name::memory`,
/// `name::split_sqlite` and `name::split_memory`.
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

                #[test]
                fn split_sqlite() {
                    super::$name($crate::common::Backend::SplitSqlite)
                }

                #[test]
                fn split_memory() {
                    super::$name($crate::common::Backend::SplitMemory)
                }
            }
        )*
    };
}
