//! Retention without the key: a maintenance handle purges and counts, and
//! what it did reaches the audit chain at the next keyed open.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use llmvault::{AuditAction, Error, Vault};

// On every backend; the test of a file that is not a vault is a plain
// `#[test]`, on SQLite only.
on_each_backend!(
    a_keyless_job_purges_and_the_next_open_audits_it,
    notes_and_failed_opens_folded_in_together_are_chained_once_each,
);

fn a_keyless_job_purges_and_the_next_open_audits_it(backend: Backend) {
    let mut t = new_vault_on(backend);
    let short = t
        .put(record("c", Some("s"), "short").ttl(Duration::from_secs(3600)))
        .unwrap();
    let long = t
        .put(record("c", Some("s"), "long").ttl(Duration::from_secs(40 * 86_400)))
        .unwrap();
    t.close();

    t.clock.advance(Duration::from_secs(2 * 86_400));
    let job = Vault::open_for_maintenance_in(&t.storage)
        .unwrap()
        .with_clock(t.clock.clone());
    let before = job.stats().unwrap();
    assert_eq!((before.records, before.expired, before.keys), (2, 1, 2));
    assert!(before.sealed_bytes > 0);
    let report = job.purge_expired().unwrap();
    assert_eq!((report.records, report.keys_destroyed), (1, 1));
    let after = job.stats().unwrap();
    assert_eq!((after.records, after.expired, after.keys), (1, 0, 1));
    drop(job);

    t.reopen();
    assert!(matches!(t.get(short), Err(Error::NotFound { .. })));
    assert!(t.get(long).is_ok());
    let entries = t.audit().entries(..).unwrap();
    let at = entries
        .iter()
        .position(|e| e.action == AuditAction::MaintenancePurge)
        .expect("the maintenance purge is in the chain");
    let purge = &entries[at];
    assert_eq!((purge.actor.as_str(), purge.count), ("maintenance", 1));
    assert_eq!(
        purge.at,
        llmvault::clock::Clock::now(&*t.clock),
        "with the job's own time"
    );
    assert_eq!(
        entries[at + 1].action,
        AuditAction::Open,
        "folded in just before the open that found it"
    );
    t.audit().verify().unwrap();
    // Folded once only.
    t.reopen();
    let again = t.audit().entries(..).unwrap();
    assert_eq!(
        again
            .iter()
            .filter(|e| e.action == AuditAction::MaintenancePurge)
            .count(),
        1
    );
}

#[test]
fn maintenance_refuses_what_is_not_a_vault() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    std::fs::write(&path, vec![7u8; 8192]).unwrap();
    assert!(matches!(
        Vault::open_for_maintenance(&path),
        Err(Error::Corrupt { .. })
    ));
}

fn notes_and_failed_opens_folded_in_together_are_chained_once_each(backend: Backend) {
    let mut t = new_vault_on(backend);
    t.put(record("c", None, "x").ttl(Duration::from_secs(60)))
        .unwrap();
    t.close();
    t.clock.advance(Duration::from_secs(120));
    let job = Vault::open_for_maintenance_in(&t.storage)
        .unwrap()
        .with_clock(t.clock.clone());
    job.purge_expired().unwrap();
    job.purge_expired().unwrap();
    drop(job);
    for _ in 0..2 {
        let wrong = llmvault::KeySource::passphrase("wrong");
        assert!(matches!(
            Vault::open_in(&t.storage, wrong, &t.opts),
            Err(Error::WrongKey)
        ));
    }
    t.reopen();
    let entries = t.audit().entries(..).unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action).collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == AuditAction::MaintenancePurge)
            .count(),
        2
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == AuditAction::FailedOpens)
            .count(),
        1
    );
    assert_eq!(actions.last(), Some(&AuditAction::Open));
    t.audit().verify().unwrap();
}
