//! Storing and reading records: put, get, list, conversation, subject; init refusal.

use serde_json::Value;

use crate::common::{Fixture, stderr};

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
