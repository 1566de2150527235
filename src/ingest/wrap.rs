//! Wrapping a data key to the vault's X25519 public key: ephemeral-static
//! ECDH, HKDF-SHA256, AES-256-GCM (FORMAT.md §12).
//!
//! ```text
//! wrapped = ephemeral public (32) ‖ nonce (12) ‖ encrypted key (32) ‖ tag (16)
//! wrapping key = HKDF-SHA256(salt = ephemeral public ‖ vault public,
//!                            ikm = X25519(ephemeral, vault), info = "llmvault/v1/ingest-wrap")
//! ```

use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::keys::Kek;
use crate::secret::{KEY_LEN, SecretKey};

const WRAP_LABEL: &[u8] = b"llmvault/v1/ingest-wrap";
/// Length of a key wrapped to the vault's public key.
const SEALED_KEY_LEN: usize = 32 + crate::keys::WRAPPED_LEN;

/// A fresh X25519 secret from the operating system's generator.
pub(crate) fn new_secret() -> StaticSecret {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    crate::random::fill_from_os(bytes.as_mut());
    StaticSecret::from(*bytes)
}

/// Wraps `key` so that only the holder of `vault`'s secret can unwrap it.
pub(crate) fn wrap_to(vault: &PublicKey, key: &SecretKey, aad: &[u8]) -> Vec<u8> {
    let ephemeral = new_secret();
    let ephemeral_public = PublicKey::from(&ephemeral);
    let wrapping = wrapping_key(&ephemeral.diffie_hellman(vault), &ephemeral_public, vault);
    let mut out = ephemeral_public.as_bytes().to_vec();
    out.extend_from_slice(&wrapping.wrap(key, aad));
    out
}

/// Unwraps a key wrapped by [`wrap_to`]; `None` if it was altered or is
/// not for this secret.
pub(crate) fn unwrap_with(secret: &StaticSecret, wrapped: &[u8], aad: &[u8]) -> Option<SecretKey> {
    if wrapped.len() != SEALED_KEY_LEN {
        return None;
    }
    let ephemeral_bytes: [u8; 32] = wrapped[..32].try_into().ok()?;
    let ephemeral = PublicKey::from(ephemeral_bytes);
    let shared = secret.diffie_hellman(&ephemeral);
    if !shared.was_contributory() {
        return None;
    }
    wrapping_key(&shared, &ephemeral, &PublicKey::from(secret)).unwrap_key(&wrapped[32..], aad)
}

fn wrapping_key(
    shared: &x25519_dalek::SharedSecret,
    ephemeral: &PublicKey,
    vault: &PublicKey,
) -> Kek {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral.as_bytes());
    salt[32..].copy_from_slice(vault.as_bytes());
    Kek::from_key(crate::derive::hkdf_key(
        Some(&salt),
        shared.as_bytes(),
        WRAP_LABEL,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_vault_secret_unwraps() {
        let vault = new_secret();
        let other = new_secret();
        let key = SecretKey::from_bytes([4; 32]);
        let wrapped = wrap_to(&PublicKey::from(&vault), &key, b"aad");
        assert_eq!(
            unwrap_with(&vault, &wrapped, b"aad").unwrap().expose(),
            &[4; 32]
        );
        assert!(unwrap_with(&other, &wrapped, b"aad").is_none());
        assert!(unwrap_with(&vault, &wrapped, b"other aad").is_none());
        for i in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            assert!(unwrap_with(&vault, &bad, b"aad").is_none(), "byte {i}");
        }
    }
}
