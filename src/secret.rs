//! The one type every 256-bit key in the hierarchy lives in.

use std::fmt;

use rand::Rng;
use zeroize::Zeroizing;

/// Length of every symmetric key in the vault, in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// 32 bytes of key material, wiped on drop.
///
/// Not `Clone`, `Display` or `Serialize`; `Debug` prints nothing secret.
/// The bytes are reached through [`SecretKey::expose`] only, so every use
/// of raw key material is easy to find.
pub(crate) struct SecretKey(Zeroizing<[u8; KEY_LEN]>);

impl SecretKey {
    /// Takes ownership of `bytes`; the caller's copy should be a temporary
    /// that is itself zeroized.
    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh key from the thread-local CSPRNG (seeded by the OS).
    pub(crate) fn random() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(key.as_mut());
        Self(key)
    }

    /// The raw key bytes.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Room to write derived key bytes into, wiped on drop.
    pub(crate) fn zeroed() -> Self {
        Self(Zeroizing::new([0u8; KEY_LEN]))
    }

    /// Mutable access to fill a key from a KDF.
    pub(crate) fn expose_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}
