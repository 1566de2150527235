//! A record about to be stored, built step by step.

use std::fmt;
use std::time::{Duration, SystemTime};

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::{ConversationId, Message, SubjectId};

/// One exchange to store: the prompt messages, the response and what is
/// known about them. Everything in it is sealed; wiped from memory on drop.
///
/// ```
/// use std::time::Duration;
/// use llmvault::{ConversationId, Message, NewRecord, SubjectId};
///
/// let rec = NewRecord::new(ConversationId::new("conv-42"))
///     .subject(SubjectId::new("user-7"))
///     .model("gpt-4o")
///     .prompt([Message::system("be brief"), Message::user("hello")])
///     .response(Message::assistant("hi"))
///     .ttl(Duration::from_secs(3600))
///     .tag("support")
///     .meta("ticket", "T-9");
/// # drop(rec);
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct NewRecord {
    pub(crate) conversation: ConversationId,
    pub(crate) subject: Option<SubjectId>,
    pub(crate) model: String,
    pub(crate) prompt: Vec<Message>,
    pub(crate) response: Option<Message>,
    #[zeroize(skip)]
    pub(crate) ttl: Option<Duration>,
    #[zeroize(skip)]
    pub(crate) created_at: Option<SystemTime>,
    pub(crate) training_consent: bool,
    pub(crate) tags: Vec<String>,
    pub(crate) meta: Vec<(String, String)>,
    pub(crate) masked: bool,
}

impl NewRecord {
    /// A record in `conversation`, with nothing else set yet.
    pub fn new(conversation: ConversationId) -> Self {
        Self {
            conversation,
            subject: None,
            model: String::new(),
            prompt: Vec::new(),
            response: None,
            ttl: None,
            created_at: None,
            training_consent: false,
            tags: Vec::new(),
            meta: Vec::new(),
            masked: false,
        }
    }

    /// The data subject (person) the record is about; erasure works by subject.
    pub fn subject(mut self, subject: SubjectId) -> Self {
        self.subject = Some(subject);
        self
    }

    /// The model's name.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The prompt messages, in order (replaces any set before).
    pub fn prompt(mut self, messages: impl IntoIterator<Item = Message>) -> Self {
        self.prompt = messages.into_iter().collect();
        self
    }

    /// The model's response.
    pub fn response(mut self, message: Message) -> Self {
        self.response = Some(message);
        self
    }

    /// How long to keep the record; else the vault's default TTL.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// When the exchange happened; else the vault clock's "now". The expiry
    /// still counts from the time of storing.
    pub fn created_at(mut self, at: SystemTime) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Whether the subject agreed that this exchange may be used for
    /// training. Default: no.
    pub fn training_consent(mut self, consent: bool) -> Self {
        self.training_consent = consent;
        self
    }

    /// Marks the prompt and response as masked: they hold the placeholders
    /// that [`Vault::pseudonymize`](crate::Vault::pseudonymize) gave this
    /// conversation (what the model saw). Readers with the key get the
    /// real values back; exports with
    /// [`Query::keep_masked`](crate::Query::keep_masked) keep placeholders.
    pub fn masked(mut self, masked: bool) -> Self {
        self.masked = masked;
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets a metadata entry (replacing an earlier value for the same key).
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.meta.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.meta.push((key, value)),
        }
        self
    }
}

impl fmt::Debug for NewRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRecord")
            .field("messages", &self.prompt.len())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// A record read back, as a record to store again (same content and
/// times): how staged and imported records are re-sealed.
impl From<super::Record> for NewRecord {
    fn from(mut r: super::Record) -> Self {
        let mut new = NewRecord::new(std::mem::replace(
            &mut r.conversation,
            super::ConversationId::new(""),
        ));
        new.subject = r.subject.take();
        new.model = std::mem::take(&mut r.model);
        new.prompt = std::mem::take(&mut r.prompt);
        new.response = r.response.take();
        new.created_at = Some(r.created_at);
        new.training_consent = r.training_consent;
        new.tags = std::mem::take(&mut r.tags);
        new.meta = std::mem::take(&mut r.meta);
        new.masked = r.masked;
        new
    }
}
