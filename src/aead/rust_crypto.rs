//! AES-256-GCM from the RustCrypto `aes-gcm` crate (pure Rust; AES-NI,
//! VAES and PCLMULQDQ picked at run time). Its key schedule is wiped on
//! drop through the `zeroize` feature of `aes`.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use zeroize::Zeroize;

use super::{AeadError, NONCE_LEN, TAG_LEN};

pub(super) const NAME: &str = "rust-crypto";

pub(super) struct Key(Aes256Gcm);

impl Key {
    pub(super) fn new(key: &[u8; 32]) -> Self {
        Self(Aes256Gcm::new(key.into()))
    }

    pub(super) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        match self.0.encrypt_inout_detached(
            &Nonce::<Aes256Gcm>::from(*nonce),
            aad,
            (&mut *buf).into(),
        ) {
            Ok(tag) => Ok(tag.into()),
            Err(_) => {
                // Refused before encrypting: never leave plaintext where
                // the caller expected ciphertext.
                buf.zeroize();
                Err(AeadError)
            }
        }
    }

    pub(super) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        self.0
            .decrypt_inout_detached(
                &Nonce::<Aes256Gcm>::from(*nonce),
                aad,
                buf.into(),
                &Tag::<Aes256Gcm>::from(*tag),
            )
            .map_err(|_| AeadError)
    }
}
