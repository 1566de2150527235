//! Filtered reads, streaming export, and key rotation on demand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use llmvault::Vault;
use llmvault::{
    Actor, AuditAction, AuditEntry, AuditOutcome, AuditQuery, ConversationId, Error, Query,
    SubjectId,
};

// On every backend; the tests that read or change the file are plain
// `#[test]`s, on SQLite only.
on_each_backend!(
    queries_filter_by_time_tag_model_subject_and_consent,
    the_export_entry_is_committed_before_the_first_record_is_handed_out,
    a_panicking_export_callback_still_leaves_its_entries,
    an_export_its_callback_stops_is_recorded_with_the_count_so_far,
);

fn queries_filter_by_time_tag_model_subject_and_consent(backend: Backend) {
    let t = new_vault_on(backend);
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
    let mut entries = t.audit().entries(..).unwrap();
    let finished = entries.pop().unwrap();
    let started = entries.pop().unwrap();
    assert_eq!((started.action, started.count), (AuditAction::Export, 0));
    assert_eq!(started.query, Some(AuditQuery::default()));
    assert_eq!(
        (finished.action, finished.count, finished.records),
        (AuditAction::ExportFinished, 2, vec![a, b])
    );
    assert_eq!(finished.outcome, AuditOutcome::Ok);
}

/// A vault with three records of one subject, and its export filter.
fn exportable(backend: Backend) -> (TestVault, Query) {
    let t = new_vault_on(backend);
    for i in 0..3 {
        t.put(record("c", Some("alice"), &i.to_string())).unwrap();
    }
    (t, Query::all().subject(SubjectId::new("alice")).tag("x"))
}

fn the_export_entry_is_committed_before_the_first_record_is_handed_out(backend: Backend) {
    let (t, _) = exportable(backend);
    // Another handle on the same storage sees only what was committed.
    let other = Vault::open_in(&t.storage, key(), &t.opts).unwrap();
    let query = Query::all().subject(SubjectId::new("alice"));
    let mut seen_at_first: Option<Vec<AuditEntry>> = None;
    let n = t
        .as_actor(Actor::new("bob").purpose("DSAR 17"))
        .export(&query, &mut |_| {
            if seen_at_first.is_none() {
                seen_at_first = Some(other.audit().entries(..).unwrap());
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(n, 3);
    let committed = seen_at_first.expect("the callback ran");
    let entry = committed.last().unwrap();
    assert_eq!(entry.action, AuditAction::Export, "{committed:#?}");
    assert_eq!(
        (entry.actor.as_str(), entry.purpose.as_deref(), entry.count),
        ("bob", Some("DSAR 17"), 0)
    );
    let filter = entry.query.as_ref().unwrap();
    assert!(filter.subject_tag.is_some() && filter.tag.is_none());
    let last = t.audit().entries(..).unwrap().pop().unwrap();
    assert_eq!(
        (last.action, last.actor.as_str(), last.count),
        (AuditAction::ExportFinished, "bob", 3)
    );
}

fn a_panicking_export_callback_still_leaves_its_entries(backend: Backend) {
    let (t, _) = exportable(backend);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.export(&Query::all(), &mut |_| panic!("consumer crashed"))
    }));
    assert!(caught.is_err(), "the panic reaches the caller");
    let mut entries = t.audit().entries(..).unwrap();
    let finished = entries.pop().unwrap();
    let started = entries.pop().unwrap();
    assert_eq!((started.action, started.count), (AuditAction::Export, 0));
    assert_eq!(
        (finished.action, finished.count),
        (AuditAction::ExportFinished, 1)
    );
    assert!(
        matches!(&finished.outcome, AuditOutcome::Failed(m) if m.contains("panicked")),
        "{:?}",
        finished.outcome
    );
    t.audit().verify().unwrap();
    // The vault still works after the panic.
    assert_eq!(t.export(&Query::all(), &mut |_| Ok(())).unwrap(), 3);
}

fn an_export_its_callback_stops_is_recorded_with_the_count_so_far(backend: Backend) {
    let (t, query) = exportable(backend);
    let mut seen = 0;
    let err = t
        .export(&Query::all(), &mut |_| {
            seen += 1;
            if seen == 2 {
                return Err(Error::InvalidInput {
                    what: "sink",
                    reason: "full".into(),
                });
            }
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }));
    let last = t.audit().entries(..).unwrap().pop().unwrap();
    assert_eq!((last.action, last.count), (AuditAction::ExportFinished, 2));
    assert!(matches!(&last.outcome, AuditOutcome::Failed(m) if m.contains("full")));
    // A filter that matches nothing still leaves both entries.
    assert_eq!(t.export(&query, &mut |_| Ok(())).unwrap(), 0);
    let mut entries = t.audit().entries(..).unwrap();
    assert_eq!(entries.pop().unwrap().action, AuditAction::ExportFinished);
    let started = entries.pop().unwrap();
    assert_eq!(started.query.unwrap().tag.as_deref(), Some("x"));
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

