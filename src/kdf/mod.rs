//! Key derivation: turns a [`KeySource`] into the vault's master key.
//!
//! Passphrases go through Argon2id with the header's parameters and salt;
//! a composite key feeds `SHA-256(passphrase) || SHA-256(key file)` to
//! Argon2id (FORMAT.md §2); a raw key is the master key itself.

mod params;
mod source;

pub use params::KdfParams;
pub use source::KeySource;
pub(crate) use source::{KIND_COMPOSITE, KIND_PASSPHRASE, KIND_RAW};

use argon2::{Algorithm, Argon2, Params, Version};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::{KEY_LEN, SecretKey};
use source::SourceKind;

/// The root of the key hierarchy. Only ever used to derive the KEK.
pub(crate) struct MasterKey(pub(crate) SecretKey);

/// Derives the master key from `source` with the given parameters and salt.
///
/// # Errors
/// [`Error::Io`] if a key file cannot be read; [`Error::KdfParams`] if
/// Argon2 refuses the parameters (not expected for a checked
/// [`KdfParams`]); [`Error::InvalidInput`] for a passphrase Argon2 cannot
/// take.
pub(crate) fn derive_master(
    source: &KeySource,
    params: &KdfParams,
    salt: &[u8],
) -> Result<MasterKey> {
    match &source.0 {
        SourceKind::Raw(key) => Ok(MasterKey(SecretKey::copy_from(key.expose()))),
        SourceKind::Passphrase(pass) => argon2id(pass.as_bytes(), params, salt),
        SourceKind::PassphraseAndKeyFile {
            passphrase,
            key_file,
        } => {
            let file = Zeroizing::new(std::fs::read(key_file)?);
            // Each digest is written straight into the zeroizing buffer:
            // a returned digest would be a stack temporary nobody wipes.
            let mut composite = Zeroizing::new([[0u8; 32]; 2]);
            sha256_into(passphrase.as_bytes(), &mut composite[0]);
            sha256_into(file.as_slice(), &mut composite[1]);
            argon2id(composite.as_flattened(), params, salt)
        }
    }
}

/// SHA-256 written straight into `out`: a returned digest would be a stack
/// temporary that nobody wipes.
fn sha256_into(data: &[u8], out: &mut [u8; 32]) {
    Sha256::new_with_prefix(data).finalize_into(out.into());
}

fn argon2id(password: &[u8], params: &KdfParams, salt: &[u8]) -> Result<MasterKey> {
    let refused = |e| argon2_refused(e, params);
    let argon_params = Params::new(
        params.memory_kib(),
        params.iterations(),
        params.parallelism(),
        Some(KEY_LEN),
    )
    .map_err(refused)?;
    let mut master = SecretKey::zeroed();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params)
        .hash_password_into(password, salt, master.expose_mut())
        .map_err(refused)?;
    Ok(MasterKey(master))
}

/// Argon2's refusal in our terms: a cost parameter it will not take is
/// [`Error::KdfParams`] naming it, anything else (a passphrase longer than
/// 2^32 - 1 bytes) is [`Error::InvalidInput`] with Argon2's reason.
fn argon2_refused(e: argon2::Error, params: &KdfParams) -> Error {
    use argon2::Error as A;
    let (name, requested, min, max) = match e {
        A::MemoryTooLittle | A::MemoryTooMuch => (
            "memory_kib",
            params.memory_kib(),
            KdfParams::MIN_MEMORY_KIB,
            KdfParams::MAX_MEMORY_KIB,
        ),
        A::TimeTooSmall => (
            "iterations",
            params.iterations(),
            KdfParams::MIN_ITERATIONS,
            KdfParams::MAX_ITERATIONS,
        ),
        A::ThreadsTooFew | A::ThreadsTooMany => (
            "parallelism",
            params.parallelism(),
            KdfParams::MIN_PARALLELISM,
            KdfParams::MAX_PARALLELISM,
        ),
        other => {
            return Error::InvalidInput {
                what: "argon2 input",
                reason: other.to_string(),
            };
        }
    };
    Error::KdfParams {
        name,
        requested: requested.into(),
        min: min.into(),
        max: max.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 16] = [7; 16];

    #[test]
    fn argon2id_known_answer() {
        // Pins our use of argon2 (algorithm, version, output length): a
        // change here would lock every existing vault out.
        let m = derive_master(&KeySource::passphrase("pw"), &KdfParams::minimum(), &SALT).unwrap();
        let hex: String = m.0.expose().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, ARGON2_KAT);
    }

    const ARGON2_KAT: &str = "1bf7d0270e3f66fb90ed05d460a1b9cae2f29fbc41bb1041e0f356d21e1a9cbf";

    #[test]
    fn composite_differs_from_passphrase_alone() {
        let dir = tempfile::tempdir().unwrap();
        let kf = dir.path().join("key");
        std::fs::write(&kf, b"key file bytes").unwrap();
        let p = KdfParams::minimum();
        let a = derive_master(&KeySource::passphrase("pw"), &p, &SALT).unwrap();
        let b = derive_master(&KeySource::passphrase_and_keyfile("pw", &kf), &p, &SALT).unwrap();
        assert_ne!(a.0.expose(), b.0.expose());
    }

    #[test]
    fn raw_key_is_the_master() {
        let m = derive_master(&KeySource::raw_key([9; 32]), &KdfParams::minimum(), &SALT).unwrap();
        assert_eq!(m.0.expose(), &[9; 32]);
    }

    #[test]
    fn argon2_refusals_map_to_kdf_params() {
        let p = KdfParams::minimum();
        assert!(matches!(
            argon2_refused(argon2::Error::MemoryTooLittle, &p),
            Error::KdfParams {
                name: "memory_kib",
                requested: 8192,
                ..
            }
        ));
        assert!(matches!(
            argon2_refused(argon2::Error::ThreadsTooMany, &p),
            Error::KdfParams {
                name: "parallelism",
                ..
            }
        ));
        assert!(matches!(
            argon2_refused(argon2::Error::PwdTooLong, &p),
            Error::InvalidInput { .. }
        ));
    }

    #[test]
    fn debug_redacts() {
        let s = format!("{:?}", KeySource::passphrase("hunter2-secret"));
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("REDACTED"));
    }
}
