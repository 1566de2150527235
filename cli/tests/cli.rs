//! End-to-end tests of the `llmvault` binary: every subcommand's success
//! path, keys from a file, the environment and recovery shares, exit codes
//! for wrong keys and tampering, and `--json` output read back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_llmvault");
const PASSPHRASE: &str = "correct horse battery staple";

/// A vault in a temporary folder, opened with a passphrase file.
struct Fixture {
    dir: tempfile::TempDir,
    vault: PathBuf,
    passphrase_file: PathBuf,
}

impl Fixture {
    /// A new vault made with the cheapest KDF.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let passphrase_file = dir.path().join("passphrase");
        std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
        let f = Self {
            vault: dir.path().join("log.vault"),
            dir,
            passphrase_file,
        };
        f.ok(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with `--vault` set and no key given.
    fn bare(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--vault").arg(&self.vault);
        for var in [
            "LLMVAULT_PATH",
            "LLMVAULT_PASSPHRASE",
            "LLMVAULT_NEW_PASSPHRASE",
            "LLMVAULT_ACTOR",
            "LLMVAULT_INGEST_KEY",
        ] {
            cmd.env_remove(var);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The binary with the vault's passphrase file.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--passphrase-file")
            .arg(&self.passphrase_file)
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        succeeded(self.run(args), args)
    }

    /// Runs with `--json`; parses each stdout line.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        parse_lines(&self.ok(&all))
    }

    /// Runs with `input` on stdin and expects success.
    fn ok_with_stdin(&self, args: &[&str], input: &str) -> String {
        succeeded(with_stdin(self.cmd(args), input), args)
    }

    /// Stores a record from flags; returns its id.
    fn put(&self, conversation: &str, subject: &str, prompt: &str, extra: &[&str]) -> u64 {
        let mut args = vec![
            "put",
            "--conversation",
            conversation,
            "--subject",
            subject,
            "--model",
            "gpt-4o",
            "--prompt",
            prompt,
            "--response",
            "an answer",
        ];
        args.extend_from_slice(extra);
        self.ok(&args).trim().parse().unwrap()
    }
}

/// Runs `cmd` with `input` on stdin.
fn with_stdin(mut cmd: Command, input: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn succeeded(out: Output, args: &[&str]) -> String {
    assert!(
        out.status.success(),
        "{args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn parse_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The fields an export carries over, without the id.
fn content(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().unwrap().remove("id");
    v
}

#[test]
fn put_get_list_conversation_and_subject() {
    let f = Fixture::new();
    let a = f.put("conv-1", "alice", "hello", &["--tag", "support"]);
    let json_record = r#"{"conversation":"conv-1","subject":"bob","model":"llama",
        "prompt":[{"role":"system","content":"be brief"},{"role":"user","content":"hi there"}],
        "response":{"role":"assistant","content":"hello"},"training_consent":true,
        "tags":["sales"],"meta":{"ticket":"T-9","lang":"en"}}"#;
    let b: u64 = f
        .ok_with_stdin(&["put"], &json_record.replace('\n', " "))
        .trim()
        .parse()
        .unwrap();
    let c = f.put(
        "conv-2",
        "alice",
        "again",
        &["--meta", "k=v", "--ttl", "2d"],
    );
    assert!(a < b && b < c);

    let got = f.json(&["get", &b.to_string()]);
    assert_eq!(got.len(), 1);
    let rec = &got[0];
    assert_eq!(rec["id"], b);
    assert_eq!(rec["model"], "llama");
    assert_eq!(rec["prompt"][1]["content"], "hi there");
    assert_eq!(rec["response"]["role"], "assistant");
    assert_eq!(rec["training_consent"], true);
    assert_eq!(
        rec["meta"],
        serde_json::json!({"ticket": "T-9", "lang": "en"})
    );
    let human = f.ok(&["get", &a.to_string()]);
    assert!(
        human.contains("[user] hello") && human.contains("tags: support"),
        "{human}"
    );

    let ids = |lines: Vec<Value>| -> Vec<u64> {
        lines.iter().map(|v| v["id"].as_u64().unwrap()).collect()
    };
    assert_eq!(ids(f.json(&["list"])), [a, b, c]);
    assert_eq!(ids(f.json(&["list", "--tag", "sales"])), [b]);
    assert_eq!(ids(f.json(&["list", "--model", "gpt-4o"])), [a, c]);
    assert_eq!(
        ids(f.json(&["list", "--since", "0", "--until", "4102444800"])),
        [a, b, c]
    );
    assert_eq!(
        ids(f.json(&["list", "--since", "2100-01-01T00:00:00Z"])),
        Vec::<u64>::new()
    );
    assert_eq!(ids(f.json(&["conversation", "conv-1"])), [a, b]);
    assert_eq!(ids(f.json(&["subject", "alice"])), [a, c]);
    assert_eq!(f.ok(&["list"]).lines().count(), 3);
    assert!(f.ok(&["subject", "alice"]).contains("[user] again"));
}

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
    assert_ne!(f.run(&["get", &gone.to_string()]).status.code(), Some(0));
    f.ok(&["get", &kept.to_string()]);
    assert!(f.ok(&["erase", "nobody"]).contains("0 record(s)"));
}

#[test]
fn audit_show_verify_and_head() {
    let f = Fixture::new();
    f.put("c", "s", "x", &[]);
    let head = f.ok(&["audit", "head"]).trim().to_owned();
    let (seq, hex) = head.split_once(':').unwrap();
    assert_eq!(hex.len(), 64);
    let seq: u64 = seq.parse().unwrap();

    let entries = f.json(&["audit", "show", "--from", "1", "--to", "3"]);
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["action"], "Create");
    assert_eq!(entries[0]["actor"], "cli");
    assert!(f.ok(&["audit", "show"]).lines().count() as u64 > seq);

    let ok = f.json(&["audit", "verify", "--head", &head]);
    assert_eq!(ok[0]["ok"], true);
    // A head that is not this log's: tampering (a rolled-back or cut log).
    let forged = format!("{seq}:{}", "0".repeat(64));
    assert_eq!(
        f.run(&["audit", "verify", "--head", &forged]).status.code(),
        Some(4)
    );
    assert_eq!(
        f.run(&["audit", "verify", "--head", "nonsense"])
            .status
            .code(),
        Some(2)
    );

    // Actor and purpose are recorded.
    f.ok(&["--actor", "alice", "--purpose", "ticket T-9", "get", "1"]);
    let last = f.json(&["audit", "show"]);
    let get = last.iter().rev().find(|e| e["action"] == "Get").unwrap();
    assert_eq!(get["actor"], "alice");
    assert_eq!(get["purpose"], "ticket T-9");
    assert_eq!(get["records"], serde_json::json!([1]));
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

    let rotated = new(&["--json", "rotate"]);
    assert!(rotated.status.success());
    let rotated = parse_lines(&String::from_utf8(rotated.stdout).unwrap());
    assert_eq!(rotated[0]["retired"], 1);
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
    assert_eq!(stats[0]["records"], 2);
    assert_eq!(stats[0]["keys"], 2);
    assert!(stats[0]["audit_entries"].as_u64().unwrap() > 5);
    let human = String::from_utf8(f.bare().arg("stats").output().unwrap().stdout).unwrap();
    assert!(human.contains("records:       2"), "{human}");
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
    assert!(
        f.ok(&["recovery", "split", "1", "1"])
            .starts_with("llmvault-share-1-")
    );
    f.ok(&["recovery", "revoke"]);
    assert_eq!(with(&two).status.code(), Some(3));
}

#[test]
fn init_refuses_an_existing_file() {
    let f = Fixture::new();
    let out = f.run(&["init", "--kdf-memory-kib", "8192", "--kdf-iterations", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"));
    let missing = f
        .bare()
        .args(["--vault", "/nonexistent/x.vault", "stats"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("llmvault init"));
}

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

#[test]
fn put_with_the_ingest_key_needs_no_passphrase() {
    let f = Fixture::new();
    let key = f.ok(&["ingest-key"]).trim().to_owned();
    assert!(key.starts_with("llmvault-ingest-1-"), "{key}");
    assert_eq!(f.json(&["ingest-key"])[0]["ingest_key"], key.as_str());

    // No passphrase file, no LLMVAULT_PASSPHRASE, no terminal.
    let out = f
        .bare()
        .args([
            "put",
            "--ingest-key",
            &key,
            "--conversation",
            "c",
            "--subject",
            "s",
        ])
        .args(["--prompt", "written blind", "--response", "ok"])
        .output()
        .unwrap();
    let first: u64 = succeeded(out, &["put", "--ingest-key"])
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
            .args(["put", "--ingest-key", key, "--conversation", "c"])
            .output()
            .unwrap()
    };
    let out = put(&wrong);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("ingest-key"), "{}", stderr(&out));
    assert_eq!(put("nonsense").status.code(), Some(2));
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

/// The plaintext of an age file (binary or armored) for `identity`.
fn age_open(sealed: &[u8], identity: &age::x25519::Identity) -> String {
    use std::io::Read;
    let reader = age::armor::ArmoredReader::new(sealed);
    let decryptor = age::Decryptor::new(reader).unwrap();
    let mut plain = String::new();
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap()
        .read_to_string(&mut plain)
        .unwrap();
    plain
}

#[test]
fn export_to_age_recipients_decrypts_to_the_plain_export() {
    let f = Fixture::new();
    f.put("conv-1", "alice", "the secret plan", &[]);
    f.put("conv-2", "bob", "another question", &[]);
    let plain = f.ok(&["export"]);
    let (alice, bob) = (
        age::x25519::Identity::generate(),
        age::x25519::Identity::generate(),
    );
    let (to_alice, to_bob) = (alice.to_public().to_string(), bob.to_public().to_string());

    // To a file, for two recipients: either one decrypts it.
    let file = f.path("export.age");
    let report = f.json(&[
        "export",
        "--age-recipient",
        &to_alice,
        "--age-recipient",
        &to_bob,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert_eq!(report[0]["exported"], 2);
    assert_eq!(report[0]["age_recipients"], 2);
    let sealed = std::fs::read(&file).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));
    assert!(!String::from_utf8_lossy(&sealed).contains("secret plan"));
    assert_eq!(age_open(&sealed, &alice), plain);
    assert_eq!(age_open(&sealed, &bob), plain);

    // Armored, to stdout.
    let armored = f.ok(&["export", "--age-recipient", &to_alice, "--armor"]);
    assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    assert!(!armored.contains("secret plan"));
    assert_eq!(age_open(armored.as_bytes(), &alice), plain);

    // Not a recipient, or --armor with nothing to armor: usage errors.
    let bad = f.run(&["export", "--age-recipient", "age1notakey"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("age X25519 recipient"),
        "{}",
        stderr(&bad)
    );
    assert_eq!(f.run(&["export", "--armor"]).status.code(), Some(2));
}

/// The Debian `age` tool decrypts what `export --age-recipient` wrote.
/// Needs `age` and `age-keygen` on PATH (`.ci/run` installs them).
#[test]
fn export_to_age_decrypts_with_the_age_tool() {
    let on_path = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !on_path("age") || !on_path("age-keygen") {
        eprintln!("skipped: `age` and `age-keygen` are not on PATH");
        return;
    }
    let f = Fixture::new();
    f.put("conv-1", "alice", "the secret plan", &["--tag", "handover"]);
    f.put("conv-1", "alice", "a follow-up", &[]);
    let key = f.path("key.txt");
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", stderr(&keygen));
    let public = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    let public = String::from_utf8(public.stdout).unwrap();

    for armor in [false, true] {
        let file = f.path(if armor {
            "export.age.txt"
        } else {
            "export.age"
        });
        let mut args = vec!["export", "--age-recipient", public.trim()];
        args.extend(["--output", file.to_str().unwrap()]);
        if armor {
            args.push("--armor");
        }
        f.ok(&args);
        let sealed = std::fs::read(&file).unwrap();
        let header: &[u8] = if armor {
            b"-----BEGIN AGE ENCRYPTED FILE-----"
        } else {
            b"age-encryption.org/v1"
        };
        assert!(sealed.starts_with(header));
        assert!(!String::from_utf8_lossy(&sealed).contains("secret plan"));

        let out = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&key)
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "age -d: {}", stderr(&out));
        let records = parse_lines(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["prompt"][0]["content"], "the secret plan");
        assert_eq!(records[0]["tags"][0], "handover");
        assert_eq!(records[1]["prompt"][0]["content"], "a follow-up");
    }
}
