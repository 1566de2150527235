//! Where the master key comes from: a passphrase, a passphrase plus a key
//! file, or a raw key handed in by the application.

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::secret::{KEY_LEN, SecretKey};

/// The secret that opens a vault.
///
/// Holds the passphrase or raw key in zeroizing memory. Not `Clone`; its
/// `Debug` names the kind of source only. Pass it by reference to open
/// several vaults with one source.
///
/// ```compile_fail
/// let key = llmvault::KeySource::passphrase("pw");
/// let copy = key.clone(); // secrets are never cloned
/// ```
pub struct KeySource(pub(crate) SourceKind);

pub(crate) enum SourceKind {
    Passphrase(Zeroizing<String>),
    PassphraseAndKeyFile {
        passphrase: Zeroizing<String>,
        key_file: PathBuf,
    },
    Raw(SecretKey),
}

impl KeySource {
    /// A passphrase, stretched with Argon2id.
    pub fn passphrase(passphrase: impl Into<String>) -> Self {
        Self(SourceKind::Passphrase(Zeroizing::new(passphrase.into())))
    }

    /// A composite key (as in KeePass): the passphrase and the contents of
    /// the key file are both needed. The file is read when the vault is
    /// created or opened; any file of any length works, 32+ random bytes is
    /// what it is for.
    pub fn passphrase_and_keyfile(
        passphrase: impl Into<String>,
        key_file: impl AsRef<Path>,
    ) -> Self {
        Self(SourceKind::PassphraseAndKeyFile {
            passphrase: Zeroizing::new(passphrase.into()),
            key_file: key_file.as_ref().to_path_buf(),
        })
    }

    /// A 256-bit key from a KMS or HSM, used as the master key directly (no
    /// Argon2id work). The array passed in is copied into zeroizing memory;
    /// wipe the caller's copy too.
    pub fn raw_key(key: [u8; KEY_LEN]) -> Self {
        Self(SourceKind::Raw(SecretKey::from_bytes(key)))
    }

    /// Which kind of source this is, as recorded in the header (FORMAT.md §1).
    pub(crate) fn kind_byte(&self) -> u8 {
        match self.0 {
            SourceKind::Passphrase(_) => KIND_PASSPHRASE,
            SourceKind::PassphraseAndKeyFile { .. } => KIND_COMPOSITE,
            SourceKind::Raw(_) => KIND_RAW,
        }
    }
}

pub(crate) const KIND_PASSPHRASE: u8 = 1;
pub(crate) const KIND_COMPOSITE: u8 = 2;
pub(crate) const KIND_RAW: u8 = 3;

impl AsRef<KeySource> for KeySource {
    fn as_ref(&self) -> &KeySource {
        self
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            SourceKind::Passphrase(_) => "Passphrase",
            SourceKind::PassphraseAndKeyFile { .. } => "PassphraseAndKeyFile",
            SourceKind::Raw(_) => "RawKey",
        };
        f.debug_struct("KeySource")
            .field("kind", &kind)
            .field("secret", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}
