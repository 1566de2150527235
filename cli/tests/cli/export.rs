//! Moving and removing data: export/import, masked export, purge, erase, verify of a flipped byte.

use serde_json::Value;

use crate::common::{Fixture, content, parse_lines, stderr};

#[test]
fn verify_finds_a_flipped_byte_and_names_the_record() {
    let f = Fixture::new();
    for i in 0..3 {
        f.put("c", "s", &format!("record {i}"), &[]);
    }
    let ok = f.json(&["verify"]);
    assert_eq!(ok[0]["records"], 3);
    assert_eq!(ok[0]["ok"], true);

    {
        let db = rusqlite::Connection::open(&f.vault).unwrap();
        let mut sealed: Vec<u8> = db
            .query_row("SELECT sealed FROM records WHERE id = 2", [], |r| r.get(0))
            .unwrap();
        let middle = sealed.len() / 2;
        sealed[middle] ^= 0x01;
        db.execute("UPDATE records SET sealed = ?1 WHERE id = 2", [&sealed])
            .unwrap();
    }

    let out = f.run(&["verify"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("record 2"), "{err}");
    assert_eq!(err.lines().count(), 1);
    // Reading it names it too; the others still read.
    assert_eq!(f.run(&["get", "2"]).status.code(), Some(4));
    f.ok(&["get", "1"]);
}

#[test]
fn export_import_export_gives_the_same_records_and_skips_expired() {
    let src = Fixture::new();
    src.put("conv-1", "alice", "one", &["--tag", "t"]);
    src.ok_with_stdin(
        &["put"],
        r#"{"conversation":"conv-1","subject":"bob","created_at":"2024-05-01T10:00:00.123Z",
           "expires_at":"2099-01-01T00:00:00.500Z","prompt":[{"role":"tool","content":"{}"}],
           "training_consent":true,"meta":{"z":"1","a":"2"}}"#,
    );
    src.put("conv-2", "carol", "three", &["--ttl", "5d"]);
    let export = src.path("export.jsonl");
    let report = src.json(&["export", "--output", export.to_str().unwrap()]);
    assert_eq!(report[0]["exported"], 3);
    let first = parse_lines(&std::fs::read_to_string(&export).unwrap());
    assert_eq!(first[1]["created_at"], "2024-05-01T10:00:00.123Z");
    assert_eq!(first[1]["expires_at"], "2099-01-01T00:00:00.500Z");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Not overwritten without --force.
    let again = src.run(&["export", "--output", export.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"));

    // One more line, already expired: skipped and counted.
    let mut lines = std::fs::read_to_string(&export).unwrap();
    let mut expired = first[0].clone();
    expired["expires_at"] = "2001-01-01T00:00:00Z".into();
    lines.push_str(&format!("{expired}\n\n"));
    let with_expired = src.path("with-expired.jsonl");
    std::fs::write(&with_expired, lines).unwrap();

    let dst = Fixture::new();
    dst.put("other", "dave", "already here", &[]);
    let report = dst.json(&["import", with_expired.to_str().unwrap()]);
    assert_eq!(report[0]["imported"], 3);
    assert_eq!(report[0]["skipped_expired"], 1);

    let second = dst.json(&["export", "--subject", "alice"]);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0]["id"], first[0]["id"], "new ids");
    let second: Vec<Value> = parse_lines(&dst.ok(&["--json", "export"]))
        .into_iter()
        .filter(|r| r["conversation"] != "other")
        .collect();
    assert_eq!(
        second.iter().map(content).collect::<Vec<_>>(),
        first.iter().map(content).collect::<Vec<_>>()
    );

    // From stdin, and filtered exports.
    let third = Fixture::new();
    let input = std::fs::read_to_string(&export).unwrap();
    third.ok_with_stdin(&["import", "-"], &input);
    assert_eq!(
        third.json(&["export", "--training-consented-only"]).len(),
        1
    );
    assert_eq!(third.json(&["export", "--conversation", "conv-1"]).len(), 2);
    assert_eq!(
        third
            .json(&["export", "--until", "2025-01-01T00:00:00Z"])
            .len(),
        1
    );
    let bad = third.run(&["import", src.passphrase_file.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("line 1"), "{}", stderr(&bad));
}

#[test]
fn purge_with_the_key_and_without_it() {
    let f = Fixture::new();
    f.put("c", "s", "short", &["--ttl", "1ms"]);
    f.put("c", "s", "long", &[]);
    let purged = f.json(&["purge"]);
    assert_eq!(purged[0]["records"], 1);

    f.put("c", "s", "short again", &["--ttl", "1ms"]);
    let out = f
        .bare()
        .args(["--json", "purge", "--maintenance"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let purged = parse_lines(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(purged[0]["records"], 1);
    assert_eq!(f.json(&["list"]).len(), 1);
    // The key-less purge is folded into the audit log at the next open.
    let actions: Vec<Value> = f
        .json(&["audit", "show"])
        .into_iter()
        .map(|e| e["action"].clone())
        .collect();
    assert!(actions.contains(&"MaintenancePurge".into()), "{actions:?}");
}

#[test]
fn erase_a_subject() {
    let f = Fixture::new();
    let gone = f.put("c", "alice", "mine", &[]);
    let kept = f.put("c", "bob", "his", &[]);
    let report = f.json(&["erase", "alice"]);
    assert_eq!(report[0]["records"], 1);
    assert!(f.json(&["subject", "alice"]).is_empty());
    // Erased means gone: `NotFound` (exit 1), not a destroyed key or a
    // damaged record (exits 1 and 4 with other messages).
    let out = f.run(&["get", &gone.to_string()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("record {gone} not found")),
        "{}",
        stderr(&out)
    );
    f.ok(&["get", &kept.to_string()]);
    assert!(f.ok(&["erase", "nobody"]).contains("0 record(s)"));
}

#[test]
fn export_masked_keeps_placeholders_and_plain_export_restores() {
    let f = Fixture::new();
    let prompt = f.ok_with_stdin(
        &["pii", "mask", "conv-1", "--subject", "alice"],
        "My mail is alice@example.com",
    );
    let id = f.put(
        "conv-1",
        "alice",
        &prompt,
        &["--response", "I will email <EMAIL_1>", "--masked"],
    );
    // The same, as JSON on stdin.
    f.ok_with_stdin(
        &["put"],
        r#"{"conversation":"conv-1","subject":"alice","masked":true,
            "prompt":[{"role":"user","content":"Still <EMAIL_1>"}]}"#,
    );
    f.put("conv-2", "bob", "nothing personal", &[]);

    let got = f.json(&["get", &id.to_string()]);
    assert_eq!(
        got[0]["prompt"][0]["content"],
        "My mail is alice@example.com"
    );
    assert_eq!(
        got[0]["response"]["content"],
        "I will email alice@example.com"
    );
    assert_eq!(got[0]["masked"], false);

    let plain = f.ok(&["export"]);
    let plain = parse_lines(&plain);
    assert_eq!(plain.len(), 3);
    assert!(plain.iter().all(|r| r["masked"] == false));
    assert_eq!(plain[1]["prompt"][0]["content"], "Still alice@example.com");

    let masked_text = f.ok(&["export", "--masked"]);
    assert!(!masked_text.contains("alice@example.com"), "{masked_text}");
    let masked = parse_lines(&masked_text);
    assert_eq!(masked[0]["prompt"][0]["content"], "My mail is <EMAIL_1>");
    assert_eq!(masked[0]["response"]["content"], "I will email <EMAIL_1>");
    assert_eq!(
        masked
            .iter()
            .map(|r| r["masked"].clone())
            .collect::<Vec<_>>(),
        [true, true, false]
    );

    // Imported elsewhere, masked records stay masked: the placeholders'
    // values stayed behind in this vault.
    let other = Fixture::new();
    other.ok_with_stdin(&["import"], &masked_text);
    let copy = other.json(&["export", "--masked", "--conversation", "conv-1"]);
    assert_eq!(copy[0]["masked"], true);
    assert_eq!(
        other.json(&["get", "1"])[0]["prompt"][0]["content"],
        "My mail is <EMAIL_1>"
    );
}
