//! The key hierarchy: master → KEK (HKDF) → random data keys, stored only
//! wrapped by the KEK. A data key belongs to one scope — a subject (or
//! none) and a retention epoch — so that purging an epoch or erasing a
//! subject is destroying keys.

mod commitment;
mod kek;
mod keyring;
mod recovery;
mod tags;

pub(crate) use commitment::COMMITMENT_LEN;
pub(crate) use kek::{KEY_CHECK_LEN, Kek, WRAPPED_LEN};
pub(crate) use keyring::{DataKey, Keyring};
pub use recovery::RecoveryShare;
pub(crate) use recovery::{combine as combine_shares, recovery_kek, split as split_secret};
pub(crate) use tags::{IdTag, TAG_LEN as ID_TAG_LEN, TagKey};

/// AAD label for a wrapped data key (FORMAT.md §4).
const DATA_KEY_LABEL: &[u8] = b"llmvault/v1/data-key";
/// AAD label for the wrapped tag key (FORMAT.md §4).
pub(crate) const TAG_KEY_AAD: &[u8] = b"llmvault/v1/tag-key";
/// AAD label for the recovery secret wrapped by the KEK (FORMAT.md §4).
pub(crate) const RECOVERY_SECRET_AAD: &[u8] = b"llmvault/v1/recovery-secret";
/// AAD label for the KEK wrapped by the recovery key (FORMAT.md §4).
pub(crate) const RECOVERY_KEK_AAD: &[u8] = b"llmvault/v1/recovery-kek";

/// What a data key may seal: records of one subject (or of none) whose
/// expiry falls before `not_after_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct KeyScope {
    pub(crate) subject: Option<IdTag>,
    /// End of the retention epoch, Unix milliseconds. The key is destroyed
    /// once the clock passes it: every record it sealed has expired.
    pub(crate) not_after_ms: i64,
}

/// The AAD that binds a wrapped data key to its id and scope (FORMAT.md §4):
/// label ‖ key id (u64 BE) ‖ has-subject (u8) ‖ subject tag (16) ‖ not-after (i64 BE).
pub(crate) fn data_key_aad(key_id: u64, scope: &KeyScope) -> [u8; DATA_KEY_AAD_LEN] {
    let mut aad = [0u8; DATA_KEY_AAD_LEN];
    let (label, rest) = aad.split_at_mut(DATA_KEY_LABEL.len());
    label.copy_from_slice(DATA_KEY_LABEL);
    rest[..8].copy_from_slice(&key_id.to_be_bytes());
    if let Some(tag) = scope.subject {
        rest[8] = 1;
        rest[9..25].copy_from_slice(&tag);
    }
    rest[25..33].copy_from_slice(&scope.not_after_ms.to_be_bytes());
    aad
}

const DATA_KEY_AAD_LEN: usize = DATA_KEY_LABEL.len() + 8 + 1 + ID_TAG_LEN + 8;
