//! Recovery shares: any k of n open the vault; fewer, forged or revoked
//! ones do not; a change of passphrase keeps them working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use llmvault::{AuditAction, Error, KeySource, RecoveryShare, Vault};

fn parse(texts: &[String], pick: &[usize]) -> Vec<RecoveryShare> {
    pick.iter()
        .map(|&i| RecoveryShare::from_text(&texts[i]).unwrap())
        .collect()
}

#[test]
fn any_k_of_n_shares_open_the_vault_and_fewer_do_not() {
    let mut t = new_vault();
    let id = t.put(record("c", Some("s"), "secret stuff")).unwrap();
    let texts: Vec<String> = t
        .recovery_shares(3, 5)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    assert_eq!(texts.len(), 5);
    t.close();

    for pick in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
        let v =
            Vault::open_with_shares_and_options(&t.path, &parse(&texts, &pick), &t.opts).unwrap();
        assert_eq!(
            v.get(id).unwrap().prompt()[0].content(),
            "prompt: secret stuff"
        );
    }
    let err =
        Vault::open_with_shares_and_options(&t.path, &parse(&texts, &[0, 1]), &t.opts).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "two of three: {err:?}");

    // A forged share with a valid checksum (from another vault) does not combine.
    let other = new_vault();
    let forged = other.recovery_shares(3, 5).unwrap().remove(0);
    let mut mixed = parse(&texts, &[0, 1]);
    mixed.push(forged);
    let err = Vault::open_with_shares_and_options(&t.path, &mixed, &t.opts).unwrap_err();
    assert!(matches!(err, Error::WrongKey), "forged share: {err:?}");

    t.reopen();
    let actions: Vec<_> = t
        .audit()
        .entries(..)
        .unwrap()
        .iter()
        .map(|e| e.action)
        .collect();
    assert!(actions.contains(&AuditAction::RecoverySharesIssued));
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == AuditAction::RecoveryOpen)
            .count(),
        3
    );
    let failed = t
        .audit()
        .entries(..)
        .unwrap()
        .into_iter()
        .find(|e| e.action == AuditAction::FailedOpens);
    assert_eq!(failed.map(|e| e.count), Some(2));
}

#[test]
fn shares_survive_a_change_of_passphrase_and_die_on_revoke() {
    let mut t = new_vault();
    let shares: Vec<String> = t
        .recovery_shares(2, 3)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    t.change_key(KeySource::passphrase("brand new")).unwrap();
    t.close();
    let v =
        Vault::open_with_shares_and_options(&t.path, &parse(&shares, &[0, 2]), &t.opts).unwrap();
    // The recovered handle is a full one: it can set a new passphrase.
    v.change_key(KeySource::passphrase(PASS)).unwrap();
    drop(v);
    t.reopen();
    t.revoke_recovery().unwrap();
    t.close();
    let err = Vault::open_with_shares_and_options(&t.path, &parse(&shares, &[0, 1, 2]), &t.opts)
        .unwrap_err();
    assert!(matches!(err, Error::WrongKey), "{err:?}");
}

#[test]
fn new_shares_revoke_old_ones_and_bad_thresholds_are_refused() {
    let mut t = new_vault();
    let old: Vec<String> = t
        .recovery_shares(1, 2)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    let new: Vec<String> = t
        .recovery_shares(1, 2)
        .unwrap()
        .iter()
        .map(|s| s.to_text().to_string())
        .collect();
    assert!(matches!(
        t.recovery_shares(3, 2),
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        t.recovery_shares(0, 2),
        Err(Error::InvalidInput { .. })
    ));
    t.close();
    assert!(Vault::open_with_shares_and_options(&t.path, &parse(&old, &[0]), &t.opts).is_err());
    assert!(Vault::open_with_shares_and_options(&t.path, &parse(&new, &[1]), &t.opts).is_ok());
}
