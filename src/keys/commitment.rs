//! Key commitment for sealed envelopes (FORMAT.md §7).
//!
//! AES-GCM is not key-committing: whoever holds two keys can make one
//! ciphertext and tag that authenticate under both, opening to different
//! plaintexts (a "partitioning" or "invisible salamander" attack). Each
//! envelope therefore carries a commitment to the key that sealed it, and
//! `open` compares it, in constant time, before decrypting: an envelope
//! opens under one key only. The AWS Encryption SDK's committing suites do
//! the same.
//!
//! ```text
//! commitment = HMAC-SHA256(data key, "llmvault/v2/key-commitment")[..24]
//! ```
//!
//! 24 bytes keep the envelope overhead under 64 bytes while finding two
//! keys with one commitment still takes about 2^96 work.

use hmac::Mac;

use crate::secret::SecretKey;

/// Length of a key commitment in an envelope.
pub(crate) const COMMITMENT_LEN: usize = 24;

const COMMITMENT_LABEL: &[u8] = b"llmvault/v2/key-commitment";

/// The commitment to `key`. Not secret (it is stored beside every
/// envelope), and it reveals nothing beyond which envelopes share a key,
/// which their key ids show anyway.
pub(crate) fn commit(key: &SecretKey) -> [u8; COMMITMENT_LEN] {
    let mut mac = crate::derive::hmac_with(key);
    mac.update(COMMITMENT_LABEL);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; COMMITMENT_LEN];
    out.copy_from_slice(&full[..COMMITMENT_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-checked with Python's `hmac` (tests/vectors/).
    #[test]
    fn commitment_known_answer() {
        let hex: String = commit(&SecretKey::from_bytes([0x42; 32]))
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, COMMITMENT_KAT);
    }

    const COMMITMENT_KAT: &str = "08ac4d6109a756c376674a4a90249b2caefdc572c266a325";

    #[test]
    fn keys_commit_differently() {
        let a = commit(&SecretKey::from_bytes([1; 32]));
        assert_ne!(a, commit(&SecretKey::from_bytes([2; 32])));
        assert_eq!(a, commit(&SecretKey::from_bytes([1; 32])));
    }
}
