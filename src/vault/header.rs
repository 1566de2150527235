//! The vault header (FORMAT.md §1): what is needed to turn a key source
//! into the KEK, and the key-check value that proves it worked.
//!
//! ```text
//! 0..8    magic "LLMVAULT"
//! 8..10   format version, u16 BE
//! 10      key source kind (1 passphrase, 2 passphrase + key file, 3 raw key)
//! 11..23  Argon2id memory KiB, passes, lanes: three u32 BE
//! 23..55  salt, 32 random bytes
//! 55..83  key check: nonce (12) ‖ AES-GCM tag (16) over an empty message,
//!         AAD = "llmvault/v1/key-check" ‖ bytes 0..55
//! ```

use crate::error::{Error, Result};
use crate::kdf::{KIND_COMPOSITE, KIND_PASSPHRASE, KIND_RAW, KdfParams, KeySource, derive_master};
use crate::keys::{KEY_CHECK_LEN, Kek};

/// The format version this build writes. Version 2 added key-committing
/// envelopes (FORMAT.md §10); this build reads versions 1 and 2.
pub const FORMAT_VERSION: u16 = 2;

/// The oldest format version this build still opens.
const OLDEST_READABLE_VERSION: u16 = 1;

const MAGIC: &[u8; 8] = b"LLMVAULT";
const KEY_CHECK_LABEL: &[u8] = b"llmvault/v1/key-check";
const SALT_LEN: usize = 32;
const BODY_LEN: usize = 8 + 2 + 1 + 12 + SALT_LEN;
const HEADER_LEN: usize = BODY_LEN + KEY_CHECK_LEN;

/// A parsed header. Existing means valid: the version is ours and the KDF
/// parameters are within bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// As stored: a format-1 header keeps its version (it is bound into
    /// the key check), until `change_key` writes a new header.
    version: u16,
    pub(crate) kind: u8,
    pub(crate) kdf: KdfParams,
    salt: [u8; SALT_LEN],
    key_check: [u8; KEY_CHECK_LEN],
}

impl Header {
    /// A header for `source` with a fresh salt; returns it with the KEK it
    /// leads to (the KDF runs here).
    pub(crate) fn new(source: &KeySource, kdf: KdfParams) -> Result<(Self, Kek)> {
        let mut salt = [0u8; SALT_LEN];
        crate::random::fill_from_os(&mut salt);
        let mut header = Self {
            version: FORMAT_VERSION,
            kind: source.kind_byte(),
            kdf,
            salt,
            key_check: [0; KEY_CHECK_LEN],
        };
        let kek = header.derive_kek(source)?;
        header.key_check = kek.key_check(&header.key_check_aad());
        Ok((header, kek))
    }

