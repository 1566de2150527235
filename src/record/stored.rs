//! A record read back from the vault.

use std::fmt;
use std::time::SystemTime;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{ConversationId, Message, RecordId, SubjectId};

/// A decrypted record. Its contents are wiped from memory when it is
/// dropped; it is neither `Clone` nor `Serialize`, and `Debug` shows only
/// its id and times.
///
/// ```compile_fail
/// fn copy(r: &llmvault::Record) -> llmvault::Record {
///     r.clone() // decrypted records are never cloned
/// }
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Record {
    #[zeroize(skip)]
    pub(crate) id: RecordId,
    pub(crate) conversation: ConversationId,
    pub(crate) subject: Option<SubjectId>,
    pub(crate) model: String,
    pub(crate) prompt: Vec<Message>,
    pub(crate) response: Option<Message>,
    #[zeroize(skip)]
    pub(crate) created_at: SystemTime,
    #[zeroize(skip)]
    pub(crate) expires_at: SystemTime,
    pub(crate) training_consent: bool,
    pub(crate) tags: Vec<String>,
    pub(crate) meta: Vec<(String, String)>,
    /// Whether the stored prompt and response hold placeholders.
    pub(crate) masked: bool,
}

impl Record {
    /// The record's id.
    pub fn id(&self) -> RecordId {
        self.id
    }

    /// The conversation it belongs to.
    pub fn conversation(&self) -> &ConversationId {
        &self.conversation
    }

    /// The data subject, if one was set.
    pub fn subject(&self) -> Option<&SubjectId> {
        self.subject.as_ref()
    }

    /// The model's name (empty if none was set).
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The prompt messages, in order.
    pub fn prompt(&self) -> &[Message] {
        &self.prompt
    }

    /// The model's response, if one was stored.
    pub fn response(&self) -> Option<&Message> {
        self.response.as_ref()
    }

    /// When the exchange happened (millisecond precision).
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// When the record's retention ends (millisecond precision).
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// Whether the subject agreed to training use.
    pub fn training_consent(&self) -> bool {
        self.training_consent
    }

    /// The tags, in the order given.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// A metadata value by key.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether this record still shows placeholders: it was stored masked
    /// and was read with [`Query::keep_masked`](crate::Query::keep_masked),
    /// or its conversation's mapping is gone (erased or expired). Vault
    /// reads otherwise put the real values back and clear this.
    pub fn is_masked(&self) -> bool {
        self.masked
    }

    /// All metadata entries, in the order given.
    pub fn meta_entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.meta.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("content", &"[REDACTED]")
            .finish_non_exhaustive()
    }
}
