//! Retention: every record expires; expired records are never returned;
//! purge deletes them and destroys keys whose epoch has ended. Time moves
//! only through the manual clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use llmvault::Vault;
use llmvault::{ConversationId, Error, SubjectId};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

// On every backend; the test that reads the files is a plain `#[test]`, on
// SQLite only.
on_each_backend!(
    records_expire_after_their_ttl_or_the_default,
    a_ttl_above_the_maximum_is_refused,
    purge_destroys_keys_only_once_their_epoch_has_ended,
    expired_records_stay_hidden_across_reopen_before_a_purge,
    conversation_is_oldest_first,
);

fn records_expire_after_their_ttl_or_the_default(backend: Backend) {
    let t = new_vault_on_with(backend, |o| o.default_ttl(2 * HOUR));
    let short = t.put(record("c", Some("s"), "short").ttl(HOUR)).unwrap();
    let default = t.put(record("c", Some("s"), "default")).unwrap();
    assert_eq!(t.get(default).unwrap().expires_at(), start() + 2 * HOUR);
    assert_eq!(t.get(short).unwrap().expires_at(), start() + HOUR);

    t.clock.advance(HOUR - Duration::from_millis(1));
    assert!(
        t.get(short).is_ok(),
        "still alive one millisecond before expiry"
    );
    t.clock.advance(Duration::from_millis(1));
    match t.get(short) {
        Err(Error::Expired { id, expired_at }) => {
            assert_eq!(id, short);
            assert_eq!(expired_at, start() + HOUR);
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    assert!(t.get(default).is_ok());
    let conv = t.conversation(&ConversationId::new("c")).unwrap();
    assert_eq!(
        conv.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![default]
    );
    let mine = t.subject_records(&SubjectId::new("s")).unwrap();
    assert_eq!(
        mine.iter().map(|r| r.id()).collect::<Vec<_>>(),
        vec![default]
    );

    let purge = t.purge_expired().unwrap();
    assert_eq!(purge.records, 1);
    assert!(matches!(t.get(short), Err(Error::NotFound { id }) if id == short));
    assert!(t.get(default).is_ok());
}

fn a_ttl_above_the_maximum_is_refused(backend: Backend) {
    let t = new_vault_on_with(backend, |o| o.max_ttl(30 * DAY));
    let err = t.put(record("c", None, "x").ttl(31 * DAY)).unwrap_err();
    assert!(
        matches!(err, Error::TtlTooLong { requested, max } if requested == 31 * DAY && max == 30 * DAY)
    );
    assert!(t.put(record("c", None, "x").ttl(30 * DAY)).is_ok());
    // One refused record refuses its whole batch.
    let err = t
        .put_batch(vec![
            record("c", None, "ok"),
            record("c", None, "too long").ttl(40 * DAY),
        ])
        .unwrap_err();
    assert!(matches!(err, Error::TtlTooLong { .. }));
    assert_eq!(t.verify().unwrap().records, 1);
    // A default above the maximum is refused when opening.
    let bad = t.opts.clone().default_ttl(31 * DAY);
    assert!(matches!(
        Vault::open_in(&t.storage, key(), &bad),
        Err(Error::TtlTooLong { .. })
    ));
}

fn purge_destroys_keys_only_once_their_epoch_has_ended(backend: Backend) {
    let t = new_vault_on(backend); // one-day epochs; start is 01:00 of a day
    let a = t.put(record("c", None, "a").ttl(HOUR)).unwrap(); // expires 02:00, epoch ends 24:00
    let b = t.put(record("c", None, "b").ttl(3 * HOUR)).unwrap(); // same epoch
    let c = t.put(record("c", None, "c").ttl(3 * DAY)).unwrap(); // later epoch

    t.clock.advance(2 * HOUR);
    let p = t.purge_expired().unwrap();
    assert_eq!(
        (p.records, p.keys_destroyed),
        (1, 0),
        "b still needs the epoch key"
    );
    assert!(t.get(b).is_ok());

    t.clock.advance(DAY);
    let p = t.purge_expired().unwrap();
    assert_eq!((p.records, p.keys_destroyed), (1, 1));
    assert!(matches!(t.get(a), Err(Error::NotFound { .. })));
    assert!(matches!(t.get(b), Err(Error::NotFound { .. })));
    assert!(t.get(c).is_ok());
    let v = t.verify().unwrap();
    assert_eq!((v.records, v.keys), (1, 1));

    // Purging again finds nothing.
    assert_eq!(t.purge_expired().unwrap().records, 0);
}

#[test]
fn purged_records_are_gone_from_the_files() {
    let mut t = new_vault();
    let gone = t.put(record("c", Some("s"), "expiring").ttl(HOUR)).unwrap();
    let kept = t.put(record("c", Some("s"), "kept").ttl(10 * DAY)).unwrap();
    t.close();
    let sealed: Vec<u8> = t
        .sql()
        .query_row(
            "SELECT sealed FROM records WHERE id = ?1",
            [gone.as_u64() as i64],
            |r| r.get(0),
        )
        .unwrap();
    t.reopen();
    let before = files_in(t.dir.path());
    assert!(
        before.iter().any(|(_, b)| contains(b, &sealed)),
        "sanity: the sealed bytes are on disk"
    );

    t.clock.advance(2 * HOUR);
    assert_eq!(t.purge_expired().unwrap().records, 1);
    for (name, bytes) in files_in(t.dir.path()) {
        assert!(!contains(&bytes, &sealed), "purged record still in {name}");
    }
    assert!(t.get(kept).is_ok());
    assert_eq!(t.verify().unwrap().records, 1);
}

fn expired_records_stay_hidden_across_reopen_before_a_purge(backend: Backend) {
    let mut t = new_vault_on(backend);
    let id = t.put(record("c", None, "x").ttl(HOUR)).unwrap();
    t.clock.advance(HOUR);
    t.reopen();
    assert!(matches!(t.get(id), Err(Error::Expired { .. })));
    assert!(
        t.conversation(&ConversationId::new("c"))
            .unwrap()
            .is_empty()
    );
    let v = t.verify().unwrap();
    assert_eq!((v.records, v.expired), (1, 1));
}

fn conversation_is_oldest_first(backend: Backend) {
    let t = new_vault_on(backend);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(t.put(record("conv", None, &i.to_string())).unwrap());
        t.clock.advance(Duration::from_secs(1));
    }
    t.put(record("other", None, "x")).unwrap();
    // An imported exchange that happened before all the others.
    let early = t
        .put(record("conv", None, "early").created_at(start() - HOUR))
        .unwrap();
    let conv = t.conversation(&ConversationId::new("conv")).unwrap();
    let got: Vec<_> = conv.iter().map(|r| r.id()).collect();
    let mut expected = vec![early];
    expected.extend(&ids);
    assert_eq!(got, expected);
}
