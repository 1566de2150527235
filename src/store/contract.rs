//! The seam's contract, checked on each backend from one source: what
//! the rules in `crate::tables` rely on a backend for.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "test code: a failed step is the test failing"
)]

use std::ops::ControlFlow;
use std::sync::Arc;

use super::sqlite::SqliteBackend;
use super::{
    AuditRow, Backend, Counter, Durability, IngestRow, KeyRow, MAX_STAGED_LEN, ReadTxn, RecordRow,
    Row, Select, Table, memory::MemoryBackend,
};
use crate::error::Error;
use crate::keys::{IdTag, KeyScope};

/// Runs `check` on a fresh SQLite backend, a fresh memory one and, with
/// the feature, a fresh PostgreSQL one in the test server (`.ci/postgres`;
/// skipped without one, a failure under `CI=true`).
fn on_each(check: impl Fn(&dyn Backend)) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteBackend::create(&dir.path().join("v"), 2).unwrap();
    check(&sqlite);
    let memory = Arc::new(MemoryBackend::default());
    memory.create().unwrap();
    check(&memory);
    #[cfg(feature = "postgres")]
    if let Some(postgres) = postgres_backend() {
        check(&postgres);
    }
}

/// A new PostgreSQL backend in a schema of its own, if a server is set up.
#[cfg(feature = "postgres")]
fn postgres_backend() -> Option<super::postgres::PostgresBackend> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let conninfo = std::env::var("LLMVAULT_TEST_POSTGRES").ok();
    let ca = std::env::var("LLMVAULT_TEST_POSTGRES_CA").ok();
    let (Some(conninfo), Some(ca)) = (conninfo, ca) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true and no PostgreSQL server: run under `bash .ci/postgres`"
        );
        return None;
    };
    let mut place = super::postgres::PostgresPlace::new(conninfo);
    place.ca_file = Some(ca.into());
    let mut nonce = [0u8; 4];
    crate::random::fill_from_os(&mut nonce);
    place.schema = format!(
        "contract_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        u32::from_le_bytes(nonce)
    );
    Some(super::postgres::PostgresBackend::create(&place).unwrap())
}

fn tag(n: u8) -> IdTag {
    [n; crate::keys::ID_TAG_LEN]
}

fn record(id: u64, conversation: u8, subject: Option<u8>, expires_at_ms: i64) -> Row {
    Row::Record(RecordRow {
        id,
        conversation: tag(conversation),
        subject: subject.map(tag),
        expires_at_ms,
        sealed: vec![id as u8; 8],
    })
}

fn staged(id: u64, expires_at_ms: i64, len: usize) -> Row {
    Row::Staged(IngestRow {
        id,
        key_id: 1,
        expires_at_ms,
        sealed: vec![7; len],
    })
}

fn key(id: u64, subject: Option<u8>, not_after_ms: i64, retired: bool) -> Row {
    Row::Key(KeyRow {
        id,
        scope: KeyScope {
            subject: subject.map(tag),
            not_after_ms,
        },
        sealed: 0,
        retired,
        wrapped: vec![1, 2, 3],
    })
}

/// The ids of the selected rows, in the order the backend gives them.
fn ids(r: &mut dyn ReadTxn, table: Table, select: Select<'_>) -> Vec<u64> {
    let mut out = Vec::new();
    r.scan(table, select, &mut |row| {
        out.push(match row.unwrap() {
            Row::Record(r) => r.id,
            Row::Key(k) => k.id,
            Row::Audit(a) => a.seq,
            Row::Staged(s) => s.id,
            other => panic!("{other:?}"),
        });
        Ok(ControlFlow::Continue(()))
    })
    .unwrap();
    out
}

#[test]
fn a_dropped_write_leaves_nothing_and_a_commit_is_seen() {
    on_each(|b| {
        let mut w = b.write(Durability::Durable).unwrap();
        w.put(&record(1, 1, None, 10)).unwrap();
        drop(w);
        assert!(
            b.read()
                .unwrap()
                .get(Table::Records, Select::Id(1))
                .unwrap()
                .is_none()
        );
        let mut w = b.write(Durability::Buffered).unwrap();
        w.put(&record(1, 1, None, 10)).unwrap();
        // A transaction sees its own writes.
        assert_eq!(ids(&mut *w, Table::Records, Select::All), [1]);
        w.commit().unwrap();
        assert!(w.commit().is_err(), "a second commit");
        drop(w);
        assert_eq!(
            ids(&mut *b.read().unwrap(), Table::Records, Select::All),
            [1]
        );
    });
}

