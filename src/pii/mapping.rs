//! One placeholder and the value it stands for.

use std::fmt;
use std::ops::Range;

use zeroize::Zeroizing;

use crate::{Error, Result};

/// A placeholder (`<EMAIL_1>`) and the value it stands for.
///
/// The value lives in memory that is wiped on drop. A mapping is not
/// `Clone` or `Serialize`, and its `Debug` shows the placeholder only;
/// the value is reached through [`Mapping::value`] alone.
pub struct Mapping {
    pub(crate) placeholder: String,
    pub(crate) value: Zeroizing<String>,
}

impl Mapping {
    /// A mapping read back from storage, to rebuild a
    /// [`Pseudonymizer`](super::Pseudonymizer) with.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `placeholder` is not of the form
    /// `<LABEL_N>` (label: an ASCII upper-case letter then up to 31 upper-case
    /// letters, digits or underscores; `N`: 1 to 999999999 without leading
    /// zeros), or if `value` is empty. The message never quotes either.
    pub fn new(
        placeholder: impl Into<String>,
        value: impl Into<Zeroizing<String>>,
    ) -> Result<Self> {
        let placeholder = placeholder.into();
        let value = value.into();
        if parse_placeholder(&placeholder).is_none() {
            return Err(Error::InvalidInput {
                what: "pii mapping",
                reason: "a placeholder looks like <LABEL_N>".into(),
            });
        }
        if value.is_empty() {
            return Err(Error::InvalidInput {
                what: "pii mapping",
                reason: "the value is empty".into(),
            });
        }
        Ok(Self { placeholder, value })
    }

    /// The placeholder, such as `<EMAIL_1>`.
    pub fn placeholder(&self) -> &str {
        &self.placeholder
    }

    /// The value the placeholder stands for.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("placeholder", &self.placeholder)
            .finish_non_exhaustive()
    }
}

/// Highest placeholder index: 9 digits.
pub(crate) const MAX_INDEX: u64 = 999_999_999;

/// Longest placeholder: `<`, a 32-byte label, `_`, 9 digits, `>`.
pub(crate) const MAX_PLACEHOLDER_LEN: usize = 1 + 32 + 1 + 9 + 1;

/// The label and index of a well-formed placeholder.
pub(crate) fn parse_placeholder(placeholder: &str) -> Option<(&str, u64)> {
    let inner = placeholder.strip_prefix('<')?.strip_suffix('>')?;
    let (label, index) = inner.rsplit_once('_')?;
    let label_ok = (1..=32).contains(&label.len())
        && label.starts_with(|c: char| c.is_ascii_uppercase())
        && label
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    let index_ok = (1..=9).contains(&index.len())
        && !index.starts_with('0')
        && index.bytes().all(|b| b.is_ascii_digit());
    if !(label_ok && index_ok) {
        return None;
    }
    Some((label, index.parse().ok()?))
}

/// Every span of `text` that could be a placeholder: from each `<` to the
/// first `>` within [`MAX_PLACEHOLDER_LEN`] bytes. Restoring and escaping
/// both scan with this, so they agree on what a placeholder in the text is.
/// A real placeholder holds no inner `<` or `>`, so none is missed by
/// looking from every `<` in turn.
pub(crate) fn candidates(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'<')
        .filter_map(move |(start, _)| {
            let window = &bytes[start + 1..bytes.len().min(start + MAX_PLACEHOLDER_LEN)];
            let close = window.iter().position(|&b| b == b'>')?;
            Some(start..start + close + 2)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert_eq!(parse_placeholder("<EMAIL_1>"), Some(("EMAIL", 1)));
        assert_eq!(
            parse_placeholder("<URL_CREDENTIAL_12>"),
            Some(("URL_CREDENTIAL", 12))
        );
        assert_eq!(parse_placeholder("<X_999999999>"), Some(("X", 999_999_999)));
        for bad in [
            "<EMAIL_01>",
            "<EMAIL_0>",
            "<EMAIL_1",
            "EMAIL_1>",
            "<email_1>",
            "<EMAIL>",
            "<_1>",
            "<1A_1>",
            "<EMAIL_1000000000>",
            "<EMAIL_-1>",
            "<EMAIL_ 1>",
            "",
        ] {
            assert_eq!(parse_placeholder(bad), None, "{bad}");
        }
        assert!(MAX_PLACEHOLDER_LEN >= "<URL_CREDENTIAL_999999999>".len());
    }

    #[test]
    fn debug_hides_the_value() {
        let m = Mapping::new("<SSN_1>", "123-45-6789".to_owned()).unwrap();
        assert!(!format!("{m:?}").contains("6789"));
        assert_eq!(m.value(), "123-45-6789");
        assert!(Mapping::new("<SSN_1>", String::new()).is_err());
        let err = Mapping::new("123-45-6789", "<SSN_1>".to_owned()).unwrap_err();
        assert!(!err.to_string().contains("6789"));
    }
}
