//! Purges judge expiry by a clock: one that runs behind the vault's own
//! record of time (its audit log, maintenance notes) is refused, with or
//! without the key. Time moves only through manual clocks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use llmvault::Vault;
use llmvault::clock::ManualClock;
use llmvault::{AuditAction, AuditOutcome, Error, Maintenance};

const HOUR: Duration = Duration::from_secs(3600);

// On every backend; the test that changes the file is a plain `#[test]`,
// on SQLite only.
on_each_backend!(
    a_keyed_purge_behind_the_newest_audit_time_is_refused,
    the_check_survives_reopening_and_a_handle_with_another_clock,
    a_keyless_purge_behind_the_vault_is_refused,
    a_keyless_clock_set_forward_purges_early_but_does_not_block_keyed_purges,
);

fn job(t: &TestVault, clock: &Arc<ManualClock>) -> Maintenance {
    Vault::open_for_maintenance_in(&t.storage)
        .unwrap()
        .with_clock(clock.clone())
}

fn a_keyed_purge_behind_the_newest_audit_time_is_refused(backend: Backend) {
    let t = new_vault_on(backend);
    let id = t.put(record("c", None, "x").ttl(HOUR)).unwrap();
    t.clock.advance(2 * HOUR);
    assert!(matches!(t.get(id), Err(Error::Expired { .. })));

    // Set back to before the expiry: a purge now would keep the record.
    t.clock.set(start() + HOUR / 2);
    match t.purge_expired() {
        Err(Error::ClockBehind { now, newest }) => {
            assert_eq!(now, start() + HOUR / 2);
            assert_eq!(newest, start() + 2 * HOUR, "the time of the get");
        }
        other => panic!("expected ClockBehind, got {other:?}"),
    }
    let refused = t.audit().entries(..).unwrap().pop().unwrap();
    assert_eq!(refused.action, AuditAction::Purge);
    assert!(matches!(&refused.outcome, AuditOutcome::Failed(m) if m.contains("clock is behind")));

    // The refused purge's own entry carries the clock's time and is now the
    // newest entry, and so is a read's (reads still trust the clock: by
    // it the record has not expired yet). Neither makes the next purge
    // trust that clock.
    t.get(id).unwrap();
    assert!(matches!(t.purge_expired(), Err(Error::ClockBehind { .. })));
    assert_eq!(t.stats().unwrap().records, 1, "nothing was deleted");

    t.clock.set(start() + 2 * HOUR);
    assert_eq!(t.purge_expired().unwrap().records, 1);
    t.audit().verify().unwrap();
}

fn the_check_survives_reopening_and_a_handle_with_another_clock(backend: Backend) {
    let mut t = new_vault_on(backend);
    t.put(record("c", None, "x").ttl(HOUR)).unwrap();
    t.clock.advance(3 * HOUR);
    t.purge_expired().unwrap();
    t.put(record("c", None, "y")).unwrap();
    t.close();
    // Another process, whose clock is an hour behind.
    let late = Arc::new(ManualClock::new(start() + 2 * HOUR));
    let other = Vault::open_in(&t.storage, key(), opts(&late)).unwrap();
    assert!(matches!(
        other.purge_expired(),
        Err(Error::ClockBehind { .. })
    ));
    drop(other);
    t.reopen();
    t.purge_expired().unwrap();
}

#[test]
fn a_kept_newest_time_that_was_altered_is_ignored() {
    let mut t = new_vault();
    t.put(record("c", None, "x")).unwrap();
    t.clock.advance(2 * HOUR);
    t.purge_expired().unwrap(); // keeps the newest time it checked against
    t.close();
    let kept: Vec<u8> = t
        .sql()
        .query_row(
            "SELECT value FROM meta WHERE name = 'audit_newest'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept.len(), 48);

    // Raised far into the future, it would block every purge: it does not
    // authenticate, so it is ignored.
    let mut raised = kept.clone();
    raised[8] = 0x7F;
    let set = |t: &TestVault, v: &[u8]| {
        t.sql()
            .execute(
                "UPDATE meta SET value = ?1 WHERE name = 'audit_newest'",
                [v],
            )
            .unwrap();
    };
    set(&t, &raised);
    t.reopen();
    t.purge_expired().unwrap();

    // Lowered (or swapped for an older copy), it does not let a clock
    // behind the log through: the log itself is read again.
    t.close();
    let mut lowered = kept.clone();
    lowered[8..16].copy_from_slice(&0i64.to_be_bytes());
    set(&t, &lowered);
    t.reopen();
    t.clock.set(start() + HOUR);
    assert!(matches!(t.purge_expired(), Err(Error::ClockBehind { .. })));
}

fn a_keyless_purge_behind_the_vault_is_refused(backend: Backend) {
    let mut t = new_vault_on(backend);
    let id = t.put(record("c", None, "x").ttl(HOUR)).unwrap();
    t.clock.advance(2 * HOUR);
    t.get(id).unwrap_err();
    t.close();

    // Behind the newest audit entry.
    let behind = Arc::new(ManualClock::new(start() + HOUR / 2));
    assert!(matches!(
        job(&t, &behind).purge_expired(),
        Err(Error::ClockBehind { .. })
    ));

    // Behind an earlier job's note, not yet folded in.
    let ahead = Arc::new(ManualClock::new(start() + 5 * HOUR));
    assert_eq!(job(&t, &ahead).purge_expired().unwrap().records, 1);
    let between = Arc::new(ManualClock::new(start() + 3 * HOUR));
    match job(&t, &between).purge_expired() {
        Err(Error::ClockBehind { newest, .. }) => assert_eq!(newest, start() + 5 * HOUR),
        other => panic!("expected ClockBehind, got {other:?}"),
    }
    t.reopen();
    let notes = t
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .filter(|e| e.action == AuditAction::MaintenancePurge)
        .count();
    assert_eq!(notes, 1, "the refused job left no note");
}

/// What a maintenance host's clock can still do: set forward, it purges
/// early, and its note's time does not hold keyed purges back.
fn a_keyless_clock_set_forward_purges_early_but_does_not_block_keyed_purges(backend: Backend) {
    let mut t = new_vault_on(backend);
    t.put(record("c", None, "thirty days")).unwrap();
    t.close();
    let far = Arc::new(ManualClock::new(start() + 365 * 24 * HOUR));
    assert_eq!(job(&t, &far).purge_expired().unwrap().records, 1);

    t.reopen(); // folds the job's note in, with its far-future time
    let folded = t
        .audit()
        .entries(..)
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::MaintenancePurge)
        .unwrap();
    assert_eq!(folded.at, start() + 365 * 24 * HOUR);
    t.clock.advance(HOUR);
    t.purge_expired().unwrap();
}
