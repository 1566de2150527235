//! The one error type every public call returns.

use std::time::{Duration, SystemTime};

use crate::record::RecordId;

/// Everything that can go wrong in a vault call, in terms a caller can act on.
///
/// No variant ever carries key material or decrypted content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key source does not open this vault: wrong passphrase, missing or
    /// wrong key file, or wrong raw key. A vault header that was altered
    /// also reads as a wrong key, since the two cannot be told apart
    /// without the key.
    #[error("wrong key: the passphrase, key file or raw key does not open this vault")]
    WrongKey,

    /// A sealed record failed authentication: its bytes, its bound metadata
    /// (expiry, conversation or subject tag) or its slot were changed.
    #[error("record {id} failed authentication: it was altered or moved")]
    Tampered {
        /// The record that failed.
        id: RecordId,
    },

    /// The audit log was altered: an entry was removed, changed, inserted
    /// or reordered, or its tail was cut off. `seq` is the first entry
    /// that does not verify (or the first missing one).
    #[error("audit log tampered at entry {seq}")]
    AuditTampered {
        /// The first bad (or missing) sequence number.
        seq: u64,
    },

    /// A wrapped data key failed authentication.
    #[error("data key {key_id} failed authentication: the keyring was altered")]
    KeyTampered {
        /// The stored id of the key that failed.
        key_id: u64,
    },

    /// The data key that sealed this record was destroyed (by a purge or an
    /// erasure): the record can never be read again.
    #[error("record {id} cannot be read: its data key was destroyed")]
    KeyDestroyed {
        /// The record whose key is gone.
        id: RecordId,
    },

    /// The record exists but its retention period has passed.
    #[error("record {id} expired (retention ended); it will be removed by the next purge")]
    Expired {
        /// The expired record.
        id: RecordId,
        /// When it expired.
        expired_at: SystemTime,
    },

    /// No record with this id is in the vault (never stored, purged or erased).
    #[error("record {id} not found")]
    NotFound {
        /// The id that was asked for.
        id: RecordId,
    },

    /// Argon2id parameters outside the accepted bounds, from a caller or
    /// from a vault header. Refused before any memory is allocated.
    #[error("kdf parameter {name} = {requested} is outside the allowed range {min}..={max}")]
    KdfParams {
        /// Which parameter: `memory_kib`, `iterations` or `parallelism`.
        name: &'static str,
        /// The value asked for.
        requested: u64,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
    },

    /// A record asked for a retention longer than the vault's maximum TTL.
    #[error("ttl of {requested:?} exceeds the vault's maximum of {max:?}")]
    TtlTooLong {
        /// The TTL asked for.
        requested: Duration,
        /// The vault's ceiling.
        max: Duration,
    },

    /// A caller-supplied value is not acceptable (empty id, zero TTL, …).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// What was wrong.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// The vault was written by a format version this build cannot read.
    #[error(
        "unsupported vault format version {found} (this build reads versions 1 to {supported})"
    )]
    UnsupportedVersion {
        /// The version found on disk.
        found: u16,
        /// The newest version this build reads (and the one it writes);
        /// it reads every version from 1 up to this one.
        supported: u16,
    },

    /// `Vault::create` was pointed at a path that already holds a file.
    #[error("a file already exists at the vault path; open it instead of creating")]
    AlreadyExists,

    /// A vault with its keys apart ([`Storage::keys_in`](crate::Storage::keys_in))
    /// was given a record store and a keys store that are not the two
    /// halves of one vault (another vault's, swapped, or a single-file
    /// vault on either side), or one half alone as a whole vault. Refused
    /// before any record was read; nothing was written.
    #[error(
        "the record store and the keys store are not the two halves of one vault          (swapped, another vault's, or one half opened alone)"
    )]
    StorageMismatch,

    /// The file is not a vault, or its structure (schema, header, envelope
    /// framing) is damaged beyond a single record.
    #[error("vault file is damaged or not a vault: {what}")]
    Corrupt {
        /// What was found wrong.
        what: String,
    },

    /// Another handle changed this vault's key since this one opened it;
    /// nothing was written. Open the vault again with the new key.
    #[error("the vault's key was changed by another handle; open it again")]
    KeyChanged,

    /// The call replaces the vault's KEK (issuing or revoking recovery
    /// shares), which must stay reachable from the vault's key, and this
    /// handle does not hold that key: it was opened with recovery shares.
    /// Nothing was written. Set a key with `Vault::change_key` first (the
    /// handle then holds it), or open the vault with its key.
    #[error(
        "this handle was opened with recovery shares and cannot replace the vault's KEK; \
         set a key with change_key first"
    )]
    KeySourceNeeded,

    /// The database is locked by another writer for longer than the busy
    /// timeout. Retrying later is safe: nothing was written.
    #[error("vault is busy (locked by another writer); retry")]
    Busy,

    /// The disk (or the database's size limit) is full. Nothing of the
    /// failed call was written; committed records stay readable, and
    /// writes work again once there is space.
    #[error("disk full: free space and retry; nothing of this call was written")]
    DiskFull,

    /// The storage backend failed (I/O error, full disk, …).
    #[error("storage error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A file the caller named (such as a key file) could not be read.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),

    /// The clock reads earlier than a time the vault has already recorded
    /// (the newest audit entry, or a key-less purge's note): a purge by it
    /// was refused and nothing was deleted. Correct the clock (of the host,
    /// or the `Clock` in the options) and purge again.
    #[error(
        "clock is behind the vault: it reads {} ms since the Unix epoch, but the vault \
         recorded {} ms; purge refused, nothing deleted",
        unix_ms(now),
        unix_ms(newest)
    )]
    ClockBehind {
        /// What the clock read.
        now: SystemTime,
        /// The newest time the vault had recorded.
        newest: SystemTime,
    },
}

fn unix_ms(t: &SystemTime) -> u128 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Shorthand for results of vault calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
