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
    /// A schema of its own in the test server's database
    /// (`LLMVAULT_TEST_POSTGRES`, see `.ci/postgres`).
    Postgres,
    /// The records in one schema of the test server, the keys in another.
    SplitPostgres,
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
        Backend::Postgres => postgres_storage(path, "r"),
        Backend::SplitPostgres => postgres_storage(path, "r").keys_in(postgres_storage(path, "k")),
    }
}

/// The test server's connection string and CA file, if one is set up.
/// Under `CI=true` a missing server is a failure, never a skip.
pub fn postgres_server() -> Option<(String, String)> {
    let conninfo = std::env::var("LLMVAULT_TEST_POSTGRES").ok();
    let ca = std::env::var("LLMVAULT_TEST_POSTGRES_CA").ok();
    match (conninfo, ca) {
        (Some(conninfo), Some(ca)) => Some((conninfo, ca)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true and no PostgreSQL server: run the tests under `bash .ci/postgres` \
             (LLMVAULT_TEST_POSTGRES and LLMVAULT_TEST_POSTGRES_CA)"
        ),
        _ => None,
    }
}

/// Whether `backend` can run here; prints why a PostgreSQL test is skipped.
pub fn available(backend: Backend) -> bool {
    match backend {
        Backend::Postgres | Backend::SplitPostgres if postgres_server().is_none() => {
            eprintln!("skipped: no PostgreSQL server (run under `bash .ci/postgres`)");
            false
        }
        _ => true,
    }
}

/// The storage in the test server for the vault a test keeps at `path`:
/// a schema named after the path, so every handle a test opens there (in
/// this process or another) finds the same vault, and no two tests meet.
pub fn postgres_storage(path: &Path, role: &str) -> Storage {
    let (conninfo, ca) = postgres_server().unwrap_or_default();
    Storage::postgres(conninfo)
        .ca_file(ca)
        .schema(postgres_schema(path, role))
}

/// The schema of the vault a test keeps at `path` (`role` "r" for the
/// records, "k" for the keys when apart).
pub fn postgres_schema(path: &Path, role: &str) -> String {
    // FNV-1a of the path: short, stable across processes.
    let hash = path
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("t{hash:016x}_{role}")
}

/// Where a split SQLite vault at `path` keeps its keys store.
pub fn keys_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".keys");
    name.into()
}

/// Runs each listed test body, `fn name(backend: Backend)`, once per
/// backend, as the tests `name::sqlite`, `name::memory`,
/// `name::split_sqlite`, `name::split_memory`, `name::postgres` and
/// `name::split_postgres` (the last two against the server `.ci/postgres`
/// starts; skipped without one, failed under `CI=true`).
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

                #[test]
                fn postgres() {
                    if $crate::common::available($crate::common::Backend::Postgres) {
                        super::$name($crate::common::Backend::Postgres)
                    }
                }

                #[test]
                fn split_postgres() {
                    if $crate::common::available($crate::common::Backend::SplitPostgres) {
                        super::$name($crate::common::Backend::SplitPostgres)
                    }
                }
            }
        )*
    };
}

/// Runs each listed test body, `fn name(backend: Backend)`, on the two
/// backends a tamper test can reach with SQL: `name::sqlite` and
/// `name::postgres` (skipped without a server, failed under `CI=true`).
#[macro_export]
macro_rules! on_sql_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite)
                }

                #[test]
                fn postgres() {
                    if $crate::common::available($crate::common::Backend::Postgres) {
                        super::$name($crate::common::Backend::Postgres)
                    }
                }
            }
        )*
    };
}