#[test]
fn an_export_whose_entry_cannot_be_written_hands_out_nothing() {
    let (t, _) = exportable(Backend::Sqlite);
    // The audit table vanishes under the open vault: no entry can be written.
    t.sql()
        .execute_batch("ALTER TABLE audit RENAME TO audit_away")
        .unwrap();
    let mut handed_out = 0;
    let err = t
        .export(&Query::all(), &mut |_| {
            handed_out += 1;
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    assert_eq!(handed_out, 0, "no record before its entry");
    t.sql()
        .execute_batch("ALTER TABLE audit_away RENAME TO audit")
        .unwrap();
    assert_eq!(t.export(&Query::all(), &mut |_| Ok(())).unwrap(), 3);
}

/// A query for one subject (or one conversation) reads that subject's
/// rows through the index, not every record: another subject's damaged
/// record, which a scan of the whole vault meets and fails on, is never
/// opened.
#[test]
fn a_subject_or_conversation_query_opens_only_its_own_records() {
    let mut t = new_vault();
    let alice = t.put(record("a-conv", Some("alice"), "hers")).unwrap();
    let bob = t.put(record("b-conv", Some("bob"), "his")).unwrap();
    t.close();
    t.sql()
        .execute(
            "UPDATE records SET sealed = CAST(zeroblob(length(sealed)) AS BLOB) WHERE id = ?1",
            [bob.as_u64() as i64],
        )
        .unwrap();
    t.reopen();
    for query in [
        Query::all().subject(SubjectId::new("alice")),
        Query::all().conversation(ConversationId::new("a-conv")),
    ] {
        let found = t.query(&query).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id(), alice);
    }
    // The whole vault still meets the damage.
    assert!(matches!(
        t.query(&Query::all()),
        Err(Error::Tampered { id }) if id == bob
    ));
}

/// Records over `blocks` blocks of the time index (1,024 ids each),
/// created one second apart from `start()`, oldest first; their ids.
fn records_over_blocks(t: &TestVault, blocks: usize) -> Vec<llmvault::RecordId> {
    let n = blocks * 1024;
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let batch = chunk
            .iter()
            .map(|&i| {
                record("c", None, &format!("r{i}"))
                    .created_at(start() + Duration::from_secs(i as u64))
            })
            .collect();
        ids.extend(t.put_batch(batch).unwrap());
    }
    ids
}

/// Zeroes the sealed bytes of every record whose id is outside
/// `keep_from..=keep_to`: a query that opened one would fail on it.
fn damage_all_but(t: &TestVault, keep_from: u64, keep_to: u64) {
    t.sql()
        .execute(
            "UPDATE records SET sealed = CAST(zeroblob(length(sealed)) AS BLOB) \
             WHERE id < ?1 OR id > ?2",
            [keep_from as i64, keep_to as i64],
        )
        .unwrap();
}

/// A query by time opens the blocks of ids the sealed time index cannot
/// rule out, not the whole vault: for the newest 1 % of 40 blocks, every
/// record of the 39 blocks before is damaged and never opened, and the
/// answer is exactly the records created since then. The same for the
/// oldest records with `until`.
#[test]
fn a_query_by_time_opens_only_the_blocks_that_can_hold_its_records() {
    let mut t = new_vault();
    let ids = records_over_blocks(&t, 40);
    let n = ids.len();
    let newest = n / 100;
    let since = start() + Duration::from_secs((n - newest) as u64);
    let tail_block_start = (ids[n - newest].as_u64() / 1024) * 1024;
    t.close();
    damage_all_but(&t, tail_block_start, u64::MAX >> 1);
    t.reopen();
    let found = t.query(&Query::all().since(since)).unwrap();
    assert_eq!(
        found.iter().map(|r| r.id()).collect::<Vec<_>>(),
        ids[n - newest..],
        "exactly the records created since then"
    );
    let opened = ids.len() - ids.partition_point(|id| id.as_u64() < tail_block_start);
    assert!(
        opened * 100 <= 3 * n,
        "at most the newest block of ids: {opened} of {n}"
    );
    assert!(matches!(
        t.query(&Query::all()),
        Err(Error::Tampered { .. })
    ));

    let mut t = new_vault();
    let ids = records_over_blocks(&t, 40);
    let until = start() + Duration::from_secs(100);
    t.close();
    damage_all_but(&t, 1, 1023);
    t.reopen();
    let found = t.query(&Query::all().until(until)).unwrap();
    assert_eq!(
        found.iter().map(|r| r.id()).collect::<Vec<_>>(),
        ids[..100],
        "exactly the records created before then"
    );
    // A range inside the vault's history reads the blocks it spans.
    assert!(matches!(
        t.query(&Query::all().since(start() + Duration::from_secs(2000))),
        Err(Error::Tampered { .. })
    ));
}

