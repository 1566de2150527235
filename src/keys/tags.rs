//! Keyed tags: the only form in which conversation and subject ids reach
//! the disk. Equal ids give equal tags (so the store can index them);
//! without the tag key nothing about the id can be learned.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::SecretKey;

/// Length of a stored tag: HMAC-SHA256 truncated to 128 bits.
pub(crate) const TAG_LEN: usize = 16;

/// A keyed tag of a conversation or subject id.
pub(crate) type IdTag = [u8; TAG_LEN];

const CONVERSATION_LABEL: &[u8] = b"llmvault/v1/tag/conversation";
const SUBJECT_LABEL: &[u8] = b"llmvault/v1/tag/subject";

/// The random key behind conversation and subject tags. Stored wrapped by
/// the KEK, so it survives a change of passphrase (tags never change).
pub(crate) struct TagKey {
    mac: Hmac<Sha256>,
}

impl TagKey {
    pub(crate) fn new(key: &SecretKey) -> Self {
        Self {
            mac: crate::derive::hmac_with(key),
        }
    }

    /// Tag of a conversation id (FORMAT.md §5).
    pub(crate) fn conversation(&self, id: &str) -> IdTag {
        self.tag(CONVERSATION_LABEL, id)
    }

    /// Tag of a subject id (FORMAT.md §5).
    pub(crate) fn subject(&self, id: &str) -> IdTag {
        self.tag(SUBJECT_LABEL, id)
    }

    fn tag(&self, label: &[u8], id: &str) -> IdTag {
        let mut mac = self.mac.clone();
        mac.update(label);
        mac.update(&[0]);
        mac.update(id.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(&full[..TAG_LEN]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cross-checked with Python's `hmac` (FORMAT.md §5).
    #[test]
    fn tag_known_answers() {
        let k = TagKey::new(&SecretKey::from_bytes([1; 32]));
        let hex = |t: IdTag| t.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(k.conversation("c1")),
            "7e5917fb6280d61c13584b7ceaaa52dc"
        );
        assert_eq!(hex(k.subject("user-7")), "f22ad40119b29b54aa138683a5ca6160");
    }

    #[test]
    fn tags_are_keyed_and_domain_separated() {
        let a = TagKey::new(&SecretKey::from_bytes([1; 32]));
        let b = TagKey::new(&SecretKey::from_bytes([2; 32]));
        assert_eq!(a.conversation("c1"), a.conversation("c1"));
        assert_ne!(a.conversation("c1"), a.conversation("c2"));
        assert_ne!(a.conversation("c1"), b.conversation("c1"));
        assert_ne!(a.conversation("x"), a.subject("x"));
    }
}
