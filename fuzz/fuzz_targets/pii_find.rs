//! Fuzzes `Detector::find` and the pseudonymizer on any UTF-8: findings
//! are sorted, never overlap, are not empty and fall on `char` boundaries;
//! and `restore(mask(text))` gives the text back, in every turn (the
//! input's lines are the turns of one conversation).

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use llmvault::pii::{Detector, Pseudonymizer};

static DETECTOR: LazyLock<Detector> = LazyLock::new(Detector::default);

fuzz_target!(|text: &str| {
    let findings = DETECTOR.find(text);
    let mut end = 0;
    for f in &findings {
        assert!(
            f.range.start >= end,
            "findings overlap or are unsorted: {findings:?}"
        );
        assert!(f.range.start < f.range.end, "an empty finding: {f:?}");
        assert!(f.range.end <= text.len(), "a finding past the end: {f:?}");
        assert!(
            text.is_char_boundary(f.range.start) && text.is_char_boundary(f.range.end),
            "a finding off a char boundary: {f:?}"
        );
        end = f.range.end;
    }
    let mut pseudonymizer = Pseudonymizer::new(DETECTOR.clone());
    for turn in text.split('\n') {
        let masked = pseudonymizer.mask(turn);
        assert_eq!(
            pseudonymizer.restore(&masked.text),
            turn,
            "restore(mask(text)) != text"
        );
    }
});
