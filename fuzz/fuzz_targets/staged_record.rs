//! Fuzzes a staged record (FORMAT.md §12): a row anyone who can write the
//! vault file can plant for the next keyed handle to take in. Checked as a
//! take-in checks it, under fixed ingest keys; with the input's first bit
//! set the row gets a valid proof, so the envelope and body behind the
//! proof are reached too. Refused with `None`, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmvault::internals;

fuzz_target!(|data: &[u8]| {
    let _ = internals::staged_record(data);
});
