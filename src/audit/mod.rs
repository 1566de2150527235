//! The audit log: one sealed, hash-chained entry for every operation on a
//! vault. Entries are sealed (they name actors and record ids) and chained
//! with a keyed MAC, each covering the one before, so that a removed,
//! changed, inserted or reordered entry is found and named by `verify`.

mod chain;
mod findings;
mod keys;
mod newest;
pub(crate) mod read_log;
mod records;

pub use crate::vault::{AsActor, Audit};
pub(crate) use chain::{ChainVerifier, entry_row, open_entry, row_of_body};
pub use findings::AuditFindings;
pub(crate) use findings::FullVerifier;
pub(crate) use keys::AuditKeys;
pub(crate) use newest::{NEWEST_ROW, Newest};
pub(crate) use records::RecordIds;
pub use records::{AUDIT_MAX_LISTED_RECORDS, RecordSummary};

use std::time::SystemTime;

use crate::record::RecordId;

/// Who acts on a vault, and why: recorded in every audit entry (each cut
/// to its first 4096 bytes, so that entries stay bounded).
///
/// ```
/// let actor = llmvault::Actor::new("alice").purpose("ticket T-9");
/// assert_eq!(actor.name(), "alice");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    name: String,
    purpose: Option<String>,
}

impl Actor {
    /// An actor with this name (a person, a service, a job).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            purpose: None,
        }
    }

    /// Why the actor acts (a ticket, a legal request, a job name).
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// The actor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stated purpose, if any.
    pub fn stated_purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }
}

impl Default for Actor {
    /// The actor of plain `Vault` calls: `"default"`, no purpose.
    fn default() -> Self {
        Self::new("default")
    }
}

/// What an audited call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// The vault was created.
    Create,
    /// The vault was opened with its key.
    Open,
    /// Opens that failed with a wrong key since the last successful open
    /// (counted unauthenticated, folded in at the next open).
    FailedOpens,
    /// One record stored.
    Put,
    /// Several records stored in one transaction.
    PutBatch,
    /// One record read.
    Get,
    /// A conversation read.
    Conversation,
    /// A subject's records read.
    SubjectRecords,
    /// Expired records purged.
    Purge,
    /// A subject erased.
    Erase,
    /// An export started (`query` says which records it asked for),
    /// written before the first record is handed out; an
    /// [`ExportFinished`](AuditAction::ExportFinished) entry follows.
    Export,
    /// The vault's key changed.
    ChangeKey,
    /// Every record and key verified.
    Verify,
    /// A purge run by a key-less maintenance handle, folded in at the next
    /// open with the key.
    MaintenancePurge,
    /// Recovery shares issued (`count` = how many; earlier ones revoked).
    RecoverySharesIssued,
    /// Recovery shares revoked.
    RecoveryRevoked,
    /// The vault was opened with recovery shares.
    RecoveryOpen,
    /// Records read by a filter (`records` names them).
    Query,
    /// Every data key in use retired (`count` = how many).
    RotateKeys,
    /// Records written by a write-only ingestor, taken into the vault.
    Ingest,
    /// The vault's ingest key was handed out (`count` = 1 if this call
    /// created it, 0 if it was the current one).
    IngestKeyIssued,
    /// Personal data in a prompt replaced by placeholders (`count` = new ones).
    Pseudonymize,
    /// Placeholders in a model's output replaced by the real values.
    Restore,
    /// An export ended: `count` records reached the callback, `records`
    /// names them, and the outcome says how it ended. Its [`Export`]
    /// entry was written before the first record was handed out.
    ///
    /// [`Export`]: AuditAction::Export
    ExportFinished,
    /// The ingest key was replaced by a new one; the old one stopped
    /// working.
    IngestKeyRotated,
    /// Staged records that take-in refused and set aside (`records` names
    /// their staged ids, `count` = how many).
    IngestSetAside,
    /// Read entries waiting in a read log were lost: the log was missing,
    /// or an entry in it did not authenticate (the outcome says which).
    /// [`Audit::verify`] names this entry as tampered.
    ReadLogDamaged,
}

impl AuditAction {
    /// Stable wire number (FORMAT.md §11).
    pub(crate) fn to_wire(self) -> u8 {
        match self {
            Self::Create => 1,
            Self::Open => 2,
            Self::FailedOpens => 3,
            Self::Put => 4,
            Self::PutBatch => 5,
            Self::Get => 6,
            Self::Conversation => 7,
            Self::SubjectRecords => 8,
            Self::Purge => 9,
            Self::Erase => 10,
            Self::Export => 11,
            Self::ChangeKey => 12,
            Self::Verify => 13,
            Self::MaintenancePurge => 14,
            Self::RecoverySharesIssued => 15,
            Self::RecoveryRevoked => 16,
            Self::RecoveryOpen => 17,
            Self::Query => 18,
            Self::RotateKeys => 19,
            Self::Ingest => 20,
            Self::IngestKeyIssued => 21,
            Self::Pseudonymize => 22,
            Self::Restore => 23,
            Self::ExportFinished => 24,
            Self::IngestKeyRotated => 25,
            Self::IngestSetAside => 26,
            Self::ReadLogDamaged => 27,
        }
    }