    /// Parses stored header bytes. Bounds are checked here, before any
    /// key derivation can allocate.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 10 || &bytes[..8] != MAGIC {
            return Err(Error::Corrupt {
                what: "header magic missing".into(),
            });
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if bytes.len() != HEADER_LEN {
            return Err(Error::Corrupt {
                what: format!("header is {} bytes, expected {HEADER_LEN}", bytes.len()),
            });
        }
        let kind = bytes[10];
        if ![KIND_PASSPHRASE, KIND_COMPOSITE, KIND_RAW].contains(&kind) {
            return Err(Error::Corrupt {
                what: format!("unknown key source kind {kind}"),
            });
        }
        let word = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let kdf = KdfParams::new(word(11), word(15), word(19))?;
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&bytes[23..BODY_LEN]);
        let mut key_check = [0u8; KEY_CHECK_LEN];
        key_check.copy_from_slice(&bytes[BODY_LEN..]);
        Ok(Self {
            version,
            kind,
            kdf,
            salt,
            key_check,
        })
    }

    /// The stored form.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.body().to_vec();
        out.extend_from_slice(&self.key_check);
        out
    }

    /// Whether opening with a key source runs Argon2id (a raw key does
    /// not: its parameters are never used).
    pub(crate) fn runs_kdf(&self) -> bool {
        self.kind != KIND_RAW
    }

    /// Derives the KEK from `source` and checks it against the key-check
    /// value.
    ///
    /// # Errors
    /// [`Error::WrongKey`] if the source is of another kind or does not
    /// verify.
    pub(crate) fn unlock(&self, source: &KeySource) -> Result<Kek> {
        if source.kind_byte() != self.kind {
            return Err(Error::WrongKey);
        }
        self.check(self.derive_kek(source)?)
    }

    /// Accepts `kek` (however it was obtained) only if it verifies
    /// against the key-check value.
    pub(crate) fn check(&self, kek: Kek) -> Result<Kek> {
        if kek.verify_key_check(&self.key_check, &self.key_check_aad()) {
            Ok(kek)
        } else {
            Err(Error::WrongKey)
        }
    }

    fn derive_kek(&self, source: &KeySource) -> Result<Kek> {
        let master = derive_master(source, &self.kdf, &self.salt)?;
        Ok(Kek::derive(&master, &self.salt))
    }

    fn body(&self) -> [u8; BODY_LEN] {
        let mut b = [0u8; BODY_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_be_bytes());
        b[10] = self.kind;
        b[11..15].copy_from_slice(&self.kdf.memory_kib().to_be_bytes());
        b[15..19].copy_from_slice(&self.kdf.iterations().to_be_bytes());
        b[19..23].copy_from_slice(&self.kdf.parallelism().to_be_bytes());
        b[23..].copy_from_slice(&self.salt);
        b
    }

    fn key_check_aad(&self) -> Vec<u8> {
        let mut aad = KEY_CHECK_LABEL.to_vec();
        aad.extend_from_slice(&self.body());
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> (Header, Kek) {
        Header::new(&KeySource::passphrase("pw"), KdfParams::minimum()).unwrap()
    }

    #[test]
    fn round_trip_and_unlock() {
        let (h, _) = header();
        let parsed = Header::parse(&h.to_bytes()).unwrap();
        assert_eq!(parsed, h);
        assert!(parsed.unlock(&KeySource::passphrase("pw")).is_ok());
        assert!(matches!(
            parsed.unlock(&KeySource::passphrase("nope")),
            Err(Error::WrongKey)
        ));
        assert!(matches!(
            parsed.unlock(&KeySource::raw_key([0; 32])),
            Err(Error::WrongKey)
        ));
    }

    #[test]
    fn fail_out_of_bounds_kdf_is_refused_at_parse() {
        let (h, _) = header();
        let mut bytes = h.to_bytes();
        bytes[11..15].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Header::parse(&bytes),
            Err(Error::KdfParams {
                name: "memory_kib",
                ..
            })
        ));
        let mut bytes = h.to_bytes();
        bytes[15..19].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            Header::parse(&bytes),
            Err(Error::KdfParams {
                name: "iterations",
                ..
            })
        ));
    }

    #[test]
    fn fail_other_version_magic_or_length() {
        let (h, _) = header();
        let mut bytes = h.to_bytes();
        bytes[9] = 3;
        assert!(matches!(
            Header::parse(&bytes),
            Err(Error::UnsupportedVersion {
                found: 3,
                supported: 2
            })
        ));
        bytes[9] = 0;
        assert!(matches!(
            Header::parse(&bytes),
            Err(Error::UnsupportedVersion { found: 0, .. })
        ));
        let mut bytes = h.to_bytes();
        bytes[0] = b'X';
        assert!(matches!(Header::parse(&bytes), Err(Error::Corrupt { .. })));
        assert!(matches!(
            Header::parse(&h.to_bytes()[..50]),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn every_header_byte_is_covered() {
        let (h, _) = header();
        let good = h.to_bytes();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            let outcome = Header::parse(&bad)
                .and_then(|p| p.unlock(&KeySource::passphrase("pw")).map(|_| ()));
            assert!(outcome.is_err(), "flipping header byte {i} went unnoticed");
        }
    }
}