/// Stores `first`; then a put of `again` (the same key) is refused, at the
/// put or at the latest at the commit (a backend may send rows together,
/// and may refuse every later operation of a transaction one failed in).
fn taken_is_refused(b: &dyn Backend, first: &Row, again: &Row, what: &str) {
    let mut w = b.write(Durability::Durable).unwrap();
    w.put(first).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut w = b.write(Durability::Durable).unwrap();
    let refused = w.put(again).is_err() || w.commit().is_err();
    assert!(refused, "{what} replaced");
}

#[test]
fn rows_that_are_only_added_refuse_a_taken_key_and_the_others_replace() {
    on_each(|b| {
        let audit = Row::Audit(AuditRow {
            seq: 1,
            at_ms: 5,
            sealed: vec![1],
            mac: [9; 32],
            mac_intact: true,
        });
        for (first, again, what) in [
            (record(1, 1, None, 10), record(1, 2, None, 20), "record"),
            (audit.clone(), audit, "audit entry"),
            (staged(3, 10, 4), staged(3, 10, 4), "staged row"),
            (key(1, None, 100, false), key(1, None, 100, true), "key"),
        ] {
            taken_is_refused(b, &first, &again, what);
        }
        let Some(Row::Record(kept)) = b
            .read()
            .unwrap()
            .get(Table::Records, Select::Id(1))
            .unwrap()
        else {
            panic!("record 1")
        };
        assert_eq!(kept.expires_at_ms, 10, "the stored record stays");
        // Twice in one transaction: refused too, and nothing of it stays.
        let mut w = b.write(Durability::Durable).unwrap();
        let refused = w.put(&record(2, 1, None, 10)).is_err()
            || w.put(&record(2, 2, None, 20)).is_err()
            || w.commit().is_err();
        assert!(refused, "record put twice");
        drop(w);
        assert!(
            b.read()
                .unwrap()
                .get(Table::Records, Select::Id(2))
                .unwrap()
                .is_none()
        );
        let mut w = b.write(Durability::Durable).unwrap();
        // A changed key row goes and comes back.
        assert_eq!(w.delete(Table::Keys, Select::Id(1)).unwrap(), 1);
        w.put(&key(1, None, 100, true)).unwrap();
        let Some(Row::Key(k)) = w.get(Table::Keys, Select::Id(1)).unwrap() else {
            panic!("key 1")
        };
        assert!(k.retired);
        for value in [b"one".to_vec(), b"two".to_vec()] {
            w.put(&Row::Meta {
                name: "x".into(),
                value,
            })
            .unwrap();
        }
        let Some(Row::Meta { value, .. }) = w.get(Table::Meta, Select::Name("x")).unwrap() else {
            panic!("meta x")
        };
        assert_eq!(value, b"two");
        assert_eq!(w.delete(Table::Meta, Select::Name("x")).unwrap(), 1);
        assert!(w.get(Table::Meta, Select::Name("x")).unwrap().is_none());
    });
}

