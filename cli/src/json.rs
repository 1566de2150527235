//! The JSON shape of a record, shared by `put`, `get`, `list --json`,
//! `export` and `import` (docs/CLI.md, "Record JSON").
//!
//! ```json
//! {"id":7,"conversation":"conv-42","subject":"user-7","model":"gpt-4o",
//!  "prompt":[{"role":"user","content":"hello"}],
//!  "response":{"role":"assistant","content":"hi"},
//!  "created_at":"2025-03-01T12:00:00.250Z","expires_at":"2025-03-31T12:00:00.250Z",
//!  "training_consent":false,"masked":false,"tags":["support"],"meta":{"ticket":"T-9"}}
//! ```
//!
//! Decrypted text passes through these types, so they wipe themselves on
//! drop, like the library's `Record`.

use std::fmt;
use std::time::{Duration, SystemTime};

use llmvault::{ConversationId, Message, NewRecord, Record, Role, SubjectId};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::fail::Fail;
use crate::time::JsonTime;

/// One record. On input `id` is ignored and everything but `conversation`
/// may be left out.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct JsonRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub conversation: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub prompt: Vec<JsonMessage>,
    #[serde(default)]
    pub response: Option<JsonMessage>,
    #[zeroize(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<JsonTime>,
    #[zeroize(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<JsonTime>,
    #[serde(default)]
    pub training_consent: bool,
    /// The prompt and response hold placeholders (`pii mask`), not the
    /// real values: true only in `export --masked`, or on input.
    #[serde(default)]
    pub masked: bool,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, serialize_with = "meta_out", deserialize_with = "meta_in")]
    pub meta: Vec<(String, String)>,
}

/// One message: `{"role": "user", "content": "…"}`. Roles: `system`,
/// `user`, `assistant`, `tool`.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct JsonMessage {
    pub role: String,
    pub content: String,
}

impl JsonRecord {
    /// The JSON form of a stored record.
    pub fn from_record(r: &Record) -> Self {
        Self {
            id: Some(r.id().as_u64()),
            conversation: r.conversation().as_str().to_owned(),
            subject: r.subject().map(|s| s.as_str().to_owned()),
            model: r.model().to_owned(),
            prompt: r.prompt().iter().map(JsonMessage::from_message).collect(),
            response: r.response().map(JsonMessage::from_message),
            created_at: Some(JsonTime::from_system(r.created_at())),
            expires_at: Some(JsonTime::from_system(r.expires_at())),
            training_consent: r.training_consent(),
            masked: r.is_masked(),
            tags: r.tags().to_vec(),
            meta: r
                .meta_entries()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// The record to store. Its TTL is `ttl` if given, else the time left
    /// until `expires_at` (as of `now`), else the vault's default.
    ///
    /// Returns `Ok(None)` when `expires_at` has already passed.
    pub fn to_new_record(
        &self,
        now: SystemTime,
        ttl: Option<Duration>,
    ) -> Result<Option<NewRecord>, Fail> {
        let ttl = match (ttl, &self.expires_at) {
            (Some(ttl), _) => Some(ttl),
            (None, Some(at)) => match at.to_system()?.duration_since(now) {
                Ok(left) if !left.is_zero() => Some(left),
                _ => return Ok(None),
            },
            (None, None) => None,
        };
        let mut rec = NewRecord::new(ConversationId::new(self.conversation.as_str()))
            .model(self.model.as_str())
            .training_consent(self.training_consent)
            .masked(self.masked);
        if let Some(subject) = &self.subject {
            rec = rec.subject(SubjectId::new(subject.as_str()));
        }
        let prompt = self
            .prompt
            .iter()
            .map(JsonMessage::to_message)
            .collect::<Result<Vec<_>, _>>()?;
        rec = rec.prompt(prompt);
        if let Some(response) = &self.response {
            rec = rec.response(response.to_message()?);
        }
        if let Some(at) = &self.created_at {
            rec = rec.created_at(at.to_system()?);
        }
        if let Some(ttl) = ttl {
            rec = rec.ttl(ttl);
        }
        for tag in &self.tags {
            rec = rec.tag(tag.as_str());
        }
        for (k, v) in &self.meta {
            rec = rec.meta(k.as_str(), v.as_str());
        }
        Ok(Some(rec))
    }
}

impl JsonMessage {
    pub fn from_message(m: &Message) -> Self {
        Self {
            role: role_name(m.role()).to_owned(),
            content: m.content().to_owned(),
        }
    }

    pub fn to_message(&self) -> Result<Message, Fail> {
        let role = match self.role.as_str() {
            "system" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => {
                return Err(Fail::usage(format!(
                    "unknown role {other:?}: use system, user, assistant or tool"
                )));
            }
        };
        Ok(Message::new(role, self.content.as_str()))
    }
}

/// The JSON name of a role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
        _ => "unknown",
    }
}

/// `meta` is a JSON object whose order is the record's order.
fn meta_out<S: Serializer>(meta: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(meta.iter().map(|(k, v)| (k, v)))
}

fn meta_in<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    struct Entries;

    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<(String, String)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of string values")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(entry) = map.next_entry::<String, String>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }

    d.deserialize_map(Entries)
}
