//! Fuzzes a sealed record envelope (FORMAT.md §7), opened under a fixed key.
//! Bytes from outside must give a typed refusal, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmvault::internals;

fuzz_target!(|data: &[u8]| {
    let _ = internals::open_envelope(data);
});
