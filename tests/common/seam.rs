//! Where the tests meet the storage seam: a [`Storage`] per [`Backend`],
//! and the macro that runs a test body on each.

use std::path::Path;

pub use llmvault::Storage;

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
        Backend::Sqlite => Storage::sqlite(path),
        Backend::Memory => Storage::memory(),
    }
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
