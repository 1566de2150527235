//! The key-encryption key and everything it wraps: data keys, the tag key,
//! and the key-check value that tells a wrong key from a tampered keyring.
//!
//! Formats 1 and 2 derived the KEK from the master key. Format 3 draws it
//! at random and stores it wrapped under the **unlock key**, derived from
//! the master key instead (FORMAT.md §3): then the KEK can be replaced (when
//! recovery shares are revoked or re-issued) without the key source.

use crate::aead::AeadKey;
use crate::aead::{NONCE_LEN, TAG_LEN};
use crate::kdf::MasterKey;
use crate::random;
use crate::secret::{KEY_LEN, SecretKey};

/// HKDF info for master → KEK in formats 1 and 2 (FORMAT.md §3).
const KEK_LABEL: &[u8] = b"llmvault/v1/kek";
/// HKDF info for master → unlock key in format 3 (FORMAT.md §3). Not the
/// derived KEK's label: a derived KEK may sit wrapped in an old recovery
/// row, and must never be the key that opens later KEKs.
const UNLOCK_LABEL: &[u8] = b"llmvault/v3/unlock";

/// Length of a wrapped key on disk: nonce, encrypted key, tag.
pub(crate) const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
/// Length of the key-check value: nonce and tag over an empty message.
pub(crate) const KEY_CHECK_LEN: usize = NONCE_LEN + TAG_LEN;

/// The key-encryption key: derived from the master key, never stored in
/// clear. (Also used as the shape of any key that wraps keys, such as the
/// recovery key.)
pub(crate) struct Kek {
    cipher: AeadKey,
    secret: SecretKey,
}

impl Kek {
    /// The KEK of formats 1 and 2: HKDF-SHA256(salt = vault salt,
    /// ikm = master, info = "llmvault/v1/kek").
    pub(crate) fn derive(master: &MasterKey, salt: &[u8]) -> Self {
        Self::from_master(master, salt, KEK_LABEL)
    }

    /// The format-3 unlock key, which wraps the random KEK:
    /// HKDF-SHA256(salt = vault salt, ikm = master, info = "llmvault/v3/unlock").
    pub(crate) fn derive_unlock(master: &MasterKey, salt: &[u8]) -> Self {
        Self::from_master(master, salt, UNLOCK_LABEL)
    }

    /// A fresh random KEK (format 3), from the operating system.
    pub(crate) fn random() -> Self {
        Self::from_key(SecretKey::random())
    }

    fn from_master(master: &MasterKey, salt: &[u8], label: &[u8]) -> Self {
        Self::from_key(crate::derive::hkdf_key(
            Some(salt),
            master.0.expose(),
            label,
        ))
    }

    /// A key-wrapping key from raw key bytes.
    pub(crate) fn from_key(secret: SecretKey) -> Self {
        Self {
            cipher: AeadKey::new(&secret),
            secret,
        }
    }

