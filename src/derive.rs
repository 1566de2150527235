//! The two ways one key becomes another: HKDF-SHA256 for a derived key,
//! HMAC-SHA256 keyed with a key. Both "cannot fail" for 32-byte keys; one
//! place states that invariant and fails loudly, so no caller can fall
//! back to an all-zero key if it ever broke.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit};
use sha2::Sha256;

use crate::secret::SecretKey;

/// HKDF-SHA256(salt, ikm, info) → a 32-byte key, written in place.
pub(crate) fn hkdf_key(salt: Option<&[u8]>, ikm: &[u8], info: &[u8]) -> SecretKey {
    expand_key(&Hkdf::<Sha256>::new(salt, ikm), info)
}

/// A 32-byte key from an HKDF state kept for several derivations.
#[expect(
    clippy::expect_used,
    reason = "HKDF-SHA256 refuses only outputs over 255 * 32 bytes; a key is 32. \
              Failing loudly beats going on with an all-zero key"
)]
pub(crate) fn expand_key(hkdf: &Hkdf<Sha256>, info: &[u8]) -> SecretKey {
    let mut key = SecretKey::zeroed();
    hkdf.expand(info, key.expose_mut())
        .expect("a 32-byte HKDF-SHA256 output");
    key
}

/// HMAC-SHA256 keyed with `key`.
#[expect(
    clippy::expect_used,
    reason = "HMAC takes keys of any length; an all-zero fallback key would make every \
              MAC computable, so a failure here must stop the call"
)]
pub(crate) fn hmac_with(key: &SecretKey) -> Hmac<Sha256> {
    <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose())
        .expect("HMAC-SHA256 accepts a 32-byte key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac;

    /// RFC 5869 test case 1, truncated to 32 bytes of output.
    #[test]
    fn hkdf_rfc5869_case_1() {
        let ikm = [0x0b; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let key = hkdf_key(Some(&salt), &ikm, &info);
        let hex: String = key.expose().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
    }

    #[test]
    fn hmac_is_keyed() {
        let tag = |k: u8| {
            let mut m = hmac_with(&SecretKey::from_bytes([k; 32]));
            m.update(b"x");
            m.finalize().into_bytes()
        };
        assert_ne!(tag(1), tag(2));
    }
}
