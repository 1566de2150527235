//! End-to-end tests of the `llmvault` binary: every subcommand's success
//! path, keys from a file, the environment and recovery shares, exit codes
//! for wrong keys and tampering, and `--json` output read back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod age_export;
mod audit;
mod common;
mod export;
mod keys;
mod keys_apart;
mod pii;
mod postgres;
mod records;
