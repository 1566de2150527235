//! Properties of detection and pseudonymization over arbitrary text:
//! no panic, ranges in bounds, on char boundaries, sorted and disjoint;
//! masking then restoring gives the text back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use llmvault::pii::{Detector, Pseudonymizer};
use proptest::prelude::*;

/// Pieces that stress the rules: digits and separators, PII fragments,
/// multibyte characters, placeholder look-alikes.
const PIECES: &[&str] = &[
    "0",
    "1",
    "4",
    "9",
    "12",
    "255",
    "4111",
    "1111",
    ".",
    "-",
    " ",
    ":",
    "::",
    "/",
    "+",
    "(",
    ")",
    "@",
    "a",
    "Z",
    "x",
    "_",
    "=",
    "\"",
    "'",
    "<",
    ">",
    "\n",
    "é",
    "ß",
    "日本",
    "😀",
    "👩‍💻",
    "\u{200b}",
    "alice@example.com",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "10.0.0.1",
    "2001:db8::1",
    "sk-proj-Ab3dE5fG7hI9jK1lM3nO5",
    "AKIAIOSFODNN7EXAMPLE",
    "password=",
    "token: ",
    "-----BEGIN PRIVATE KEY-----",
    "eyJhbGciOi.eyJzdWIi.sig",
    "https://u:p@h",
    "<EMAIL_1>",
    "<PHONE_",
    "version ",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|p| p.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn findings_are_well_formed(text in text()) {
        let found = Detector::default().find(&text);
        let mut last_end = 0;
        for f in &found {
            prop_assert!(f.range.start < f.range.end, "{f:?}");
            prop_assert!(f.range.end <= text.len(), "{f:?}");
            prop_assert!(text.is_char_boundary(f.range.start), "{f:?}");
            prop_assert!(text.is_char_boundary(f.range.end), "{f:?}");
            prop_assert!(f.range.start >= last_end, "overlap or unsorted: {found:?}");
            last_end = f.range.end;
        }
    }

    #[test]
    fn mask_then_restore_is_identity(text in text()) {
        let mut pseudo = Pseudonymizer::default();
        let masked = pseudo.mask(&text);
        prop_assert_eq!(pseudo.restore(&masked.text), text);
    }

    #[test]
    fn multi_turn_round_trip(turns in prop::collection::vec(text(), 1..4)) {
        // Placeholders typed in any turn (`<EMAIL_1>` among the pieces) must
        // restore to themselves, never to a value of another turn.
        let mut pseudo = Pseudonymizer::default();
        let masked: Vec<String> = turns.iter().map(|t| pseudo.mask(t).text).collect();
        for (turn, m) in turns.iter().zip(&masked) {
            prop_assert_eq!(&pseudo.restore(m), turn);
        }
    }
}

#[test]
fn no_value_survives_masking() {
    let turns = [
        "Hi, I'm alice@example.com, phone +44 20 7946 0958, card 4111 1111 1111 1111.",
        "Wire to DE89 3704 0044 0532 0130 00; SSN 123-45-6789; host 10.0.0.1 / 2001:db8::1.",
        "DATABASE_URL=postgres://app:hunter2@db.internal/app and api_key=\"Zq8K2mN4pR6tV8xY\"",
        "again alice@example.com and a new one bob@example.org, key AKIAIOSFODNN7EXAMPLE",
    ];
    let mut pseudo = Pseudonymizer::default();
    let masked: Vec<String> = turns.iter().map(|t| pseudo.mask(t).text).collect();
    assert_eq!(pseudo.mappings().len(), 11);
    for m in &masked {
        for mapping in pseudo.mappings() {
            assert!(!m.contains(mapping.value()), "{} in {m}", mapping.value());
        }
    }
    for (turn, m) in turns.iter().zip(&masked) {
        assert_eq!(pseudo.restore(m), *turn);
    }
    // A reply mixing known, invented and mangled placeholders.
    let reply = "Sent to <EMAIL_1> and <EMAIL_2>, not <EMAIL_9> or <EMAIL_1 or <PHONE_1>>.";
    assert_eq!(
        pseudo.restore(reply),
        "Sent to alice@example.com and bob@example.org, not <EMAIL_9> or <EMAIL_1 or +44 20 7946 0958>."
    );
}
