//! Recovery shares: a random recovery secret split with Shamir's scheme
//! over GF(256) (the `blahaj` crate), printable with a checksum.

use std::fmt;

use blahaj::{Share, Sharks};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Kek;
use crate::error::{Error, Result};
use crate::secret::{KEY_LEN, SecretKey};

const TEXT_PREFIX: &str = "llmvault-share-1";
const CHECKSUM_LABEL: &[u8] = b"llmvault/v1/share";
const RECOVERY_KEY_LABEL: &[u8] = b"llmvault/v1/recovery-key";
const CHECKSUM_LEN: usize = 4;

/// One share of a vault's recovery secret. Any `k` of the `n` issued by
/// [`Vault::recovery_shares`](crate::Vault::recovery_shares) open the
/// vault with [`Vault::open_with_shares`](crate::Vault::open_with_shares).
///
/// A secret: not `Clone`, `Debug` is redacted, the text form is handed out
/// in zeroizing memory.
pub struct RecoveryShare {
    bytes: Zeroizing<Vec<u8>>,
}

impl RecoveryShare {
    /// The printable form: `llmvault-share-1-<hex share>-<hex checksum>`.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(
            TEXT_PREFIX.len() + 2 * self.bytes.len() + 10,
        ));
        text.push_str(TEXT_PREFIX);
        text.push('-');
        push_hex(&mut text, &self.bytes);
        text.push('-');
        push_hex(&mut text, &checksum(&self.bytes));
        text
    }

    /// Parses the printable form.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if it is malformed or its checksum does not
    /// match (a typo).
    pub fn from_text(text: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidInput {
            what: "recovery share",
            reason: reason.into(),
        };
        let rest = text
            .trim()
            .strip_prefix(TEXT_PREFIX)
            .and_then(|r| r.strip_prefix('-'))
            .ok_or_else(|| bad("does not start with llmvault-share-1-"))?;
        let (share_hex, sum_hex) = rest.rsplit_once('-').ok_or_else(|| bad("no checksum"))?;
        let bytes = Zeroizing::new(from_hex(share_hex).ok_or_else(|| bad("not hex"))?);
        let sum = from_hex(sum_hex).ok_or_else(|| bad("checksum is not hex"))?;
        if bytes.len() != 1 + KEY_LEN || sum != checksum(&bytes) {
            return Err(bad("checksum does not match: mistyped?"));
        }
        Ok(Self { bytes })
    }
}

impl fmt::Debug for RecoveryShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryShare([REDACTED])")
    }
}

/// Splits `secret` into `n` shares, any `k` of which recover it.
pub(crate) fn split(secret: &SecretKey, k: u8, n: u8) -> Vec<RecoveryShare> {
    Sharks(k)
        .dealer_rng(secret.expose(), &mut crate::random::os_rng())
        .take(usize::from(n))
        .map(|share| RecoveryShare {
            bytes: Zeroizing::new(Vec::from(&share)),
        })
        .collect()
}

/// Recovers the secret; `None` with too few or inconsistent shares.
pub(crate) fn combine(shares: &[RecoveryShare], k: u8) -> Option<SecretKey> {
    // The same share given twice would make interpolation wrong: keep one
    // per x coordinate (the first byte).
    let mut seen = std::collections::HashSet::new();
    let parsed = shares
        .iter()
        .filter(|s| s.bytes.first().is_some_and(|x| seen.insert(*x)))
        .map(|s| Share::try_from(s.bytes.as_slice()).ok())
        .collect::<Option<Vec<_>>>()?;
    let secret = Zeroizing::new(Sharks(k).recover(&parsed).ok()?);
    SecretKey::from_slice(&secret)
}

/// The key that wraps the KEK for recovery: HKDF(recovery secret, label).
pub(crate) fn recovery_kek(secret: &SecretKey) -> Kek {
    Kek::from_key(crate::derive::hkdf_key(
        None,
        secret.expose(),
        RECOVERY_KEY_LABEL,
    ))
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_LABEL)
        .chain_update(bytes)
        .finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_k_of_n_recover_and_fewer_do_not() {
        let secret = SecretKey::from_bytes([0x5a; 32]);
        let shares = split(&secret, 3, 5);
        assert_eq!(shares.len(), 5);
        let texts: Vec<_> = shares.iter().map(|s| s.to_text()).collect();
        let back: Vec<_> = texts
            .iter()
            .map(|t| RecoveryShare::from_text(t).unwrap())
            .collect();
        let pick = |idx: &[usize]| -> Vec<RecoveryShare> {
            idx.iter()
                .map(|&i| RecoveryShare::from_text(&texts[i]).unwrap())
                .collect()
        };
        assert_eq!(combine(&pick(&[0, 2, 4]), 3).unwrap().expose(), &[0x5a; 32]);
        assert_eq!(combine(&pick(&[4, 1, 3]), 3).unwrap().expose(), &[0x5a; 32]);
        assert!(combine(&pick(&[0, 1]), 3).is_none());
        assert_eq!(
            combine(&pick(&[0, 0, 2, 4]), 3).unwrap().expose(),
            &[0x5a; 32],
            "duplicates ignored"
        );
        assert!(combine(&pick(&[1, 1, 1]), 3).is_none());
        assert!(combine(&back[..1], 3).is_none());
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let shares = split(&SecretKey::from_bytes([1; 32]), 2, 3);
        let text = shares[0].to_text();
        let mut typo = text.to_string();
        let at = TEXT_PREFIX.len() + 5;
        let replacement = if &typo[at..=at] == "0" { "1" } else { "0" };
        typo.replace_range(at..=at, replacement);
        assert!(matches!(
            RecoveryShare::from_text(&typo),
            Err(Error::InvalidInput { .. })
        ));
        assert!(RecoveryShare::from_text("llmvault-share-1-zz-00").is_err());
        assert!(!format!("{:?}", shares[0]).contains(&text[20..30]));
    }
}
