//! The vault header (FORMAT.md §1): what is needed to turn a key source
//! into the KEK, and the key-check value that proves it worked.
//!
//! ```text
//! 0..8    magic "LLMVAULT"
//! 8..10   format version, u16 BE (1, 2 or 3)
//! 10      key source kind (1 passphrase, 2 passphrase + key file, 3 raw key)
//! 11..23  Argon2id memory KiB, passes, lanes: three u32 BE
//! 23..55  salt, 32 random bytes
//! formats 1 and 2 (the KEK derived from the master key):
//! 55..83   key check: nonce (12) ‖ AES-GCM tag (16) over an empty message
//!          under the KEK, AAD = "llmvault/v1/key-check" ‖ bytes 0..55
//! format 3 (a random KEK):
//! 55..115  the KEK wrapped under the unlock key,
//!          AAD = "llmvault/v3/kek" ‖ bytes 0..55
//! 115..143 key check as above, AAD = "llmvault/v1/key-check" ‖ bytes 0..115
//! ```

use crate::error::{Error, Result};
use crate::kdf::{KIND_COMPOSITE, KIND_PASSPHRASE, KIND_RAW, KdfParams, KeySource, derive_master};
use crate::keys::{KEY_CHECK_LEN, Kek, WRAPPED_LEN};

/// The format version this build writes. Version 2 added key-committing
/// envelopes (FORMAT.md §7), version 3 a random KEK stored wrapped in the
/// header (§1, §3). This build reads versions 1 to 3; a format-1 or -2
/// header is rewritten as format 3 on the vault's first change of KEK.
pub const FORMAT_VERSION: u16 = 3;

/// The oldest format version this build still opens.
const OLDEST_READABLE_VERSION: u16 = 1;
/// The newest format whose KEK is derived from the master key, with no
/// wrapped KEK in the header.
const LAST_DERIVED_KEK_VERSION: u16 = 2;

const MAGIC: &[u8; 8] = b"LLMVAULT";
const KEY_CHECK_LABEL: &[u8] = b"llmvault/v1/key-check";
const WRAPPED_KEK_LABEL: &[u8] = b"llmvault/v3/kek";
const SALT_LEN: usize = 32;
/// Magic, version, kind, parameters and salt: the same in every format.
const PREFIX_LEN: usize = 8 + 2 + 1 + 12 + SALT_LEN;
/// Formats 1 and 2.
const DERIVED_LEN: usize = PREFIX_LEN + KEY_CHECK_LEN;
/// Format 3.
const WRAPPED_KEK_LEN: usize = PREFIX_LEN + WRAPPED_LEN + KEY_CHECK_LEN;

/// A parsed header. Existing means valid: the version is one we read and
/// the KDF parameters are within bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// As stored: it is bound into the key check, so a format-1 or -2
    /// header keeps its version until a change of KEK rewrites it.
    version: u16,
    pub(crate) kind: u8,
    pub(crate) kdf: KdfParams,
    salt: [u8; SALT_LEN],
    /// Format 3 on: the KEK wrapped under the unlock key.
    wrapped_kek: Option<[u8; WRAPPED_LEN]>,
    key_check: [u8; KEY_CHECK_LEN],
}

/// What a key source opens: the KEK, and the unlock key that wraps it in
/// the header. A handle keeps the unlock key so it can replace the KEK
/// later without asking for the key source again.
pub(crate) struct SourceKeys {
    pub(crate) kek: Kek,
    pub(crate) unlock: Kek,
}

impl Header {
    /// A header of the current format for `source` with a fresh salt and
    /// a fresh random KEK; returns it with that KEK and the unlock key (the KDF runs here).
    pub(crate) fn new(source: &KeySource, kdf: KdfParams) -> Result<(Self, SourceKeys)> {
        let mut salt = [0u8; SALT_LEN];
        crate::random::fill_from_os(&mut salt);
        let master = derive_master(source, &kdf, &salt)?;
        let unlock = Kek::derive_unlock(&master, &salt);
        let header = Self {
            version: FORMAT_VERSION,
            kind: source.kind_byte(),
            kdf,
            salt,
            wrapped_kek: None,
            key_check: [0; KEY_CHECK_LEN],
        };
        let (header, kek) = header.with_new_kek(&unlock);
        Ok((header, SourceKeys { kek, unlock }))
    }

