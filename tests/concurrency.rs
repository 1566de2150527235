//! One vault shared by threads: readers run while writers commit and a
//! purger deletes records that expire mid-run (time moves through the
//! `ManualClock`). Nothing written is lost, no reader sees half a batch,
//! the purger removes exactly what expired, and the audit chain verifies
//! with one entry per write and per read, naming what each returned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::*;
use llmvault::{AuditAction, AuditOutcome, ConversationId, RecordId, Vault};

const ROUNDS: usize = 20;
/// Per round a writer stores a batch of 10, then one single record.
const PER_ROUND: usize = 11;
/// Records with a one-hour TTL stored before the clock jumps two hours
/// (the purger must remove them), and as many after (it must not).
const SHORT: usize = 20;

#[test]
fn vault_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Vault>();
}

/// The prompt of the `k`th record writer `w` stores, in its own order.
fn expected_prompt(w: usize, k: usize) -> String {
    let (round, i) = (k / PER_ROUND, k % PER_ROUND);
    if i < 10 {
        format!("prompt: {w}-{round}-{i}")
    } else {
        "prompt: single".to_owned()
    }
}

#[test]
fn readers_writers_and_a_purger_share_one_vault() {
    let t = new_vault();
    let seed = t.put(record("seed", None, "seed")).unwrap();
    let vault: &Vault = &t;
    let clock = &t.clock;
    let done = AtomicBool::new(false);
    let (written, short_ids, reads, purged) = thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                s.spawn(move || {
                    let mut ids = Vec::new();
                    for round in 0..ROUNDS {
                        let batch = (0..10)
                            .map(|i| {
                                record(&format!("w{w}"), Some("s"), &format!("{w}-{round}-{i}"))
                            })
                            .collect();
                        ids.extend(vault.put_batch(batch).unwrap());
                        ids.push(vault.put(record(&format!("w{w}"), None, "single")).unwrap());
                    }
                    ids
                })
            })
            .collect();
        let short = s.spawn(move || {
            let one = || {
                vault
                    .put(record("short", None, "short").ttl(Duration::from_secs(3600)))
                    .unwrap()
            };
            let doomed: Vec<RecordId> = (0..SHORT).map(|_| one()).collect();
            clock.advance(Duration::from_secs(2 * 3600));
            let kept: Vec<RecordId> = (0..SHORT).map(|_| one()).collect();
            (doomed, kept)
        });
        let done = &done;
        let readers: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(move || {
                    let mut seen = Vec::new();
                    let mut last = 0;
                    while !done.load(Ordering::SeqCst) {
                        assert_eq!(vault.get(seed).unwrap().id(), seed);
                        let recs = vault.conversation(&ConversationId::new("w0")).unwrap();
                        // Batches are all or nothing, and w0's records
                        // come back in the order w0 stored them.
                        let n = recs.len();
                        assert!(
                            n.is_multiple_of(PER_ROUND) || n % PER_ROUND == 10,
                            "{n} records"
                        );
                        assert!(n >= last, "a reader saw {n} after {last}");
                        last = n;
                        for (k, r) in recs.iter().enumerate() {
                            assert_eq!(r.prompt()[0].content(), expected_prompt(0, k));
                        }
                        seen.push(recs.iter().map(|r| r.id()).collect::<Vec<_>>());
                    }
                    seen
                })
            })
            .collect();
        let purger = s.spawn(move || {
            let mut purged = 0;
            loop {
                // Read `done` before purging, so the last purge starts after
                // every write and the clock's jump.
                let stop = done.load(Ordering::SeqCst);
                purged += vault.purge_expired().unwrap().records;
                if stop {
                    return purged;
                }
            }
        });
        let ids: Vec<_> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        let short_ids = short.join().unwrap();
        done.store(true, Ordering::SeqCst);
        let reads: Vec<Vec<Vec<RecordId>>> =
            readers.into_iter().map(|r| r.join().unwrap()).collect();
        for r in &reads {
            assert!(!r.is_empty(), "every reader got to read");
        }
        (ids, short_ids, reads, purger.join().unwrap())
    });
    assert_eq!(purged, SHORT, "the purger removed exactly what expired");
    assert_eq!(t.purge_expired().unwrap().records, 0);

    assert_eq!(written.len(), 2 * ROUNDS * PER_ROUND);
    let (doomed, kept) = short_ids;
    let unique: std::collections::HashSet<_> = written.iter().chain(&doomed).chain(&kept).collect();
    assert_eq!(
        unique.len(),
        written.len() + 2 * SHORT,
        "ids are never handed out twice"
    );
    for id in written.iter().chain(&kept) {
        assert!(t.get(*id).is_ok());
    }
    for id in &doomed {
        assert!(t.get(*id).is_err(), "{id} expired and was purged");
    }
    assert_eq!(
        t.verify().unwrap().records,
        written.len() + SHORT + 1,
        "seed + writers' records + the short records kept"
    );
    for w in 0..2 {
        let conv = t
            .conversation(&ConversationId::new(format!("w{w}")))
            .unwrap();
        assert_eq!(conv.len(), ROUNDS * PER_ROUND);
        for (k, r) in conv.iter().enumerate() {
            assert_eq!(r.prompt()[0].content(), expected_prompt(w, k));
        }
    }

    // The chain verifies, every write has its entry, and so does every
    // read (a read returns only once its entry is committed).
    let entries = checked_audit(&t);
    // The only failed calls: the checks above that purged records are gone.
    let mut failed: Vec<RecordId> = entries
        .iter()
        .filter(|e| e.outcome != AuditOutcome::Ok)
        .inspect(|e| assert_eq!(e.action, AuditAction::Get))
        .flat_map(|e| e.records.iter().copied())
        .collect();
    failed.sort();
    let mut gone = doomed.clone();
    gone.sort();
    assert_eq!(failed, gone);
    let mut all_written: Vec<RecordId> = written
        .iter()
        .chain(&doomed)
        .chain(&kept)
        .copied()
        .collect();
    all_written.push(seed);
    all_written.sort();
    let mut logged: Vec<RecordId> = written_ids(&entries).into_iter().collect();
    logged.sort();
    assert!(
        logged == all_written,
        "write entries name {} ids, {} writes acknowledged",
        logged.len(),
        all_written.len()
    );
    let purge_counts: usize = entries
        .iter()
        .filter(|e| e.action == AuditAction::Purge)
        .map(|e| usize::try_from(e.count).unwrap())
        .sum();
    assert_eq!(purge_counts, SHORT, "purge entries count what was purged");
    let mut conversations: Vec<Vec<RecordId>> = entries
        .iter()
        .filter(|e| e.action == AuditAction::Conversation)
        .map(|e| e.records.clone())
        .collect();
    // The two checks above, after the readers stopped, read w0 and w1.
    conversations.truncate(conversations.len() - 2);
    let mut returned: Vec<Vec<RecordId>> = reads.iter().flatten().cloned().collect();
    conversations.sort();
    returned.sort();
    assert!(
        conversations == returned,
        "one Conversation entry per read, naming what it returned ({} entries, {} reads)",
        conversations.len(),
        returned.len()
    );
    let seed_gets = audited_ids(&entries, AuditAction::Get)
        .iter()
        .filter(|id| **id == seed)
        .count();
    assert_eq!(
        seed_gets,
        returned.len(),
        "one Get entry per read of the seed"
    );
}
