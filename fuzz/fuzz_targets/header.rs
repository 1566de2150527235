//! Fuzzes the vault header (FORMAT.md §1): parsed, or refused with a typed error.
//! Bytes from outside must give a typed refusal, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmvault::internals;

fuzz_target!(|data: &[u8]| {
    let _ = internals::parse_header(data);
    let _ = internals::header_refusal(data);
});
