//! Secrets and decrypted content: wiped on drop, never printed.
//!
//! `ZeroizeOnDrop` below is a marker trait: it shows the type asks for
//! wiping, not that memory was wiped. That the secret types are not
//! `Clone`, `Display` or `Serialize` is checked at compile time, by the
//! doctests of `llmvault::internals::SecretTypesLackCopyingTraits` (public
//! types) and a unit test in `src/secret.rs` (the crate's own key types);
//! see docs/TESTING.md for what such a check does and does not prove.

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

    let shares = t.recovery_shares(2, 3).unwrap();
    for share in &shares {
        let text = share.to_text();
        let hex = text.rsplit('-').nth(1).unwrap();
        assert!(hex.len() >= 32, "{}", hex.len());
        let s = format!("{share:?}");
        assert!(!s.contains(hex) && s.contains("REDACTED"), "{s}");
    }
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
