//! Fuzzing every parser of stored bytes with proptest (header, wrapped key,
//! sealed envelope, record body, audit entry, PII mapping): arbitrary bytes
//! and mutations of valid samples. The PII detector's own fuzzing over
//! arbitrary UTF-8 is in `tests/pii_props.rs`. Parsers must refuse or
//! accept, never panic; authenticated formats must never accept anything
//! but the genuine bytes. The unauthenticated decoders (header, and the
//! plaintexts inside an envelope) are also fed exhaustive edits of valid
//! samples whose outcome is known: every cut and every extension is
//! refused, and each checked field accepts exactly its valid values, with
//! the header's refusals checked for their typed error.
//! Coverage-guided fuzzing of the same parsers, and more, is in `fuzz/`
//! (docs/TESTING.md, "Fuzzing").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use llmvault::internals::{
    Parsed, decode_audit_entry, decode_pii_mapping, decode_record, header_refusal, open_envelope,
    parse_header, unwrap_key, valid_entry_samples, valid_samples,
};
use llmvault::{Error, FORMAT_VERSION, KdfParams};
use proptest::prelude::*;

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, kind, value) in edits {
        if bytes.is_empty() {
            bytes.push(value);
            continue;
        }
        let at = at % bytes.len();
        match kind % 4 {
            0 => bytes[at] ^= value.max(1),
            1 => bytes.truncate(at),
            2 => bytes.insert(at, value),
            _ => {
                bytes.remove(at);
            }
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6)
}

#[test]
fn genuine_samples_are_accepted() {
    let [header, envelope, body] = valid_samples();
    assert_eq!(parse_header(&header), Parsed::Accepted);
    assert_eq!(open_envelope(&envelope), Parsed::Accepted);
    assert_eq!(decode_record(&body), Parsed::Accepted);
    let [entry, mapping] = valid_entry_samples();
    assert_eq!(decode_audit_entry(&entry), Parsed::Accepted);
    assert_eq!(decode_pii_mapping(&mapping), Parsed::Accepted);
}

