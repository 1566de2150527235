//! Fuzzes an `IngestKey` in its text form: any UTF-8 a user might paste.
//! It must parse or be refused with a typed error, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = text.parse::<llmvault::ingest::IngestKey>();
});