/// A time index row that does not open counts as "may hold anything": a
/// query by time reads its block (and finds the damage there), never
/// skips it.
#[test]
fn a_damaged_time_index_row_never_hides_its_block() {
    let mut t = new_vault();
    let ids = records_over_blocks(&t, 3);
    t.close();
    let changed = t
        .sql()
        .execute(
            "UPDATE meta SET value = zeroblob(length(value)) WHERE name = 'time-index/0000000000000000'",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1, "block 0 has its row");
    t.reopen();
    // Created long after every record: without the row, block 0 must be
    // read (and all of it is live and intact, so nothing is found).
    let later = start() + Duration::from_secs(1_000_000);
    assert!(t.query(&Query::all().since(later)).unwrap().is_empty());
    // Block 0's records are found by a query that needs them, the row
    // damaged or not.
    let found = t
        .query(&Query::all().until(start() + Duration::from_secs(10)))
        .unwrap();
    assert_eq!(found.iter().map(|r| r.id()).collect::<Vec<_>>(), ids[..10]);
}

/// A handle reads the `time-index-from` row only until it has seen it
/// (nothing deletes it). Deleted anyway under an open handle, it stays
/// gone, and queries by time then treat no id as indexed: they read every
/// block (finding damage anywhere), and still answer exactly.
#[test]
fn a_time_index_from_row_deleted_under_an_open_handle_costs_reads_never_answers() {
    let mut t = new_vault();
    let ids = records_over_blocks(&t, 3);
    let deleted = t
        .sql()
        .execute("DELETE FROM meta WHERE name = 'time-index-from'", [])
        .unwrap();
    assert_eq!(deleted, 1);
    let later = start() + Duration::from_secs(1_000_000);
    let newer = t
        .put_batch(
            (0..10)
                .map(|i| record("c", None, &format!("n{i}")).created_at(later))
                .collect(),
        )
        .unwrap();
    let rows: i64 = t
        .sql()
        .query_row(
            "SELECT count(*) FROM meta WHERE name = 'time-index-from'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 0, "the handle that had seen it did not read it again");
    let found = t.query(&Query::all().since(later)).unwrap();
    assert_eq!(found.iter().map(|r| r.id()).collect::<Vec<_>>(), newer);
    let found = t
        .query(&Query::all().until(start() + Duration::from_secs(10)))
        .unwrap();
    assert_eq!(found.iter().map(|r| r.id()).collect::<Vec<_>>(), ids[..10]);
    // Block 0 is read by a query its index row rules out.
    t.close();
    damage_all_but(&t, 1024, u64::MAX >> 1);
    t.reopen();
    assert!(matches!(
        t.query(&Query::all().since(later)),
        Err(Error::Tampered { .. })
    ));
}

/// The time index's bounds in ms never rule out a match: an `until` a
/// fraction of a ms after a record's creation still finds it, and a
/// record created at the far end of time is found by `since` alone.
#[test]
fn queries_by_time_find_records_at_the_edges_of_their_blocks_bounds() {
    let t = new_vault();
    let at = start() + Duration::from_millis(5);
    let near = t.put(record("c", None, "near").created_at(at)).unwrap();
    let far_time = std::time::UNIX_EPOCH + Duration::from_secs(1 << 60);
    let far = t
        .put(record("c", None, "far").created_at(far_time))
        .unwrap();
    let found = t
        .query(&Query::all().until(at + Duration::from_micros(500)))
        .unwrap();
    assert_eq!(found.iter().map(|r| r.id()).collect::<Vec<_>>(), [near]);
    let found = t
        .query(&Query::all().since(at + Duration::from_secs(1)))
        .unwrap();
    assert_eq!(found.iter().map(|r| r.id()).collect::<Vec<_>>(), [far]);
}
