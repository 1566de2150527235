//! Fuzzing every parser of stored bytes with proptest (header, wrapped key,
//! sealed envelope, record body, audit entry, PII mapping): arbitrary bytes
//! and mutations of valid samples. The PII detector's own fuzzing over
//! arbitrary UTF-8 is in `tests/pii_props.rs`. Parsers must refuse or
//! accept, never panic; authenticated formats must never accept anything
//! but the genuine bytes.
//! (cargo-fuzz needs a nightly toolchain, which this project's machines do
//! not have; see docs/TESTING.md.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use llmvault::internals::{
    Parsed, decode_audit_entry, decode_pii_mapping, decode_record, open_envelope, parse_header,
    unwrap_key, valid_entry_samples, valid_samples,
};
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
