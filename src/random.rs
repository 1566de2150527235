//! Where every random byte comes from.
//!
//! A user-space generator keeps its state in process memory: `fork()` (a
//! pre-fork server, Python's `multiprocessing`) or a restored VM snapshot
//! copies that state, and the copies then draw the same "random" bytes.
//! Two workers would seal under one data key with the same nonces (GCM
//! nonce reuse gives away the XOR of plaintexts and lets anyone forge), or
//! make the same data key for two subjects (erasing one would then shred
//! nothing). So nothing here keeps state of its own:
//!
//! - keys, salts and secrets come straight from the operating system
//!   (`getrandom`), whose pool is the kernel's and not copied by a fork;
//! - nonces, drawn once per seal and so on the hot path, come from AWS-LC's
//!   DRBG in the default build: it detects a fork (`MADV_WIPEONFORK`) and,
//!   on Linux, a VM snapshot restore, and reseeds. The pure-Rust build
//!   draws nonces from the OS as well.
//!
//! `tests/fork.rs` forks real processes and checks no nonce or key repeats.

use crate::aead::NONCE_LEN;

/// Fills `buf` with bytes from the operating system's generator.
#[expect(
    clippy::expect_used,
    reason = "the OS generator fails only where the kernel has no entropy source at all; \
              no key can be made safely there, so the call stops instead of going on weaker"
)]
pub(crate) fn fill_from_os(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random generator failed");
}

/// A fresh 96-bit AES-GCM nonce, unique across forks and snapshots.
pub(crate) fn nonce() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    fill_nonce(&mut nonce);
    nonce
}

#[cfg(feature = "aws-lc")]
#[expect(
    clippy::expect_used,
    reason = "AWS-LC's generator fails only if its entropy source does; a nonce must never \
              be made any other way, so the call stops"
)]
fn fill_nonce(nonce: &mut [u8; NONCE_LEN]) {
    aws_lc_rs::rand::fill(nonce).expect("AWS-LC's random generator failed");
}

#[cfg(not(feature = "aws-lc"))]
fn fill_nonce(nonce: &mut [u8; NONCE_LEN]) {
    fill_from_os(nonce);
}

/// The OS generator as a `rand` generator, for code that takes one
/// (Shamir's polynomial coefficients must not repeat across forks either).
pub(crate) fn os_rng() -> impl rand::CryptoRng {
    OsRng
}

struct OsRng;

impl rand::TryRng for OsRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        fill_from_os(&mut b);
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        fill_from_os(&mut b);
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        fill_from_os(dst);
        Ok(())
    }
}

impl rand::TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ() {
        assert_ne!(nonce(), nonce());
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill_from_os(&mut a);
        fill_from_os(&mut b);
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }
}
