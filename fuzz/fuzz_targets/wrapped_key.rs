//! Fuzzes a wrapped key (FORMAT.md §4), unwrapped under a fixed KEK.
//! Bytes from outside must give a typed refusal, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmvault::internals;

fuzz_target!(|data: &[u8]| {
    let _ = internals::unwrap_key(data);
});
