//! The one type every 256-bit key in the hierarchy lives in.

use std::fmt;

use zeroize::{Zeroize, Zeroizing};

/// Length of every symmetric key in the vault, in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// 32 bytes of key material on the heap, wiped on drop.
///
/// Heap-backed so that moving a key moves a pointer: the bytes stay where
/// they were first written and are never copied onto the stack by a move.
/// Keys are filled in place ([`SecretKey::zeroed`] then
/// [`SecretKey::expose_mut`], or [`SecretKey::random`]).
///
/// Not `Clone`, `Display` or `Serialize`; `Debug` prints nothing secret.
/// The bytes are reached through [`SecretKey::expose`] only, so every use
/// of raw key material is easy to find.
pub(crate) struct SecretKey(Box<Zeroizing<[u8; KEY_LEN]>>);

impl SecretKey {
    /// Room to write key bytes into, wiped on drop.
    pub(crate) fn zeroed() -> Self {
        Self(Box::new(Zeroizing::new([0u8; KEY_LEN])))
    }

    /// A fresh key from the operating system's generator (`src/random.rs`:
    /// never a user-space generator a fork would duplicate).
    pub(crate) fn random() -> Self {
        let mut key = Self::zeroed();
        crate::random::fill_from_os(key.expose_mut());
        key
    }

    /// A copy of `bytes` on the heap; the caller keeps and wipes its own.
    pub(crate) fn copy_from(bytes: &[u8; KEY_LEN]) -> Self {
        let mut key = Self::zeroed();
        key.expose_mut().copy_from_slice(bytes);
        key
    }

    /// A copy of `bytes` if they are exactly [`KEY_LEN`] long.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self::copy_from(bytes))
    }

    /// Takes `bytes` by value and wipes that copy once it is on the heap.
    /// For keys handed in whole (a raw key from a KMS, test vectors).
    pub(crate) fn from_bytes(mut bytes: [u8; KEY_LEN]) -> Self {
        let key = Self::copy_from(&bytes);
        bytes.zeroize();
        key
    }

    /// The raw key bytes.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Mutable access to fill a key in place (from a KDF or a decryption).
    pub(crate) fn expose_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compiles only if `$t` lacks each trait (two blanket impls make the
    /// call ambiguous when it has one); the same macro's control, on types
    /// that have the trait, is a `compile_fail` doctest in `internals.rs`.
    macro_rules! lacks {
        ($t:ty: $($tr:path),+) => {$({
            trait AmbiguousIfImpl<A> { fn some_item() {} }
            impl<T: ?Sized> AmbiguousIfImpl<()> for T {}
            struct WithTrait;
            impl<T: ?Sized + $tr> AmbiguousIfImpl<WithTrait> for T {}
            let _ = <$t as AmbiguousIfImpl<_>>::some_item;
        })+};
    }

    #[test]
    fn private_key_types_cannot_be_copied_or_printed() {
        use std::fmt::Display;
        lacks!(SecretKey: Clone, Copy, Display, serde::Serialize);
        lacks!(crate::kdf::MasterKey: Clone, Copy, Display, serde::Serialize);
        lacks!(crate::keys::Kek: Clone, Copy, Display, serde::Serialize);
        lacks!(crate::keys::DataKey: Clone, Copy, Display, serde::Serialize);
        lacks!(crate::keys::Keyring: Clone, Copy, Display, serde::Serialize);
        lacks!(crate::keys::TagKey: Clone, Copy, Display, serde::Serialize);
        lacks!(crate::audit::AuditKeys: Clone, Copy, Display, serde::Serialize);
        lacks!(crate::ingest::IngestMac: Clone, Copy, Display, serde::Serialize);
    }

    #[test]
    fn debug_shows_no_bytes() {
        let key = SecretKey::from_bytes([0xab; KEY_LEN]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "SecretKey { .. }");
    }

    #[test]
    fn random_keys_differ_and_copies_match() {
        let a = SecretKey::random();
        assert_ne!(a.expose(), SecretKey::random().expose());
        assert_eq!(SecretKey::copy_from(a.expose()).expose(), a.expose());
        assert!(SecretKey::from_slice(&[1; 31]).is_none());
    }
}
