//! Key-less maintenance: enforcing retention without ever holding a
//! secret. A scheduled job can purge expired records (their expiry times
//! are in clear by design) and read counts, nothing else.

use std::borrow::Borrow;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use super::{PurgeReport, Vault};
use crate::audit::Newest;
use crate::clock::{Clock, SystemClock};
use crate::codec::{from_millis, to_millis};
use crate::error::Result;
use crate::store::{Durability, MaintenanceNote, Storage};
use crate::tables::Tables;

/// Counts and sizes of a vault, visible without its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VaultStats {
    /// Records stored (expired ones included until purged).
    pub records: u64,
    /// Of those, records past their expiry.
    pub expired: u64,
    /// Bytes of sealed records.
    pub sealed_bytes: u64,
    /// The earliest expiry among stored records.
    pub oldest_expiry: Option<SystemTime>,
    /// Data keys stored.
    pub keys: u64,
    /// Audit entries.
    pub audit_entries: u64,
}

/// A vault opened without its key: see [`Vault::open_for_maintenance`].
pub struct Maintenance {
    store: Tables,
    clock: Arc<dyn Clock>,
}

impl Vault {
    /// Opens a vault without its key, for retention jobs: the handle can
    /// only [`purge_expired`](Maintenance::purge_expired) and read
    /// [`stats`](Maintenance::stats).
    ///
    /// # Security
    /// It cannot MAC audit entries, so it records what it did in clear (a
    /// time and two counts, FORMAT.md §8); the next open with the key
    /// folds those notes into the audit chain as `MaintenancePurge`
    /// entries by the actor `"maintenance"`.
    ///
    /// # Errors
    /// [`Error::Corrupt`](crate::Error::Corrupt) or
    /// [`Error::UnsupportedVersion`](crate::Error::UnsupportedVersion) for a
    /// file that is not a vault this build reads.
    pub fn open_for_maintenance(path: impl AsRef<Path>) -> Result<Maintenance> {
        Self::open_for_maintenance_in(Storage::sqlite(path))
    }

    /// As [`Vault::open_for_maintenance`], for a vault in `storage`.
    ///
    /// # Errors
    /// As [`Vault::open_for_maintenance`].
    pub fn open_for_maintenance_in(storage: impl Borrow<Storage>) -> Result<Maintenance> {
        let store = Tables::new(storage.borrow().open(None)?);
        super::header::Header::parse(&store.meta()?.header)?;
        Ok(Maintenance {
            store,
            clock: Arc::new(SystemClock),
        })
    }

    /// Counts and sizes (what [`Maintenance::stats`] sees, too).
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if the counts cannot be read.
    pub fn stats(&self) -> Result<VaultStats> {
        stats(&self.store, self.now_ms())
    }
}

impl Maintenance {
    /// Uses `clock` instead of the system clock (for tests and simulations).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Deletes expired records and destroys keys whose epoch has ended,
    /// exactly as [`Vault::purge_expired`], and notes it for the audit log.
    ///
    /// # Clock
    /// Refused if the clock reads earlier than the latest time this job
    /// can see: earlier maintenance notes not yet folded in, the newest
    /// audit entry, and the time the last keyed purge checked against.
    /// None of them is authenticated without the key, and a clock set
    /// forward purges early: see `docs/DESIGN.md`, "Key-less maintenance".
    ///
    /// # Errors
    /// [`Error::ClockBehind`](crate::Error::ClockBehind) if the clock is
    /// behind; [`Error::Busy`](crate::Error::Busy) or
    /// [`Error::Storage`](crate::Error::Storage). Then nothing was deleted.
    pub fn purge_expired(&self) -> Result<PurgeReport> {
        let mut txn = self.store.write(Durability::Scrubbed)?;
        let now_ms = to_millis(self.clock.now());
        // Without the key nothing here can be authenticated: this catches
        // a clock set back by mistake, not one set back on purpose.
        Newest::check(now_ms, Newest::clear(&mut txn)?)?;
        let records = txn.delete_expired(now_ms)?;
        let keys = txn.delete_keys_ended(now_ms)?;
        txn.note_maintenance(&MaintenanceNote {
            at_ms: now_ms,
            records: records as u64,
            keys: keys.len() as u64,
        })?;
        txn.commit()?;
        Ok(PurgeReport {
            records,
            keys_destroyed: keys.len(),
        })
    }

    /// Counts and sizes.
    ///
    /// # Errors
    /// [`Error::Storage`](crate::Error::Storage) if they cannot be read.
    pub fn stats(&self) -> Result<VaultStats> {
        stats(&self.store, to_millis(self.clock.now()))
    }
}

fn stats(store: &Tables, now_ms: i64) -> Result<VaultStats> {
    let s = store.stats(now_ms)?;
    Ok(VaultStats {
        records: s.records,
        expired: s.expired,
        sealed_bytes: s.sealed_bytes,
        oldest_expiry: s.oldest_expiry_ms.map(from_millis),
        keys: s.keys,
        audit_entries: s.audit_entries,
    })
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintenance").finish_non_exhaustive()
    }
}
