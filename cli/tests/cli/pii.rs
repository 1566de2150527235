//! Personal data: pii mask/restore/scan and put with the ingest key.

use std::process::Command;

use crate::common::{BIN, Fixture, parse_lines, stderr, succeeded, with_stdin};

#[test]
fn pii_mask_then_restore_and_erasure_forgets_the_placeholders() {
    let f = Fixture::new();
    let text = "Write to alice@example.com about order 7\n";
    let masked = f.ok_with_stdin(&["pii", "mask", "conv-1", "--subject", "alice"], text);
    assert_eq!(masked, "Write to <EMAIL_1> about order 7\n");
    assert!(!masked.contains("alice@example.com"));
    // The same value keeps its placeholder; --json names only what was added.
    let more = parse_lines(&f.ok_with_stdin(
        &["--json", "pii", "mask", "conv-1"],
        "alice@example.com or bob@example.org",
    ));
    assert_eq!(more[0]["text"], "<EMAIL_1> or <EMAIL_2>");
    assert_eq!(more[0]["added"], serde_json::json!(["<EMAIL_2>"]));

    let reply = "I will email <EMAIL_1>; <EMAIL_9> is not ours.";
    let restored = f.ok_with_stdin(&["pii", "restore", "conv-1"], reply);
    assert_eq!(
        restored,
        "I will email alice@example.com; <EMAIL_9> is not ours."
    );
    // Another conversation has no such placeholder.
    assert_eq!(f.ok_with_stdin(&["pii", "restore", "conv-2"], reply), reply);

    f.ok(&["erase", "alice"]);
    assert_eq!(f.ok_with_stdin(&["pii", "restore", "conv-1"], reply), reply);
}

#[test]
fn put_with_the_ingest_key_needs_no_passphrase() {
    let f = Fixture::new();
    let key = f.ok(&["ingest-key"]).trim().to_owned();
    assert!(key.starts_with("llmvault-ingest-2-"), "{key}");
    assert_eq!(key.len(), "llmvault-ingest-2-".len() + 128);
    assert_eq!(f.json(&["ingest-key"])[0]["ingest_key"], key.as_str());
    let key_file = f.path("ingest.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();

    // No passphrase file, no LLMVAULT_PASSPHRASE, no terminal; the key
    // from a file, never from an argument.
    let out = f
        .bare()
        .args(["put", "--ingest-key-file"])
        .arg(&key_file)
        .args(["--conversation", "c", "--subject", "s"])
        .args(["--prompt", "written blind", "--response", "ok"])
        .output()
        .unwrap();
    let first: u64 = succeeded(out, &["put", "--ingest-key-file"])
        .trim()
        .parse()
        .unwrap();
    let mut from_env = f.bare();
    from_env.env("LLMVAULT_INGEST_KEY", &key).arg("put");
    let out = with_stdin(
        from_env,
        r#"{"conversation":"c","prompt":[{"role":"user","content":"from stdin"}]}"#,
    );
    let second: u64 = succeeded(out, &["put"]).trim().parse().unwrap();
    assert!(second > first);

    let got = f.json(&["get", &first.to_string()]);
    assert_eq!(got[0]["prompt"][0]["content"], "written blind");
    assert_eq!(got[0]["subject"], "s");
    assert_eq!(
        f.json(&["get", &second.to_string()])[0]["prompt"][0]["content"],
        "from stdin"
    );

    // A key that is not this vault's, or not a key at all.
    let other = Fixture::new();
    let wrong = other.ok(&["ingest-key"]).trim().to_owned();
    let put = |key: &str| {
        f.bare()
            .env("LLMVAULT_INGEST_KEY", key)
            .args(["put", "--conversation", "c"])
            .output()
            .unwrap()
    };
    let out = put(&wrong);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("ingest-key"), "{}", stderr(&out));
    assert_eq!(put("nonsense").status.code(), Some(2));
    // The public-only key of format 1 proves nothing: refused, and said why.
    let legacy = format!(
        "llmvault-ingest-1-{}",
        &key["llmvault-ingest-2-".len()..][..64]
    );
    let out = put(&legacy);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("format-1"), "{}", stderr(&out));
    // The key is no argument: `ps` would show it.
    let out = f
        .bare()
        .args(["put", "--ingest-key", &key, "--conversation", "c"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Rotating: the old key stops working, the new one works.
    let rotated = f.ok(&["ingest-key", "--rotate"]).trim().to_owned();
    assert_ne!(rotated, key);
    assert_eq!(f.ok(&["ingest-key"]).trim(), rotated);
    assert_eq!(put(&key).status.code(), Some(3));
    let out = put(&rotated);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn pii_scan_lists_kinds_and_ranges_without_a_vault() {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("LLMVAULT_PATH").args(["pii", "scan"]);
    let text = "mail bob@example.org or call +44 20 7946 0958";
    let out = succeeded(with_stdin(cmd, text), &["pii", "scan"]);
    let first = out.lines().next().unwrap();
    assert_eq!(first, "EMAIL\t5..20");
    assert_eq!(&text[5..20], "bob@example.org");
    assert!(out.contains("PHONE\t"), "{out}");
    assert!(!out.contains("bob@"), "values are not printed");

    let mut cmd = Command::new(BIN);
    cmd.env_remove("LLMVAULT_PATH")
        .args(["--json", "pii", "scan"]);
    let json = parse_lines(&succeeded(with_stdin(cmd, text), &["pii", "scan"]));
    assert_eq!(
        json[0],
        serde_json::json!({"kind": "EMAIL", "start": 5, "end": 20})
    );
}
