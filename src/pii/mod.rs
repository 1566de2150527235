//! Finding personal data in text, and replacing it with placeholders that
//! can be put back.
//!
//! [`Detector`](crate::pii::Detector) scans text for e-mail addresses, phone numbers, payment
//! cards, IBANs, US social security numbers, IP addresses, secrets and URLs
//! with embedded credentials, plus any patterns or terms added through
//! [`DetectorBuilder`](crate::pii::DetectorBuilder). [`Pseudonymizer`](crate::pii::Pseudonymizer) replaces each finding with a
//! placeholder such as `<EMAIL_1>` before a prompt leaves the application
//! and restores the real values in the model's reply.
//!
//! ```
//! use llmvault::pii::{Detector, PiiKind, Pseudonymizer};
//!
//! let text = "Mail alice@example.com or call +44 20 7946 0958.";
//! let found = Detector::default().find(text);
//! assert_eq!(found[0].kind, PiiKind::Email);
//! assert_eq!(&text[found[0].range.clone()], "alice@example.com");
//!
//! let mut pseudo = Pseudonymizer::new(Detector::default());
//! let masked = pseudo.mask(text);
//! assert_eq!(masked.text, "Mail <EMAIL_1> or call <PHONE_1>.");
//! let reply = pseudo.restore("I wrote to <EMAIL_1>.");
//! assert_eq!(reply, "I wrote to alice@example.com.");
//! ```
//!
//! Detection is pattern matching with checksums and context rules, not a
//! language model: names, addresses and other free-form personal data are
//! found only when listed as terms. `docs/PII.md` lists what is found, the
//! known gaps, and the precision and recall measured on a labelled corpus.

mod checks;
mod detector;
mod kind;
mod literal;
mod mapping;
mod pseudonymizer;
mod rules;
mod scan;

pub use detector::{Detector, DetectorBuilder};
pub use kind::{Finding, PiiKind};
pub use mapping::Mapping;
pub use pseudonymizer::{Masked, Pseudonymizer};
