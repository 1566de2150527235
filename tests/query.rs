//! Filtered reads, streaming export, and key rotation on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use llmvault::{AuditAction, ConversationId, Query, SubjectId};

#[test]
fn queries_filter_by_time_tag_model_subject_and_consent() {
    let t = new_vault();
    let a = t
        .put(
            record("c1", Some("alice"), "a")
                .tag("support")
                .training_consent(true),
        )
        .unwrap();
    t.clock.advance(Duration::from_secs(60));
    let mid = llmvault::clock::Clock::now(&*t.clock);
    let b = t
        .put(record("c2", Some("bob"), "b").model("other-model"))
        .unwrap();
    let c = t
        .put(
            record("c1", None, "c")
                .tag("support")
                .ttl(Duration::from_secs(10)),
        )
        .unwrap();
    let ids = |q: Query| {
        t.query(&q)
            .unwrap()
            .iter()
            .map(|r| r.id())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Query::all()), vec![a, b, c]);
    assert_eq!(ids(Query::all().since(mid)), vec![b, c]);
    assert_eq!(ids(Query::all().until(mid)), vec![a]);
    assert_eq!(ids(Query::all().tag("support")), vec![a, c]);
    assert_eq!(ids(Query::all().model("other-model")), vec![b]);
    assert_eq!(ids(Query::all().subject(SubjectId::new("alice"))), vec![a]);
    assert_eq!(
        ids(Query::all().conversation(ConversationId::new("c1"))),
        vec![a, c]
    );
    assert_eq!(ids(Query::all().training_consented_only()), vec![a]);
    t.clock.advance(Duration::from_secs(11));
    assert_eq!(
        ids(Query::all()),
        vec![a, b],
        "expired records never come back"
    );

    let mut streamed = Vec::new();
    let n = t
        .export(&Query::all(), &mut |r| {
            streamed.push(r.id());
            Ok(())
        })
        .unwrap();
    assert_eq!((n, streamed), (2, vec![a, b]));
    let last = t.audit().entries(..).unwrap().pop().unwrap();
    assert_eq!((last.action, last.count), (AuditAction::Export, 2));
}

#[test]
fn rotate_keys_gives_new_records_fresh_keys_and_old_ones_still_read() {
    let t = new_vault();
    let old = t.put(record("c", Some("s"), "before")).unwrap();
    assert_eq!(t.rotate_keys().unwrap(), 1);
    let new = t.put(record("c", Some("s"), "after")).unwrap();
    let key_of = |id: llmvault::RecordId| -> Vec<u8> {
        t.sql()
            .query_row(
                "SELECT sealed FROM records WHERE id = ?1",
                [id.as_u64() as i64],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .unwrap()[1..9]
            .to_vec()
    };
    assert_ne!(key_of(old), key_of(new));
    assert!(t.get(old).is_ok() && t.get(new).is_ok());
    assert_eq!(t.stats().unwrap().keys, 2);
}
