//! Fuzzes a PII mapping list (FORMAT.md §13).
//! Bytes from outside must give a typed refusal, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmvault::internals;

fuzz_target!(|data: &[u8]| {
    let _ = internals::decode_pii_mapping(data);
});