#[test]
fn selectors_pick_the_same_rows_in_the_same_order() {
    on_each(|b| {
        let mut w = b.write(Durability::Durable).unwrap();
        for (id, conv, subject, expires) in
            [(5, 1, Some(1), 50), (2, 2, Some(1), 20), (9, 1, None, 90)]
        {
            w.put(&record(id, conv, subject, expires)).unwrap();
        }
        assert_eq!(ids(&mut *w, Table::Records, Select::All), [2, 5, 9]);
        assert_eq!(
            ids(&mut *w, Table::Records, Select::Conversation(&tag(1))),
            [5, 9]
        );
        assert_eq!(
            ids(&mut *w, Table::Records, Select::Subject(Some(&tag(1)))),
            [2, 5]
        );
        assert_eq!(ids(&mut *w, Table::Records, Select::Newest), [9]);
        // One record by id (a purge of restored records): only that one.
        w.put(&record(7, 2, Some(2), 70)).unwrap();
        assert_eq!(w.delete(Table::Records, Select::Id(7)).unwrap(), 1);
        assert_eq!(w.delete(Table::Records, Select::Id(7)).unwrap(), 0);
        assert_eq!(ids(&mut *w, Table::Records, Select::All), [2, 5, 9]);
        let tally = w.tally(Table::Records, Select::ExpiredBy(50)).unwrap();
        assert_eq!(
            (tally.rows, tally.bytes, tally.min_expiry_ms),
            (2, 16, Some(20))
        );
        for (id, subject, end, retired) in [
            (1, None, 100, true),
            (2, Some(1), 100, false),
            (3, None, 100, false),
            (4, None, 200, false),
        ] {
            w.put(&key(id, subject, end, retired)).unwrap();
        }
        let anon = KeyScope {
            subject: None,
            not_after_ms: 100,
        };
        assert_eq!(ids(&mut *w, Table::Keys, Select::Sealing(&anon)), [3]);
        let ending = Select::EndingIn {
            subject: None,
            after_ms: 100,
            until_ms: 200,
        };
        assert_eq!(ids(&mut *w, Table::Keys, ending), [4]);
        assert_eq!(
            ids(
                &mut *w,
                Table::Records,
                Select::LiveConversation(&tag(1), 50)
            ),
            [9]
        );
        assert_eq!(
            ids(&mut *w, Table::Records, Select::LiveSubject(&tag(1), 20)),
            [5]
        );
        // Several rows: in id order (or newest first for Sealing), however
        // the backend reads them.
        assert_eq!(
            ids(&mut *w, Table::Records, Select::LiveSubject(&tag(1), 0)),
            [2, 5]
        );
        assert_eq!(
            ids(
                &mut *w,
                Table::Records,
                Select::LiveConversation(&tag(1), 0)
            ),
            [5, 9]
        );
        assert_eq!(ids(&mut *w, Table::Keys, Select::Subject(None)), [1, 3, 4]);
        w.put(&key(7, None, 100, false)).unwrap();
        assert_eq!(ids(&mut *w, Table::Keys, Select::Sealing(&anon)), [7, 3]);
        assert_eq!(
            ids(&mut *w, Table::Keys, Select::ExpiredBy(100)),
            [1, 2, 3, 7]
        );
        for seq in 1..=4 {
            w.put(&Row::Audit(AuditRow {
                seq,
                at_ms: 0,
                sealed: vec![7; 4],
                mac: [1; 32],
                mac_intact: true,
            }))
            .unwrap();
        }
        assert_eq!(ids(&mut *w, Table::Audit, Select::After(2)), [3, 4]);
        assert_eq!(ids(&mut *w, Table::Audit, Select::Range(2, 3)), [2, 3]);
        assert_eq!(
            ids(&mut *w, Table::Audit, Select::Range(3, u64::MAX)),
            [3, 4]
        );
        assert_eq!(
            ids(&mut *w, Table::Audit, Select::After(u64::MAX)),
            [] as [u64; 0]
        );
        assert_eq!(ids(&mut *w, Table::Audit, Select::Newest), [4]);
        let Some(Row::Audit(tail)) = w.get(Table::Audit, Select::Tail).unwrap() else {
            panic!("tail")
        };
        assert_eq!((tail.seq, tail.mac, tail.sealed.len()), (4, [1; 32], 0));
        w.put(&Row::PiiMap(crate::store::PiiMapRow {
            conversation: tag(2),
            subject: None,
            expires_at_ms: 500,
            sealed: vec![1],
        }))
        .unwrap();
        // The mapping of conversation 2, which a record of subject 1 is in.
        assert_eq!(
            w.delete(Table::PiiMaps, Select::ConversationsOf(&tag(1)))
                .unwrap(),
            1
        );
        assert_eq!(w.delete(Table::Records, Select::ExpiredBy(50)).unwrap(), 2);
        assert_eq!(
            w.delete(Table::Keys, Select::Subject(Some(&tag(1))))
                .unwrap(),
            1
        );
        assert_eq!(ids(&mut *w, Table::Records, Select::All), [9]);
        assert_eq!(ids(&mut *w, Table::Keys, Select::All), [1, 3, 4, 7]);
        // A pairing the vault never makes is an error, not a guess.
        assert!(matches!(
            w.delete(Table::Audit, Select::All),
            Err(Error::Storage(_))
        ));
    });
}

#[test]
fn staged_rows_set_aside_leave_the_waiting_ones_and_long_ones_come_without_bytes() {
    on_each(|b| {
        let mut w = b.write(Durability::Durable).unwrap();
        for id in [3, 4, 6] {
            w.put(&staged(id, 100, 4)).unwrap();
        }
        w.put(&staged(8, 100, MAX_STAGED_LEN + 1)).unwrap();
        w.set_aside(4, 50).unwrap();
        assert_eq!(ids(&mut *w, Table::Staged, Select::All), [3, 6, 8]);
        assert_eq!(ids(&mut *w, Table::Staged, Select::After(3)), [6, 8]);
        assert_eq!(w.tally(Table::Staged, Select::SetAside).unwrap().rows, 1);
        let Some(Row::Staged(long)) = w.get(Table::Staged, Select::Id(8)).unwrap() else {
            panic!("staged 8")
        };
        assert!(
            long.sealed.is_empty(),
            "a row past the cap is read without its bytes"
        );
        // The set-aside row's expiry was capped: a purge at 50 reaches it.
        assert_eq!(w.delete(Table::Staged, Select::ExpiredBy(50)).unwrap(), 1);
        assert_eq!(w.tally(Table::Staged, Select::SetAside).unwrap().rows, 0);
        assert_eq!(w.delete(Table::Staged, Select::Id(3)).unwrap(), 1);
        assert_eq!(ids(&mut *w, Table::Staged, Select::All), [6, 8]);
    });
}

