//! Fuzzes a read log file (FORMAT.md §11, "Read logs"): a file any local user
//! who can write the vault's directory could leave there.
//! Bytes from outside must give a typed refusal, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use llmvault::internals;

fuzz_target!(|data: &[u8]| {
    let _ = internals::read_log_entries(data);
});