    /// This header with a fresh random KEK wrapped under `unlock` (which
    /// must be this header's unlock key): same kind, parameters and salt,
    /// so the key source that opened it still does. Always the current
    /// format: a format-1 or -2 header moves to format 3 here.
    pub(crate) fn with_new_kek(&self, unlock: &Kek) -> (Self, Kek) {
        let kek = Kek::random();
        let mut header = Self {
            version: FORMAT_VERSION,
            wrapped_kek: None,
            key_check: [0; KEY_CHECK_LEN],
            ..self.clone()
        };
        header.wrapped_kek = Some(unlock.wrap(kek.secret(), &header.wrapped_kek_aad()));
        header.key_check = kek.key_check(&header.key_check_aad());
        (header, kek)
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
        let wraps_kek = version > LAST_DERIVED_KEK_VERSION;
        let expected_len = if wraps_kek {
            WRAPPED_KEK_LEN
        } else {
            DERIVED_LEN
        };
        if bytes.len() != expected_len {
            return Err(Error::Corrupt {
                what: format!("header is {} bytes, expected {expected_len}", bytes.len()),
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
        salt.copy_from_slice(&bytes[23..PREFIX_LEN]);
        let wrapped_kek = wraps_kek.then(|| {
            let mut wrapped = [0u8; WRAPPED_LEN];
            wrapped.copy_from_slice(&bytes[PREFIX_LEN..PREFIX_LEN + WRAPPED_LEN]);
            wrapped
        });
        let mut key_check = [0u8; KEY_CHECK_LEN];
        key_check.copy_from_slice(&bytes[expected_len - KEY_CHECK_LEN..]);
        Ok(Self {
            version,
            kind,
            kdf,
            salt,
            wrapped_kek,
            key_check,
        })
    }

    /// The stored form.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.checked_bytes();
        out.extend_from_slice(&self.key_check);
        out
    }

    /// The format version of these bytes.
    #[cfg(test)]
    pub(crate) fn version(&self) -> u16 {
        self.version
    }

    /// Whether opening with a key source runs Argon2id (a raw key does
    /// not: its parameters are never used).
    pub(crate) fn runs_kdf(&self) -> bool {
        self.kind != KIND_RAW
    }

    /// Derives the master key from `source` and from it the unlock key
    /// and the KEK (formats 1 and 2: derived; format 3: unwrapped), and
    /// checks the KEK against the key-check value.
    ///
    /// # Errors
    /// [`Error::WrongKey`] if the source is of another kind or does not
    /// verify.
    pub(crate) fn unlock(&self, source: &KeySource) -> Result<SourceKeys> {
        if source.kind_byte() != self.kind {
            return Err(Error::WrongKey);
        }
        let master = derive_master(source, &self.kdf, &self.salt)?;
        let unlock = Kek::derive_unlock(&master, &self.salt);
        let kek = match &self.wrapped_kek {
            None => Kek::derive(&master, &self.salt),
            Some(wrapped) => unlock
                .unwrap_key(wrapped, &self.wrapped_kek_aad())
                .map(Kek::from_key)
                .ok_or(Error::WrongKey)?,
        };
        Ok(SourceKeys {
            kek: self.check(kek)?,
            unlock,
        })
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

    fn prefix(&self) -> [u8; PREFIX_LEN] {
        let mut b = [0u8; PREFIX_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..10].copy_from_slice(&self.version.to_be_bytes());
        b[10] = self.kind;
        b[11..15].copy_from_slice(&self.kdf.memory_kib().to_be_bytes());
        b[15..19].copy_from_slice(&self.kdf.iterations().to_be_bytes());
        b[19..23].copy_from_slice(&self.kdf.parallelism().to_be_bytes());
        b[23..].copy_from_slice(&self.salt);
        b
    }

    /// Every byte before the key check: the prefix, and from format 3 on
    /// the wrapped KEK.
    fn checked_bytes(&self) -> Vec<u8> {
        let mut out = self.prefix().to_vec();
        if let Some(wrapped) = &self.wrapped_kek {
            out.extend_from_slice(wrapped);
        }
        out
    }

    fn key_check_aad(&self) -> Vec<u8> {
        let mut aad = KEY_CHECK_LABEL.to_vec();
        aad.extend_from_slice(&self.checked_bytes());
        aad
    }

    fn wrapped_kek_aad(&self) -> Vec<u8> {
        let mut aad = WRAPPED_KEK_LABEL.to_vec();
        aad.extend_from_slice(&self.prefix());
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> (Header, SourceKeys) {
        Header::new(&KeySource::passphrase("pw"), KdfParams::minimum()).unwrap()
    }

    /// A header as formats 1 and 2 wrote it: the KEK derived from the
    /// master key, no wrapped KEK.
    fn derived_header(source: &KeySource, version: u16) -> (Header, Kek) {
        let salt = [7u8; SALT_LEN];
        let kdf = KdfParams::minimum();
        let master = derive_master(source, &kdf, &salt).unwrap();
        let kek = Kek::derive(&master, &salt);
        let mut header = Header {
            version,
            kind: source.kind_byte(),
            kdf,
            salt,
            wrapped_kek: None,
            key_check: [0; KEY_CHECK_LEN],
        };
        header.key_check = kek.key_check(&header.key_check_aad());
        (header, kek)
    }

    fn same_kek(a: &Kek, b: &Kek) -> bool {
        a.secret().expose() == b.secret().expose()
    }

    #[test]
    fn round_trip_and_unlock() {
        let (h, keys) = header();
        let bytes = h.to_bytes();
        assert_eq!(bytes.len(), WRAPPED_KEK_LEN);
        assert_eq!(&bytes[8..10], &[0, 3]);
        let parsed = Header::parse(&bytes).unwrap();
        assert_eq!(parsed, h);
        let opened = parsed.unlock(&KeySource::passphrase("pw")).unwrap();
        assert!(same_kek(&opened.kek, &keys.kek));
        assert!(same_kek(&opened.unlock, &keys.unlock));
        assert!(!same_kek(&keys.kek, &keys.unlock));
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
    fn a_new_kek_keeps_the_source_and_refuses_the_old_kek() {
        let source = KeySource::passphrase("pw");
        let (h, keys) = header();
        let (next, kek) = h.with_new_kek(&keys.unlock);
        assert!(!same_kek(&kek, &keys.kek));
        assert_eq!(&next.to_bytes()[..PREFIX_LEN], &h.to_bytes()[..PREFIX_LEN]);
        let parsed = Header::parse(&next.to_bytes()).unwrap();
        assert!(same_kek(&parsed.unlock(&source).unwrap().kek, &kek));
        assert!(parsed.check(keys.kek).is_err(), "the old KEK is refused");
        assert!(parsed.check(kek).is_ok());
    }

    #[test]
    fn a_derived_kek_header_opens_and_moves_to_format_3() {
        let source = KeySource::passphrase("pw");
        for version in [1, 2] {
            let (old, old_kek) = derived_header(&source, version);
            let bytes = old.to_bytes();
            assert_eq!(bytes.len(), DERIVED_LEN);
            let parsed = Header::parse(&bytes).unwrap();
            assert_eq!(parsed.version(), version);
            let keys = parsed.unlock(&source).unwrap();
            assert!(same_kek(&keys.kek, &old_kek));
            assert!(
                !same_kek(&keys.unlock, &old_kek),
                "the unlock key is not the derived KEK"
            );

            let (next, kek) = parsed.with_new_kek(&keys.unlock);
            let reparsed = Header::parse(&next.to_bytes()).unwrap();
            assert_eq!(reparsed.version(), FORMAT_VERSION);
            assert_eq!(&next.to_bytes()[10..PREFIX_LEN], &bytes[10..PREFIX_LEN]);
            assert!(same_kek(&reparsed.unlock(&source).unwrap().kek, &kek));
            assert!(reparsed.check(old_kek).is_err());
        }
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
        bytes[9] = 4;
        assert!(matches!(
            Header::parse(&bytes),
            Err(Error::UnsupportedVersion {
                found: 4,
                supported: 3
            })
        ));
        bytes[9] = 0;
        assert!(matches!(
            Header::parse(&bytes),
            Err(Error::UnsupportedVersion { found: 0, .. })
        ));
        // A format-3 header relabelled as format 1 or 2 has the wrong length.
        for version in [1, 2] {
            let mut bytes = h.to_bytes();
            bytes[9] = version;
            assert!(matches!(Header::parse(&bytes), Err(Error::Corrupt { .. })));
        }
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
        let source = KeySource::passphrase("pw");
        for good in [
            header().0.to_bytes(),
            derived_header(&source, 1).0.to_bytes(),
            derived_header(&source, 2).0.to_bytes(),
        ] {
            for i in 0..good.len() {
                let mut bad = good.clone();
                bad[i] ^= 0x01;
                let outcome = Header::parse(&bad).and_then(|p| p.unlock(&source).map(|_| ()));
                assert!(outcome.is_err(), "flipping header byte {i} went unnoticed");
            }
        }
    }
}
