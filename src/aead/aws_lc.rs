//! AES-256-GCM from AWS-LC. Its key context lives in memory AWS-LC
//! allocates, which `OPENSSL_free` cleanses when the key is dropped.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::{AeadError, NONCE_LEN, TAG_LEN};

pub(super) const NAME: &str = "aws-lc";

pub(super) struct Key(LessSafeKey);

impl Key {
    #[allow(
        clippy::expect_used,
        reason = "a 32-byte key is always a valid AES-256-GCM key; only a failed allocation fails here, which aborts elsewhere too"
    )]
    pub(super) fn new(key: &[u8; 32]) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("32-byte AES-256 key");
        Self(LessSafeKey::new(unbound))
    }

    pub(super) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .map_err(|_| AeadError)?;
        tag.as_ref().try_into().map_err(|_| AeadError)
    }

    pub(super) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        self.0
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                tag,
                buf,
            )
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}
