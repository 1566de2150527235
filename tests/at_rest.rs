//! Nothing a caller stores reaches the disk in clear: not the prompt, the
//! response, the model, metadata, tags, the conversation or subject id,
//! nor the actor and purpose the audit log records; not while an
//! ingestor's records wait staged, and not the recovery shares or the
//! secret they split.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{Actor, AuditAction, ConversationId, Ingestor, Message, NewRecord, SubjectId};

const MARKERS: [&str; 8] = [
    "MRK-PROMPT-a81f",
    "MRK-RESPONSE-b92e",
    "MRK-MODEL-c03d",
    "MRK-METAKEY-d14c",
    "MRK-METAVAL-e25b",
    "MRK-TAG-f36a",
    "MRK-CONV-0479",
    "MRK-SUBJECT-1588",
];

fn marked(n: usize) -> NewRecord {
    NewRecord::new(ConversationId::new(MARKERS[6]))
        .subject(SubjectId::new(MARKERS[7]))
        .model(MARKERS[2])
        .prompt([
            Message::system("sys"),
            Message::user(format!("{} #{n}", MARKERS[0])),
        ])
        .response(Message::assistant(format!("{} #{n}", MARKERS[1])))
        .tag(MARKERS[5])
        .meta(MARKERS[3], MARKERS[4])
}

/// Who acts, and why: the audit log stores both, sealed.
const ACTOR: &str = "MRK-ACTOR-2697";
const PURPOSE: &str = "MRK-PURPOSE-37a6";
const OTHER_ACTOR: &str = "MRK-ACTOR2-48b5";
const OTHER_PURPOSE: &str = "MRK-PURPOSE2-59c4";

fn assert_no_markers(dir: &std::path::Path, when: &str) -> usize {
    let all: Vec<&[u8]> = MARKERS
        .iter()
        .chain(&[ACTOR, PURPOSE, OTHER_ACTOR, OTHER_PURPOSE])
        .map(|m| m.as_bytes())
        .collect();
    assert_absent(dir, when, &all)
}

/// Fails if any of `needles` occurs in any file in `dir`; returns how
/// many files were scanned.
fn assert_absent(dir: &std::path::Path, when: &str, needles: &[&[u8]]) -> usize {
    let files = files_in(dir);
    assert!(!files.is_empty());
    for (name, bytes) in &files {
        for m in needles {
            assert!(
                !contains(bytes, m),
                "{when}: {} found in {name}",
                String::from_utf8_lossy(m)
            );
        }
    }
    files.len()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn no_marker_in_any_file_while_open_and_after_close() {
    let mut t = new_vault_with(|o| o.actor(Actor::new(ACTOR).purpose(PURPOSE)));
    let id = t.put(marked(0)).unwrap();
    t.put_batch((1..50).map(marked).collect()).unwrap();
    // Sanity: the markers really were stored (and come back decrypted).
    let rec = t.get(id).unwrap();
    assert!(rec.prompt()[1].content().contains(MARKERS[0]));
    assert_eq!(rec.meta(MARKERS[3]), Some(MARKERS[4]));
    drop(rec);
    // A second actor through `as_actor`, writing and reading.
    let other = t.as_actor(Actor::new(OTHER_ACTOR).purpose(OTHER_PURPOSE));
    let other_id = other.put(marked(50)).unwrap();
    other.get(other_id).unwrap();
    other
        .conversation(&ConversationId::new(MARKERS[6]))
        .unwrap();
    // Sanity: the audit log did record both actors and purposes.
    let entries = t.audit().entries(..).unwrap();
    assert!(entries.iter().any(|e| e.actor == ACTOR
        && e.purpose.as_deref() == Some(PURPOSE)
        && e.action == AuditAction::Put));
    assert!(entries.iter().any(|e| e.actor == OTHER_ACTOR
        && e.purpose.as_deref() == Some(OTHER_PURPOSE)
        && e.action == AuditAction::Conversation));

    // While open: the database, its WAL and shared-memory file.
    let open_files = assert_no_markers(t.dir.path(), "while open");
    assert!(open_files >= 2, "expected the WAL beside the database");

    t.with_closed(|_| ());
    assert_no_markers(t.dir.path(), "after close");
}

#[test]
fn no_marker_in_any_file_while_ingested_records_are_staged_and_after() {
    let mut t = new_vault_with(|o| o.actor(Actor::new(ACTOR).purpose(PURPOSE)));
    let ingestor = Ingestor::open_with_options(&t.path, &t.ingest_key().unwrap(), &t.opts).unwrap();
    let first = ingestor.put(marked(0)).unwrap();
    let more = ingestor.put_batch((1..20).map(marked).collect()).unwrap();
    drop(ingestor);
    // Staged, not yet taken in: the vault handle has made no call since.
    assert_no_markers(t.dir.path(), "staged, vault open");
    t.close();
    assert_no_markers(t.dir.path(), "staged, vault closed");

    // The next keyed call takes them in under the vault's own keys.
    t.reopen();
    let rec = t.get(first).unwrap();
    assert!(rec.prompt()[1].content().contains(MARKERS[0]));
    assert_eq!(
        t.conversation(&ConversationId::new(MARKERS[6]))
            .unwrap()
            .len(),
        1 + more.len()
    );
    assert!(
        t.audit()
            .entries(..)
            .unwrap()
            .iter()
            .any(|e| e.action == AuditAction::Ingest && e.records.contains(&first)),
        "the staged records were taken in"
    );
    assert_no_markers(t.dir.path(), "taken in, vault open");
    t.with_closed(|_| ());
    assert_no_markers(t.dir.path(), "taken in, after close");
}

#[test]
fn recovery_shares_and_their_secret_never_reach_the_disk() {
    let mut t = new_vault();
    t.put(marked(0)).unwrap();
    // k = 1: Shamir's polynomial is the constant secret, so every share
    // carries the recovery secret itself after its x byte.
    let single: Vec<Vec<u8>> = t
        .recovery_shares(1, 2)
        .unwrap()
        .iter()
        .map(|s| share_bytes(&s.to_text()))
        .collect();
    assert_eq!(
        single[0][1..],
        single[1][1..],
        "k = 1 shares hold the secret"
    );
    let secret = single[0][1..].to_vec();
    assert_eq!(secret.len(), 32);
    let mut needles: Vec<Vec<u8>> = vec![secret.clone(), hex(&secret).into_bytes()];
    let check = |t: &TestVault, needles: &[Vec<u8>], when: &str| {
        let refs: Vec<&[u8]> = needles.iter().map(Vec::as_slice).collect();
        assert_absent(t.dir.path(), when, &refs);
    };
    check(&t, &needles, "k = 1 shares issued, open");

    // k = 2 of 3: each share's text and bytes; these revoke the first ones.
    for share in t.recovery_shares(2, 3).unwrap() {
        let text = share.to_text();
        needles.push(share_bytes(&text));
        needles.push(text.as_bytes().to_vec());
    }
    check(&t, &needles, "k = 2 shares issued, open");
    t.close();
    check(&t, &needles, "shares issued, closed");
}

/// The raw share bytes of `llmvault-share-1-<hex>-<checksum>`.
fn share_bytes(text: &str) -> Vec<u8> {
    let hex = text
        .strip_prefix("llmvault-share-1-")
        .and_then(|r| r.rsplit_once('-'))
        .map(|(h, _)| h)
        .unwrap();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
