//! Secrets and decrypted content: wiped on drop, never printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{ConversationId, KeySource, Message, NewRecord, Record, SubjectId};
use zeroize::ZeroizeOnDrop;

#[test]
fn decrypted_and_pending_content_is_wiped_on_drop() {
    fn wiped_on_drop<T: ZeroizeOnDrop>() {}
    wiped_on_drop::<Record>();
    wiped_on_drop::<NewRecord>();
    wiped_on_drop::<Message>();
    wiped_on_drop::<ConversationId>();
    wiped_on_drop::<SubjectId>();
}

#[test]
fn debug_never_prints_secrets_or_content() {
    const SECRET: &str = "SECRET-7f4e2a";
    let shown = [
        format!("{:?}", KeySource::passphrase(SECRET)),
        format!(
            "{:?}",
            KeySource::passphrase_and_keyfile(SECRET, "/dev/null")
        ),
        format!("{:?}", KeySource::raw_key([0xAB; 32])),
        format!("{:?}", Message::user(SECRET)),
        format!("{:?}", record("c", None, SECRET)),
    ];
    for s in &shown {
        assert!(!s.contains(SECRET), "{s}");
        assert!(!s.to_lowercase().contains("abab"), "{s}");
    }
    assert!(shown[0].contains("REDACTED"));

    let t = new_vault();
    let id = t.put(record("c", None, SECRET)).unwrap();
    let rec = t.get(id).unwrap();
    assert_eq!(rec.prompt()[0].content(), format!("prompt: {SECRET}"));
    let s = format!("{rec:?}");
    assert!(!s.contains(SECRET) && s.contains("REDACTED"), "{s}");
    let s = format!("{:?}", *t);
    assert!(!s.contains(SECRET));
}

#[test]
fn errors_never_carry_content() {
    const SECRET: &str = "SECRET-91bc";
    let t = new_vault_with(|o| {
        o.default_ttl(std::time::Duration::from_secs(30))
            .max_ttl(std::time::Duration::from_secs(60))
    });
    let err = t
        .put(record("c", Some(SECRET), SECRET).ttl(std::time::Duration::from_secs(61)))
        .unwrap_err();
    assert!(!err.to_string().contains(SECRET) && !format!("{err:?}").contains(SECRET));
}
