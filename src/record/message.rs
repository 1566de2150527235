//! One message of an exchange with a model.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The person (or application) asking.
    User,
    /// The model's answer.
    Assistant,
    /// Output of a tool the model called.
    Tool,
}

impl Role {
    /// Stable wire number (FORMAT.md §6).
    pub(crate) fn to_wire(self) -> u8 {
        match self {
            Role::System => 0,
            Role::User => 1,
            Role::Assistant => 2,
            Role::Tool => 3,
        }
    }

    pub(crate) fn from_wire(n: u8) -> Option<Self> {
        Some(match n {
            0 => Role::System,
            1 => Role::User,
            2 => Role::Assistant,
            3 => Role::Tool,
            _ => return None,
        })
    }
}

/// A message: a role and its text. The text is wiped from memory on drop,
/// and `Debug` shows only the role and length.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Message {
    #[zeroize(skip)]
    role: Role,
    content: String,
}

impl Message {
    /// A message with any role.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant (model) message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// Who wrote it.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The text.
    pub fn content(&self) -> &str {
        &self.content
    }

    /// Replaces the text (the old one is wiped).
    pub(crate) fn set_content(&mut self, content: String) {
        self.content.zeroize();
        self.content = content;
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("role", &self.role)
            .field("content_len", &self.content.len())
            .finish_non_exhaustive()
    }
}
