//! Unwrapped data keys held in memory, by id. Unwrapping is cheap, but
//! building an AES key schedule per record is not: the keyring keeps one
//! ready cipher per key for as long as the key lives.
//!
//! Each key is kept with the scope it was unwrapped (or made) under, the
//! scope its wrap's AAD authenticated. The scope columns of a key row are
//! clear and can be edited while a handle runs; a key must never seal for
//! a scope other than the one the AAD proved, so lookups for sealing
//! compare the row's scope with the cached one.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use super::{COMMITMENT_LEN, KeyScope};
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

/// Cache of unwrapped data keys, each with its authenticated scope.
#[derive(Default)]
pub(crate) struct Keyring {
    keys: RwLock<HashMap<u64, (KeyScope, Arc<DataKey>)>>,
}

impl Keyring {
    /// The key with this id, whatever its scope: for opening envelopes,
    /// whose own AAD names the key id and binds what they may hold.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<DataKey>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .map(|(_, key)| Arc::clone(key))
    }

    /// The key with this id only if it was authenticated for `scope`: for
    /// a key row read from the store, whose clear scope may have been
    /// edited since (then the row must be unwrapped, and fail, afresh).
    pub(crate) fn get_scoped(&self, id: u64, scope: &KeyScope) -> Option<Arc<DataKey>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .filter(|(cached, _)| cached == scope)
            .map(|(_, key)| Arc::clone(key))
    }

    /// Keeps `key`, authenticated for `scope`.
    pub(crate) fn insert(&self, scope: KeyScope, key: Arc<DataKey>) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.id, (scope, key));
    }

    /// Forgets destroyed keys so no copy outlives the stored one.
    pub(crate) fn forget(&self, ids: &[u64]) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            keys.remove(id);
        }
    }
}
