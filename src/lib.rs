//! # llmvault
//!
//! Keeps LLM prompt/response logs encrypted at rest, with retention,
//! erasure by data subject, and key material wiped from memory.
//!
//! Every record is sealed with AES-256-GCM under a data key scoped to its
//! subject and retention epoch; data keys are wrapped by a KEK derived
//! (Argon2id, then HKDF) from your passphrase or raw key. Expired records
//! are never returned, and purging them destroys their keys.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, SystemTime};
//! use llmvault::{ConversationId, Error, KdfParams, KeySource, Message, NewRecord,
//!                SubjectId, Vault, VaultOptions, clock::ManualClock};
//!
//! let dir = tempfile::tempdir()?;
//! let clock = Arc::new(ManualClock::new(SystemTime::now()));
//! let opts = VaultOptions::default()
//!     .kdf(KdfParams::minimum()) // fast for the example; keep the default in production
//!     .clock(clock.clone());
//! let key = KeySource::passphrase("correct horse battery staple");
//! let vault = Vault::create(dir.path().join("log.vault"), &key, &opts)?;
//!
//! let id = vault.put(
//!     NewRecord::new(ConversationId::new("conv-42"))
//!         .subject(SubjectId::new("user-7"))
//!         .model("gpt-4o")
//!         .prompt([Message::user("hello")])
//!         .response(Message::assistant("hi"))
//!         .ttl(Duration::from_secs(3600)),
//! )?;
//! assert_eq!(vault.get(id)?.response().map(|m| m.content()), Some("hi"));
//!
//! clock.advance(Duration::from_secs(3601));
//! assert!(matches!(vault.get(id), Err(Error::Expired { .. })));
//! assert_eq!(vault.purge_expired()?.records, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The everyday types are at the root. The specialist ones live in their
//! modules: [`audit`] (entries, heads, verification, acting as an actor),
//! [`ingest`] (write-only ingestors), [`recovery`] (recovery shares),
//! [`maintenance`] (key-less retention jobs), [`pii`] (pseudonymization),
//! [`clock`]. [`Storage`] says where a vault lives.
//!
//! See `docs/DESIGN.md` for the key hierarchy and threat model and
//! `docs/FORMAT.md` for the bytes on disk.
//!
//! # Crate features
//!
//! - `aws-lc` (default): AES-256-GCM from AWS-LC (needs a C compiler).
//! - `rust-crypto`: AES-256-GCM from the pure-Rust `aes-gcm` crate, for
//!   `default-features = false` builds. Both write the same bytes.
//! - `failpoints`: test-only crash points inside write transactions
//!   (`tests/crash_points.rs`). Never in a build that stores real data.
//! - `internals`: hidden hooks for the crate's own benches and tests,
//!   among them an AEAD seal that takes its nonce from the caller. Not
//!   part of the API; never enable it in an application.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(rustdoc::broken_intra_doc_links)]

/// A crash point for tests (see `src/failpoint.rs`): expands to nothing
/// unless the crate is built with the `failpoints` feature.
macro_rules! failpoint {
    ($point:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoint::hit($point);
    };
}

mod aead;
pub mod audit;
pub mod clock;
mod codec;
mod derive;
mod error;
#[cfg(feature = "failpoints")]
#[doc(hidden)]
pub mod failpoint;
pub mod ingest;
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod internals;
mod kdf;
mod keys;
/// Finding personal data in text and replacing it with reversible placeholders.
pub mod pii;
mod random;
mod record;
mod retention;
mod seal;
mod secret;
mod store;
mod tables;
mod vault;

/// Opening a vault without its key, for retention jobs.
pub mod maintenance {
    pub use crate::vault::{Maintenance, VaultStats};
}

/// Recovery shares: opening a vault with `k` of `n` shares instead of its key.
pub mod recovery {
    pub use crate::keys::RecoveryShare;
}

pub use aead::AEAD_BACKEND;
pub use audit::Actor;
pub use error::{Error, Result};
pub use kdf::{KdfParams, KeySource};
pub use record::{ConversationId, Message, NewRecord, Record, RecordId, Role, SubjectId};
pub use retention::{DEFAULT_EPOCH, DEFAULT_TTL};
pub use seal::SEAL_OVERHEAD;
pub use store::{DEFAULT_PAGE_CACHE_MIB, Storage};
pub use vault::{
    DEFAULT_KEY_CACHE, DEFAULT_MAX_RECORDS_PER_KEY, EraseReport, FORMAT_VERSION,
    MAX_RECORDS_PER_KEY_LIMIT, PurgeReport, Query, Vault, VaultOptions, VerifyReport,
};

// The specialist types' old paths at the root, kept for one release; the
// documented ones are their modules'.
#[doc(hidden)]
pub use audit::{
    AUDIT_MAX_LISTED_RECORDS, AsActor, Audit, AuditAction, AuditEntry, AuditFindings, AuditHead,
    AuditOutcome, AuditQuery, AuditReport, RecordSummary,
};
#[doc(hidden)]
pub use ingest::{IngestKey, Ingestor};
#[doc(hidden)]
pub use maintenance::{Maintenance, VaultStats};
#[doc(hidden)]
pub use recovery::RecoveryShare;
