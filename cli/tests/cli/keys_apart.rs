//! A vault with its keys in a file of their own: `--keys PATH` (or
//! `LLMVAULT_KEYS`) beside `--vault`, for every command.

use crate::common::{Fixture, parse_lines, stderr};

#[test]
fn every_command_works_with_the_keys_apart_and_refuses_a_half() {
    let f = Fixture::keys_apart();
    let keys = f.keys.clone().unwrap();
    assert!(
        f.vault.is_file() && keys.is_file(),
        "init makes both stores"
    );
    let gone = f.put("c", "alice", "mine", &[]);
    let kept = f.put("c", "bob", "his", &[]);
    assert!(f.ok(&["get", &kept.to_string()]).contains("his"));
    assert_eq!(f.json(&["erase", "alice"])[0]["records"], 1);
    let out = f.run(&["get", &gone.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(f.json(&["verify"])[0]["records"], 1);
    assert_eq!(f.json(&["stats"])[0]["records"], 1);
    assert_eq!(f.json(&["purge"])[0]["records"], 0);
    let out = f
        .bare()
        .args(["--json", "purge", "--maintenance"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        parse_lines(&String::from_utf8(out.stdout).unwrap())[0]["records"],
        0
    );

    // The record store alone is refused, with what to do about it.
    let out = std::process::Command::new(crate::common::BIN)
        .arg("--vault")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.passphrase_file)
        .env_remove("LLMVAULT_KEYS")
        .env_remove("LLMVAULT_PATH")
        .args(["get", &kept.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not the two halves of one vault"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("--keys"), "{}", stderr(&out));

    // LLMVAULT_KEYS does what --keys does.
    let out = std::process::Command::new(crate::common::BIN)
        .arg("--vault")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.passphrase_file)
        .env("LLMVAULT_KEYS", &keys)
        .env_remove("LLMVAULT_PATH")
        .args(["get", &kept.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("his"));
}

#[test]
fn init_refuses_a_keys_path_that_is_taken() {
    let f = Fixture::keys_apart();
    let keys = f.keys.clone().unwrap();
    let before = std::fs::read(&keys).unwrap();
    let out = std::process::Command::new(crate::common::BIN)
        .arg("--vault")
        .arg(f.path("other.vault"))
        .arg("--keys")
        .arg(&keys)
        .arg("--passphrase-file")
        .arg(&f.passphrase_file)
        .args(["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!f.path("other.vault").exists());
    assert_eq!(std::fs::read(&keys).unwrap(), before);
}
