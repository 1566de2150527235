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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Uses this handle reserved on the key's row (its use count already
    /// holds them) and has not sealed yet: spent without writing the row
    /// again. Lost with this copy of the key, which only wastes budget.
    prepaid: AtomicU64,
}

impl DataKey {
    pub(crate) fn new(id: u64, key: &SecretKey) -> Self {
        Self {
            id,
            cipher: AeadKey::new(key),
            commitment: super::commitment::commit(key),
            prepaid: AtomicU64::new(0),
        }
    }

    /// Takes every prepaid use (none are left behind for another taker).
    pub(crate) fn take_prepaid(&self) -> u64 {
        self.prepaid.swap(0, Ordering::SeqCst)
    }

    /// Keeps `n` reserved uses for later transactions; only once the
    /// transaction that counted them on the row has committed.
    pub(crate) fn keep_prepaid(&self, n: u64) {
        self.prepaid.store(n, Ordering::SeqCst);
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Cache of unwrapped data keys, each with its authenticated scope, of at
/// most `capacity` keys. A vault with many subjects has a key per subject
/// and epoch; caching all of them grew memory with every subject. Past
/// the bound the CLOCK rule picks the key to drop: the hand passes over
/// slots used since its last pass (clearing their mark) and drops the
/// first one that was not, so a key in steady use stays, at O(1)
/// amortized per insert. A dropped key is wiped once the last call using
/// it lets go (`DataKey`'s cipher zeroizes on drop).
pub(crate) struct Keyring {
    ring: RwLock<Ring>,
    capacity: usize,
    /// Counts calls of `forget`: a key unwrapped from a row read before
    /// one may be a key that call destroyed, and must not be cached.
    generation: AtomicU64,
}

#[derive(Default)]
struct Ring {
    slots: Vec<Slot>,
    index: HashMap<u64, usize>,
    hand: usize,
}

struct Slot {
    id: u64,
    scope: KeyScope,
    key: Arc<DataKey>,
    /// Used since the hand last passed.
    used: AtomicBool,
}

impl Keyring {
    /// A keyring of at most `capacity` keys (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            ring: RwLock::new(Ring::default()),
            capacity: capacity.max(1),
            generation: AtomicU64::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ring> {
        self.ring.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ring> {
        self.ring.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The key with this id, whatever its scope: for opening envelopes,
    /// whose own AAD names the key id and binds what they may hold.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<DataKey>> {
        self.read().find(id, None)
    }

    /// The key with this id only if it was authenticated for `scope`: for
    /// a key row read from the store, whose clear scope may have been
    /// edited since (then the row must be unwrapped, and fail, afresh).
    pub(crate) fn get_scoped(&self, id: u64, scope: &KeyScope) -> Option<Arc<DataKey>> {
        self.read().find(id, Some(scope))
    }

    /// Where `forget` stands: read it before reading a key row, and hand
    /// it to [`Keyring::insert_read`] with the key unwrapped from it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Keeps a key unwrapped from a row read when `forget` stood at
    /// `seen`; if a key was forgotten since, keeps nothing (the row may
    /// be of a key destroyed meanwhile, and its copy must not outlive it).
    pub(crate) fn insert_read(&self, scope: KeyScope, key: Arc<DataKey>, seen: u64) {
        let mut ring = self.write();
        if self.generation.load(Ordering::SeqCst) == seen {
            ring.insert(self.capacity, scope, key);
        }
    }

    /// Keeps a key the vault made or sealed with under the write lock (no
    /// `forget` can run meanwhile), dropping another if full.
    pub(crate) fn insert(&self, scope: KeyScope, key: Arc<DataKey>) {
        self.write().insert(self.capacity, scope, key);
    }

    /// Forgets destroyed keys so no copy outlives the stored one.
    pub(crate) fn forget(&self, ids: &[u64]) {
        let mut ring = self.write();
        self.generation.fetch_add(1, Ordering::SeqCst);
        for id in ids {
            ring.remove(*id);
        }
    }

    /// How many keys are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.read().slots.len()
    }
}

impl Ring {
    fn insert(&mut self, capacity: usize, scope: KeyScope, key: Arc<DataKey>) {
        let ring = self;
        // Unmarked: a key earns its place by a second use, so a run of
        // keys each used once (a batch over many subjects) cannot push
        // out the ones in steady use.
        let mut slot = Slot {
            id: key.id,
            scope,
            key,
            used: AtomicBool::new(false),
        };
        if let Some(&at) = ring.index.get(&slot.id) {
            // Put back after a write that found it here: the mark that
            // find set stays, or a key in steady use would lose its place
            // to keys used once at every commit.
            let used = ring.slots[at].used.load(Ordering::Relaxed);
            slot.used = AtomicBool::new(used);
            ring.slots[at] = slot;
        } else if ring.slots.len() < capacity {
            let at = ring.slots.len();
            ring.index.insert(slot.id, at);
            ring.slots.push(slot);
        } else {
            let at = ring.victim();
            let gone = std::mem::replace(&mut ring.slots[at], slot);
            ring.index.remove(&gone.id);
            let id = ring.slots[at].id;
            ring.index.insert(id, at);
        }
    }

    fn find(&self, id: u64, scope: Option<&KeyScope>) -> Option<Arc<DataKey>> {
        let slot = &self.slots[*self.index.get(&id)?];
        if scope.is_some_and(|s| *s != slot.scope) {
            return None;
        }
        slot.used.store(true, Ordering::Relaxed);
        Some(Arc::clone(&slot.key))
    }

    /// The slot to reuse: the first the hand finds not used since it last
    /// passed. Ends within two turns: the first clears every mark.
    fn victim(&mut self) -> usize {
        loop {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            if !self.slots[at].used.swap(false, Ordering::Relaxed) {
                return at;
            }
        }
    }

    fn remove(&mut self, id: u64) {
        let Some(at) = self.index.remove(&id) else {
            return;
        };
        self.slots.swap_remove(at);
        if let Some(moved) = self.slots.get(at) {
            self.index.insert(moved.id, at);
        }
        if self.hand >= self.slots.len() {
            self.hand = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u64) -> Arc<DataKey> {
        Arc::new(DataKey::new(id, &SecretKey::random()))
    }

    fn scope(n: i64) -> KeyScope {
        KeyScope {
            subject: None,
            not_after_ms: n,
        }
    }

    #[test]
    fn it_never_holds_more_than_its_capacity() {
        let ring = Keyring::new(3);
        for id in 0..100 {
            ring.insert(scope(1), key(id));
            assert!(ring.len() <= 3);
        }
        assert_eq!(ring.len(), 3);
        // The newest is always there.
        assert!(ring.get(99).is_some());
    }

    #[test]
    fn a_key_sealed_with_at_every_write_outlives_keys_touched_once() {
        // A write finds its key here, seals with it, and puts it back after
        // the commit; each write also brings a key used only once.
        let ring = Keyring::new(4);
        ring.insert(scope(1), key(0));
        for id in 1..50 {
            let found = ring.get(0);
            assert!(found.is_some(), "the hot key was dropped at {id}");
            ring.insert(scope(1), found.unwrap());
            ring.insert(scope(1), key(id));
        }
    }

    #[test]
    fn a_key_in_use_outlives_keys_touched_once() {
        let ring = Keyring::new(4);
        ring.insert(scope(1), key(0));
        for id in 1..50 {
            assert!(ring.get(0).is_some(), "the hot key was dropped at {id}");
            ring.insert(scope(1), key(id));
        }
    }

    #[test]
    fn forgotten_keys_are_gone_and_the_rest_still_found() {
        let ring = Keyring::new(8);
        for id in 0..8 {
            ring.insert(scope(id as i64), key(id));
        }
        ring.forget(&[0, 3, 7]);
        assert_eq!(ring.len(), 5);
        for id in 0..8 {
            let found = ring.get_scoped(id, &scope(id as i64)).is_some();
            assert_eq!(found, ![0, 3, 7].contains(&id), "key {id}");
        }
        // A scope it was not authenticated for finds nothing.
        assert!(ring.get_scoped(1, &scope(2)).is_none());
        // A key unwrapped from a row read before a forget is not kept.
        let seen = ring.generation();
        ring.forget(&[]);
        ring.insert_read(scope(9), key(99), seen);
        assert!(ring.get(99).is_none());
        ring.insert_read(scope(9), key(99), ring.generation());
        assert!(ring.get(99).is_some());
        // Inserting after a forget reuses the room.
        for id in 8..20 {
            ring.insert(scope(1), key(id));
        }
        assert_eq!(ring.len(), 8);
    }
}
