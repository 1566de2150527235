//! How the tool fails: one line on stderr that says what to do, and an
//! exit code a script can branch on.

use std::fmt;

use llmvault::Error;

/// Exit code: the command failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: the command line was wrong (clap uses it too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the key does not open the vault.
pub const EXIT_WRONG_KEY: u8 = 3;
/// Exit code: a record, key or audit entry failed authentication.
pub const EXIT_TAMPERED: u8 = 4;

/// A failure on its way to stderr.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    /// A usage mistake (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// Any other failure (exit 1).
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }

    /// Stop without a message (stdout was closed by its reader).
    pub fn quiet() -> Self {
        Self {
            code: EXIT_FAILURE,
            message: String::new(),
        }
    }

    /// Prefixes the message with where it happened (`line 7: …`).
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        let code = match e {
            Error::WrongKey => EXIT_WRONG_KEY,
            Error::Tampered { .. } | Error::KeyTampered { .. } | Error::AuditTampered { .. } => {
                EXIT_TAMPERED
            }
            _ => EXIT_FAILURE,
        };
        let hint = hint(&e);
        let message = if hint.is_empty() {
            e.to_string()
        } else {
            format!("{e}; {hint}")
        };
        Self { code, message }
    }
}

impl From<std::io::Error> for Fail {
    fn from(e: std::io::Error) -> Self {
        Self::other(format!("i/o error: {e}"))
    }
}

/// What the operator can do about `e`.
fn hint(e: &Error) -> &'static str {
    match e {
        Error::WrongKey => "check the passphrase (and --key-file if the vault was made with one)",
        Error::Tampered { .. } | Error::KeyTampered { .. } => {
            "restore the vault from a backup, or export the records that still read"
        }
        Error::AuditTampered { .. } => {
            "the audit log was altered: keep this copy as evidence and restore from a backup"
        }
        Error::KeyDestroyed { .. } => "the record was purged or erased; nothing can read it now",
        Error::Expired { .. } => "run `llmvault purge` to remove expired records",
        Error::NotFound { .. } => "list what is stored with `llmvault list`",
        Error::KdfParams { .. } => "choose a value in the range shown",
        Error::TtlTooLong { .. } => "ask for a shorter --ttl",
        Error::UnsupportedVersion { .. } => "use a newer llmvault to open this vault",
        Error::AlreadyExists => {
            "choose another --vault (and --keys) path, or open the existing vault"
        }
        Error::StorageMismatch => {
            "give the vault's own --keys file with its --vault file (or neither, for a one-file vault)"
        }
        Error::Corrupt { .. } => "check --vault points at a vault file; restore it from a backup",
        Error::KeyChanged => "the key was changed meanwhile; run the command again",
        Error::KeySourceNeeded => {
            "set a new passphrase with `llmvault --shares-file FILE passwd` first, or open with the passphrase"
        }
        Error::Busy => "another process is writing; retry",
        _ => "",
    }
}
