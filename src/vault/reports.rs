//! What maintenance calls report back.

/// The outcome of [`Vault::purge_expired`](crate::Vault::purge_expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Expired records deleted.
    pub records: usize,
    /// Data keys destroyed because every record they sealed has expired.
    pub keys_destroyed: usize,
}

/// The outcome of [`Vault::erase_subject`](crate::Vault::erase_subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EraseReport {
    /// The subject's records deleted.
    pub records: usize,
    /// The subject's data keys destroyed.
    pub keys_destroyed: usize,
}

/// The outcome of [`Vault::verify`](crate::Vault::verify): every stored
/// key and record authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records that authenticated (live and expired).
    pub records: usize,
    /// Of those, records past their expiry that a purge will remove.
    pub expired: usize,
    /// Data keys that authenticated.
    pub keys: usize,
    /// Staged records that take-in refused and set aside (FORMAT.md §12):
    /// no valid proof (forged, or staged under an ingest key since
    /// rotated, or by a format-1 ingestor), an id the vault used before,
    /// an expiry beyond the vault's maximum TTL, or a record that does not
    /// open or is not one `put` would store. They are never read, and a
    /// purge deletes them. Not zero means someone staged what the vault
    /// would not accept: see the `IngestSetAside` audit entries.
    pub set_aside: usize,
    /// Records whose data key is gone: with the keys apart
    /// ([`Storage::keys_in`](crate::Storage::keys_in)), records put back
    /// from a backup of the record store after an erasure or a purge
    /// destroyed their keys. Not counted in `records`; they read as
    /// [`Error::KeyDestroyed`](crate::Error::KeyDestroyed), never as
    /// content, and the next purge removes them.
    pub key_destroyed: usize,
}