fn at(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

type Parser = fn(&[u8]) -> Parsed;

/// The values of byte `i` of `sample` that `parse` accepts.
fn accepted_values(sample: &[u8], i: usize, parse: Parser) -> Vec<u8> {
    (0..=255u8)
        .filter(|&v| {
            let mut b = sample.to_vec();
            b[i] = v;
            parse(&b) == Parsed::Accepted
        })
        .collect()
}

#[test]
fn every_cut_and_every_extension_is_refused() {
    let [header, envelope, body] = valid_samples();
    let [entry, mapping] = valid_entry_samples();
    let parsers: [(&str, Vec<u8>, Parser); 5] = [
        ("header", header, parse_header),
        ("envelope", envelope, open_envelope),
        ("record body", body, decode_record),
        ("audit entry", entry, decode_audit_entry),
        ("pii mapping", mapping, decode_pii_mapping),
    ];
    for (name, sample, parse) in parsers {
        assert!(sample.len() > 8, "{name} sample");
        for len in 0..sample.len() {
            assert_eq!(
                parse(&sample[..len]),
                Parsed::Refused,
                "{name} cut to {len}"
            );
        }
        for extra in [&[0u8][..], &[1, 2], &[0xFF; 9]] {
            let long = [sample.as_slice(), extra].concat();
            assert_eq!(parse(&long), Parsed::Refused, "{name} + {extra:?}");
        }
    }
}

#[test]
fn header_refusals_are_typed() {
    let [header, _, _] = valid_samples();
    assert!(header_refusal(&header).is_none());
    for i in 0..8 {
        let mut h = header.clone();
        h[i] ^= 0x20;
        assert!(
            matches!(header_refusal(&h), Some(Error::Corrupt { .. })),
            "magic byte {i}"
        );
    }
    // The sample is a current header. Older versions it knows have another
    // layout (formats 1 and 2: 83 bytes), so these bytes under their
    // number are a damaged header of that version, not an unknown one.
    let (mut readable, mut other_layout) = (Vec::new(), Vec::new());
    for v in 0..=u16::MAX {
        let mut h = header.clone();
        h[8..10].copy_from_slice(&v.to_be_bytes());
        match header_refusal(&h) {
            None => readable.push(v),
            Some(Error::UnsupportedVersion { found, supported }) => {
                assert_eq!((found, supported), (v, FORMAT_VERSION));
            }
            Some(Error::Corrupt { .. }) if (1..FORMAT_VERSION).contains(&v) => other_layout.push(v),
            Some(other) => panic!("version {v}: {other:?}"),
        }
    }
    assert_eq!(readable, [FORMAT_VERSION]);
    assert_eq!(other_layout, (1..FORMAT_VERSION).collect::<Vec<_>>());
    let kinds = accepted_values(&header, 10, parse_header);
    assert_eq!(kinds.len(), 3, "passphrase, composite, raw: {kinds:?}");
    assert!(kinds.contains(&header[10]));
    let mut h = header.clone();
    h[10] = (0..=255).find(|k| !kinds.contains(k)).unwrap();
    assert!(matches!(header_refusal(&h), Some(Error::Corrupt { .. })));
    let words = [
        (
            11,
            "memory_kib",
            KdfParams::MIN_MEMORY_KIB,
            KdfParams::MAX_MEMORY_KIB,
        ),
        (
            15,
            "iterations",
            KdfParams::MIN_ITERATIONS,
            KdfParams::MAX_ITERATIONS,
        ),
        (
            19,
            "parallelism",
            KdfParams::MIN_PARALLELISM,
            KdfParams::MAX_PARALLELISM,
        ),
    ];
    for (offset, param, min, max) in words {
        for (value, ok) in [
            (0, false),
            (min - 1, false),
            (min, true),
            (max, true),
            (max + 1, false),
            (u32::MAX, false),
        ] {
            let mut h = header.clone();
            h[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
            match header_refusal(&h) {
                None => assert!(ok, "{param} = {value} accepted"),
                Some(Error::KdfParams {
                    name, requested, ..
                }) => {
                    assert!(!ok, "{param} = {value} refused");
                    assert_eq!((name, requested), (param, u64::from(value)));
                }
                Some(other) => panic!("{param} = {value}: {other:?}"),
            }
        }
    }
    // Salt and key check: any bytes parse; only unlocking can tell.
    for i in 23..header.len() {
        let mut h = header.clone();
        h[i] ^= 0xFF;
        assert!(header_refusal(&h).is_none(), "byte {i}");
    }
    for len in [0, 9, 10, header.len() - 1] {
        assert!(matches!(
            header_refusal(&header[..len]),
            Some(Error::Corrupt { .. })
        ));
    }
}

#[test]
fn record_body_fields_accept_exactly_their_valid_values() {
    let [_, _, body] = valid_samples();
    let text = at(&body, b"hello there");
    assert_eq!(body[text - 1], 11, "length of the message text");
    // The message's role: system, user, assistant, tool.
    assert_eq!(
        accepted_values(&body, text - 2, decode_record),
        [0, 1, 2, 3]
    );
    // The last field, `masked`, is a bool.
    assert_eq!(
        accepted_values(&body, body.len() - 1, decode_record),
        [0, 1]
    );
    // Text must be UTF-8.
    for i in (text..text + 11).chain(at(&body, b"conv")..at(&body, b"conv") + 4) {
        let mut b = body.clone();
        b[i] = 0xFF;
        assert_eq!(decode_record(&b), Parsed::Refused, "byte {i}");
    }
}

#[test]
fn audit_entry_and_mapping_fields_accept_exactly_their_valid_values() {
    let [entry, mapping] = valid_entry_samples();
    let purpose = at(&entry, b"T-9");
    // The action: wire numbers 1..=27 (FORMAT.md §11), nothing else.
    let actions = accepted_values(&entry, purpose + 3, decode_audit_entry);
    assert_eq!(actions, (1..=27).collect::<Vec<u8>>());
    // `purpose` is an Option: tag 0 (then the rest no longer fits) or 1.
    assert_eq!(
        accepted_values(&entry, purpose - 2, decode_audit_entry),
        [1]
    );
    let mut e = entry.clone();
    e[at(&entry, b"alice")] = 0xFF;
    assert_eq!(decode_audit_entry(&e), Parsed::Refused, "actor not UTF-8");

    let placeholder = at(&mapping, b"<EMAIL_1>");
    for (i, v) in [
        (placeholder, b'['),
        (placeholder + 8, b']'),
        (placeholder + 1, 0xFF),
    ] {
        let mut m = mapping.clone();
        m[i] = v;
        assert_eq!(decode_pii_mapping(&m), Parsed::Refused, "byte {i} = {v}");
    }
    let mut m = mapping.clone();
    m[at(&mapping, b"a@b.co")] = 0xFF;
    assert_eq!(decode_pii_mapping(&m), Parsed::Refused, "value not UTF-8");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        parse_header(&bytes);
        decode_record(&bytes);
        decode_audit_entry(&bytes);
        decode_pii_mapping(&bytes);
        prop_assert_eq!(unwrap_key(&bytes), Parsed::Refused);
        prop_assert_eq!(open_envelope(&bytes), Parsed::Refused);
    }

    #[test]
    fn mutated_header(e in edits()) {
        let [header, _, _] = valid_samples();
        let bad = mutate(header.clone(), &e);
        let outcome = parse_header(&bad);
        // A header that still parses must differ only where parsing cannot
        // tell (salt, key check, in-bounds parameters): unlocking catches those.
        if bad.len() != header.len() {
            prop_assert_eq!(outcome, Parsed::Refused);
        }
    }

    #[test]
    fn mutated_envelope(e in edits()) {
        let [_, envelope, _] = valid_samples();
        let bad = mutate(envelope.clone(), &e);
        prop_assume!(bad != envelope);
        prop_assert_eq!(open_envelope(&bad), Parsed::Refused);
    }

    #[test]
    fn mutated_audit_entry_and_mapping(e in edits()) {
        let [entry, mapping] = valid_entry_samples();
        decode_audit_entry(&mutate(entry, &e));
        decode_pii_mapping(&mutate(mapping, &e));
    }

    #[test]
    fn mutated_record_body(e in edits()) {
        let [_, _, body] = valid_samples();
        decode_record(&mutate(body, &e));
    }
}
