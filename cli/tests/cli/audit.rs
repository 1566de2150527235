//! The audit log: show, verify against a head, head, actor and purpose.

use crate::common::Fixture;

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
