//! Fixes from the security review that are about options and files rather
//! than a concern of their own (DESIGN.md, "Hardening"): the KDF work a
//! header may demand, the KDF strength a key change keeps, the key-use
//! ceiling, and the permissions of the files a vault creates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{Error, KdfParams, MAX_RECORDS_PER_KEY_LIMIT, Vault, VaultOptions};

/// The header's Argon2id parameters, as stored (FORMAT.md §1: bytes 11..23).
fn header_kdf(t: &TestVault) -> (u32, u32, u32) {
    let header: Vec<u8> = t
        .sql()
        .query_row("SELECT value FROM meta WHERE name = 'header'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let word = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap());
    (word(11), word(15), word(19))
}

fn set_header_iterations(t: &TestVault, iterations: u32) {
    let conn = t.sql();
    let mut header: Vec<u8> = conn
        .query_row("SELECT value FROM meta WHERE name = 'header'", [], |r| {
            r.get(0)
        })
        .unwrap();
    header[15..19].copy_from_slice(&iterations.to_be_bytes());
    conn.execute("UPDATE meta SET value = ?1 WHERE name = 'header'", [header])
        .unwrap();
}

#[test]
fn a_header_demanding_more_kdf_work_than_allowed_is_refused_before_the_kdf_runs() {
    let mut t = new_vault();
    t.close();
    // 64 passes is inside the format's bounds, above the default open limit.
    set_header_iterations(&t, 64);
    match Vault::open(&t.path, key(), &t.opts) {
        Err(Error::KdfParams {
            name: "iterations",
            requested: 64,
            max,
            ..
        }) => assert_eq!(max, u64::from(KdfParams::DEFAULT_OPEN_LIMIT.iterations())),
        other => panic!("expected KdfParams for iterations, got {other:?}"),
    }
    // Allowed explicitly, the KDF runs; the altered header then reads as a
    // wrong key (its parameters are bound into the key check).
    let generous = t
        .opts
        .clone()
        .max_kdf(KdfParams::new(8 * 1024, 64, 16).unwrap());
    assert!(matches!(
        Vault::open(&t.path, key(), &generous),
        Err(Error::WrongKey)
    ));
}

#[test]
fn create_refuses_kdf_settings_its_own_options_could_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let opts = VaultOptions::default()
        .kdf(KdfParams::new(8 * 1024, 9, 1).unwrap())
        .max_kdf(KdfParams::DEFAULT_OPEN_LIMIT);
    assert!(matches!(
        Vault::create(dir.path().join("v"), key(), &opts),
        Err(Error::KdfParams {
            name: "iterations",
            ..
        })
    ));
}

#[test]
fn change_key_never_weakens_the_kdf_to_the_handles_options() {
    let strong = KdfParams::new(16 * 1024, 2, 2).unwrap();
    let mut t = new_vault_with(|o| o.kdf(strong));
    assert_eq!(header_kdf(&t), (16 * 1024, 2, 2));
    // Reopened by a handle configured with the weakest parameters.
    t.opts = t.opts.clone().kdf(KdfParams::new(8 * 1024, 3, 1).unwrap());
    t.reopen();
    t.change_key(llmvault::KeySource::passphrase("second"))
        .unwrap();
    // Each parameter the larger of the header's and the options'.
    assert_eq!(header_kdf(&t), (16 * 1024, 3, 2));
    // Set outright, on purpose.
    t.change_key_with_kdf(
        llmvault::KeySource::passphrase("third"),
        KdfParams::minimum(),
    )
    .unwrap();
    assert_eq!(header_kdf(&t), (8 * 1024, 1, 1));
    t.close();
    let opened = Vault::open(&t.path, llmvault::KeySource::passphrase("third"), &t.opts);
    assert!(opened.is_ok());
}

#[test]
fn max_records_per_key_is_capped_at_two_to_the_32() {
    let dir = tempfile::tempdir().unwrap();
    let over = opts_at_minimum().max_records_per_key(MAX_RECORDS_PER_KEY_LIMIT + 1);
    match Vault::create(dir.path().join("over"), key(), &over) {
        Err(Error::InvalidInput { what, reason }) => {
            assert_eq!(what, "max_records_per_key");
            assert!(reason.contains("4294967297"), "{reason}");
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    let at = opts_at_minimum().max_records_per_key(MAX_RECORDS_PER_KEY_LIMIT);
    Vault::create(dir.path().join("at"), key(), &at).unwrap();
}

fn opts_at_minimum() -> VaultOptions {
    VaultOptions::default().kdf(KdfParams::minimum())
}

#[cfg(unix)]
#[test]
fn the_vault_and_its_wal_and_shm_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let t = new_vault();
    t.put(record("c", Some("s"), "x")).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", t.path.display());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{path} is {mode:o}");
    }
}

#[test]
fn change_key_with_kdf_refuses_settings_the_handle_could_not_open_again() {
    let mut t = new_vault();
    let too_many_passes = KdfParams::new(8 * 1024, 9, 1).unwrap();
    assert!(matches!(
        t.change_key_with_kdf(llmvault::KeySource::passphrase("x"), too_many_passes),
        Err(Error::KdfParams {
            name: "iterations",
            requested: 9,
            ..
        })
    ));
    // Nothing changed: the old passphrase still opens it.
    t.reopen();
}
