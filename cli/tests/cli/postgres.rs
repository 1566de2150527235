//! The same commands on a vault in PostgreSQL: `--vault` takes a
//! connection string, `--schema` and `--ca-file` say where and how; the
//! password in the string is never printed.

use crate::common::{Fixture, stderr};

fn every_command_works(f: &Fixture) {
    let gone = f.put("c", "alice", "mine", &[]);
    let kept = f.put("c", "bob", "his", &[]);
    assert!(f.ok(&["get", &kept.to_string()]).contains("his"));
    assert_eq!(f.json(&["erase", "alice"])[0]["records"], 1);
    let out = f.run(&["get", &gone.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(f.json(&["verify"])[0]["records"], 1);
    assert_eq!(f.json(&["stats"])[0]["records"], 1);
    assert_eq!(f.json(&["purge"])[0]["records"], 0);
    let audit = f.ok(&["audit", "verify"]);
    assert!(!audit.is_empty());
    // A second init into the same schema is refused.
    let out = f.run(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
    assert_ne!(out.status.code(), Some(0));
    let password = f
        .vault
        .to_string_lossy()
        .split_whitespace()
        .find_map(|w| w.strip_prefix("password=").map(str::to_owned))
        .unwrap();
    assert!(!stderr(&out).contains(&password), "{}", stderr(&out));
}

#[test]
fn every_command_works_on_a_vault_in_postgres() {
    if let Some(f) = Fixture::postgres(false) {
        every_command_works(&f);
    }
}

#[test]
fn and_with_the_keys_apart_in_a_second_schema() {
    if let Some(f) = Fixture::postgres(true) {
        every_command_works(&f);
    }
}
