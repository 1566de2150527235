//! Identifiers: of a record (assigned by the vault), of a conversation and
//! of a data subject (given by the application).

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// A record's id within its vault. Ids are assigned in increasing order and
/// never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(u64);

impl RecordId {
    /// The id with this number (as printed by `Display`).
    pub const fn from_u64(n: u64) -> Self {
        Self(n)
    }

    /// The id's number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::str::FromStr for RecordId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        s.parse().map(Self).map_err(|_| Error::InvalidInput {
            what: "record id",
            reason: "expected a decimal number".into(),
        })
    }
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Stored only inside sealed records and as a keyed tag; wiped from
        /// memory on drop.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Zeroize, ZeroizeOnDrop)]
        pub struct $name(String);

        impl $name {
            /// Wraps an application-chosen id.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as given.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.0).finish()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_id!(
    /// The conversation a record belongs to (a chat thread, a session).
    ConversationId
);
text_id!(
    /// The person whose data a record holds: the unit of erasure.
    SubjectId
);
