//! What was found, and where.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A kind of personal or secret data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PiiKind {
    /// An e-mail address (`alice@example.com`).
    Email,
    /// A phone number: E.164 (`+14155552671`, `+44 20 7946 0958`) or a
    /// common national format (`(415) 555-2671`, `020 7946 0958`).
    Phone,
    /// A payment card number, 13 to 19 digits, Luhn-checked.
    PaymentCard,
    /// An international bank account number, mod-97 checked.
    Iban,
    /// A US social security number (`ddd-dd-dddd`, valid ranges only).
    Ssn,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// An API key, token, private key or password.
    Secret,
    /// A URL with a user name and password in it (`postgres://u:p@host/db`).
    CredentialUrl,
    /// A match of a pattern or term added with [`DetectorBuilder`]; holds
    /// the builder's label, uppercased (`CUSTOMER`).
    ///
    /// [`DetectorBuilder`]: super::DetectorBuilder
    Custom(Arc<str>),
}

impl PiiKind {
    /// The label placeholders of this kind carry: `EMAIL`, `PHONE`, `CARD`,
    /// `IBAN`, `SSN`, `IP`, `SECRET`, `URL_CREDENTIAL`, or a custom label.
    ///
    /// Labels are stable: placeholders already stored keep their meaning.
    pub fn label(&self) -> &str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::PaymentCard => "CARD",
            Self::Iban => "IBAN",
            Self::Ssn => "SSN",
            Self::IpAddress => "IP",
            Self::Secret => "SECRET",
            Self::CredentialUrl => "URL_CREDENTIAL",
            Self::Custom(label) => label,
        }
    }

    /// Every built-in kind, in the order overlaps are decided.
    pub(crate) const BUILT_IN: [PiiKind; 8] = [
        Self::Secret,
        Self::CredentialUrl,
        Self::PaymentCard,
        Self::Iban,
        Self::Ssn,
        Self::Email,
        Self::IpAddress,
        Self::Phone,
    ];

    /// Tie-break between two findings with the same span: lower wins.
    /// A custom kind wins over every built-in one, since the caller asked
    /// for it by name.
    pub(crate) fn rank(&self) -> usize {
        match self {
            Self::Custom(_) => 0,
            kind => 1 + Self::BUILT_IN.iter().position(|k| k == kind).unwrap_or(0),
        }
    }
}

impl fmt::Display for PiiKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One piece of personal data found in a text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Finding {
    /// What was found.
    pub kind: PiiKind,
    /// Where, in bytes; both ends fall on `char` boundaries of the text
    /// that was scanned.
    pub range: Range<usize>,
}
