//! Properties of detection and pseudonymization.
//!
//! Over arbitrary text: no panic, ranges in bounds, on char boundaries,
//! sorted and disjoint; masking then restoring gives the text back, in
//! every turn. Over text with known personal data planted in it: the
//! detector reports exactly the planted values (kind and byte range, none
//! missed, nothing else), masking leaves none of them in the masked text,
//! and each gets one placeholder of its kind for the whole conversation.
//! A detector that finds nothing, or misses one kind, fails the latter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::ops::Range;

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

/// Values the default detector must find: (label, context before, the
/// value it reports, context after). At least one per rule.
const PLANTED: &[(&str, &str, &str, &str)] = &[
    ("EMAIL", "", "alice@example.com", ""),
    ("EMAIL", "", "bob.o'neil+tag@mail.example.org", ""),
    ("PHONE", "", "+44 20 7946 0958", ""),
    ("PHONE", "", "+14155552671", ""),
    ("PHONE", "", "(415) 555-2671", ""),
    ("PHONE", "", "1-800-555-0199", ""),
    ("PHONE", "", "020 7946 0958", ""),
    ("PHONE", "", "06 12 34 56 78", ""),
    ("CARD", "", "4111 1111 1111 1111", ""),
    ("CARD", "", "5555-5555-5555-4444", ""),
    ("CARD", "", "378282246310005", ""),
    ("IBAN", "", "DE89 3704 0044 0532 0130 00", ""),
    ("IBAN", "", "GB82WEST12345698765432", ""),
    ("SSN", "", "123-45-6789", ""),
    ("IP", "", "10.0.0.1", ""),
    ("IP", "", "192.168.254.17", ""),
    ("IP", "", "2001:db8::1", ""),
    ("IP", "", "::ffff:192.0.2.1", ""),
    ("SECRET", "", "AKIAIOSFODNN7EXAMPLE", ""),
    ("SECRET", "", "sk-proj-Ab3dE5fG7hI9jK1lM3nO5pQ7", ""),
    ("SECRET", "", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", ""),
    (
        "SECRET",
        "",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        "",
    ),
    (
        "SECRET",
        "",
        "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
        "",
    ),
    ("SECRET", "password=", "hunter2x", ""),
    ("SECRET", "DB_PASSWORD: \"", "s3cr3t pw", "\""),
    (
        "SECRET",
        "Authorization: Bearer ",
        "abcdefghijklmnop1234",
        "",
    ),
    (
        "URL_CREDENTIAL",
        "",
        "postgres://app:hunter2@db.internal/app",
        "",
    ),
    (
        "URL_CREDENTIAL",
        "",
        "redis://:pw@cache.example.com:6379",
        "",
    ),
];

/// Text between planted values that no rule reports and that does not
/// change what a neighbouring rule reports: no ASCII digits or `@`, no
/// word that reads as a version (`v 10.0.0.1`) or a key name (`bearer`),
/// and no capitals (an IBAN's candidate runs on over capitals and can hide
/// a second IBAN after them; PII.md lists this gap). Placeholder
/// look-alikes are among it.
const FILLERS: &[&str] = &[
    "hello",
    "the",
    "and",
    "é",
    "ß",
    "日本",
    "😀",
    "👩‍💻",
    "\u{200b}",
    ",",
    ";",
    "(",
    ")",
    "<",
    ">",
    "\n",
    "<EMAIL_1>",
    "<PHONE_",
    "<LITERAL_1>",
    "<CARD_2>",
];

/// Planted text: fillers with planted values between them, each value set
/// apart by a space on both sides. Returns the text and where each value
/// is, with its label.
fn planted() -> impl Strategy<Value = (String, Vec<(&'static str, Range<usize>)>)> {
    let filler = || {
        prop_oneof![
            prop::sample::select(FILLERS).prop_map(str::to_owned),
            "[^\\x00-\\x7f]{1,3}",
        ]
    };
    let group = move |min| prop::collection::vec(filler(), min..4).prop_map(|f| f.concat());
    (
        group(0),
        prop::collection::vec((prop::sample::select(PLANTED), group(1)), 0..6),
    )
        .prop_map(|(first, items)| {
            let mut text = first;
            let mut want = Vec::new();
            for ((label, before, value, after), filler) in items {
                text.push(' ');
                text.push_str(before);
                let start = text.len();
                text.push_str(value);
                want.push((label, start..text.len()));
                text.push_str(after);
                text.push(' ');
                text.push_str(&filler);
            }
            (text, want)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn planted_values_are_found_exactly((text, want) in planted()) {
        let found: Vec<(String, Range<usize>)> = Detector::default()
            .find(&text)
            .into_iter()
            .map(|f| (f.kind.label().to_owned(), f.range))
            .collect();
        let want: Vec<(String, Range<usize>)> =
            want.into_iter().map(|(l, r)| (l.to_owned(), r)).collect();
        prop_assert_eq!(found, want, "in {:?}", text);
    }

    #[test]
    fn planted_values_never_reach_the_masked_text(
        turns in prop::collection::vec(planted(), 1..4),
    ) {
        let mut pseudo = Pseudonymizer::default();
        let masked: Vec<String> = turns.iter().map(|(t, _)| pseudo.mask(t).text).collect();
        let mut values = BTreeSet::new();
        for ((text, want), m) in turns.iter().zip(&masked) {
            for (label, range) in want {
                let value = &text[range.clone()];
                values.insert(value);
                prop_assert!(!m.contains(value), "{:?} in {:?}", value, m);
                let mapping = pseudo.mappings().iter().find(|p| p.value() == value);
                let placeholder = mapping.map(|p| p.placeholder());
                prop_assert!(
                    placeholder.is_some_and(|p| p.starts_with(&format!("<{label}_"))),
                    "{:?} of kind {} got {:?}", value, label, placeholder
                );
            }
            prop_assert_eq!(&pseudo.restore(m), text);
        }
        // One placeholder per distinct value for the whole conversation;
        // the others stand for typed look-alikes.
        let (literal, real): (Vec<_>, Vec<_>) = pseudo
            .mappings()
            .iter()
            .partition(|p| p.placeholder().starts_with("<LITERAL_"));
        prop_assert_eq!(real.len(), values.len());
        for p in literal {
            prop_assert!(FILLERS.contains(&p.value()), "{:?}", p.placeholder());
        }
    }

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