#[test]
fn a_write_transaction_reads_its_own_meta_rows_and_deletes_them() {
    // Backends may hold `meta` writes back until the commit; every read of
    // the transaction still sees them, by name or by prefix.
    on_each(|b| {
        let meta = |name: &str, value: &[u8]| Row::Meta {
            name: name.into(),
            value: value.to_vec(),
        };
        let value_of = |w: &mut dyn super::WriteTxn, name: &str| match w
            .get(Table::Meta, Select::Name(name))
            .unwrap()
        {
            Some(Row::Meta { value, .. }) => Some(value),
            _ => None,
        };
        let mut w = b.write(Durability::Durable).unwrap();
        w.put(&meta("m/a", b"1")).unwrap();
        w.put(&meta("m/b", b"2")).unwrap();
        assert_eq!(value_of(&mut *w, "m/a").as_deref(), Some(&b"1"[..]));
        w.put(&meta("m/a", b"3")).unwrap();
        assert_eq!(value_of(&mut *w, "m/a").as_deref(), Some(&b"3"[..]));
        let mut names = Vec::new();
        w.scan(Table::Meta, Select::Prefix("m/"), &mut |row| {
            if let Ok(Row::Meta { name, value }) = row {
                names.push((name, value));
            }
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .unwrap();
        assert_eq!(
            names,
            [
                ("m/a".to_owned(), b"3".to_vec()),
                ("m/b".to_owned(), b"2".to_vec())
            ]
        );
        w.put(&meta("m/c", b"4")).unwrap();
        assert_eq!(w.delete(Table::Meta, Select::Name("m/c")).unwrap(), 1);
        assert_eq!(value_of(&mut *w, "m/c"), None);
        w.commit().unwrap();
        drop(w);
        let mut w = b.write(Durability::Durable).unwrap();
        assert_eq!(value_of(&mut *w, "m/a").as_deref(), Some(&b"3"[..]));
        assert_eq!(value_of(&mut *w, "m/b").as_deref(), Some(&b"2"[..]));
        assert_eq!(value_of(&mut *w, "m/c"), None);
        w.put(&meta("m/b", b"5")).unwrap();
        drop(w); // rolled back
        let mut w = b.write(Durability::Durable).unwrap();
        assert_eq!(value_of(&mut *w, "m/b").as_deref(), Some(&b"2"[..]));
    });
}

#[test]
fn key_ids_a_transaction_did_not_hand_out_are_not_skipped_after_its_commit() {
    // Backends may take key ids from the counter in blocks; what a
    // transaction did not hand out goes back, and a rolled-back one hands
    // out nothing.
    on_each(|b| {
        let mut w = b.write(Durability::Durable).unwrap();
        w.put(&Row::Counter {
            counter: Counter::KeyIds,
            value: Some(5),
        })
        .unwrap();
        w.commit().unwrap();
        drop(w);
        let mut w = b.write(Durability::Durable).unwrap();
        assert_eq!(w.bump(Counter::KeyIds, 1, 0).unwrap(), 5);
        assert_eq!(w.bump(Counter::KeyIds, 2, 0).unwrap(), 6);
        w.commit().unwrap();
        drop(w);
        let mut w = b.write(Durability::Durable).unwrap();
        assert_eq!(w.bump(Counter::KeyIds, 1, 0).unwrap(), 8);
        drop(w); // rolled back
        let mut r = b.read().unwrap();
        let Some(Row::Counter { value, .. }) = r
            .get(Table::Counters, Select::Counter(Counter::KeyIds))
            .unwrap()
        else {
            panic!("counter")
        };
        assert_eq!(value, Some(8));
        drop(r);
        let mut w = b.write(Durability::Durable).unwrap();
        assert_eq!(w.bump(Counter::KeyIds, 1, 0).unwrap(), 8);
        // Past a block: more ids at once than a block holds, a floor
        // beyond the block's end, a scan of the counter, a counter stored
        // over a block taken.
        assert_eq!(w.bump(Counter::KeyIds, 2000, 0).unwrap(), 9);
        assert_eq!(w.bump(Counter::KeyIds, 1, 0).unwrap(), 2009);
        assert_eq!(w.bump(Counter::KeyIds, 1, 5000).unwrap(), 5000);
        let mut seen = Vec::new();
        w.scan(
            Table::Counters,
            Select::Counter(Counter::KeyIds),
            &mut |row| {
                if let Ok(Row::Counter { value, .. }) = row {
                    seen.push(value);
                }
                Ok(std::ops::ControlFlow::Continue(()))
            },
        )
        .unwrap();
        assert_eq!(seen, [Some(5001)]);
        assert_eq!(w.bump(Counter::KeyIds, 1, 0).unwrap(), 5001);
        w.put(&Row::Counter {
            counter: Counter::KeyIds,
            value: Some(100),
        })
        .unwrap();
        assert_eq!(w.bump(Counter::KeyIds, 1, 0).unwrap(), 100);
        w.commit().unwrap();
        drop(w);
        let mut r = b.read().unwrap();
        let Some(Row::Counter { value, .. }) = r
            .get(Table::Counters, Select::Counter(Counter::KeyIds))
            .unwrap()
        else {
            panic!("counter")
        };
        assert_eq!(value, Some(101), "the counter stored, then one id");
    });
}

#[test]
fn counters_bump_from_their_value_or_floor_and_a_missing_one_is_an_error() {
    on_each(|b| {
        let mut w = b.write(Durability::Durable).unwrap();
        assert!(matches!(
            w.bump(Counter::KeyIds, 1, 0),
            Err(Error::Storage(_))
        ));
        w.put(&Row::Counter {
            counter: Counter::KeyIds,
            value: Some(7),
        })
        .unwrap();
        assert_eq!(w.bump(Counter::KeyIds, 3, 0).unwrap(), 7);
        assert_eq!(w.bump(Counter::KeyIds, 1, 0).unwrap(), 10);
        // Raised to the floor first.
        assert_eq!(w.bump(Counter::KeyIds, 1, 20).unwrap(), 20);
        let Some(Row::Counter { value, .. }) = w
            .get(Table::Counters, Select::Counter(Counter::KeyIds))
            .unwrap()
        else {
            panic!("counter")
        };
        assert_eq!(value, Some(21));
        w.bump(Counter::KeyUses(1), 5, 0).unwrap();
        w.put(&key(1, None, 100, false)).unwrap();
        w.bump(Counter::KeyUses(1), 5, 0).unwrap();
        w.bump(Counter::KeyUses(1), 2, 0).unwrap();
        let Some(Row::Key(k)) = w.get(Table::Keys, Select::Id(1)).unwrap() else {
            panic!("key 1")
        };
        assert_eq!(k.sealed, 7, "uses counted on the key that exists");
    });
}

/// With the keys apart, the keys store commits first. A record store that
/// holds writes back (PostgreSQL) sends them before that commit, so an
/// error in them (here a taken audit `seq`) stops the write before the
/// keys store's part is committed.
#[cfg(feature = "postgres")]
#[test]
fn a_held_back_error_in_the_record_store_stops_a_split_write_before_the_keys_commit() {
    use super::split::SplitBackend;
    let Some(records) = postgres_backend() else {
        return;
    };
    let keys = Arc::new(MemoryBackend::default());
    keys.create().unwrap();
    SplitBackend::mark_new(&records, &keys).unwrap();
    let split = SplitBackend::pair(Box::new(records), Box::new(Arc::clone(&keys))).unwrap();
    let audit = |seq| {
        Row::Audit(AuditRow {
            seq,
            at_ms: 1,
            sealed: vec![1; 40],
            mac: [2; 32],
            mac_intact: true,
        })
    };
    let mut w = split.write(Durability::Durable).unwrap();
    w.put(&audit(1)).unwrap();
    w.commit().unwrap();
    drop(w);
    let mut w = split.write(Durability::Durable).unwrap();
    w.put(&key(9, Some(1), 100, false)).unwrap();
    // Refused at the put or, held back, at the commit.
    let refused = w.put(&audit(1)).is_err() || w.commit().is_err();
    assert!(refused, "a taken audit seq is refused");
    drop(w);
    let mut r = keys.read().unwrap();
    assert!(
        r.get(Table::Keys, Select::Id(9)).unwrap().is_none(),
        "the keys store committed a write the record store refused"
    );
}
