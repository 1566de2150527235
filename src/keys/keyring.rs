//! Unwrapped data keys held in memory, by id. Unwrapping is cheap, but
//! building an AES key schedule per record is not: the keyring keeps one
//! ready cipher per key for as long as the key lives.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use super::COMMITMENT_LEN;
use crate::aead::AeadKey;
use crate::secret::SecretKey;

/// A data key ready to seal and open records. Its key schedule is wiped on
/// drop.
pub(crate) struct DataKey {
    pub(crate) id: u64,
    pub(crate) cipher: AeadKey,
    /// What envelopes sealed by this key carry (`commitment.rs`).
    pub(crate) commitment: [u8; COMMITMENT_LEN],
}

impl DataKey {
    pub(crate) fn new(id: u64, key: &SecretKey) -> Self {
        Self {
            id,
            cipher: AeadKey::new(key),
            commitment: super::commitment::commit(key),
        }
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Cache of unwrapped data keys.
#[derive(Default)]
pub(crate) struct Keyring {
    keys: RwLock<HashMap<u64, Arc<DataKey>>>,
}

impl Keyring {
    pub(crate) fn get(&self, id: u64) -> Option<Arc<DataKey>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }

    pub(crate) fn insert(&self, key: Arc<DataKey>) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.id, key);
    }

    /// Forgets destroyed keys so no copy outlives the stored one.
    pub(crate) fn forget(&self, ids: &[u64]) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            keys.remove(id);
        }
    }
}
