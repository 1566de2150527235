//! Keys: passphrase sources, wrong keys, passwd/rotate/stats, recovery shares, usage exit codes.

use std::path::Path;
use std::process::Command;

use crate::common::{BIN, Fixture, PASSPHRASE, parse_lines, stderr};

#[test]
fn passphrase_from_env_and_composite_key() {
    let f = Fixture::new();
    f.put("c", "s", "x", &[]);
    let out = f
        .bare()
        .env("LLMVAULT_PASSPHRASE", PASSPHRASE)
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);

    // A vault made with a key file needs it.
    let key_file = f.path("key.bin");
    std::fs::write(&key_file, [7_u8; 32]).unwrap();
    let vault = f.path("composite.vault");
    let with = |args: &[&str], key: bool| {
        let mut cmd = f.bare();
        cmd.arg("--vault").arg(&vault);
        if key {
            cmd.arg("--key-file").arg(&key_file);
        }
        cmd.env("LLMVAULT_PASSPHRASE", PASSPHRASE)
            .args(args)
            .output()
            .unwrap()
    };
    let init = with(
        &["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"],
        true,
    );
    assert!(init.status.success(), "{}", stderr(&init));
    assert!(with(&["list"], true).status.success());
    assert_eq!(with(&["list"], false).status.code(), Some(3));
}

#[test]
fn wrong_passphrase_exits_3_with_one_line() {
    let f = Fixture::new();
    f.put("c", "s", "x", &[]);
    let out = f
        .bare()
        .env("LLMVAULT_PASSPHRASE", "not it")
        .args(["get", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("wrong key") && err.contains("check the passphrase"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::new();
    // A passphrase is never a plain argument.
    assert_eq!(
        f.bare()
            .args(["--passphrase", PASSPHRASE, "list"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    // No vault path.
    let out = Command::new(BIN)
        .env_remove("LLMVAULT_PATH")
        .args(["stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--vault"));
    // Values that do not parse.
    assert_eq!(
        f.run(&["list", "--since", "last tuesday"]).status.code(),
        Some(2)
    );
    assert_eq!(
        f.run(&["put", "--conversation", "c", "--meta", "novalue"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        f.run(&["init", "--kdf-memory-kib", "1"]).status.code(),
        Some(2),
        "kdf bounds are a usage error"
    );
    // A missing record is a plain failure.
    let missing = f.run(&["get", "99"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("not found"));
}

#[test]
fn passwd_rotate_and_stats() {
    let f = Fixture::new();
    let id = f.put("c", "s", "before", &[]);
    let new_file = f.path("new-passphrase");
    std::fs::write(&new_file, "a new passphrase\n").unwrap();
    f.ok(&[
        "passwd",
        "--new-passphrase-file",
        new_file.to_str().unwrap(),
        "--kdf-memory-kib",
        "8192",
        "--kdf-iterations",
        "1",
    ]);
    assert_eq!(f.run(&["get", &id.to_string()]).status.code(), Some(3));
    let new = |args: &[&str]| {
        let mut cmd = f.bare();
        cmd.env("LLMVAULT_PASSPHRASE", "a new passphrase")
            .args(args);
        cmd.output().unwrap()
    };
    assert!(new(&["get", &id.to_string()]).status.success());

    // passwd retired the key in use: nothing is left for rotate to retire
    // until a put makes a new one.
    let retired_by_rotate = || {
        let rotated = new(&["--json", "rotate"]);
        assert!(rotated.status.success());
        parse_lines(&String::from_utf8(rotated.stdout).unwrap())[0]["retired"].clone()
    };
    assert_eq!(retired_by_rotate(), 0);
    assert!(
        new(&[
            "put",
            "--conversation",
            "c",
            "--subject",
            "s",
            "--prompt",
            "between"
        ])
        .status
        .success()
    );
    assert_eq!(retired_by_rotate(), 1);
    assert!(
        new(&[
            "put",
            "--conversation",
            "c",
            "--subject",
            "s",
            "--prompt",
            "after"
        ])
        .status
        .success()
    );
    assert!(new(&["get", &id.to_string()]).status.success());

    // Stats need no key.
    let out = f.bare().args(["--json", "stats"]).output().unwrap();
    let stats = parse_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(stats[0]["records"], 3);
    assert_eq!(stats[0]["keys"], 3);
    assert!(stats[0]["audit_entries"].as_u64().unwrap() > 5);
    let human = String::from_utf8(f.bare().arg("stats").output().unwrap().stdout).unwrap();
    assert!(human.contains("records:       3"), "{human}");
}

#[test]
fn recovery_shares_open_the_vault_until_revoked() {
    let f = Fixture::new();
    let id = f.put("c", "s", "x", &[]).to_string();
    let split = f.json(&["recovery", "split", "2", "3"]);
    let shares: Vec<&str> = split[0]["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(shares.len(), 3);
    let two = f.path("two-shares");
    std::fs::write(
        &two,
        format!("# from alice and carol\n{}\n\n{}\n", shares[0], shares[2]),
    )
    .unwrap();
    let one = f.path("one-share");
    std::fs::write(&one, shares[1]).unwrap();
    let with = |file: &Path| {
        f.bare()
            .arg("--shares-file")
            .arg(file)
            .args(["get", &id])
            .output()
            .unwrap()
    };
    assert!(with(&two).status.success(), "{}", stderr(&with(&two)));
    assert_eq!(with(&one).status.code(), Some(3));
    // Shares give no passphrase to keep the vault reachable by after a
    // change of KEK: revoking from them is refused, with the way out.
    let refused = f
        .bare()
        .arg("--shares-file")
        .arg(&two)
        .args(["recovery", "revoke"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("passwd"), "{}", stderr(&refused));
    assert!(
        f.ok(&["recovery", "split", "1", "1"])
            .starts_with("llmvault-share-1-")
    );
    f.ok(&["recovery", "revoke"]);
    assert_eq!(with(&two).status.code(), Some(3));
}