    pub(crate) fn from_wire(n: u8) -> Option<Self> {
        Some(match n {
            1 => Self::Create,
            2 => Self::Open,
            3 => Self::FailedOpens,
            4 => Self::Put,
            5 => Self::PutBatch,
            6 => Self::Get,
            7 => Self::Conversation,
            8 => Self::SubjectRecords,
            9 => Self::Purge,
            10 => Self::Erase,
            11 => Self::Export,
            12 => Self::ChangeKey,
            13 => Self::Verify,
            14 => Self::MaintenancePurge,
            15 => Self::RecoverySharesIssued,
            16 => Self::RecoveryRevoked,
            17 => Self::RecoveryOpen,
            18 => Self::Query,
            19 => Self::RotateKeys,
            20 => Self::Ingest,
            21 => Self::IngestKeyIssued,
            22 => Self::Pseudonymize,
            23 => Self::Restore,
            24 => Self::ExportFinished,
            25 => Self::IngestKeyRotated,
            26 => Self::IngestSetAside,
            27 => Self::ReadLogDamaged,
            _ => return None,
        })
    }
}

/// How an audited call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// It succeeded.
    Ok,
    /// It failed with this error (its `Display` text, which never holds
    /// secrets).
    Failed(String),
}

/// One audit entry, decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it happened, by the vault's clock.
    pub at: SystemTime,
    /// Who acted.
    pub actor: String,
    /// Why, if stated.
    pub purpose: Option<String>,
    /// What was done.
    pub action: AuditAction,
    /// Records concerned (stored, read, …), where the call names them and
    /// they are at most [`AUDIT_MAX_LISTED_RECORDS`]; else empty, and
    /// `record_summary` stands for them.
    pub records: Vec<RecordId>,
    /// Count, range and digest of the records concerned, when the call
    /// named more than [`AUDIT_MAX_LISTED_RECORDS`].
    pub record_summary: Option<RecordSummary>,
    /// The filter of a `query` or `export` (entries written before audit
    /// body version 2 do not carry it).
    pub query: Option<AuditQuery>,
    /// The keyed tag of the subject or conversation concerned, in hex: the
    /// raw id is never written, even sealed.
    pub target_tag: Option<String>,
    /// A count: records purged or erased, failed opens, …
    pub count: u64,
    /// How it ended.
    pub outcome: AuditOutcome,
}

/// The newest entry's position and MAC. Keep it outside the vault (a log
/// line, another system): [`Audit::verify_against`](crate::audit::Audit::verify_against)
/// then also detects a log whose tail was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    /// Sequence number of the newest entry (0 for an empty log).
    pub seq: u64,
    /// Its chain MAC.
    pub mac: [u8; 32],
}

impl AuditHead {
    /// Printable form: `seq:hexmac`.
    pub fn to_text(&self) -> String {
        let hex: String = self.mac.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:{hex}", self.seq)
    }

    /// Parses [`AuditHead::to_text`]'s form; `None` if malformed.
    pub fn from_text(text: &str) -> Option<Self> {
        let (seq, hex) = text.trim().split_once(':')?;
        if hex.len() != 64 {
            return None;
        }
        let mut mac = [0u8; 32];
        for (i, byte) in mac.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self {
            seq: seq.parse().ok()?,
            mac,
        })
    }
}

/// The outcome of verifying the audit chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReport {
    /// Entries that verified.
    pub entries: u64,
    /// The newest entry.
    pub head: AuditHead,
}

/// The filter of a `query` or `export`, as its audit entry records it.
/// Subject and conversation appear as their keyed tags in hex (as
/// [`AuditEntry::target_tag`]), never as ids; the tag and model strings
/// are kept up to 4096 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Records created at or after this time only.
    pub since: Option<SystemTime>,
    /// Records created before this time only.
    pub until: Option<SystemTime>,
    /// Records carrying this tag only.
    pub tag: Option<String>,
    /// Records of this model only.
    pub model: Option<String>,
    /// This subject's records only: its keyed tag, in hex.
    pub subject_tag: Option<String>,
    /// This conversation's records only: its keyed tag, in hex.
    pub conversation_tag: Option<String>,
    /// Records whose subject agreed to training use only.
    pub training_consented_only: bool,
    /// Masked records were handed out with their placeholders.
    pub keep_masked: bool,
}

/// What a call contributes to its audit entry (everything but who, when
/// and how it ended).
#[derive(Debug, Clone, Default)]
pub(crate) struct Event {
    pub(crate) action: Option<AuditAction>,
    pub(crate) records: RecordIds,
    pub(crate) target_tag: Option<[u8; 16]>,
    pub(crate) count: u64,
    pub(crate) query: Option<QueryFilter>,
}

/// A query's filter as an entry stores it (times in Unix ms, raw tags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueryFilter {
    pub(crate) since_ms: Option<i64>,
    pub(crate) until_ms: Option<i64>,
    pub(crate) tag: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) subject: Option<[u8; 16]>,
    pub(crate) conversation: Option<[u8; 16]>,
    pub(crate) consented_only: bool,
    pub(crate) keep_masked: bool,
}

impl Event {
    pub(crate) fn new(action: AuditAction) -> Self {
        Self {
            action: Some(action),
            ..Self::default()
        }
    }

    pub(crate) fn records(mut self, ids: impl IntoIterator<Item = RecordId>) -> Self {
        ids.into_iter().for_each(|id| self.records.push(id));
        self
    }

    pub(crate) fn query(mut self, filter: QueryFilter) -> Self {
        self.query = Some(filter);
        self
    }

    pub(crate) fn target(mut self, tag: [u8; 16]) -> Self {
        self.target_tag = Some(tag);
        self
    }

    pub(crate) fn count(mut self, n: u64) -> Self {
        self.count = n;
        self
    }
}
