//! AES-256-GCM, the only AEAD llmvault uses, behind one small type so the
//! backend is a build choice and never a format choice: both backends
//! produce and accept the same bytes (96-bit nonce, 128-bit tag).
//!
//! - `aws-lc` (default): AWS-LC through `aws-lc-rs`, which picks its
//!   VAES/AVX-512, AVX2 or AES-NI code path at run time. About 4× the
//!   throughput of the pure-Rust backend on 1 MiB and 2.5× on 1 KiB here
//!   (docs/BENCHMARKS.md).
//! - `rust-crypto`: the RustCrypto `aes-gcm` crate, pure Rust, for targets
//!   without a C toolchain. Used only when `aws-lc` is off.

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "llmvault needs an AEAD backend: enable feature `aws-lc` (default) or `rust-crypto`"
);

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(feature = "aws-lc")]
use aws_lc as backend;

#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
mod rust_crypto;
#[cfg(all(feature = "rust-crypto", not(feature = "aws-lc")))]
use rust_crypto as backend;

use crate::secret::SecretKey;

/// Nonce length: 96 bits, the size GCM is made for.
pub(crate) const NONCE_LEN: usize = 12;
/// Tag length: the full 128 bits.
pub(crate) const TAG_LEN: usize = 16;

/// Which AES-256-GCM implementation this build seals with: `"aws-lc"` or
/// `"rust-crypto"` (cargo features of the same names).
pub const AEAD_BACKEND: &str = backend::NAME;

/// A message was too long to seal, or did not authenticate.
#[derive(Debug)]
pub(crate) struct AeadError;

/// An AES-256-GCM key with its schedule expanded, ready for many messages.
/// The backend wipes the expanded key when it is dropped.
pub(crate) struct AeadKey(backend::Key);

impl AeadKey {
    pub(crate) fn new(key: &SecretKey) -> Self {
        Self(backend::Key::new(key.expose()))
    }

    /// Encrypts `buf` in place and returns the tag. On failure (a message
    /// beyond AES-GCM's limit) `buf` is left zeroed, never in clear.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        self.0.seal(nonce, aad, buf)
    }

    /// Authenticates and decrypts `buf` in place. On failure `buf` holds
    /// unspecified bytes, never plaintext the caller may use.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        self.0.open(nonce, aad, buf, tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test Case 16 of the GCM specification (McGrew & Viega): the backend
    /// in this build computes standard AES-256-GCM, so either backend reads
    /// what the other wrote.
    #[test]
    fn nist_vector() {
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let key: [u8; 32] = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .try_into()
            .unwrap();
        let nonce: [u8; 12] = hex("cafebabefacedbaddecaf888").try_into().unwrap();
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let plain = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
             1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let cipher = hex(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        );
        let tag = hex("76fc6ece0f4e1768cddf8853bb2d551b");

        let k = AeadKey::new(&SecretKey::from_bytes(key));
        let mut buf = plain.clone();
        assert_eq!(k.seal(&nonce, &aad, &mut buf).unwrap().to_vec(), tag);
        assert_eq!(buf, cipher);
        let tag: [u8; 16] = tag.try_into().unwrap();
        k.open(&nonce, &aad, &mut buf, &tag).unwrap();
        assert_eq!(buf, plain);
    }

    #[test]
    fn open_refuses_any_changed_byte() {
        let k = AeadKey::new(&SecretKey::from_bytes([9; 32]));
        let nonce = [3; NONCE_LEN];
        let mut sealed = b"prompt".to_vec();
        let tag = k.seal(&nonce, b"aad", &mut sealed).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(k.open(&nonce, b"aad", &mut bad, &tag).is_err(), "byte {i}");
        }
        let mut bad_tag = tag;
        bad_tag[15] ^= 0x80;
        let mut copy = sealed.clone();
        assert!(k.open(&nonce, b"aad", &mut copy, &bad_tag).is_err());
        assert!(k.open(&nonce, b"aae", &mut sealed.clone(), &tag).is_err());
        assert!(k.open(&[4; NONCE_LEN], b"aad", &mut sealed, &tag).is_err());
    }
}