    /// The KEK's own bytes, for wrapping it under the recovery key.
    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// Wraps `key` under the KEK with `aad` bound (FORMAT.md §4).
    #[expect(
        clippy::expect_used,
        reason = "AES-GCM refuses only messages past 2^36 bytes; a key is 32. A zero tag \
                  would store a key nobody can unwrap, so fail loudly instead"
    )]
    pub(crate) fn wrap(&self, key: &SecretKey, aad: &[u8]) -> [u8; WRAPPED_LEN] {
        let mut out = [0u8; WRAPPED_LEN];
        let nonce = random::nonce();
        let (nonce_out, rest) = out.split_at_mut(NONCE_LEN);
        nonce_out.copy_from_slice(&nonce);
        let (body, tag_out) = rest.split_at_mut(KEY_LEN);
        body.copy_from_slice(key.expose());
        let tag = self
            .cipher
            .seal(&nonce, aad, body)
            .expect("AES-GCM seals a 32-byte key");
        tag_out.copy_from_slice(&tag);
        out
    }

    /// Unwraps a key; `None` if the bytes or the AAD were altered, or the
    /// KEK is not the one that wrapped it.
    pub(crate) fn unwrap_key(&self, wrapped: &[u8], aad: &[u8]) -> Option<SecretKey> {
        if wrapped.len() != WRAPPED_LEN {
            return None;
        }
        let nonce = wrapped[..NONCE_LEN].try_into().ok()?;
        let tag = wrapped[NONCE_LEN + KEY_LEN..].try_into().ok()?;
        // Decrypted where the key will live: no stack copy to wipe.
        let mut key = SecretKey::zeroed();
        key.expose_mut()
            .copy_from_slice(&wrapped[NONCE_LEN..NONCE_LEN + KEY_LEN]);
        self.cipher.open(nonce, aad, key.expose_mut(), tag).ok()?;
        Some(key)
    }

    /// A fresh key-check value: an AES-GCM tag over an empty message with
    /// `aad` bound. Only the right KEK verifies it (FORMAT.md §1).
    #[expect(
        clippy::expect_used,
        reason = "AES-GCM over an empty message cannot exceed its limits; a zero tag \
                  would lock the vault, so fail loudly instead"
    )]
    pub(crate) fn key_check(&self, aad: &[u8]) -> [u8; KEY_CHECK_LEN] {
        let mut out = [0u8; KEY_CHECK_LEN];
        let nonce = random::nonce();
        out[..NONCE_LEN].copy_from_slice(&nonce);
        let tag = self
            .cipher
            .seal(&nonce, aad, &mut [])
            .expect("AES-GCM seals an empty message");
        out[NONCE_LEN..].copy_from_slice(&tag);
        out
    }

    /// Whether `check` was made by this KEK over `aad`.
    pub(crate) fn verify_key_check(&self, check: &[u8], aad: &[u8]) -> bool {
        if check.len() != KEY_CHECK_LEN {
            return false;
        }
        let (Ok(nonce), Ok(tag)) = (check[..NONCE_LEN].try_into(), check[NONCE_LEN..].try_into())
        else {
            return false;
        };
        self.cipher.open(nonce, aad, &mut [], tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::derive(
            &MasterKey(SecretKey::from_bytes([byte; 32])),
            b"salt-salt-salt-!",
        )
    }

    #[test]
    fn wrap_round_trips_and_binds_aad() {
        let k = kek(1);
        let dk = SecretKey::from_bytes([5; 32]);
        let w = k.wrap(&dk, b"aad-1");
        assert_eq!(k.unwrap_key(&w, b"aad-1").unwrap().expose(), &[5; 32]);
        assert!(k.unwrap_key(&w, b"aad-2").is_none());
        assert!(kek(2).unwrap_key(&w, b"aad-1").is_none());
        for i in 0..WRAPPED_LEN {
            let mut bad = w;
            bad[i] ^= 0x01;
            assert!(k.unwrap_key(&bad, b"aad-1").is_none(), "byte {i}");
        }
    }

    /// HKDF-SHA256(salt, master, "llmvault/v1/kek"), cross-checked with
    /// Python's `cryptography` HKDF: the KEK wraps a known key into bytes
    /// that the expected KEK unwraps.
    #[test]
    fn kek_derivation_known_answer() {
        const EXPECTED: [u8; 32] = [
            0x74, 0x2a, 0x7e, 0xa0, 0xf8, 0x84, 0x42, 0x68, 0x08, 0x2e, 0xac, 0x65, 0xdd, 0xaf,
            0x8d, 0x02, 0x17, 0x5d, 0x61, 0x26, 0x98, 0xb0, 0xe3, 0xdf, 0x6c, 0x91, 0x6b, 0x11,
            0xed, 0xab, 0x15, 0x38,
        ];
        let expected = Kek::from_key(SecretKey::from_bytes(EXPECTED));
        let wrapped = kek(1).wrap(&SecretKey::from_bytes([3; 32]), b"aad");
        assert_eq!(
            expected.unwrap_key(&wrapped, b"aad").unwrap().expose(),
            &[3; 32]
        );
    }

    /// HKDF-SHA256(salt, master, "llmvault/v3/unlock"), cross-checked with
    /// Python's `cryptography` HKDF (FORMAT.md §3).
    #[test]
    fn unlock_key_derivation_known_answer() {
        const EXPECTED: [u8; 32] = [
            0xda, 0xd7, 0x2e, 0x3e, 0x35, 0x41, 0x5e, 0xd1, 0xe9, 0xc1, 0xcb, 0x47, 0x20, 0xcd,
            0xb3, 0x02, 0x6f, 0x48, 0xec, 0x8b, 0xb0, 0xb3, 0xf1, 0x87, 0xc6, 0x9a, 0x06, 0x26,
            0x7b, 0x2f, 0x33, 0x47,
        ];
        let expected = Kek::from_key(SecretKey::from_bytes(EXPECTED));
        let unlock = Kek::derive_unlock(
            &MasterKey(SecretKey::from_bytes([1; 32])),
            b"salt-salt-salt-!",
        );
        let wrapped = unlock.wrap(&SecretKey::from_bytes([3; 32]), b"aad");
        assert_eq!(
            expected.unwrap_key(&wrapped, b"aad").unwrap().expose(),
            &[3; 32]
        );
        assert!(
            kek(1).unwrap_key(&wrapped, b"aad").is_none(),
            "not the derived KEK"
        );
    }

    #[test]
    fn key_check_tells_keys_apart() {
        let check = kek(1).key_check(b"hdr");
        assert!(kek(1).verify_key_check(&check, b"hdr"));
        assert!(!kek(2).verify_key_check(&check, b"hdr"));
        assert!(!kek(1).verify_key_check(&check, b"hdr2"));
    }
}
