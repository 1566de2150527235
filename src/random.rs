//! Where every random byte comes from.
//!
//! A user-space generator keeps its state in process memory: `fork()` (a
//! pre-fork server, Python's `multiprocessing`) or a restored VM snapshot
//! copies that state, and the copies then draw the same "random" bytes.
//! Two workers would seal under one data key with the same nonces (GCM
//! nonce reuse gives away the XOR of plaintexts and lets anyone forge), or
//! make the same data key for two subjects (erasing one would then shred
//! nothing). So nothing here keeps state of its own: every byte, nonces
//! included, is read from the operating system (`getrandom`). The kernel's
//! generator is not copied by a fork, and Linux 5.18 and later reseed it
//! when a VM is restored from a snapshot (through the VM generation id).
//!
//! Measured here (docs/BENCHMARKS.md): a 12-byte `getrandom` call costs
//! about 220 ns, AWS-LC's `RAND_bytes` about 340 ns (its DRBG draws RDRAND
//! on every call), a pid check alone about 95 ns and would not see a
//! snapshot. One syscall per nonce is the cheapest of the safe choices.
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
    fill_from_os(&mut nonce);
    nonce
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
